"""Workflow expressions (psa.automation.expressions): normalisation, the function allowlist, the five custom
functions, result rules and mapping resolution (docs/automation.md, "Expressions")."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from psa.automation.errors import ActionFailure
from psa.automation.expressions import (
    ALLOWED_FUNCTIONS,
    ExpressionError,
    compile_expression,
    evaluate,
    normalize_source,
    resolve_mapping,
)
from tests.helpers import examples

CONTEXT = {
    "payload": {"name": "Ada", "count": 3, "items": [1, 2, 3], "nothing": None, "tags": ["a", "b"]},
    "vars": {"contact": {"id": "c-1", "email": "ada@example.com"}},
    "meta": {"state": "RUNNING"},
    "error": None,
}


def ev(source: str, context: dict | None = None, **kwargs):
    return evaluate(compile_expression(source), CONTEXT if context is None else context, **kwargs)


def failure(source: str, context: dict | None = None, **kwargs) -> ExpressionError:
    with pytest.raises(ExpressionError) as info:
        ev(source, context, **kwargs)
    assert info.value.info.category == "ExpressionError"
    assert info.value.info.code == "INVALID_EXPR"
    return info.value


# -- normalisation ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "normalized"),
    [
        ("a == 1", "a = 1"),
        ("a != 1", "a != 1"),
        ("coalesce(a, 1)", "$coalesce(a, 1)"),
        ("len (a) + len(b)", "$len (a) + $len(b)"),
        ("toString(x) & nowIso()", "$toString(x) & $nowIso()"),
        ("append(list, 1)", "$append(list, 1)"),
        ("$len(a)", "$len(a)"),  # already a variable call
        ("a.len(1)", "a.len(1)"),  # preceded by "."
        ("mylen(1)", "mylen(1)"),  # part of a longer name
        ("len_2(1)", "len_2(1)"),
        ("lenient", "lenient"),
        ('"a == b" & len(x)', '"a == b" & $len(x)'),  # strings are left alone
        ("'len(x)' & x", "'len(x)' & x"),
        ("`len(`", "`len(`"),
        ("/* len(x) == 1 */ y == 2", "/* len(x) == 1 */ y = 2"),
    ],
)
def test_normalisation(source: str, normalized: str) -> None:
    assert normalize_source(source) == normalized


def test_compiled_expression_keeps_source_and_normalised_text() -> None:
    compiled = compile_expression("coalesce(a, 1) == 1")
    assert (compiled.source, compiled.normalized) == ("coalesce(a, 1) == 1", "$coalesce(a, 1) = 1")


def test_double_equals_works_as_equality() -> None:
    assert ev("payload.name == 'Ada'") is True
    assert ev("payload.count == 4") is False


def test_compiled_expressions_are_cached() -> None:
    assert compile_expression("payload.count + 1") is compile_expression("payload.count + 1")


def test_compiled_expression_records_the_functions_it_calls() -> None:
    assert compile_expression("len(a) + len(b) & toString(c)").functions == {"len", "toString"}


# -- the allowlist ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "name", "suggested"),
    [
        ("$string(payload.count)", "string", "toString"),
        ("string(payload.count)", "string", "toString"),  # bare, not normalised: still named
        ("$count(payload.items)", "count", "len"),
        ("$length('abc')", "length", "len"),
        ("$now()", "now", "nowIso"),
        ("$lenn(payload.items)", "lenn", "len"),
        ("$coalese(a, 1)", "coalese", "coalesce"),
        ("$uppercase(payload.name)", "uppercase", None),
        ("$sum(payload.items)", "sum", None),
        ("payload.items ~> $count", "count", "len"),
        ("payload.items.$string()", "string", "toString"),
        ("$string", "string", "toString"),  # a built-in referenced as a value
    ],
)
def test_disallowed_functions_are_named_with_a_suggestion(source: str, name: str, suggested: str | None) -> None:
    with pytest.raises(ExpressionError) as info:
        compile_expression(source)
    assert info.value.info.message == f"Expression uses disallowed function: {name}"
    if suggested:
        assert info.value.suggestion.startswith(f"Did you mean {suggested}()?")
    else:
        assert info.value.suggestion is None
    assert info.value.info.details["expression"] == source


@pytest.mark.parametrize(
    "source",
    [
        "function($x) { $x + 1 }(2)",
        "λ($x) { $x }",
        "payload.items.(function($v) { $v })",
        "($f := function($x){$x}; 1)",
    ],
)
def test_lambdas_are_rejected(source: str) -> None:
    with pytest.raises(ExpressionError, match=r"function definition \(lambda\), which is not allowed"):
        compile_expression(source)


@pytest.mark.parametrize("source", ["$f[0](1)", "($len)(1)", "payload.fn(1)"])
def test_computed_calls_are_rejected(source: str) -> None:
    with pytest.raises(ExpressionError) as info:
        compile_expression(source)
    assert "dynamic or computed function call" in info.value.info.message or "disallowed function" in str(info.value)


def test_rebinding_an_allowed_name_is_rejected() -> None:
    # otherwise `$len := $string` would smuggle a built-in in under an allowed name
    with pytest.raises(ExpressionError, match="rebinds the function name"):
        compile_expression("($len := 1; $len)")


def test_partial_application_and_non_function_apply_targets_are_rejected() -> None:
    with pytest.raises(ExpressionError, match="partial function application"):
        compile_expression("$len(?)")
    with pytest.raises(ExpressionError, match="~>"):
        compile_expression("payload ~> |$|{'a': 1}|")


def test_allowed_calls_through_apply_and_variables_work() -> None:
    assert ev("payload.items ~> $len") == 3
    assert ev("payload.items ~> $append(4)") == [1, 2, 3, 4]
    assert ev("($n := payload.count; $n * 2)") == 6


@pytest.mark.parametrize("source", ["", "   ", "\n"])
def test_empty_expressions_are_rejected(source: str) -> None:
    with pytest.raises(ExpressionError, match="Expression is empty"):
        compile_expression(source)


def test_syntax_errors_carry_the_jsonata_code_and_position() -> None:
    with pytest.raises(ExpressionError) as info:
        compile_expression("payload.count +")
    assert info.value.info.message.startswith("Invalid expression:")
    assert info.value.info.details["jsonata_code"].startswith("S0")
    assert isinstance(info.value.info.details["position"], int)


def test_non_string_source_is_rejected() -> None:
    with pytest.raises(ExpressionError, match="must be a string"):
        compile_expression(42)  # type: ignore[arg-type]


# -- the five functions -------------------------------------------------------------------------------


def test_allowlist_is_the_five_reference_functions() -> None:
    assert set(ALLOWED_FUNCTIONS) == {"nowIso", "coalesce", "len", "toString", "append"}


def test_now_iso() -> None:
    value = ev("nowIso()")
    assert value.endswith("Z")
    assert "T" in value
    assert ev("nowIso()", now="2026-01-05T10:00:00.000Z") == "2026-01-05T10:00:00.000Z"
    assert ev("nowIso()", now=lambda: "2026-01-06T00:00:00.000Z") == "2026-01-06T00:00:00.000Z"
    # the interpreter pins time in the context (deterministic under Temporal replay)
    assert ev("nowIso()", {"__now__": "2026-02-01T00:00:00.000Z"}) == "2026-02-01T00:00:00.000Z"


def test_now_iso_is_stable_within_one_evaluation() -> None:
    first, second = ev("[nowIso(), nowIso()]", {})
    assert first == second


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("coalesce(payload.missing, payload.nothing, 'fallback')", "fallback"),
        ("coalesce(payload.name, 'fallback')", "Ada"),
        ("coalesce(payload.missing, payload.nothing)", None),
        ("coalesce()", None),
        ("coalesce(0, 1)", 0),
        ("coalesce(false, true)", False),
        ("coalesce('', 'x')", ""),
    ],
)
def test_coalesce(source: str, expected) -> None:
    assert ev(source) == expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("len(payload.name)", 3),
        ("len(payload.items)", 3),
        ("len('héllo')", 5),
        ("len(payload.count)", 0),
        ("len(payload.missing)", 0),
        ("len(null)", 0),
        ("len(payload)", 0),
        ("len([])", 0),
    ],
)
def test_len(source: str, expected: int) -> None:
    assert ev(source) == expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("toString(payload.count)", "3"),
        ("toString(1.5)", "1.5"),
        ("toString(2.0)", "2"),
        ("toString(0.0000001)", "1e-7"),
        ("toString(true)", "true"),
        ("toString(payload.nothing)", ""),
        ("toString(payload.missing)", ""),
        ("toString(payload.name)", "Ada"),
        ("toString(payload.tags)", '["a","b"]'),
        ("toString({'a': null})", '{"a":null}'),
        ("'#' & toString(payload.count)", "#3"),
    ],
)
def test_to_string(source: str, expected: str) -> None:
    assert ev(source) == expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("append(payload.items, 4)", [1, 2, 3, 4]),
        ("append(payload.items, [4, 5])", [1, 2, 3, 4, 5]),
        ("append(payload.nothing, 'x')", ["x"]),
        ("append(payload.missing, 'x')", ["x"]),
        ("append('a', 'b')", ["a", "b"]),
        ("append(payload.items, payload.missing)", [1, 2, 3]),
        ("append([], null)", [None]),
    ],
)
def test_append(source: str, expected: list) -> None:
    assert ev(source) == expected


def test_append_does_not_modify_the_context() -> None:
    context = {"items": [1]}
    assert ev("append(items, 2)", context) == [1, 2]
    assert context == {"items": [1]}


# -- evaluation rules ---------------------------------------------------------------------------------


def test_jsonata_features_work() -> None:
    assert ev("payload.items[$ > 1]") == [2, 3]
    assert ev("payload.items.($ * 2)") == [2, 4, 6]
    assert ev("payload.count > 2 ? 'many' : 'few'") == "many"
    assert ev("vars.contact.email & ' <' & payload.name & '>'") == "ada@example.com <Ada>"
    assert ev("{'id': vars.contact.id, 'n': payload.count}") == {"id": "c-1", "n": 3}
    assert ev("'a' in payload.tags") is True
    assert ev("[1..3]") == [1, 2, 3]


def test_null_is_json_null() -> None:
    assert ev("payload.nothing") is None
    assert ev("error") is None
    assert ev("null") is None


def test_a_path_matching_nothing_is_an_error_use_coalesce() -> None:
    error = failure("payload.missing")
    assert error.info.message.startswith("Expression result is not JSON-serializable")
    assert "coalesce" in error.info.message
    assert ev("coalesce(payload.missing, null)") is None


def test_undefined_values_inside_objects_and_arrays_are_dropped() -> None:
    assert ev("{'a': payload.missing, 'b': 1}") == {"b": 1}
    assert ev("[payload.missing, 1]") == [1]


def test_non_json_results_are_rejected() -> None:
    assert "not JSON-serializable" in failure("/ab+/").info.message


def test_results_are_fresh_copies() -> None:
    context = {"payload": {"obj": {"a": [1]}}}
    result = ev("payload.obj", context)
    result["a"].append(2)
    assert context == {"payload": {"obj": {"a": [1]}}}


def test_result_size_limit() -> None:
    big = "x" * (256 * 1024)
    error = failure("payload.big", {"payload": {"big": big}})
    assert error.info.message == "Expression result exceeded max output size"
    assert error.info.details["max"] == 256 * 1024
    assert ev("payload.small", {"payload": {"small": "x" * 1000}}) == "x" * 1000
    assert failure("payload.s", {"payload": {"s": "xyz"}}, max_bytes=4).info.message.endswith("max output size")
    assert ev("payload.s", {"payload": {"s": "xy"}}, max_bytes=4) == "xy"  # '"xy"' is exactly 4 bytes
    assert failure("[1..10000000]", {}).info.message == "Expression result exceeded max output size"


def test_step_budget_is_deterministic() -> None:
    error = failure("[1..100000].($ + 1)", {})
    assert error.info.message == "Expression evaluation exceeded 200000 steps"
    assert failure("payload.items.($ + 1)", max_steps=5).info.message == "Expression evaluation exceeded 5 steps"


def test_runtime_errors_become_expression_errors() -> None:
    assert failure("payload.name + 1").info.message.startswith("Expression evaluation failed:")
    assert failure("payload.count / 0").info.message.startswith("Expression evaluation failed:")


def test_context_must_be_json_data() -> None:
    assert failure("a", {"a": uuid.uuid4()}).info.message.startswith("Expression evaluation failed:")


def test_evaluate_accepts_source_text() -> None:
    assert evaluate("payload.count + 1", CONTEXT) == 4


# -- mappings -----------------------------------------------------------------------------------------


def test_resolve_mapping_resolves_nested_expressions_and_keeps_literals() -> None:
    mapping = {
        "full_name": {"$expr": "payload.name"},
        "email": {"$expr": "vars.contact.email", "label": "ignored"},
        "source": "email",
        "count": 7,
        "flag": None,
        "tags": ["static", {"$expr": "payload.tags[0]"}],
        "details": {"title": "T", "body": {"$expr": "'n=' & toString(payload.count)"}},
    }
    assert resolve_mapping(mapping, CONTEXT) == {
        "full_name": "Ada",
        "email": "ada@example.com",
        "source": "email",
        "count": 7,
        "flag": None,
        "tags": ["static", "a"],
        "details": {"title": "T", "body": "n=3"},
    }


def test_resolve_mapping_errors_carry_the_json_pointer() -> None:
    with pytest.raises(ExpressionError) as info:
        resolve_mapping({"contact": [{"a/b": {"$expr": "payload.missing"}}]}, CONTEXT)
    assert info.value.info.details["path"] == "/contact/0/a~1b"
    with pytest.raises(ExpressionError) as info:
        resolve_mapping({"x": {"$expr": "$string(1)"}}, CONTEXT)
    assert info.value.info.details["path"] == "/x"
    assert info.value.info.message == "Expression uses disallowed function: string"
    with pytest.raises(ExpressionError) as info:
        resolve_mapping({"x": {"$expr": ""}}, CONTEXT)
    assert info.value.info.message == "Expression is empty"


def test_resolve_mapping_of_a_bare_expression() -> None:
    assert resolve_mapping({"$expr": "payload.count"}, CONTEXT) == 3
    assert resolve_mapping([1, "two"], CONTEXT) == [1, "two"]


# -- property: nothing but ActionFailure escapes -------------------------------------------------------

JSONATA_ALPHABET = "$()[]{}.,:;=!<>&?+-*/%\"'` ~|^#@λ\\\nabcdefnowIsoalegtrpmuxyz0123456789_"


@settings(max_examples=examples(400), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=JSONATA_ALPHABET, max_size=40) | st.text(max_size=30))
def test_arbitrary_sources_raise_only_action_failures(source: str) -> None:
    try:
        compiled = compile_expression(source)
        evaluate(compiled, CONTEXT, max_steps=20_000)
    except ActionFailure as exc:
        assert exc.info.category == "ExpressionError"
        assert exc.info.message


@settings(max_examples=examples(200), deadline=None)
@given(
    st.sampled_from(["payload.", "vars.", "", "coalesce(", "len(", "toString(", "append(payload.items, ", "nowIso("]),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz.[]0123456789 '()&=", max_size=20),
)
def test_function_shaped_sources_raise_only_action_failures(prefix: str, rest: str) -> None:
    try:
        evaluate(prefix + rest, CONTEXT)
    except ActionFailure as exc:
        assert exc.info.code == "INVALID_EXPR"
