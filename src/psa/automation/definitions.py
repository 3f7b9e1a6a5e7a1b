"""Workflow definitions: publish validation and versioned publishing (reference: publishValidation and the
definition tables; docs/automation.md, "Definition format", "Publish validation codes"). The typed model of a
definition is psa.automation.steps, the assignment-path rule psa.automation.paths.

Any step type other than those of psa.automation.steps (the reference's ``event.wait``, ``time.wait``,
``human.task``, ``control.callWorkflow``, ``email.*``) is reported as ``UNKNOWN_NODE_TYPE`` at publish time.

Decisions beyond the reference (docs/decisions.md, "Automation runtime"):
- ``version`` may be omitted in the submitted JSON; publishing assigns ``max(existing) + 1`` and writes it,
  and the workflow id, into the stored JSON.
- Every step may carry a ``name`` (a designer label; the reference allows it on node steps only).
- Validation reports every problem at once: each step is validated on its own (its child sequences are
  validated where they are), so one bad step does not hide the others, and schema errors carry the path of
  the step they are in rather than ``root``.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import re
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, Field, ValidationError
from sqlalchemy import and_, func, null, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from psa.automation import expressions
from psa.automation.paths import (
    ASSIGN_SCOPES,
    FORBIDDEN_SEGMENTS,
    READ_ONLY_SCOPES,
    InvalidAssignPath,
    normalize_assign_path,
)
from psa.automation.registry import ActionRegistry, resolve_schema
from psa.automation.steps import (
    CHILD_SEQUENCES,
    STEP_MODELS,
    ActionCallStep,
    ForEachStep,
    IfStep,
    TransformAssignStep,
    TryCatchStep,
    WorkflowDefinition,
)
from psa.db.schema import workflow_definition_versions as versions_table
from psa.db.schema import workflow_definitions as definitions_table
from psa.domain.errors import ConflictError, NotFoundError
from psa.domain.errors import ValidationError as DomainValidationError
from psa.jsonutil import canonical_hash

_UNSUPPORTED_TYPES = {
    "control.callWorkflow",
    "event.wait",
    "time.wait",
    "human.task",
    "email.parseBody",
    "email.renderCommentBlocks",
}
_PLAIN_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class _Header(WorkflowDefinition):
    """The top level alone: steps are validated one by one."""

    steps: list[Any]  # type: ignore[assignment]


# -- validation --------------------------------------------------------------------------------------

Severity = Literal["error", "warning"]


class ValidationIssue(BaseModel):
    """One publish-validation finding (reference PublishError)."""

    severity: Severity
    code: str
    step_path: str
    step_id: str | None = None
    message: str
    suggestion: str | None = None


class ValidationReport(BaseModel):
    """Errors block publishing, warnings do not. ``definition`` is the parsed definition when there are no
    errors."""

    errors: list[ValidationIssue] = Field(default_factory=list)
    warnings: list[ValidationIssue] = Field(default_factory=list)
    definition: WorkflowDefinition | None = Field(default=None, exclude=True)

    @property
    def ok(self) -> bool:
        return not self.errors

    def codes(self) -> list[str]:
        """Error codes in order (handy in tests and logs)."""
        return [issue.code for issue in self.errors]


class DefinitionInvalid(DomainValidationError):
    """Publish refused: the definition has validation errors (``report`` holds all of them)."""

    def __init__(self, report: ValidationReport) -> None:
        first = report.errors[0]
        more = f" (and {len(report.errors) - 1} more)" if len(report.errors) > 1 else ""
        super().__init__(f"Workflow definition is invalid: {first.step_path}: {first.message}{more}")
        self.report = report

    def field_errors(self) -> list[dict[str, Any]]:
        """One entry per publish error: ``{path (the step path), message, code, step_id, suggestion}``."""
        return [
            {
                "path": issue.step_path,
                "message": issue.message,
                "code": issue.code,
                "step_id": issue.step_id,
                "suggestion": issue.suggestion,
            }
            for issue in self.report.errors
        ]


def _msg(err: Any) -> str:
    return str(err["msg"]).removeprefix("Value error, ")


def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


class _Validator:
    def __init__(self, registry: ActionRegistry) -> None:
        self.registry = registry
        self.report = ValidationReport()
        self.seen_ids: dict[str, str] = {}

    def add(
        self,
        code: str,
        path: str,
        message: str,
        *,
        step_id: str | None = None,
        suggestion: str | None = None,
        severity: Severity = "error",
    ) -> None:
        issue = ValidationIssue(
            severity=severity, code=code, step_path=path, step_id=step_id, message=message, suggestion=suggestion
        )
        (self.report.errors if severity == "error" else self.report.warnings).append(issue)

    # top level ------------------------------------------------------------------------------------
    def run(self, raw: Any) -> ValidationReport:
        if not isinstance(raw, Mapping):
            self.add("INVALID_WORKFLOW_DEFINITION", "root", "Workflow definition must be a JSON object")
            return self.report
        try:
            json.dumps(raw, allow_nan=False)
        except (TypeError, ValueError) as exc:
            self.add("NON_SERIALIZABLE", "root", f"Workflow definition is not JSON-serializable: {exc}")
            return self.report
        try:
            header = _Header.model_validate(raw)
        except ValidationError as exc:
            header = None
            for err in exc.errors(include_url=False):
                self.add("INVALID_WORKFLOW_DEFINITION", "root", f"{_loc(err['loc'])}: {_msg(err)}")
        if header is not None and header.trigger and header.trigger.payload_mapping:
            self.mapping_exprs(header.trigger.payload_mapping, "trigger.payloadMapping", "root", None, "INVALID_EXPR")
        steps = raw.get("steps")
        if isinstance(steps, list):
            self.sequence(steps, "root")
        if self.report.ok:
            try:
                self.report.definition = WorkflowDefinition.model_validate(raw)
            except ValidationError as exc:  # a safety net: the step-by-step pass should have caught it
                for err in exc.errors(include_url=False):
                    self.add("INVALID_WORKFLOW_DEFINITION", "root", f"{_loc(err['loc'])}: {_msg(err)}")
        return self.report

    def sequence(self, steps: list[Any], prefix: str) -> None:
        for index, raw in enumerate(steps):
            self.step(raw, f"{prefix}.steps[{index}]")

    # one step ------------------------------------------------------------------------------------
    def step(self, raw: Any, path: str) -> None:
        if not isinstance(raw, Mapping):
            self.add("INVALID_WORKFLOW_DEFINITION", path, "Step must be an object")
            return
        step_id = raw.get("id") if isinstance(raw.get("id"), str) and raw.get("id") else None
        if step_id is not None:
            if step_id in self.seen_ids:
                self.add(
                    "DUPLICATE_STEP_ID",
                    path,
                    f'Duplicate step id "{step_id}" (also used at {self.seen_ids[step_id]})',
                    step_id=step_id,
                    suggestion="Give every step a unique id",
                )
            else:
                self.seen_ids[step_id] = path
        kind = raw.get("type")
        if not isinstance(kind, str) or not kind:
            self.add("INVALID_WORKFLOW_DEFINITION", path, "Step must have a type field", step_id=step_id)
            return
        model = STEP_MODELS.get(kind)
        if model is None:
            self.unknown_type(kind, path, step_id)
            return
        child_keys = CHILD_SEQUENCES.get(kind, ())
        shallow = {k: ([] if k in child_keys and isinstance(v, list) else v) for k, v in raw.items()}
        try:
            step = model.model_validate(shallow)
        except ValidationError as exc:
            step = None
            self.schema_errors(kind, exc, path, step_id)
        if step is not None:
            self.semantics(step, path)
        for key in child_keys:
            children = raw.get(key)
            if isinstance(children, list):
                self.sequence(children, f"{path}.{key}")

    def unknown_type(self, kind: str, path: str, step_id: str | None) -> None:
        supported = list(STEP_MODELS)
        close = difflib.get_close_matches(kind, supported, n=1, cutoff=0.6)
        if kind in _UNSUPPORTED_TYPES:
            message = f'Step type "{kind}" is not supported by this runtime'
        else:
            message = f'Unknown node type "{kind}"'
        suggestion = f"Did you mean {close[0]}?" if close else f"Supported step types: {', '.join(supported)}"
        self.add("UNKNOWN_NODE_TYPE", path, message, step_id=step_id, suggestion=suggestion)

    def schema_errors(self, kind: str, exc: ValidationError, path: str, step_id: str | None) -> None:
        config_messages: list[str] = []
        action_config = False
        for err in exc.errors(include_url=False):
            loc = tuple(err["loc"])
            if (
                kind == "action.call"
                and err["type"] == "missing"
                and (loc == ("config",) or loc[:2] in (("config", "actionId"), ("config", "version")))
            ):
                action_config = True
            elif loc[:1] == ("config",) and kind in ("state.set", "transform.assign", "action.call"):
                config_messages.append(f"{_loc(loc)}: {_msg(err)}")
            else:
                self.add("INVALID_WORKFLOW_DEFINITION", path, f"{_loc(loc)}: {_msg(err)}", step_id=step_id)
        if action_config:
            self.add(
                "INVALID_ACTION_CONFIG",
                path,
                "action.call config requires actionId and version",
                step_id=step_id,
                suggestion="Choose an action in the designer, or set config.actionId and config.version",
            )
        if config_messages:
            self.add("INVALID_CONFIG", path, "; ".join(config_messages), step_id=step_id)

    # semantic checks -------------------------------------------------------------------------------
    def semantics(self, step: Any, path: str) -> None:
        sid = step.id
        if isinstance(step, IfStep):
            self.expr(step.condition.expr, "condition", path, sid, "INVALID_EXPR")
        elif isinstance(step, ForEachStep):
            self.expr(step.items.expr, "items", path, sid, "INVALID_EXPR")
            self.plain_name(step.item_var, "itemVar", path, sid)
        elif isinstance(step, TryCatchStep):
            if step.capture_error_as is not None:
                self.plain_name(step.capture_error_as, "captureErrorAs", path, sid)
        elif isinstance(step, TransformAssignStep):
            for target, value in step.config.assign.items():
                self.assign_path(target, f'config.assign["{target}"]', path, sid)
                self.expr(value.expr, f'config.assign["{target}"]', path, sid, "INVALID_EXPR")
        elif isinstance(step, ActionCallStep):
            self.action_call(step, path)

    def expr(self, source: str, where: str, path: str, sid: str | None, code: str) -> None:
        if not source.strip():
            self.add("EMPTY_EXPRESSION", path, f"Expression is empty: {where}", step_id=sid)
            return
        error = expressions.validate_expression(source)
        if error is not None:
            self.add(code, path, f"{where}: {error.info.message}", step_id=sid, suggestion=error.suggestion)

    def plain_name(self, name: str, field: str, path: str, sid: str | None) -> None:
        if not _PLAIN_NAME.match(name) or name in FORBIDDEN_SEGMENTS or name in READ_ONLY_SCOPES + ASSIGN_SCOPES:
            self.add(
                "INVALID_ASSIGN_PATH",
                path,
                f"{field} must be a plain variable name (letters, digits, _; not a scope name): {name!r}",
                step_id=sid,
            )

    def assign_path(self, target: str, where: str, path: str, sid: str | None) -> None:
        try:
            normalize_assign_path(target)
        except InvalidAssignPath as exc:
            self.add("INVALID_ASSIGN_PATH", path, f"{where}: {exc}", step_id=sid)

    def mapping_exprs(self, value: Any, where: str, path: str, sid: str | None, code: str) -> None:
        """Check every ``$expr`` inside a mapping value (recursing into literals)."""
        if isinstance(value, Mapping):
            if "$expr" in value:
                source = value["$expr"]
                if not isinstance(source, str):
                    self.add(code, path, f"{where}: $expr must be a string", step_id=sid)
                elif not source.strip():
                    self.add("EMPTY_EXPRESSION", path, f"Expression at {where} is empty", step_id=sid)
                else:
                    error = expressions.validate_expression(source)
                    if error is not None:
                        self.add(
                            code,
                            path,
                            f"Invalid expression at {where}: {error.info.message}",
                            step_id=sid,
                            suggestion=error.suggestion,
                        )
                return
            for key, item in value.items():
                if isinstance(key, str) and key.startswith("$"):
                    self.add(
                        "UNKNOWN_SPECIAL_KEY",
                        path,
                        f'Unknown special key "{key}" at {where}; only $expr is supported (secrets are not)',
                        step_id=sid,
                        severity="warning",
                    )
                self.mapping_exprs(item, f"{where}.{key}", path, sid, code)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                self.mapping_exprs(item, f"{where}[{index}]", path, sid, code)

    def action_call(self, step: ActionCallStep, path: str) -> None:
        config, sid = step.config, step.id
        if config.idempotency_key is not None:
            self.expr(config.idempotency_key.expr, "config.idempotencyKey", path, sid, "INVALID_EXPR")
        if config.save_as is not None:
            self.assign_path(config.save_as, "config.saveAs", path, sid)
        self.mapping_exprs(config.input_mapping, "inputMapping", path, sid, "INVALID_EXPRESSION")
        action = self.registry.get(config.action_id, config.version)
        if action is None:
            self.unknown_action(config.action_id, config.version, path, sid)
            return
        schema = action.input_schema()
        self.required(schema, schema, config.input_mapping, "inputMapping", path, sid, action.key)

    def unknown_action(self, action_id: str, version: int, path: str, sid: str | None) -> None:
        existing = sorted(a.version for a in self.registry.versions(action_id))
        if existing:
            suggestion = f"Available versions of {action_id}: {', '.join(map(str, existing))}"
        else:
            ids = sorted({a.id for a in self.registry.list()})
            close = difflib.get_close_matches(action_id, ids, n=1, cutoff=0.6)
            suggestion = f'Did you mean "{close[0]}"?' if close else None
        self.add("UNKNOWN_ACTION", path, f'Unknown action "{action_id}@{version}"', step_id=sid, suggestion=suggestion)

    def required(
        self,
        root: dict[str, Any],
        schema: dict[str, Any],
        mapping: Mapping[str, Any],
        where: str,
        path: str,
        sid: str | None,
        action_key: str,
    ) -> None:
        schema = resolve_schema(root, schema)
        properties = schema.get("properties") or {}
        for name in schema.get("required") or []:
            if name not in mapping:
                self.add(
                    "MISSING_REQUIRED_MAPPING",
                    path,
                    f'Required field "{where}.{name}" is not mapped in inputMapping',
                    step_id=sid,
                    suggestion=f"Map {name} to a value or an expression",
                )
        if properties and schema.get("additionalProperties") is not True:
            rejected = schema.get("additionalProperties") is False
            for name in mapping:
                if name not in properties:
                    self.add(
                        "UNKNOWN_MAPPING_FIELD",
                        path,
                        f'"{where}.{name}" is not an input of {action_key}; '
                        + ("the action rejects unknown inputs" if rejected else "it is ignored"),
                        step_id=sid,
                        severity="error" if rejected else "warning",
                    )
        for name, value in mapping.items():
            if isinstance(value, Mapping) and "$expr" not in value and name in properties:
                self.required(root, properties[name], value, f"{where}.{name}", path, sid, action_key)


def validate_definition(raw: Any, registry: ActionRegistry) -> ValidationReport:
    """Publish validation of a definition JSON against ``registry`` (reference: publishValidation).

    Error codes: INVALID_WORKFLOW_DEFINITION (schema; path of the step the problem is in, else ``root``),
    NON_SERIALIZABLE, DUPLICATE_STEP_ID, UNKNOWN_NODE_TYPE (+ suggestion), INVALID_CONFIG (node config issues
    joined by ``; ``), INVALID_ACTION_CONFIG, UNKNOWN_ACTION (+ existing versions or a similar id),
    EMPTY_EXPRESSION, INVALID_EXPR (conditions, forEach items, assign values, idempotencyKey, trigger
    payloadMapping), INVALID_EXPRESSION (inputMapping), MISSING_REQUIRED_MAPPING (from the action input
    schema's ``required``, recursing into object literals), INVALID_ASSIGN_PATH (assign keys, saveAs,
    itemVar, captureErrorAs). Warnings: UNKNOWN_SPECIAL_KEY, UNKNOWN_MAPPING_FIELD. Never raises.
    """
    return _Validator(registry).run(raw)


# -- publishing --------------------------------------------------------------------------------------

WORKFLOW_NAMESPACE = uuid.UUID("5d0c4d8e-3f0a-5e55-9a39-6a1f2b7f0c11")


@dataclasses.dataclass(frozen=True)
class PublishedVersion:
    """One published definition version. ``definition`` is the stored JSON (id = ``workflow_id`` as a string,
    ``version`` set)."""

    tenant: UUID
    workflow_id: UUID
    key: str | None
    version: int
    version_id: UUID
    name: str
    definition: dict[str, Any]
    definition_hash: str
    published_by: UUID | None
    published_at: datetime | None
    is_paused: bool = False

    @property
    def model(self) -> WorkflowDefinition:
        return WorkflowDefinition.model_validate(self.definition)

    @property
    def trigger(self) -> dict[str, Any] | None:
        return self.definition.get("trigger")


def definition_hash(definition: Mapping[str, Any]) -> str:
    """SHA-256 hex of the canonical JSON of ``definition``."""
    return canonical_hash(definition)


def workflow_id_for(tenant: UUID, definition_id: str, key: str | None = None) -> UUID:
    """The workflow id of a definition: its ``id`` when that is a uuid, else uuid5 of (tenant, key or id)."""
    parsed = _as_uuid(definition_id)
    if parsed is not None:
        return parsed
    return uuid.uuid5(WORKFLOW_NAMESPACE, f"{tenant}/{key or definition_id}")


def _as_uuid(value: Any) -> UUID | None:
    if isinstance(value, UUID):
        return value
    try:
        return UUID(str(value))
    except ValueError:
        return None


async def publish_definition(
    conn: AsyncConnection,
    tenant: UUID,
    raw: dict[str, Any],
    *,
    registry: ActionRegistry,
    published_by: UUID,
    key: str | None = None,
) -> PublishedVersion:
    """Validate and publish ``raw`` as the next version of its workflow, in the caller's transaction.

    The workflow is ``raw["id"]`` when that is a uuid, else uuid5(tenant, key or id); a non-uuid id doubles as
    the workflow ``key`` when none is given. The first publish creates the ``workflow_definitions`` row. The
    row is locked (``FOR UPDATE``) so concurrent publishes of one workflow get distinct versions; version =
    max(existing) + 1, written with the workflow id into the stored JSON; ``definition_hash`` = SHA-256 of its
    canonical JSON. The definition row becomes ``published`` with name, description, payload schema ref and
    trigger copied, and ``draft_definition`` / ``draft_version`` set to the next version
    (reference: the definition tables).

    Raises DefinitionInvalid (with the full report) before writing anything when validation finds errors;
    ConflictError when ``key`` already names another workflow in the tenant.
    """
    report = validate_definition(raw, registry)
    if not report.ok:
        raise DefinitionInvalid(report)
    assert report.definition is not None
    definition = report.definition
    explicit_id = _as_uuid(definition.id)
    key = key or (None if explicit_id else definition.id)
    workflow_id = workflow_id_for(tenant, definition.id, key)
    d = definitions_table
    if key is not None:
        owner = (
            await conn.execute(select(d.c.workflow_id).where(d.c.tenant == tenant, d.c.key == key))
        ).scalar_one_or_none()
        if owner is not None and owner != workflow_id:
            if explicit_id is not None:
                raise ConflictError(f'Workflow key "{key}" already belongs to workflow {owner}', field="key")
            workflow_id = owner
    stored = definition.to_json()
    stored["id"] = str(workflow_id)
    stored.pop("version", None)
    trigger = stored.get("trigger")
    await conn.execute(
        pg_insert(d)
        .values(
            tenant=tenant,
            workflow_id=workflow_id,
            key=key,
            name=definition.name,
            description=definition.description,
            payload_schema_ref=definition.payload_schema_ref,
            trigger=trigger if trigger is not None else null(),
            draft_definition={**stored, "version": 1},
            draft_version=1,
            status="draft",
            created_by=published_by,
            updated_by=published_by,
        )
        .on_conflict_do_nothing()
    )
    row = (
        await conn.execute(
            select(d.c.workflow_id, d.c.key, d.c.is_paused)
            .where(d.c.tenant == tenant, d.c.workflow_id == workflow_id)
            .with_for_update()
        )
    ).one_or_none()
    if row is None:  # the insert hit the key index of another workflow (a concurrent publish under that key)
        raise ConflictError(f'Workflow key "{key}" already belongs to another workflow', field="key")
    v = versions_table
    latest = (
        await conn.execute(
            select(func.coalesce(func.max(v.c.version), 0)).where(v.c.tenant == tenant, v.c.workflow_id == workflow_id)
        )
    ).scalar_one()
    version = int(latest) + 1
    stored["version"] = version
    digest = definition_hash(stored)
    published = (
        await conn.execute(
            v.insert()
            .values(
                tenant=tenant,
                workflow_id=workflow_id,
                version=version,
                definition_json=stored,
                definition_hash=digest,
                published_by=published_by,
                published_at=func.now(),
            )
            .returning(v.c.version_id, v.c.published_at)
        )
    ).one()
    await conn.execute(
        update(d)
        .where(d.c.tenant == tenant, d.c.workflow_id == workflow_id)
        .values(
            key=func.coalesce(d.c.key, key),
            name=definition.name,
            description=definition.description,
            payload_schema_ref=definition.payload_schema_ref,
            trigger=trigger if trigger is not None else null(),
            status="published",
            draft_definition={**stored, "version": version + 1},
            draft_version=version + 1,
            updated_by=published_by,
            updated_at=func.now(),
        )
    )
    return PublishedVersion(
        tenant=tenant,
        workflow_id=workflow_id,
        key=row.key or key,
        version=version,
        version_id=published.version_id,
        name=definition.name,
        definition=stored,
        definition_hash=digest,
        published_by=published_by,
        published_at=published.published_at,
        is_paused=row.is_paused,
    )


def _version_query(tenant: UUID):
    d, v = definitions_table, versions_table
    return (
        select(
            v.c.tenant,
            v.c.workflow_id,
            d.c.key,
            v.c.version,
            v.c.version_id,
            v.c.definition_json,
            v.c.definition_hash,
            v.c.published_by,
            v.c.published_at,
            d.c.is_paused,
        )
        .select_from(v.join(d, and_(d.c.tenant == v.c.tenant, d.c.workflow_id == v.c.workflow_id)))
        .where(v.c.tenant == tenant)
    )


def _published(row: Any) -> PublishedVersion:
    definition = dict(row.definition_json)
    return PublishedVersion(
        tenant=row.tenant,
        workflow_id=row.workflow_id,
        key=row.key,
        version=row.version,
        version_id=row.version_id,
        name=str(definition.get("name", "")),
        definition=definition,
        definition_hash=row.definition_hash,
        published_by=row.published_by,
        published_at=row.published_at,
        is_paused=row.is_paused,
    )


async def get_published(
    conn: AsyncConnection, tenant: UUID, workflow_id_or_key: UUID | str, version: int | None = None
) -> PublishedVersion:
    """A published version of a workflow given by id (uuid or its text) or key: ``version``, or the latest
    when None. Raises NotFoundError when the workflow does not exist in the tenant or has no such version."""
    d, v = definitions_table, versions_table
    text_ref = str(workflow_id_or_key)
    as_id = _as_uuid(workflow_id_or_key)
    match = d.c.key == text_ref if as_id is None else or_(d.c.workflow_id == as_id, d.c.key == text_ref)
    query = _version_query(tenant).where(match)
    if version is not None:
        query = query.where(v.c.version == version)
    row = (await conn.execute(query.order_by(v.c.version.desc()).limit(1))).one_or_none()
    if row is None:
        which = f"published version {version}" if version is not None else "published version"
        raise NotFoundError(f"workflow '{text_ref}' has no {which} in this tenant", field="workflow")
    return _published(row)


async def list_event_triggered(
    conn: AsyncConnection, tenant: UUID, event_name: str, *, include_paused: bool = False
) -> list[PublishedVersion]:
    """The latest published version of every workflow in the tenant whose trigger (in that version) is the
    event ``event_name``, oldest workflow first. Paused workflows are left out unless ``include_paused``
    (reference: event trigger routing, which launched and then refused paused ones)."""
    d, v = definitions_table, versions_table
    latest = (
        select(v.c.workflow_id, func.max(v.c.version).label("version"))
        .where(v.c.tenant == tenant)
        .group_by(v.c.workflow_id)
        .subquery()
    )
    query = (
        _version_query(tenant)
        .join(latest, and_(latest.c.workflow_id == v.c.workflow_id, latest.c.version == v.c.version))
        .where(
            d.c.status == "published",
            v.c.definition_json[("trigger", "type")].astext == "event",
            v.c.definition_json[("trigger", "eventName")].astext == event_name,
        )
        .order_by(d.c.created_at, v.c.workflow_id)
    )
    if not include_paused:
        query = query.where(d.c.is_paused.is_(False))
    return [_published(row) for row in await conn.execute(query)]
