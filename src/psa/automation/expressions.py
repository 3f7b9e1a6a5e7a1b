"""Workflow expressions: JSONata through ``jsonata-python`` (reference: expressionEngine and mappingResolver;
docs/automation.md, "Expressions").

An expression is ``{"$expr": "<JSONata>"}`` inside a definition. :func:`compile_expression` normalises and
validates the source once (cached); :func:`evaluate` runs it against a context document (the interpreter's
``{...vars, ...local, payload, vars, local, meta, error}``); :func:`resolve_mapping` resolves every
``{"$expr"}`` inside a literal tree (an ``inputMapping``, a trigger ``payloadMapping``).

Rules (reference behaviour unless marked *ours*):

- Normalisation before parsing: ``==`` becomes ``=``; a bare call to an allowed function ``fn(`` (not preceded
  by ``.``, ``$``, a letter, digit or ``_``) becomes ``$fn(``. *Ours:* both rewrites skip string literals,
  backtick names and comments, so ``"a==b"`` keeps its text.
- Only five functions may be called: ``nowIso()``, ``coalesce(...)``, ``len(v)``, ``toString(v)`` and
  ``append(list, value)``. JSONata built-ins (``$string``, ``$count`` ...) are rejected with
  ``Expression uses disallowed function: NAME`` (``details.suggestion`` holds a did-you-mean when a close
  allowed name exists), as are lambdas (``function($x) {...}``), calls whose callee is not a plain name,
  ``~>`` onto anything but an allowed function, and (*ours*) references to built-ins as values and rebinding
  an allowed name (``$len := ...``), which would otherwise smuggle a built-in in. At run time the built-ins are
  also shadowed, so a call that slipped past validation fails instead of running.
- The result must be JSON data. A path that matches nothing yields JSONata *undefined*; like the reference we
  raise ``Expression result is not JSON-serializable`` (with a hint to use ``coalesce``) rather than guessing
  ``null``: a typo in a path then fails loudly at the step that has it. ``coalesce(payload.x, null)`` is the
  explicit way to accept a missing value. Inside objects and arrays undefined values are dropped (JSONata).
- The serialised result is at most 256 KiB (``Expression result exceeded max output size``).
- *Ours:* instead of the reference's 25 ms wall-clock budget, evaluation is bounded by a count of evaluation
  steps (default 200,000) and a nesting depth (default 400). Both are deterministic, so the Temporal
  interpreter can evaluate in workflow code and replay identically.
- ``nowIso()`` returns ``now`` when given (an ISO string or a callable), else the context's ``__now__`` string
  (the interpreter puts ``workflow.now()`` there), else the current UTC time; ISO-8601 with ``Z``.

Every failure raises :class:`ExpressionError`, an :class:`~psa.automation.errors.ActionFailure` with
category ``ExpressionError`` and code ``INVALID_EXPR``; nothing else escapes (property-tested).
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import json
import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from jsonata import Jsonata
from jsonata.parser import Parser
from jsonata.utils import Utils

from psa.automation.errors import ActionErrorInfo, ActionFailure
from psa.timeutil import utc_now_iso

ALLOWED_FUNCTIONS: tuple[str, ...] = ("nowIso", "coalesce", "len", "toString", "append")
MAX_RESULT_BYTES = 256 * 1024
MAX_SOURCE_CHARS = 16 * 1024
DEFAULT_MAX_STEPS = 200_000
DEFAULT_MAX_DEPTH = 400

# Names people reach for that difflib would not map to an allowed function.
_ALIASES = {
    "string": "toString",
    "str": "toString",
    "length": "len",
    "count": "len",
    "size": "len",
    "now": "nowIso",
    "millis": "nowIso",
    "exists": "coalesce",
    "default": "coalesce",
    "push": "append",
    "concat": "append",
}
_BUILTINS: frozenset[str] = frozenset(Jsonata.static_frame.bindings)
_BARE_CALL = re.compile(r"(" + "|".join(ALLOWED_FUNCTIONS) + r")\s*\(")
_WORDISH = re.compile(r"[\w.$]")
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


class ExpressionError(ActionFailure):
    """An expression failed to compile or evaluate: category ``ExpressionError``, code ``INVALID_EXPR``.
    ``info.details`` carries ``expression`` and, where known, ``suggestion``, ``path`` (JSON pointer inside a
    mapping), ``jsonata_code`` and ``position``."""

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(
            ActionErrorInfo(category="ExpressionError", code="INVALID_EXPR", message=message, details=details)
        )

    @property
    def suggestion(self) -> str | None:
        return (self.info.details or {}).get("suggestion")


@dataclasses.dataclass(frozen=True, eq=False)
class CompiledExpression:
    """A validated expression: the source as written, the normalised JSONata text, the allowed functions it
    calls, and the parsed evaluator (shared and reused; evaluation state lives in a per-call frame)."""

    source: str
    normalized: str
    functions: frozenset[str]
    _jsonata: Jsonata = dataclasses.field(repr=False)


# -- normalisation -----------------------------------------------------------------------------------


def normalize_source(source: str) -> str:
    """The reference's source rewrite (``==`` -> ``=``; bare ``fn(`` of an allowed function -> ``$fn(``),
    applied outside string literals, backtick-quoted names and ``/* */`` comments."""
    out: list[str] = []
    i, n = 0, len(source)
    while i < n:
        ch = source[i]
        if ch in "\"'`":
            j = i + 1
            while j < n and source[j] != ch:
                j += 2 if source[j] == "\\" and ch != "`" else 1
            out.append(source[i : j + 1])
            i = j + 1
            continue
        if source.startswith("/*", i):
            end = source.find("*/", i + 2)
            end = n if end < 0 else end + 2
            out.append(source[i:end])
            i = end
            continue
        if source.startswith("==", i):
            out.append("=")
            i += 2
            continue
        if ch in "nclta" and (i == 0 or not _WORDISH.match(source[i - 1])):
            match = _BARE_CALL.match(source, i)
            if match:
                out.append("$" + match.group(1))
                i = match.end(1)
                continue
        out.append(ch)
        i += 1
    return "".join(out)


# -- validation --------------------------------------------------------------------------------------


def suggest_function(name: str) -> str | None:
    """An allowed function close to ``name`` (``string`` -> ``toString``), or None."""
    if name in _ALIASES:
        return _ALIASES[name]
    lowered = {f.lower(): f for f in ALLOWED_FUNCTIONS}
    close = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.6)
    return lowered[close[0]] if close else None


class _Problem(Exception):
    def __init__(self, message: str, suggestion: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.suggestion = suggestion


def _disallowed(name: str) -> _Problem:
    suggestion = suggest_function(name)
    return _Problem(
        f"Expression uses disallowed function: {name}",
        f"Did you mean {suggestion}()? Allowed functions: {', '.join(ALLOWED_FUNCTIONS)}" if suggestion else None,
    )


def _callee_name(procedure: Any) -> tuple[str | None, bool]:
    """``(name, has_dollar)`` of a plain-name callee; ``(None, False)`` when the callee is computed."""
    if _attr(procedure, "predicate") or _attr(procedure, "stages") or _attr(procedure, "group"):
        return None, False
    if getattr(procedure, "type", None) == "variable":
        return str(procedure.value), True
    if getattr(procedure, "type", None) == "path":
        steps = _attr(procedure, "steps") or []
        if len(steps) == 1 and getattr(steps[0], "type", None) == "name" and not _attr(steps[0], "predicate"):
            return str(steps[0].value), False
    return None, False


def _attr(node: Any, name: str) -> Any:
    return getattr(node, name, None)


def _check_ast(root: Any) -> frozenset[str]:
    """Walk the parsed AST; raise _Problem for the first violation; return the allowed functions called."""
    symbols: list[Any] = []
    seen: set[int] = set()
    stack = [root]
    while stack:  # every Symbol of the tree, in source-ish order
        node = stack.pop()
        if isinstance(node, list | tuple):
            stack.extend(reversed(node))
        elif isinstance(node, dict):
            stack.extend(reversed(list(node.values())))
        elif isinstance(node, Parser.Symbol) and id(node) not in seen:
            seen.add(id(node))
            symbols.append(node)
            children = [v for k, v in vars(node).items() if not k.startswith("_")]
            stack.extend(v for v in reversed(children) if isinstance(v, Parser.Symbol | list | tuple | dict))
    if any(_attr(node, "type") == "lambda" for node in symbols):
        raise _Problem("Expression uses a function definition (lambda), which is not allowed")
    called: set[str] = set()
    for node in symbols:
        kind = _attr(node, "type")
        if kind == "partial":
            raise _Problem("Expression uses partial function application (?), which is not allowed")
        if kind == "function":
            name, dollar = _callee_name(node.procedure)
            if name is None:
                raise _Problem("Expression uses a dynamic or computed function call, which is not allowed")
            if name not in ALLOWED_FUNCTIONS:
                raise _disallowed(name)
            if not dollar:
                raise _Problem(f"Expression calls {name} in an unsupported position; write ${name}(...)")
            called.add(name)
        elif kind == "apply" and _attr(node, "value") == "~>":
            rhs = node.rhs
            rhs_kind = _attr(rhs, "type")
            if rhs_kind == "variable" and not (_attr(rhs, "predicate") or _attr(rhs, "group")):
                if str(rhs.value) not in ALLOWED_FUNCTIONS:
                    raise _disallowed(str(rhs.value))
                called.add(str(rhs.value))
            elif rhs_kind != "function":
                raise _Problem("Expression applies ~> to something other than an allowed function call")
        elif kind == "variable":
            name = str(_attr(node, "value"))
            if name in _BUILTINS and name not in ALLOWED_FUNCTIONS:
                raise _disallowed(name)
        elif kind == "bind":
            name = str(_attr(node.lhs, "value"))
            if name in ALLOWED_FUNCTIONS or name in _BUILTINS:
                raise _Problem(f"Expression rebinds the function name ${name}, which is not allowed")
    return frozenset(called)


@functools.lru_cache(maxsize=2048)
def _compile_cached(source: str) -> CompiledExpression:
    normalized = normalize_source(source)
    try:
        evaluator = Jsonata(normalized)
        evaluator.set_output_convert_nulls(False)  # keep null (NULL_VALUE) apart from undefined (None)
        if evaluator.errors:
            raise evaluator.errors[0]
        functions = _check_ast(evaluator.ast)
    except _Problem as problem:
        details: dict[str, Any] = {"expression": source}
        if problem.suggestion:
            details["suggestion"] = problem.suggestion
        raise ExpressionError(problem.message, details) from None
    except RecursionError:
        raise ExpressionError("Invalid expression: nested too deeply", {"expression": source}) from None
    except Exception as exc:  # jsonata raises JException, and sometimes plain Python errors on odd input
        raise ExpressionError(f"Invalid expression: {exc}", _jsonata_details(exc, source)) from None
    return CompiledExpression(source=source, normalized=normalized, functions=functions, _jsonata=evaluator)


def compile_expression(source: str) -> CompiledExpression:
    """Normalise, parse and validate ``source`` (cached per source text).

    Raises ExpressionError for a non-string or empty source (``Expression is empty``), a source over 16 KiB,
    a JSONata syntax error (``Invalid expression: ...``, with ``jsonata_code`` and ``position``), a lambda,
    a computed call, or a disallowed function (see the module doc). Reference: expressionEngine compile.
    """
    if not isinstance(source, str):
        raise ExpressionError("Expression must be a string", {"expression": repr(source)[:200]})
    if not source.strip():
        raise ExpressionError("Expression is empty", {"expression": source})
    if len(source) > MAX_SOURCE_CHARS:
        raise ExpressionError(
            f"Expression is longer than {MAX_SOURCE_CHARS} characters", {"expression": source[:200] + "..."}
        )
    return _compile_cached(source)


def validate_expression(source: str) -> ExpressionError | None:
    """The compile error of ``source``, or None when it is valid (for publish validation)."""
    try:
        compile_expression(source)
    except ExpressionError as exc:
        return exc
    return None


def _jsonata_details(exc: Exception, source: str) -> dict[str, Any]:
    details: dict[str, Any] = {"expression": source}
    code = getattr(exc, "error", None)
    if isinstance(code, str):
        details["jsonata_code"] = code
    location = getattr(exc, "location", None)
    if isinstance(location, int) and location >= 0:
        details["position"] = location
    return details


# -- custom functions --------------------------------------------------------------------------------


def _nullish(value: Any) -> bool:
    return value is None or value is Utils.NULL_VALUE


def _fn_coalesce(*values: Any) -> Any:
    """First argument that is neither null nor undefined, else null."""
    for value in values:
        if not _nullish(value):
            return value
    return Utils.NULL_VALUE


def _fn_len(value: Any = None, *_: Any) -> int:
    """Length of a string (in characters) or an array; 0 for anything else."""
    return len(value) if isinstance(value, str | list) else 0


def _fn_to_string(value: Any = None, *_: Any) -> str:
    """'' for null/undefined; strings unchanged; ``true``/``false``; numbers as JavaScript prints them
    (``3``, not ``3.0``); arrays and objects as compact JSON (*ours*; the reference gives ``[object Object]``)."""
    if _nullish(value):
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer() and abs(value) < 1e21:
            return str(int(value))
        return re.sub(r"e([+-])0*(\d)", r"e\1\2", repr(value))  # 1e-07 -> 1e-7, as JavaScript prints it
    try:
        return json.dumps(_to_json(value), ensure_ascii=False, separators=(",", ":"))
    except _NotJson:
        return ""


def _fn_append(items: Any = None, value: Any = None, *_: Any) -> list[Any]:
    """``items`` as an array (null -> ``[]``, a non-array -> ``[items]``) with ``value`` added; an array
    ``value`` is spread; an undefined ``value`` adds nothing."""
    result: list[Any] = [] if _nullish(items) else list(items) if isinstance(items, list) else [items]
    if value is None:
        return result
    if isinstance(value, list):
        result.extend(value)
    else:
        result.append(value)
    return result


# -- evaluation --------------------------------------------------------------------------------------


class _NotJson(Exception):
    pass


class _Budget(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class _TooLarge(Exception):
    pass


def _to_json(value: Any, max_bytes: int | None = None) -> Any:
    """A JSONata value as plain JSON data (fresh containers); raises _NotJson for functions, regexes,
    non-finite numbers and non-string keys, and _TooLarge for a container whose JSON text cannot fit in
    ``max_bytes`` (an array of n items needs at least 2n+1 bytes, an object at least 5n+1)."""
    if value is None or value is Utils.NULL_VALUE:
        return None
    if isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _NotJson
        return value
    if isinstance(value, list | tuple):
        if max_bytes is not None and 2 * len(value) + 1 > max_bytes:
            raise _TooLarge
        return [_to_json(item, max_bytes) for item in value]
    if isinstance(value, dict):
        if max_bytes is not None and 5 * len(value) + 1 > max_bytes:
            raise _TooLarge
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise _NotJson
            out[key] = _to_json(item, max_bytes)
        return out
    raise _NotJson


def _frame(now: Callable[[], str], max_steps: int, max_depth: int) -> Jsonata.Frame:
    frame = Jsonata.Frame(None)
    for name in _BUILTINS:
        frame.bind(name, None)  # shadow every built-in: only the allowlist is callable
    frame.bind("nowIso", Jsonata.JLambda(lambda *_: now()))
    frame.bind("coalesce", Jsonata.JLambda(_fn_coalesce))
    frame.bind("len", Jsonata.JLambda(_fn_len))
    frame.bind("toString", Jsonata.JLambda(_fn_to_string))
    frame.bind("append", Jsonata.JLambda(_fn_append))
    counters = {"steps": 0, "depth": 0}

    def entry(_expr: Any, _input: Any, _env: Any) -> None:
        counters["steps"] += 1
        counters["depth"] += 1
        if counters["steps"] > max_steps:
            raise _Budget(f"Expression evaluation exceeded {max_steps} steps")
        if counters["depth"] > max_depth:
            raise _Budget(f"Expression evaluation nested deeper than {max_depth}")

    def leave(_expr: Any, _input: Any, _env: Any, _result: Any) -> None:
        counters["depth"] -= 1

    frame.bind("__evaluate_entry", entry)
    frame.bind("__evaluate_exit", leave)
    return frame


def _now_source(now: str | Callable[[], str] | None, context: Mapping[str, Any]) -> Callable[[], str]:
    if callable(now):
        return now
    if isinstance(now, str):
        return lambda: now
    pinned = context.get("__now__") if isinstance(context, Mapping) else None
    if isinstance(pinned, str):
        return lambda: pinned
    cache: list[str] = []

    def current() -> str:  # one value per evaluation
        if not cache:
            cache.append(utc_now_iso())
        return cache[0]

    return current


def evaluate(
    expression: CompiledExpression | str,
    context: Mapping[str, Any] | None = None,
    *,
    now: str | Callable[[], str] | None = None,
    max_steps: int = DEFAULT_MAX_STEPS,
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_bytes: int = MAX_RESULT_BYTES,
) -> Any:
    """Evaluate ``expression`` (compiled, or a source string compiled through the cache) against
    ``context`` (a JSON object: dicts, lists, str, int, float, bool, None). Returns plain JSON data
    (new containers; never the context's own objects).

    Raises ExpressionError when the result is undefined or not JSON (``Expression result is not
    JSON-serializable``), larger than ``max_bytes`` UTF-8 bytes of compact JSON (``Expression result exceeded
    max output size``), when the step or depth budget is exceeded, when the context is not JSON data, or on
    any JSONata runtime error (``Expression evaluation failed: ...``). Reference: expressionEngine evaluate.
    """
    compiled = expression if isinstance(expression, CompiledExpression) else compile_expression(expression)
    data = {} if context is None else context
    frame = _frame(_now_source(now, data), max_steps, max_depth)
    base = {"expression": compiled.source}
    try:
        raw = compiled._jsonata.evaluate(data, frame)
    except _Budget as exc:
        raise ExpressionError(exc.message, base) from None
    except RecursionError:
        raise ExpressionError("Expression evaluation nested too deeply", base) from None
    except Exception as exc:  # JException, and plain Python errors (ZeroDivisionError, TypeError, ...)
        raise ExpressionError(f"Expression evaluation failed: {exc}", _jsonata_details(exc, compiled.source)) from None
    if raw is None:
        raise ExpressionError(
            "Expression result is not JSON-serializable: the expression matched nothing (undefined); "
            "use coalesce(value, default) for optional data",
            base,
        )
    too_large = ExpressionError("Expression result exceeded max output size", {**base, "max": max_bytes})
    try:
        result = _to_json(raw, max_bytes)
    except _TooLarge:
        raise too_large from None
    except _NotJson:
        raise ExpressionError(f"Expression result is not JSON-serializable: {type(raw).__name__}", base) from None
    except RecursionError:
        raise ExpressionError("Expression result is nested too deeply", base) from None
    size = 0
    for chunk in _ENCODER.iterencode(result):  # stops at the first chunk over the limit
        size += len(chunk.encode())
        if size > max_bytes:
            raise too_large
    return result


# -- mappings ----------------------------------------------------------------------------------------


def pointer_escape(key: str) -> str:
    """One JSON-pointer token (``~`` -> ``~0``, ``/`` -> ``~1``)."""
    return key.replace("~", "~0").replace("/", "~1")


def resolve_mapping(
    value: Any,
    context: Mapping[str, Any] | None = None,
    *,
    now: str | Callable[[], str] | None = None,
    path: str = "",
) -> Any:
    """Resolve every ``{"$expr": "..."}`` inside ``value`` (objects and arrays are walked; other keys of an
    expression object are ignored; literals are returned as fresh copies).

    Raises ExpressionError whose ``details.path`` is the JSON pointer of the failing value (``/contact/0/email``;
    ``path`` is the pointer of ``value`` itself). Reference: mappingResolver (``$secret`` is not supported
    here and stays a literal; publish validation warns about it).
    """
    if isinstance(value, dict):
        if "$expr" in value:
            try:
                return evaluate(value["$expr"], context, now=now)
            except ExpressionError as exc:
                exc.info.details = {**(exc.info.details or {}), "path": path or "/"}
                raise
        return {
            key: resolve_mapping(item, context, now=now, path=f"{path}/{pointer_escape(str(key))}")
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [resolve_mapping(item, context, now=now, path=f"{path}/{i}") for i, item in enumerate(value)]
    return value
