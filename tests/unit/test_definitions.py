"""Workflow definition models and publish validation (psa.automation.definitions; docs/automation.md,
"Definition format", "Step types" and "Publish validation codes"). Every validation code is checked with the step
path it is reported at."""

from __future__ import annotations

import copy
import hashlib
import json
import uuid
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, Field

from psa.automation.definitions import ValidationIssue, definition_hash, validate_definition, workflow_id_for
from psa.automation.paths import InvalidAssignPath, normalize_assign_path
from psa.automation.registry import ActionDef, ActionRegistry
from psa.automation.steps import (
    ActionCallStep,
    ForEachStep,
    IfStep,
    TryCatchStep,
    WorkflowDefinition,
    iter_steps,
    parse_definition,
)

# -- a small registry of fake actions ------------------------------------------------------------------


class Address(BaseModel):
    city: str
    postcode: str | None = None


class CreateContactInput(BaseModel):
    full_name: str
    email: str | None = None
    client_id: str | None = None
    address: Address
    tags: list[str] = Field(default_factory=list)


class StrictInput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ticket_id: str


class IdOutput(BaseModel):
    id: str


async def _handler(ctx, data):  # never called by validation
    return {"id": "x"}


def fake(action_id: str, version: int, input_model: type[BaseModel]) -> ActionDef:
    return ActionDef(
        id=action_id,
        version=version,
        label=action_id,
        description="",
        input_model=input_model,
        output_model=IdOutput,
        side_effectful=True,
        idempotency="engine",
        permissions=(),
        handler=_handler,
    )


@pytest.fixture(scope="module")
def registry() -> ActionRegistry:
    reg = ActionRegistry()
    reg.register(fake("contacts.create", 1, CreateContactInput))
    reg.register(fake("tickets.close", 2, StrictInput))
    reg.register(fake("tickets.close", 3, StrictInput))
    return reg


def action(step_id: str = "create", **config: Any) -> dict[str, Any]:
    base = {
        "actionId": "contacts.create",
        "version": 1,
        "inputMapping": {"full_name": {"$expr": "payload.name"}, "address": {"city": "Paris"}},
    }
    return {"id": step_id, "type": "action.call", "config": {**base, **config}}


def definition(*steps: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {"id": "welcome", "name": "Welcome", "steps": list(steps), **top}


VALID = {
    "id": "onboard-contact",
    "version": 1,
    "name": "Onboard contact",
    "description": "Create a contact and tag it",
    "payloadSchemaRef": "payload.ContactCreated.v1",
    "trigger": {
        "type": "event",
        "eventName": "CONTACT_CREATED",
        "payloadMapping": {"name": {"$expr": "event.payload.fullName"}},
    },
    "steps": [
        {"id": "start", "type": "state.set", "config": {"state": "STARTED"}},
        {
            "id": "prep",
            "type": "transform.assign",
            "config": {"assign": {"vars.count": {"$expr": "0"}, "greeting": {"$expr": "'Hi ' & payload.name"}}},
        },
        {
            "id": "guard",
            "type": "control.tryCatch",
            "try": [
                action(
                    "create",
                    saveAs="contact",
                    idempotencyKey={"$expr": "payload.name & ':create'"},
                    onError={"policy": "continue"},
                ),
                {
                    "id": "loop",
                    "type": "control.forEach",
                    "items": {"$expr": "coalesce(payload.tags, [])"},
                    "itemVar": "tag",
                    "onItemError": "continue",
                    "body": [
                        {
                            "id": "check",
                            "type": "control.if",
                            "condition": {"$expr": "len(tag) > 0"},
                            "then": [
                                {
                                    "id": "count",
                                    "type": "transform.assign",
                                    "config": {"assign": {"vars.count": {"$expr": "vars.count + 1"}}},
                                }
                            ],
                            "else": [{"id": "stop", "type": "control.return"}],
                        },
                    ],
                },
            ],
            "catch": [
                {
                    "id": "failed",
                    "type": "state.set",
                    "config": {"state": "FAILED"},
                    "retry": {"maxAttempts": 2, "backoffMs": 10},
                }
            ],
            "captureErrorAs": "failure",
        },
    ],
}


def only(report, code: str) -> ValidationIssue:
    issues = [i for i in report.errors + report.warnings if i.code == code]
    assert len(issues) == 1, f"expected one {code}, got {report.errors + report.warnings}"
    return issues[0]


# -- the model ---------------------------------------------------------------------------------------


def test_valid_definition_passes_and_parses(registry: ActionRegistry) -> None:
    report = validate_definition(VALID, registry)
    assert report.errors == []
    assert report.warnings == []
    assert report.ok
    parsed = report.definition
    assert isinstance(parsed, WorkflowDefinition)
    guard = parsed.steps[2]
    assert isinstance(guard, TryCatchStep)
    assert guard.capture_error_as == "failure"
    assert isinstance(guard.try_[0], ActionCallStep)
    assert guard.try_[0].config.save_as == "contact"
    loop = guard.try_[1]
    assert isinstance(loop, ForEachStep)
    assert loop.item_var == "tag"
    assert loop.on_item_error == "continue"
    assert isinstance(loop.body[0], IfStep)
    assert loop.body[0].else_ is not None


def test_to_json_round_trips_what_was_given() -> None:
    parsed = parse_definition(VALID)
    assert parsed.to_json() == VALID
    assert parse_definition(parsed.to_json()).to_json() == VALID


def test_expr_objects_drop_extra_keys() -> None:
    raw = definition({"id": "i", "type": "control.if", "condition": {"$expr": "true", "note": "x"}, "then": []})
    assert parse_definition(raw).to_json()["steps"][0]["condition"] == {"$expr": "true"}


def test_iter_steps_yields_reference_step_paths() -> None:
    paths = [(path, step.id) for path, step in iter_steps(parse_definition(VALID))]
    assert paths == [
        ("root.steps[0]", "start"),
        ("root.steps[1]", "prep"),
        ("root.steps[2]", "guard"),
        ("root.steps[2].try.steps[0]", "create"),
        ("root.steps[2].try.steps[1]", "loop"),
        ("root.steps[2].try.steps[1].body.steps[0]", "check"),
        ("root.steps[2].try.steps[1].body.steps[0].then.steps[0]", "count"),
        ("root.steps[2].try.steps[1].body.steps[0].else.steps[0]", "stop"),
        ("root.steps[2].catch.steps[0]", "failed"),
    ]


def test_definition_hash_is_sha256_of_canonical_json() -> None:
    a = {"b": 1, "a": [1, {"y": 2, "x": "é"}]}
    b = {"a": [1, {"x": "é", "y": 2}], "b": 1}
    assert definition_hash(a) == definition_hash(b)
    expected = hashlib.sha256(json.dumps(a, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode())
    assert definition_hash(a) == expected.hexdigest()


def test_workflow_id_for() -> None:
    tenant = uuid.uuid4()
    explicit = uuid.uuid4()
    assert workflow_id_for(tenant, str(explicit)) == explicit
    assert workflow_id_for(tenant, "welcome") == workflow_id_for(tenant, "welcome")
    assert workflow_id_for(tenant, "welcome") != workflow_id_for(uuid.uuid4(), "welcome")
    assert workflow_id_for(tenant, "welcome", "other-key") == workflow_id_for(tenant, "x", "other-key")


# -- assignment paths --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "normalized"),
    [
        ("payload.contact.id", "payload.contact.id"),
        ("vars.result", "vars.result"),
        ("meta.state", "meta.state"),
        ("contact", "vars.contact"),
        ("contact.id", "vars.contact.id"),
        ("  vars.x  ", "vars.x"),
        ("payloadish", "vars.payloadish"),
    ],
)
def test_normalize_assign_path(path: str, normalized: str) -> None:
    assert normalize_assign_path(path) == normalized


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("vars..x", "empty segment"),
        ("vars.x.", "empty segment"),
        ("vars.__proto__.x", '"__proto__"'),
        ("payload.constructor", '"constructor"'),
        ("prototype", '"prototype"'),
        ("/a/b", "JSON pointer"),
        ("error.message", "read-only"),
        ("local.item", "read-only"),
        ("vars", "must name a field"),
        ("payload", "must name a field"),
    ],
)
def test_invalid_assign_paths(path: str, message: str) -> None:
    with pytest.raises(InvalidAssignPath, match=message):
        normalize_assign_path(path)


# -- validation codes with their step paths ---------------------------------------------------------------


def test_invalid_workflow_definition_at_root(registry: ActionRegistry) -> None:
    report = validate_definition({"id": "", "steps": [], "extra": 1}, registry)
    assert {i.code for i in report.errors} == {"INVALID_WORKFLOW_DEFINITION"}
    assert {i.step_path for i in report.errors} == {"root"}
    messages = sorted(i.message for i in report.errors)
    assert messages == [
        "extra: Extra inputs are not permitted",
        "id: String should have at least 1 character",
        "name: Field required",
    ]
    assert validate_definition(["not", "an", "object"], registry).codes() == ["INVALID_WORKFLOW_DEFINITION"]
    assert validate_definition({"id": "x", "name": "n"}, registry).errors[0].message == "steps: Field required"


def test_unsupported_trigger_is_a_definition_error(registry: ActionRegistry) -> None:
    report = validate_definition(definition(trigger={"type": "schedule", "runAt": "2026-01-01T00:00:00Z"}), registry)
    assert report.codes() == ["INVALID_WORKFLOW_DEFINITION"]
    assert report.errors[0].message == "trigger: trigger type 'schedule' is not supported; only \"event\" triggers are"


def test_non_serialisable_definition(registry: ActionRegistry) -> None:
    raw = definition()
    raw["description"] = object()
    assert validate_definition(raw, registry).codes() == ["NON_SERIALIZABLE"]


def test_schema_errors_are_reported_at_the_step_they_are_in(registry: ActionRegistry) -> None:
    raw = definition(
        {
            "id": "a",
            "type": "control.if",
            "condition": {"$expr": "true"},
            "then": [
                {
                    "id": "b",
                    "type": "control.forEach",
                    "items": {"$expr": "[1]"},
                    "itemVar": "x",
                    "body": [],
                    "onItemError": "skip",
                },
                {"id": "c", "type": "control.return", "unexpected": True},
                {"type": "control.return"},
                "not a step",
            ],
        },
    )
    report = validate_definition(raw, registry)
    assert [(i.code, i.step_path, i.step_id, i.message) for i in report.errors] == [
        (
            "INVALID_WORKFLOW_DEFINITION",
            "root.steps[0].then.steps[0]",
            "b",
            "onItemError: Input should be 'continue' or 'fail'",
        ),
        (
            "INVALID_WORKFLOW_DEFINITION",
            "root.steps[0].then.steps[1]",
            "c",
            "unexpected: Extra inputs are not permitted",
        ),
        ("INVALID_WORKFLOW_DEFINITION", "root.steps[0].then.steps[2]", None, "id: Field required"),
        ("INVALID_WORKFLOW_DEFINITION", "root.steps[0].then.steps[3]", None, "Step must be an object"),
    ]


def test_missing_type(registry: ActionRegistry) -> None:
    report = validate_definition(definition({"id": "a"}), registry)
    issue = only(report, "INVALID_WORKFLOW_DEFINITION")
    assert (issue.step_path, issue.step_id, issue.message) == ("root.steps[0]", "a", "Step must have a type field")


def test_foreach_concurrency_above_one(registry: ActionRegistry) -> None:
    raw = definition(
        {"id": "l", "type": "control.forEach", "items": {"$expr": "[1]"}, "itemVar": "x", "body": [], "concurrency": 2}
    )
    issue = only(validate_definition(raw, registry), "INVALID_WORKFLOW_DEFINITION")
    assert issue.message == "concurrency: concurrency > 1 is not supported: items run one after another"


def test_duplicate_step_id(registry: ActionRegistry) -> None:
    raw = definition(
        {"id": "same", "type": "state.set", "config": {"state": "A"}},
        {"id": "t", "type": "control.tryCatch", "try": [], "catch": [{"id": "same", "type": "control.return"}]},
    )
    issue = only(validate_definition(raw, registry), "DUPLICATE_STEP_ID")
    assert (issue.step_path, issue.step_id) == ("root.steps[1].catch.steps[0]", "same")
    assert issue.message == 'Duplicate step id "same" (also used at root.steps[0])'


@pytest.mark.parametrize(
    ("kind", "message", "suggestion"),
    [
        ("control.iff", 'Unknown node type "control.iff"', "Did you mean control.if?"),
        ("state.sett", 'Unknown node type "state.sett"', "Did you mean state.set?"),
        ("event.wait", 'Step type "event.wait" is not supported by this runtime', "Supported step types: "),
        ("control.callWorkflow", 'Step type "control.callWorkflow" is not supported by this runtime', None),
        ("zzz", 'Unknown node type "zzz"', "Supported step types: control.if, "),
    ],
)
def test_unknown_node_type(registry: ActionRegistry, kind: str, message: str, suggestion: str | None) -> None:
    raw = definition(
        {"id": "x", "type": "control.if", "condition": {"$expr": "true"}, "then": [{"id": "u", "type": kind}]}
    )
    issue = only(validate_definition(raw, registry), "UNKNOWN_NODE_TYPE")
    assert (issue.step_path, issue.step_id, issue.message) == ("root.steps[0].then.steps[0]", "u", message)
    if suggestion:
        assert issue.suggestion.startswith(suggestion)


def test_invalid_config(registry: ActionRegistry) -> None:
    raw = definition(
        {"id": "s", "type": "state.set", "config": {"state": "", "extra": 1}},
        {"id": "t", "type": "transform.assign", "config": {"assign": {"vars.x": "not an expr"}}},
        {"id": "s2", "type": "state.set"},
    )
    report = validate_definition(raw, registry)
    assert [(i.code, i.step_path, i.message) for i in report.errors] == [
        (
            "INVALID_CONFIG",
            "root.steps[0]",
            "config.state: String should have at least 1 character; config.extra: Extra inputs are not permitted",
        ),
        (
            "INVALID_CONFIG",
            "root.steps[1]",
            "config.assign.vars.x: Input should be a valid dictionary or instance of Expr",
        ),
        ("INVALID_CONFIG", "root.steps[2]", "config: Field required"),
    ]


def test_invalid_action_config(registry: ActionRegistry) -> None:
    raw = definition(
        {"id": "a", "type": "action.call", "config": {"inputMapping": {}}},
        {"id": "b", "type": "action.call"},
        {"id": "c", "type": "action.call", "config": {"actionId": "contacts.create", "version": 0}},
    )
    report = validate_definition(raw, registry)
    assert [(i.code, i.step_path) for i in report.errors] == [
        ("INVALID_ACTION_CONFIG", "root.steps[0]"),
        ("INVALID_ACTION_CONFIG", "root.steps[1]"),
        ("INVALID_CONFIG", "root.steps[2]"),
    ]
    assert report.errors[0].message == "action.call config requires actionId and version"
    assert report.errors[2].message == "config.version: Input should be greater than 0"


def test_unknown_action_suggests_versions_or_similar_ids(registry: ActionRegistry) -> None:
    raw = definition(
        {"id": "a", "type": "action.call", "config": {"actionId": "tickets.close", "version": 1}},
        {"id": "b", "type": "action.call", "config": {"actionId": "contact.create", "version": 1}},
        {"id": "c", "type": "action.call", "config": {"actionId": "billing.charge", "version": 1}},
    )
    report = validate_definition(raw, registry)
    assert [(i.code, i.step_path, i.message, i.suggestion) for i in report.errors] == [
        (
            "UNKNOWN_ACTION",
            "root.steps[0]",
            'Unknown action "tickets.close@1"',
            "Available versions of tickets.close: 2, 3",
        ),
        ("UNKNOWN_ACTION", "root.steps[1]", 'Unknown action "contact.create@1"', 'Did you mean "contacts.create"?'),
        ("UNKNOWN_ACTION", "root.steps[2]", 'Unknown action "billing.charge@1"', None),
    ]


def test_empty_expressions(registry: ActionRegistry) -> None:
    raw = definition(
        {"id": "i", "type": "control.if", "condition": {"$expr": ""}, "then": []},
        {"id": "l", "type": "control.forEach", "items": {"$expr": " "}, "itemVar": "x", "body": []},
        {"id": "t", "type": "transform.assign", "config": {"assign": {"vars.x": {"$expr": ""}}}},
        action(
            "a",
            inputMapping={"full_name": {"$expr": ""}, "address": {"city": {"$expr": ""}}},
            idempotencyKey={"$expr": ""},
        ),
    )
    report = validate_definition(raw, registry)
    assert [(i.code, i.step_path, i.message) for i in report.errors] == [
        ("EMPTY_EXPRESSION", "root.steps[0]", "Expression is empty: condition"),
        ("EMPTY_EXPRESSION", "root.steps[1]", "Expression is empty: items"),
        ("EMPTY_EXPRESSION", "root.steps[2]", 'Expression is empty: config.assign["vars.x"]'),
        ("EMPTY_EXPRESSION", "root.steps[3]", "Expression is empty: config.idempotencyKey"),
        ("EMPTY_EXPRESSION", "root.steps[3]", "Expression at inputMapping.full_name is empty"),
        ("EMPTY_EXPRESSION", "root.steps[3]", "Expression at inputMapping.address.city is empty"),
    ]


def test_invalid_expressions(registry: ActionRegistry) -> None:
    raw = definition(
        {
            "id": "i",
            "type": "control.if",
            "condition": {"$expr": "$string(payload.x) = '1'"},
            "then": [
                {
                    "id": "l",
                    "type": "control.forEach",
                    "items": {"$expr": "payload.items.(function($v){$v})"},
                    "itemVar": "x",
                    "body": [
                        {"id": "t", "type": "transform.assign", "config": {"assign": {"vars.x": {"$expr": "1 +"}}}},
                    ],
                },
            ],
        },
        action(
            "a",
            inputMapping={
                "full_name": {"$expr": "$uppercase(payload.name)"},
                "address": {"city": {"$expr": "$count(payload.items)"}},
            },
            idempotencyKey={"$expr": "$string(payload.id)"},
        ),
        trigger={"type": "event", "eventName": "X", "payloadMapping": {"a": {"$expr": "$now()"}}},
    )
    report = validate_definition(raw, registry)
    got = [(i.code, i.step_path, i.step_id, i.message, i.suggestion) for i in report.errors]
    toString = "Did you mean toString()? Allowed functions: nowIso, coalesce, len, toString, append"
    assert got == [
        (
            "INVALID_EXPR",
            "root",
            None,
            "Invalid expression at trigger.payloadMapping.a: Expression uses disallowed function: now",
            "Did you mean nowIso()? Allowed functions: nowIso, coalesce, len, toString, append",
        ),
        ("INVALID_EXPR", "root.steps[0]", "i", "condition: Expression uses disallowed function: string", toString),
        (
            "INVALID_EXPR",
            "root.steps[0].then.steps[0]",
            "l",
            "items: Expression uses a function definition (lambda), which is not allowed",
            None,
        ),
        (
            "INVALID_EXPR",
            "root.steps[0].then.steps[0].body.steps[0]",
            "t",
            'config.assign["vars.x"]: Invalid expression: Unexpected end of expression',
            None,
        ),
        (
            "INVALID_EXPR",
            "root.steps[1]",
            "a",
            "config.idempotencyKey: Expression uses disallowed function: string",
            toString,
        ),
        (
            "INVALID_EXPRESSION",
            "root.steps[1]",
            "a",
            "Invalid expression at inputMapping.full_name: Expression uses disallowed function: uppercase",
            None,
        ),
        (
            "INVALID_EXPRESSION",
            "root.steps[1]",
            "a",
            "Invalid expression at inputMapping.address.city: Expression uses disallowed function: count",
            "Did you mean len()? Allowed functions: nowIso, coalesce, len, toString, append",
        ),
    ]


def test_missing_required_mapping_recurses_into_object_literals(registry: ActionRegistry) -> None:
    raw = definition(
        action("a", inputMapping={"email": {"$expr": "payload.email"}, "address": {"postcode": "75001"}}),
        action("b", inputMapping={"full_name": "Ada", "address": {"$expr": "payload.address"}}),  # expr: not recursed
        action("c", inputMapping={}),
    )
    report = validate_definition(raw, registry)
    assert [(i.code, i.step_path, i.message) for i in report.errors] == [
        (
            "MISSING_REQUIRED_MAPPING",
            "root.steps[0]",
            'Required field "inputMapping.full_name" is not mapped in inputMapping',
        ),
        (
            "MISSING_REQUIRED_MAPPING",
            "root.steps[0]",
            'Required field "inputMapping.address.city" is not mapped in inputMapping',
        ),
        (
            "MISSING_REQUIRED_MAPPING",
            "root.steps[2]",
            'Required field "inputMapping.full_name" is not mapped in inputMapping',
        ),
        (
            "MISSING_REQUIRED_MAPPING",
            "root.steps[2]",
            'Required field "inputMapping.address" is not mapped in inputMapping',
        ),
    ]


def test_optional_and_defaulted_inputs_are_not_required(registry: ActionRegistry) -> None:
    # email, client_id (optional) and tags (default) are not in the schema's `required`
    report = validate_definition(definition(action("a")), registry)
    assert report.ok, report.errors


def test_unknown_mapping_fields(registry: ActionRegistry) -> None:
    raw = definition(
        action("a", inputMapping={"full_name": "A", "address": {"city": "P", "zip": 1}, "nickname": "x"}),
        {
            "id": "b",
            "type": "action.call",
            "config": {"actionId": "tickets.close", "version": 2, "inputMapping": {"ticket_id": "t", "force": True}},
        },
    )
    report = validate_definition(raw, registry)
    assert [(i.severity, i.step_path, i.message) for i in report.warnings] == [
        ("warning", "root.steps[0]", '"inputMapping.nickname" is not an input of contacts.create@1; it is ignored'),
        ("warning", "root.steps[0]", '"inputMapping.address.zip" is not an input of contacts.create@1; it is ignored'),
    ]
    assert [(i.code, i.step_path, i.message) for i in report.errors] == [
        (
            "UNKNOWN_MAPPING_FIELD",
            "root.steps[1]",
            '"inputMapping.force" is not an input of tickets.close@2; the action rejects unknown inputs',
        ),
    ]


def test_special_keys_are_warned_about(registry: ActionRegistry) -> None:
    raw = definition(action("a", inputMapping={"full_name": {"$secret": "API_KEY"}, "address": {"city": "P"}}))
    report = validate_definition(raw, registry)
    assert report.ok
    issue = only(report, "UNKNOWN_SPECIAL_KEY")
    assert (issue.severity, issue.step_path) == ("warning", "root.steps[0]")
    assert "$secret" in issue.message


def test_invalid_assign_paths_are_reported(registry: ActionRegistry) -> None:
    raw = definition(
        {
            "id": "t",
            "type": "transform.assign",
            "config": {
                "assign": {
                    "vars.__proto__.polluted": {"$expr": "1"},
                    "ok": {"$expr": "1"},
                    "error.message": {"$expr": "'x'"},
                }
            },
        },
        action("a", saveAs="/contact/id"),
        action("b", saveAs="vars..x"),
        {"id": "l", "type": "control.forEach", "items": {"$expr": "[1]"}, "itemVar": "item.x", "body": []},
        {"id": "tc", "type": "control.tryCatch", "try": [], "catch": [], "captureErrorAs": "constructor"},
    )
    report = validate_definition(raw, registry)
    assert [(i.code, i.step_path, i.step_id) for i in report.errors] == [
        ("INVALID_ASSIGN_PATH", "root.steps[0]", "t"),
        ("INVALID_ASSIGN_PATH", "root.steps[0]", "t"),
        ("INVALID_ASSIGN_PATH", "root.steps[1]", "a"),
        ("INVALID_ASSIGN_PATH", "root.steps[2]", "b"),
        ("INVALID_ASSIGN_PATH", "root.steps[3]", "l"),
        ("INVALID_ASSIGN_PATH", "root.steps[4]", "tc"),
    ]
    messages = [i.message for i in report.errors]
    assert messages[0] == (
        'config.assign["vars.__proto__.polluted"]: Assignment path uses the forbidden segment "__proto__": '
        "vars.__proto__.polluted"
    )
    assert messages[1].startswith('config.assign["error.message"]: Assignment path cannot write to the read-only scope')
    assert messages[2].startswith("config.saveAs: Assignment path must be dotted")
    assert messages[3] == "config.saveAs: Assignment path has an empty segment: vars..x"
    assert messages[4].startswith("itemVar must be a plain variable name")
    assert messages[5].startswith("captureErrorAs must be a plain variable name")


def test_every_problem_is_reported_at_once(registry: ActionRegistry) -> None:
    raw = copy.deepcopy(VALID)
    raw["steps"][0]["config"] = {}
    raw["steps"][2]["try"][1]["body"][0]["condition"] = {"$expr": "$exists(x)"}
    raw["steps"][2]["catch"].append({"id": "start", "type": "control.return"})
    report = validate_definition(raw, registry)
    assert [(i.code, i.step_path) for i in report.errors] == [
        ("INVALID_CONFIG", "root.steps[0]"),
        ("INVALID_EXPR", "root.steps[2].try.steps[1].body.steps[0]"),
        ("DUPLICATE_STEP_ID", "root.steps[2].catch.steps[1]"),
    ]
    assert report.definition is None


def test_report_dump_shape(registry: ActionRegistry) -> None:
    report = validate_definition(definition({"id": "a", "type": "nope"}), registry)
    assert report.model_dump() == {
        "errors": [
            {
                "severity": "error",
                "code": "UNKNOWN_NODE_TYPE",
                "step_path": "root.steps[0]",
                "step_id": "a",
                "message": 'Unknown node type "nope"',
                "suggestion": "Supported step types: control.if, control.forEach, control.tryCatch, control.return, "
                "state.set, transform.assign, action.call",
            }
        ],
        "warnings": [],
    }
