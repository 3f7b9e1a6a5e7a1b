"""Cancel (signal and Temporal cancellation), update, and compensation on a business failure."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import text
from temporalio.client import WorkflowFailureError, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError, CancelledError
from temporalio.service import RPCError

from psa.db.engine import tenant_transaction
from psa.domain import seeds, tenants, users
from psa.provisioning.starter import start_tenant_creation
from psa.provisioning.types import CancelSignal, UpdateRequest
from psa.provisioning.workflow import TenantCreationWorkflow, derived_id
from tests.factories import make_request
from tests.helpers import ActivityHooks, tenant_row_counts, wait_for_activity_cancel_request

# activity -> (step, writing steps undone in reverse order when a cancel arrives during that activity)
CANCEL_CASES = {
    "validate_request": ("validating", []),
    "create_tenant": ("creating_tenant", ["creating_tenant"]),
    "seed_tenant": ("seeding", ["seeding", "creating_tenant"]),
    "create_admin_user": ("creating_admin_user", ["creating_admin_user", "seeding", "creating_tenant"]),
    # Customer tracking runs beside setup_tenant_data (here it fails: no management tenant); it is undone too.
    "setup_tenant_data": (
        "setting_up_data",
        ["tracking_customer", "setting_up_data", "creating_admin_user", "seeding", "creating_tenant"],
    ),
    "send_welcome_email": (
        "sending_welcome_email",
        ["tracking_customer", "setting_up_data", "creating_admin_user", "seeding", "creating_tenant"],
    ),
}


def _cancel_during(client, activity_type: str, *, native: bool = False) -> ActivityHooks:
    """While ``activity_type`` runs (first attempt), cancel its workflow and wait until the workflow has asked for
    the activity to stop, then let the activity finish."""

    async def hook(info) -> None:
        if info.attempt != 1:
            return
        handle = client.get_workflow_handle(info.workflow_id)
        if native:
            await handle.cancel()
        else:
            await handle.signal(
                TenantCreationWorkflow.cancel, CancelSignal(reason="customer withdrew", cancelled_by="ops")
            )
        await wait_for_activity_cancel_request(client, info)  # the activity still commits its rows after that

    return ActivityHooks({activity_type: hook})


@pytest.mark.parametrize("activity_type", list(CANCEL_CASES))
async def test_cancel_signal_during_each_step_removes_every_row(client, start_worker, engine, activity_type):
    step, undone = CANCEL_CASES[activity_type]
    task_queue = await start_worker(interceptors=[_cancel_during(client, activity_type)])
    handle = await start_tenant_creation(client, make_request(), task_queue=task_queue)
    with pytest.raises(WorkflowFailureError) as info:
        await handle.result()
    assert isinstance(info.value.cause, ApplicationError)
    assert info.value.cause.type == "Cancelled"

    state = await handle.query(TenantCreationWorkflow.get_state)
    assert state.step == "cancelled"
    assert state.cancel_reason == "customer withdrew"
    assert state.cancelled_by == "ops"
    assert step in [t.step for t in state.history]
    assert state.compensation.compensated == undone
    assert state.compensation.status == ("completed" if undone else "not_needed")
    tenant_id = derived_id(handle.id, "tenant")
    assert set((await tenant_row_counts(engine, tenant_id)).values()) == {0}


async def test_temporal_cancellation_compensates_and_ends_cancelled(client, start_worker, engine):
    task_queue = await start_worker(interceptors=[_cancel_during(client, "create_admin_user", native=True)])
    handle = await start_tenant_creation(client, make_request(), task_queue=task_queue)
    with pytest.raises(WorkflowFailureError) as info:
        await handle.result()
    assert isinstance(info.value.cause, CancelledError)
    state = await handle.query(TenantCreationWorkflow.get_state)
    assert state.step == "cancelled"
    assert state.compensation.compensated == ["creating_admin_user", "seeding", "creating_tenant"]
    assert set((await tenant_row_counts(engine, derived_id(handle.id, "tenant"))).values()) == {0}


async def test_cancel_after_completion_is_ignored(client, worker, engine):
    handle = await start_tenant_creation(client, make_request(), task_queue=worker)
    result = await handle.result()
    with pytest.raises(RPCError, match="already completed"):
        await handle.signal(TenantCreationWorkflow.cancel, CancelSignal(reason="too late", cancelled_by="ops"))
    state = await handle.query(TenantCreationWorkflow.get_state)
    assert state.step == "completed"
    assert state.error is None
    assert state.cancel_reason is None
    assert (await tenant_row_counts(engine, result.tenant_id))["tenants"] == 1


async def test_business_failure_after_writes_compensates(client, start_worker, engine, base_settings):
    """The admin email is taken by another tenant between validation and create_admin_user."""
    request = make_request()

    async def steal_email(info) -> None:
        if info.attempt != 1:
            return
        other = uuid.uuid4()
        async with tenant_transaction(engine, other) as conn:
            await tenants.create_tenant(
                conn, tenant=other, slug=f"thief-{other.hex[:12]}", company_name="Thief", email=request.admin_user.email
            )
            await seeds.seed_tenant(conn, other)
            await users.create_internal_user(
                conn,
                tenant=other,
                user_id=uuid.uuid4(),
                first_name="T",
                last_name="T",
                email=request.admin_user.email.lower(),
                password_hash="x",
            )

    task_queue = await start_worker(interceptors=[ActivityHooks({"create_admin_user": steal_email})])
    handle = await start_tenant_creation(client, request, task_queue=task_queue)
    with pytest.raises(WorkflowFailureError) as info:
        await handle.result()
    assert info.value.cause.type == "DuplicateError"
    state = await handle.query(TenantCreationWorkflow.get_state)
    assert state.step == "failed"
    assert state.error_type == "DuplicateError"
    assert state.compensation.status == "completed"
    assert state.compensation.compensated == ["creating_admin_user", "seeding", "creating_tenant"]
    assert set((await tenant_row_counts(engine, derived_id(handle.id, "tenant"))).values()) == {0}


def _pause_at(activity_type: str, reached: asyncio.Event, release: asyncio.Event) -> ActivityHooks:
    async def hook(info) -> None:
        reached.set()
        await release.wait()

    return ActivityHooks({activity_type: hook})


async def test_update_changes_a_field_not_yet_used(client, start_worker, engine):
    reached, release = asyncio.Event(), asyncio.Event()
    task_queue = await start_worker(interceptors=[_pause_at("validate_request", reached, release)])
    handle = await start_tenant_creation(client, make_request(), task_queue=task_queue)
    await reached.wait()
    result = await handle.execute_update(
        TenantCreationWorkflow.update, UpdateRequest(field="company_name", value="Renamed Holdings")
    )
    assert result.field == "company_name"
    assert result.applied_at_step == "validating"
    release.set()
    outcome = await handle.result()
    async with engine.connect() as conn:
        name = (
            await conn.execute(text("SELECT client_name FROM tenants WHERE tenant = :t"), {"t": outcome.tenant_id})
        ).scalar_one()
    assert name == "Renamed Holdings"
    state = await handle.query(TenantCreationWorkflow.get_state)
    assert [u.field for u in state.updates] == ["company_name"]


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("company_name", "Too Late Inc", "already used by step 'creating_tenant'"),
        ("tenant_name", "Other", "cannot be updated"),
        ("admin_user", {"email": "x@example.com"}, "cannot be updated"),
        ("email_provider", "carrier-pigeon", "email_provider must be one of"),
        ("contract_line", "x" * 300, "at most 255"),
        ("skip_welcome_email", "sometimes", "invalid value for 'skip_welcome_email'"),
    ],
)
async def test_update_rejected_with_reason(client, start_worker, field, value, reason):
    reached, release = asyncio.Event(), asyncio.Event()
    task_queue = await start_worker(interceptors=[_pause_at("seed_tenant", reached, release)])
    handle = await start_tenant_creation(client, make_request(), task_queue=task_queue)
    await reached.wait()
    try:
        with pytest.raises(WorkflowUpdateFailedError) as info:
            await handle.execute_update(TenantCreationWorkflow.update, UpdateRequest(field=field, value=value))
        assert reason in str(info.value.cause)
    finally:
        release.set()
    await handle.result()
    state = await handle.query(TenantCreationWorkflow.get_state)
    assert state.updates == []
