"""The typed model of a workflow definition: one pydantic model per step type, the trigger and the top level
(docs/automation.md, "Definition format", "Step types"). Publish validation (psa.automation.definitions) checks
raw JSON against these models; the run workflow (psa.automation.run.workflow) parses a published definition
into them once and walks the result. Pure: workflow code imports it.

The runtime supports these step types: ``control.if``, ``control.forEach``, ``control.tryCatch``,
``control.return``, ``state.set``, ``transform.assign`` and ``action.call``. The only trigger is
``{type: "event", eventName, payloadMapping?}``.

Step paths follow the reference: the root sequence is ``root.steps``, its i-th step ``root.steps[i]``, and
nested sequences append ``.then.steps``, ``.else.steps``, ``.try.steps``, ``.catch.steps`` or ``.body.steps``
(``root.steps[1].then.steps[0]``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Expr(BaseModel):
    """``{"$expr": "<JSONata>"}``; other keys are dropped (reference). The source may be empty in a draft;
    publish validation rejects it (EMPTY_EXPRESSION)."""

    model_config = ConfigDict(extra="ignore")

    expr: str = Field(alias="$expr")


class RetryPolicy(_Strict):
    """Per-step retry: ``maxAttempts`` (>= 1, the first attempt included), ``backoffMs`` before the second
    attempt, multiplied by ``backoffMultiplier`` (default 2) each time up to ``maxDelayMs``; ``retryOn`` lists
    error categories (or codes) to retry, empty or absent = any."""

    max_attempts: int = Field(alias="maxAttempts", gt=0)
    backoff_ms: int = Field(alias="backoffMs", ge=0)
    backoff_multiplier: float | None = Field(default=None, alias="backoffMultiplier", gt=0)
    jitter: bool | None = None
    max_delay_ms: int | None = Field(default=None, alias="maxDelayMs", gt=0)
    retry_on: list[str] | None = Field(default=None, alias="retryOn")


class OnErrorPolicy(_Strict):
    """``fail`` (default) stops at the error; ``continue`` records it in ``error`` and moves on."""

    policy: Literal["fail", "continue"]


class _StepBase(_Strict):
    id: str = Field(min_length=1)
    name: str | None = None


class IfStep(_StepBase):
    type: Literal["control.if"]
    condition: Expr
    then: list[Step]
    else_: list[Step] | None = Field(default=None, alias="else")


class ForEachStep(_StepBase):
    type: Literal["control.forEach"]
    items: Expr
    item_var: str = Field(alias="itemVar", min_length=1)
    concurrency: int | None = Field(default=None, gt=0)
    body: list[Step]
    on_item_error: Literal["continue", "fail"] = Field(default="fail", alias="onItemError")

    @field_validator("concurrency")
    @classmethod
    def _sequential(cls, value: int | None) -> int | None:
        if value is not None and value > 1:
            raise ValueError("concurrency > 1 is not supported: items run one after another")
        return value


class TryCatchStep(_StepBase):
    type: Literal["control.tryCatch"]
    try_: list[Step] = Field(alias="try")
    catch: list[Step]
    capture_error_as: str | None = Field(default=None, alias="captureErrorAs", min_length=1)


class ReturnStep(_StepBase):
    type: Literal["control.return"]


class _NodeStep(_StepBase):
    retry: RetryPolicy | None = None
    on_error: OnErrorPolicy | None = Field(default=None, alias="onError")


class StateSetConfig(_Strict):
    state: str = Field(min_length=1)


class StateSetStep(_NodeStep):
    """``meta.state = config.state``."""

    type: Literal["state.set"]
    config: StateSetConfig


class AssignConfig(_Strict):
    assign: dict[str, Expr]


class TransformAssignStep(_NodeStep):
    """Evaluates each ``assign`` expression in order, applying each before the next."""

    type: Literal["transform.assign"]
    config: AssignConfig


class ActionCallConfig(_Strict):
    """``action.call`` config (reference: the action.call node config; the AI-specific keys are not supported)."""

    action_id: str = Field(alias="actionId", min_length=1)
    version: int = Field(gt=0)
    input_mapping: dict[str, Any] = Field(default_factory=dict, alias="inputMapping")
    save_as: str | None = Field(default=None, alias="saveAs")
    idempotency_key: Expr | None = Field(default=None, alias="idempotencyKey")
    on_error: OnErrorPolicy | None = Field(default=None, alias="onError")
    outputs: list[Any] | None = None
    designer_group_key: str | None = Field(default=None, alias="designerGroupKey")
    designer_tile_kind: Literal["core-object", "transform", "app", "ai"] | None = Field(
        default=None, alias="designerTileKind"
    )
    designer_app_key: str | None = Field(default=None, alias="designerAppKey")


class ActionCallStep(_NodeStep):
    type: Literal["action.call"]
    config: ActionCallConfig


Step = Annotated[
    IfStep | ForEachStep | TryCatchStep | ReturnStep | StateSetStep | TransformAssignStep | ActionCallStep,
    Field(discriminator="type"),
]


class EventTrigger(_Strict):
    """Start a run when ``eventName`` is published; ``payloadMapping`` (literals and ``$expr`` against
    ``{event: {name, payload}}``, dotted keys expanded) builds the run payload, else the event payload is used."""

    type: Literal["event"]
    event_name: str = Field(alias="eventName", min_length=1)
    source_payload_schema_ref: str | None = Field(default=None, alias="sourcePayloadSchemaRef", min_length=1)
    payload_mapping: dict[str, Any] | None = Field(default=None, alias="payloadMapping")


class WorkflowDefinition(_Strict):
    """A workflow definition (reference: the definition JSON)."""

    id: str = Field(min_length=1)
    version: int | None = Field(default=None, gt=0)
    name: str = Field(min_length=1)
    description: str | None = None
    payload_schema_ref: str | None = Field(default=None, alias="payloadSchemaRef", min_length=1)
    trigger: EventTrigger | None = None
    steps: list[Step]

    @field_validator("trigger", mode="before")
    @classmethod
    def _event_only(cls, value: Any) -> Any:
        if isinstance(value, Mapping) and value.get("type") != "event":
            raise ValueError(f'trigger type {value.get("type")!r} is not supported; only "event" triggers are')
        return value

    def to_json(self) -> dict[str, Any]:
        """The definition as JSON (camelCase keys, only what was given or set)."""
        return self.model_dump(mode="json", by_alias=True, exclude_unset=True)


for _model in (IfStep, ForEachStep, TryCatchStep, WorkflowDefinition):
    _model.model_rebuild()


STEP_MODELS: dict[str, type[_StepBase]] = {
    "control.if": IfStep,
    "control.forEach": ForEachStep,
    "control.tryCatch": TryCatchStep,
    "control.return": ReturnStep,
    "state.set": StateSetStep,
    "transform.assign": TransformAssignStep,
    "action.call": ActionCallStep,
}
"""Supported step types and their models."""

CHILD_SEQUENCES: dict[str, tuple[str, ...]] = {
    "control.if": ("then", "else"),
    "control.forEach": ("body",),
    "control.tryCatch": ("try", "catch"),
}
"""JSON keys of the nested step sequences of each control step, in execution order."""


def parse_definition(raw: Mapping[str, Any]) -> WorkflowDefinition:
    """The typed definition; raises pydantic ValidationError (``psa.automation.definitions.validate_definition``
    reports every problem instead)."""
    return WorkflowDefinition.model_validate(raw)


def _children(step: Any) -> list[tuple[str, list[Any]]]:
    if isinstance(step, IfStep):
        return [("then", step.then)] + ([("else", step.else_)] if step.else_ is not None else [])
    if isinstance(step, ForEachStep):
        return [("body", step.body)]
    if isinstance(step, TryCatchStep):
        return [("try", step.try_), ("catch", step.catch)]
    return []


def iter_steps(definition: WorkflowDefinition | list[Any], prefix: str = "root") -> Iterator[tuple[str, Any]]:
    """Every step with its path, depth first in document order: ``("root.steps[0]", step)``,
    ``("root.steps[0].then.steps[0]", ...)`` ..."""
    steps = definition.steps if isinstance(definition, WorkflowDefinition) else definition
    for index, step in enumerate(steps):
        path = f"{prefix}.steps[{index}]"
        yield path, step
        for key, children in _children(step):
            yield from iter_steps(children, f"{path}.{key}")
