"""Provisioning routes (``/api/v1/tenants``): start, live state, server-sent progress, cancel, update, list.

For users of the management tenant holding ``tenant:create`` (psa.api.auth). They drive the same
``TenantCreationWorkflow`` as the CLI through psa.provisioning.starter; the workflow id is the business key
``tenant-creation-<slug>``, so concurrent duplicate starts of one tenant attach to one run. Responses never
carry the admin's temporary password (it is in the welcome email).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import datetime
from http import HTTPStatus
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, Field
from sse_starlette.sse import EventSourceResponse
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from psa.api.auth import Authorized
from psa.api.bodies import RequestBody
from psa.api.problem import PROBLEM_RESPONSES, ApiProblem, Problem
from psa.api.state import ApiState, api_state
from psa.db.engine import directory_transaction
from psa.domain.api_keys import Principal
from psa.domain.tenants import list_tenants
from psa.provisioning.preflight import check_before_start
from psa.provisioning.starter import (
    ProvisioningStatus,
    TenantAlreadyProvisioned,
    UpdateRejected,
    cancel_provisioning,
    provisioning_status,
    start_tenant_creation,
    update_provisioning,
)
from psa.provisioning.types import TenantCreationInput, TenantCreationState, UpdateResult
from psa.provisioning.workflow import WORKFLOW_ID_PREFIX

router = APIRouter(prefix="/api/v1/tenants", tags=["tenants"], responses=PROBLEM_RESPONSES)
Manager = Annotated[Principal, Depends(Authorized(("tenant", "create"), management=True))]
Api = Annotated[ApiState, Depends(api_state)]
WorkflowId = Annotated[str, Path(max_length=200, description="tenant-creation-<slug>")]
RUNNING, COMPLETED = WorkflowExecutionStatus.RUNNING.name, WorkflowExecutionStatus.COMPLETED.name


class TenantRequest(TenantCreationInput, RequestBody):
    """What to provision (psa.provisioning.types.TenantCreationInput), NUL-free."""


class ProvisioningStarted(BaseModel):
    """202 answer of a start: the workflow id and where to follow it (state, server-sent events)."""

    workflow_id: str
    status_url: str
    events_url: str


class ProvisioningView(BaseModel):
    """A provisioning run: Temporal's execution status and the workflow's live state."""

    workflow_id: str
    status: str = Field(description="RUNNING, COMPLETED, FAILED, CANCELED, TERMINATED, TIMED_OUT, ...")
    state: TenantCreationState


class CancelBody(RequestBody):
    """Why the provisioning is cancelled; the key's user is recorded as who asked."""

    reason: str = Field(min_length=1, max_length=500)


class UpdateBody(RequestBody):
    """One input field to change and its new value (JSON), checked by the workflow's update validator."""

    field: str = Field(min_length=1, max_length=100, description="an input field the run has not used yet")
    value: Any = None


class TenantSummary(BaseModel):
    """One tenant of the listing: id, company name, slug, contact email, product, creation time, first admin."""

    tenant: UUID
    name: str
    slug: str
    email: str
    product_code: str
    created_at: datetime
    admin_email: str | None


def _view(run: ProvisioningStatus) -> ProvisioningView:
    return ProvisioningView(workflow_id=run.workflow_id, status=run.status, state=run.state)


@dataclass(frozen=True)
class CompletedProvisioning:
    """A completed run as ``api.completed`` keeps it: its status and its ProvisioningView as JSON bytes (the body
    of ``GET /tenants/{id}``, serialised once)."""

    run: ProvisioningStatus
    view_json: bytes


async def _status(api: ApiState, workflow_id: str) -> ProvisioningStatus | CompletedProvisioning:
    """The run's status, or a completed run from ``api.completed`` (see ApiState). A workflow id that is not a
    provisioning, or does not exist: 404."""
    if not workflow_id.startswith(WORKFLOW_ID_PREFIX):
        raise ApiProblem(404, "NOT_FOUND", f"provisioning {workflow_id} not found")
    cached = api.completed.get(workflow_id)
    if cached is not None:
        return cached
    try:
        run = await provisioning_status(await api.temporal(), workflow_id)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise ApiProblem(404, "NOT_FOUND", f"provisioning {workflow_id} not found") from None
        raise ApiProblem(503, "TEMPORAL_UNAVAILABLE", f"Temporal could not answer: {exc.message}") from None
    if run.status != COMPLETED:
        return run
    completed = api.completed[workflow_id] = CompletedProvisioning(run, _view(run).model_dump_json().encode())
    return completed


async def _run(api: ApiState, workflow_id: str) -> ProvisioningStatus:
    """The run's status (``_status`` without the cached body)."""
    found = await _status(api, workflow_id)
    return found.run if isinstance(found, CompletedProvisioning) else found


def _not_running(workflow_id: str, exc: RPCError) -> ApiProblem:
    """The problem for a signal or Update Temporal refused: the run ended after ``_status`` saw it running
    (NOT_FOUND: "workflow execution already completed") is 409 like one that had ended before; else 503."""
    if exc.status == RPCStatusCode.NOT_FOUND:
        return ApiProblem(409, "CONFLICT", f"provisioning {workflow_id} has already ended")
    return ApiProblem(503, "TEMPORAL_UNAVAILABLE", f"Temporal could not answer: {exc.message}")


def _urls(workflow_id: str) -> tuple[str, str]:
    status_url = f"{router.prefix}/{workflow_id}"
    return status_url, f"{status_url}/events"


@router.post("", status_code=202, response_model=ProvisioningStarted, summary="Provision a tenant")
async def create_tenant(body: TenantRequest, response: Response, api: Api, principal: Manager) -> Any:
    """Start ``TenantCreationWorkflow`` and return its workflow id with a Location header (202). The workflow's
    own validation runs first (psa.provisioning.preflight, read as ``psa_api_directory``), so nothing starts for a
    request it would refuse: bad input is 422 and a slug, tenant id or admin email another tenant holds is 409
    ``CONFLICT``, each naming the field; a tenant already provisioned is 409; a second start of a tenant being
    provisioned returns the same run."""
    request = TenantCreationInput.model_validate(body.model_dump())
    async with directory_transaction(api.engine, principal.tenant) as conn:
        await check_before_start(conn, request)
    client = await api.temporal()
    try:
        handle = await start_tenant_creation(client, request, task_queue=api.settings.task_queue)
    except TenantAlreadyProvisioned as exc:
        raise ApiProblem(409, "CONFLICT", str(exc)) from None
    status_url, events_url = _urls(handle.id)
    response.headers["Location"] = status_url
    return ProvisioningStarted(workflow_id=handle.id, status_url=status_url, events_url=events_url)


@router.get("", response_model=list[TenantSummary], summary="List tenants")
async def tenants(
    api: Api, principal: Manager, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> list[TenantSummary]:
    """Every tenant with its first admin, newest first. Read as ``psa_api_directory`` (SELECT on tenants and
    their admins across tenants, nothing else), after the management check."""
    async with directory_transaction(api.engine, principal.tenant) as conn:
        rows = await list_tenants(conn, limit=limit)
    return [
        TenantSummary(
            tenant=r.tenant,
            name=r.client_name,
            slug=r.slug,
            email=r.email,
            product_code=r.product_code,
            created_at=r.created_at,
            admin_email=r.admin_email,
        )
        for r in rows
    ]


@router.get("/{workflow_id}", response_model=ProvisioningView, summary="Live state of a provisioning")
async def tenant_state(workflow_id: WorkflowId, api: Api, principal: Manager) -> Any:
    """Temporal's status and the ``get_state`` query: step, progress, ids, customer tracking, email outcome,
    error, compensation and history. 404 for an unknown id."""
    found = await _status(api, workflow_id)
    if isinstance(found, CompletedProvisioning):
        return Response(found.view_json, media_type="application/json")
    return _view(found)


@router.get("/{workflow_id}/events", summary="Provisioning progress as server-sent events")
async def tenant_events(workflow_id: WorkflowId, request: Request, api: Api, principal: Manager) -> Any:
    """``event: state`` (a ProvisioningView as JSON) each time the state changes, then ``event: end`` with the
    final status once the run has ended. Polls the workflow every ``PSA_API_SSE_POLL_SECONDS``. When a poll fails
    after the stream has started (Temporal unavailable), the stream ends with ``event: error`` (the problem)."""
    first = await _run(api, workflow_id)  # a 404 before the stream starts

    async def stream():
        run, last = first, None
        while True:
            current = _view(run).model_dump(mode="json")
            if current != last:
                yield {"event": "state", "data": json.dumps(current)}
                last = current
            if run.status != RUNNING:
                yield {"event": "end", "data": json.dumps({"workflow_id": workflow_id, "status": run.status})}
                return
            await asyncio.sleep(api.settings.api_sse_poll_seconds)
            try:
                run = await _run(api, workflow_id)
            except ApiProblem as exc:  # the response has started: no status code can tell it any more
                problem = Problem(
                    title=HTTPStatus(exc.status).phrase, status=exc.status, detail=exc.detail, code=exc.code
                )
                yield {"event": "error", "data": problem.model_dump_json(exclude_none=True)}
                return

    return EventSourceResponse(stream())


@router.post("/{workflow_id}/cancel", status_code=202, response_model=ProvisioningView, summary="Cancel")
async def tenant_cancel(workflow_id: WorkflowId, body: CancelBody, api: Api, principal: Manager) -> ProvisioningView:
    """Send the ``cancel`` signal (``cancelled_by`` = the key's user): the run stops and removes what it wrote.
    A run that has already ended is 409."""
    run = await _run(api, workflow_id)
    if run.status != RUNNING:
        raise ApiProblem(409, "CONFLICT", f"provisioning {workflow_id} has already ended ({run.status})")
    try:
        await cancel_provisioning(
            await api.temporal(), workflow_id, reason=body.reason, cancelled_by=f"api:user:{principal.user_id}"
        )
    except RPCError as exc:
        raise _not_running(workflow_id, exc) from None
    return _view(await _run(api, workflow_id))


@router.post("/{workflow_id}/update", response_model=UpdateResult, summary="Change an unused input field")
async def tenant_update(workflow_id: WorkflowId, body: UpdateBody, api: Api, principal: Manager) -> UpdateResult:
    """The validated ``update`` Temporal Update. A field the run has used, cannot change or a bad value: 422
    with the reason and the field; a run that has ended: 409."""
    run = await _run(api, workflow_id)
    if run.status != RUNNING:
        raise ApiProblem(409, "CONFLICT", f"provisioning {workflow_id} has already ended ({run.status})")
    try:
        return await update_provisioning(await api.temporal(), workflow_id, body.field, body.value)
    except RPCError as exc:
        raise _not_running(workflow_id, exc) from None
    except UpdateRejected as exc:
        raise ApiProblem(
            422, "VALIDATION_ERROR", exc.message, errors=[{"path": "field", "message": exc.message, "in": "body"}]
        ) from None
