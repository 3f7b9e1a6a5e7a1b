"""Automation routes (``/api/v1/automation``): the action catalog and schemas, one action under the full
contract, publishing definitions, starting runs and reading them back.

Generic over the registry: every registered action (clients.*, contacts.*, crm.*, ...) is listed, described and
invokable without a route of its own. Permissions: reading the catalog and runs needs ``workflow:read``,
publishing ``workflow:publish``, starting a run ``workflow:manage``; an invocation is checked by the action's own
permissions inside ``invoke_action`` (before any write). The key's user is the actor; a run's actor is the
publisher of its definition version (docs/automation.md, "Runs"). Another tenant's ids behave like missing ones: 404.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Path, Query, Response
from pydantic import BaseModel, Field

from psa.api.auth import Authorized
from psa.api.bodies import RequestBody
from psa.api.problem import PROBLEM_RESPONSES, ApiProblem
from psa.api.state import ApiState, api_state
from psa.automation.catalog import CatalogRecord, build_catalog
from psa.automation.definitions import publish_definition
from psa.automation.invocation import invoke_action
from psa.automation.run.records import get_run
from psa.automation.run.starter import launch_run
from psa.db.engine import tenant_transaction
from psa.db.storable import unstorable
from psa.domain.api_keys import Principal

router = APIRouter(prefix="/api/v1/automation", tags=["automation"], responses=PROBLEM_RESPONSES)
Api = Annotated[ApiState, Depends(api_state)]
Reader = Annotated[Principal, Depends(Authorized(("workflow", "read")))]
Publisher = Annotated[Principal, Depends(Authorized(("workflow", "publish")))]
Runner = Annotated[Principal, Depends(Authorized(("workflow", "manage")))]
Caller = Annotated[Principal, Depends(Authorized())]
ActionId = Annotated[str, Path(max_length=200, description="e.g. clients.find")]


class ActionVersion(BaseModel):
    """One registered version of an action: metadata and its input and output JSON Schemas."""

    id: str
    version: int
    side_effectful: bool
    idempotency: dict[str, Any]
    permissions: list[str]
    ui: dict[str, Any]
    input_schema: dict[str, Any]
    output_schema: dict[str, Any]


class ActionDescription(BaseModel):
    """An action id with every registered version (or the one asked for)."""

    id: str
    versions: list[ActionVersion]


class InvokeBody(RequestBody):
    """An invocation: the action's input, its version, and an optional idempotency key (max 255 characters)."""

    input: dict[str, Any] = Field(default_factory=dict, description="the action's input (see its input_schema)")
    version: int = Field(default=1, ge=1, le=1_000_000)
    idempotency_key: str | None = Field(
        default=None, min_length=1, max_length=255, description="repeat a request under the same key: one effect"
    )


class InvokeResult(BaseModel):
    """The action's output and the ledger facts of the call (replayed, invocation id, attempt, key)."""

    output: dict[str, Any]
    replayed: bool = Field(description="true when the output comes from the idempotency ledger")
    invocation_id: UUID
    attempt: int
    idempotency_key: str


class PublishBody(RequestBody):
    """A workflow definition (docs/automation.md, "Definition format") and an optional stable key."""

    definition: dict[str, Any] = Field(description="the workflow definition JSON")
    key: str | None = Field(default=None, min_length=1, max_length=200, description="stable key to address it by")


class Published(BaseModel):
    """The version just published: workflow id, key, version number, name, SHA-256 of the stored JSON, time."""

    workflow_id: UUID
    key: str | None
    version: int
    name: str
    definition_hash: str
    published_at: datetime | None


class RunBody(RequestBody):
    """The run's payload (JSON object) and the published version to run (default: the latest)."""

    payload: dict[str, Any] = Field(default_factory=dict)
    version: int | None = Field(default=None, ge=1, le=1_000_000, description="default: the latest published")


class RunStarted(BaseModel):
    """202 answer of a run start: run id, workflow id and version, and the run's URL."""

    run_id: UUID
    workflow_id: UUID
    workflow_version: int
    status_url: str


class RunStep(BaseModel):
    """One step row of a run: path, definition step id, status, attempt, duration (ms), error, start time."""

    step_path: str
    definition_step_id: str | None
    status: str
    attempt: int
    duration_ms: int | None
    error_json: dict[str, Any] | None
    started_at: datetime | None


class RunDetail(BaseModel):
    """A run with its status, actor (the definition version's publisher), error and steps in start order."""

    run_id: UUID
    workflow_id: UUID
    workflow_version: int
    status: str
    actor_user_id: UUID | None
    error_json: dict[str, Any] | None
    started_at: datetime
    completed_at: datetime | None
    steps: list[RunStep]


@router.get("/actions", response_model=list[CatalogRecord], summary="The action catalog")
async def actions(api: Api, principal: Reader) -> list[CatalogRecord]:
    """The designer catalog: registered actions grouped into tiles (psa.automation.catalog)."""
    return build_catalog(api.registry)


@router.get("/actions/{action_id}", response_model=ActionDescription, summary="An action's schemas")
async def action(
    action_id: ActionId, api: Api, principal: Reader, version: Annotated[int | None, Query(ge=1)] = None
) -> ActionDescription:
    """Every registered version of the action (or ``version``) with its input and output JSON Schemas. 404 when
    the action (or that version) is not registered."""
    found = [a for a in api.registry.versions(action_id) if version is None or a.version == version]
    if not found:
        which = f"{action_id}@{version}" if version is not None else action_id
        raise ApiProblem(404, "NOT_FOUND", f"Unknown action {which}")
    return ActionDescription(id=action_id, versions=[ActionVersion(**a.meta()) for a in found])


@router.post("/actions/{action_id}/invoke", response_model=InvokeResult, summary="Invoke one action")
async def invoke(action_id: ActionId, body: InvokeBody, api: Api, principal: Caller) -> InvokeResult:
    """Run the action under the full contract (input validation, the actor's permissions, idempotency ledger,
    audit row, outbox events, one transaction) as the key's user. Failures are the action's structured error
    as a problem (VALIDATION_ERROR 422 with ``input.<path>`` fields, PERMISSION_DENIED 403, NOT_FOUND 404,
    CONFLICT 409). Without ``idempotency_key`` each request is a new call."""
    invocation = await invoke_action(
        api.engine,
        api.registry,
        tenant=principal.tenant,
        action_id=action_id,
        version=body.version,
        raw_input=body.input,
        actor_user_id=principal.user_id,
        idempotency_key=body.idempotency_key,
    )
    return InvokeResult(
        output=invocation.output,
        replayed=invocation.replayed,
        invocation_id=invocation.invocation_id,
        attempt=invocation.attempt,
        idempotency_key=invocation.idempotency_key,
    )


@router.post("/workflows", status_code=201, response_model=Published, summary="Publish a definition")
async def publish(body: PublishBody, response: Response, api: Api, principal: Publisher) -> Published:
    """Validate and publish the definition as its workflow's next version (the key's user is the publisher,
    and so the actor of its runs). An invalid definition is 422 listing every problem with its publish code
    (UNKNOWN_ACTION, MISSING_REQUIRED_MAPPING, INVALID_EXPR, ...) and step path; nothing is written."""
    async with tenant_transaction(api.engine, principal.tenant) as conn:
        published = await publish_definition(
            conn,
            principal.tenant,
            body.definition,
            registry=api.registry,
            published_by=principal.user_id,
            key=body.key,
        )
    response.headers["Location"] = f"{router.prefix}/workflows/{published.workflow_id}"
    return Published(
        workflow_id=published.workflow_id,
        key=published.key,
        version=published.version,
        name=published.name,
        definition_hash=published.definition_hash,
        published_at=published.published_at,
    )


@router.post("/workflows/{workflow}/runs", status_code=202, response_model=RunStarted, summary="Start a run")
async def start_run(
    workflow: Annotated[str, Path(max_length=200, description="workflow id or key")],
    body: RunBody,
    response: Response,
    api: Api,
    principal: Runner,
) -> RunStarted:
    """Start a run of the published workflow (latest version unless ``version``) on Temporal; 202 with the run
    id and a Location header. 404 when the workflow or version is not published in the key's tenant."""
    problem = unstorable(workflow)
    if problem:  # PostgreSQL text cannot hold it: the lookup would fail as a database error
        message = problem[0]
        raise ApiProblem(
            422,
            "VALIDATION_ERROR",
            f"workflow: {message}",
            errors=[{"path": "workflow", "message": message, "in": "path"}],
        )
    launched = await launch_run(
        api.engine,
        await api.temporal(),
        tenant=principal.tenant,
        workflow=workflow,
        payload=body.payload,
        task_queue=api.settings.task_queue,
        action_timeout_seconds=api.settings.automation_action_timeout_seconds,
        version=body.version,
        trigger_type="api",
    )
    status_url = f"{router.prefix}/runs/{launched.run_id}"
    response.headers["Location"] = status_url
    return RunStarted(
        run_id=launched.run_id,
        workflow_id=launched.workflow_id,
        workflow_version=launched.workflow_version,
        status_url=status_url,
    )


@router.get("/runs/{run_id}", response_model=RunDetail, summary="A run with its steps")
async def run(run_id: UUID, api: Api, principal: Reader) -> RunDetail:
    """The run's status, actor, error and steps in start order. 404 for a run of another tenant or none."""
    async with tenant_transaction(api.engine, principal.tenant) as conn:
        view = await get_run(conn, principal.tenant, run_id)
    return RunDetail(**{**view.__dict__, "steps": [RunStep(**step) for step in view.steps]})
