"""Customer tracking inside TenantCreationWorkflow: success, failure, skip, name clashes, reused contacts,
cancel during each tracking activity, and the metrics the worker records."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import event
from temporalio import activity
from temporalio.client import WorkflowFailureError

from psa.db.engine import make_engine, tenant_transaction
from psa.domain import clients, contacts
from psa.domain.seeds import SEEDED_TABLES
from psa.provisioning.customer_tracking import bootstrap_management_tenant
from psa.provisioning.starter import TenantAlreadyProvisioned, start_tenant_creation
from psa.provisioning.types import AdminUser, CancelSignal, CustomerTrackingArgs, TrackingTarget
from psa.provisioning.workflow import TenantCreationWorkflow, derived_id
from tests.factories import make_request
from tests.helpers import ActivityHooks, rows, tenant_row_counts, unique_name, wait_for_activity_cancel_request


@dataclass
class Management:
    tenant: uuid.UUID
    settings: object


@pytest.fixture
async def management(engine, base_settings) -> Management:
    """A fresh management tenant and worker settings that point at it by id."""
    mgmt = await bootstrap_management_tenant(engine, unique_name("Mgmt"), email="ops@mgmt.example.com")
    return Management(mgmt.tenant, base_settings.model_copy(update={"management_tenant_id": mgmt.tenant}))


async def tracking_records(engine, mgmt: uuid.UUID, tenant_id: str) -> dict[str, list]:
    """The management tenant's records for ``tenant_id``: its client, contacts, tag mappings, portal users."""
    client_rows = await rows(
        engine,
        "SELECT client_id, client_name, properties FROM clients WHERE tenant = :m AND properties->>'tenant_id' = :t",
        m=mgmt,
        t=tenant_id,
    )
    ids = [r.client_id for r in client_rows]
    contact_rows = await rows(
        engine,
        "SELECT contact_name_id, email, client_id, role FROM contacts WHERE tenant = :m AND client_id = ANY(:ids)",
        m=mgmt,
        ids=ids,
    )
    contact_ids = [r.contact_name_id for r in contact_rows]
    return {
        "client": client_rows,
        "contact": contact_rows,
        "tag": await rows(
            engine,
            """SELECT d.tag_text, m.created_by, d.background_color FROM tag_mappings m
                 JOIN tag_definitions d ON d.tenant = m.tenant AND d.tag_id = m.tag_id
                WHERE m.tenant = :m AND m.tagged_id = ANY(:ids)""",
            m=mgmt,
            ids=ids,
        ),
        "portal_user": await rows(
            engine,
            """SELECT u.user_id, u.email, u.user_type, r.role_name, r.client FROM users u
                 JOIN user_roles ur ON ur.tenant = u.tenant AND ur.user_id = u.user_id
                 JOIN roles r ON r.tenant = ur.tenant AND r.role_id = ur.role_id
                WHERE u.tenant = :m AND u.contact_id = ANY(:ids)""",
            m=mgmt,
            ids=contact_ids,
        ),
    }


async def provision(client, task_queue: str, **overrides):
    handle = await start_tenant_creation(client, make_request(**overrides), task_queue=task_queue)
    return handle, await handle.result()


async def test_tracking_records_client_contact_tag_and_portal_user(client, start_worker, engine, management):
    task_queue = await start_worker(settings=management.settings)
    request = make_request()
    handle = await start_tenant_creation(client, request, task_queue=task_queue)
    result = await handle.result()
    tracking = result.customer_tracking
    assert result.success
    assert tracking.status == "ok"
    assert tracking.error is None
    assert tracking.management_tenant_id == str(management.tenant)
    state = await handle.query(TenantCreationWorkflow.get_state)
    assert state.customer_tracking == tracking
    assert state.progress == 100

    records = await tracking_records(engine, management.tenant, result.tenant_id)
    (customer,) = records["client"]
    assert str(customer.client_id) == tracking.customer_client_id
    # the id, not the name (reference: createCustomerClientActivity stores the name)
    assert customer.properties["tenant_id"] == result.tenant_id
    assert customer.client_name == request.company_name == tracking.customer_client_name
    assert not tracking.client_renamed
    (contact,) = records["contact"]
    assert str(contact.contact_name_id) == tracking.customer_contact_id
    assert contact.role == "Admin"
    assert contact.email == request.admin_user.email
    (tag,) = records["tag"]
    assert tag.tag_text == "PSA Customer"
    assert tag.background_color == "#BEC5F4"
    assert tag.created_by is not None  # the management tenant's service user, not NULL as in the reference
    (portal,) = records["portal_user"]
    assert str(portal.user_id) == tracking.portal_user_id
    assert portal.user_type == "client"
    assert portal.role_name == "Admin"
    assert portal.client


async def test_algadesk_customer_is_tagged_algadesk_customer(client, start_worker, engine, management):
    """The customer tag follows the product (reference: the AlgaDesk workflow's customer tag)."""
    task_queue = await start_worker(settings=management.settings)
    _, result = await provision(client, task_queue, product_code="algadesk")
    assert result.customer_tracking.status == "ok"
    records = await tracking_records(engine, management.tenant, result.tenant_id)
    assert [tag.tag_text for tag in records["tag"]] == ["AlgaDesk Customer"]
    (customer,) = records["client"]
    assert customer.properties["subscription_type"] == "algadesk"


async def test_missing_management_tenant_fails_tracking_but_not_provisioning(client, start_worker, base_settings):
    settings = base_settings.model_copy(update={"management_tenant_name": unique_name("Nobody")})
    task_queue = await start_worker(settings=settings)
    _, result = await provision(client, task_queue)
    assert result.success
    assert result.customer_tracking.status == "failed"
    assert "not found" in result.customer_tracking.error
    assert "bootstrap-management" in result.customer_tracking.error


async def test_management_tenant_id_pointing_at_no_tenant_fails_tracking(client, start_worker, base_settings):
    missing = uuid.uuid4()
    task_queue = await start_worker(settings=base_settings.model_copy(update={"management_tenant_id": missing}))
    _, result = await provision(client, task_queue)
    assert result.success
    assert result.customer_tracking.status == "failed"
    assert str(missing) in result.customer_tracking.error
    assert "PSA_MANAGEMENT_TENANT_ID" in result.customer_tracking.error


async def test_disabled_tracking_is_skipped_and_writes_nothing(client, start_worker, engine, management):
    settings = management.settings.model_copy(update={"enable_customer_tracking": False})
    task_queue = await start_worker(settings=settings)
    before = await tenant_row_counts(engine, management.tenant)
    _, result = await provision(client, task_queue)
    assert result.success
    assert result.customer_tracking.status == "skipped"
    assert "ENABLE_CUSTOMER_TRACKING" in result.customer_tracking.error
    assert await tenant_row_counts(engine, management.tenant) == before  # no row in any table of the management tenant


async def test_skip_customer_tracking_input_is_skipped(client, start_worker, engine, management):
    task_queue = await start_worker(settings=management.settings)
    before = await tenant_row_counts(engine, management.tenant)
    _, result = await provision(client, task_queue, skip_customer_tracking=True)
    assert result.customer_tracking.status == "skipped"
    assert await tenant_row_counts(engine, management.tenant) == before  # no row in any table of the management tenant


async def test_two_tenants_with_the_same_company_name_are_both_tracked(client, start_worker, engine, management):
    task_queue = await start_worker(settings=management.settings)
    company = unique_name("Same Co")
    _, first = await provision(client, task_queue, company_name=company)
    handle, second = await provision(client, task_queue, company_name=company)
    assert first.customer_tracking.status == second.customer_tracking.status == "ok"
    assert first.customer_tracking.customer_client_name == company
    assert not first.customer_tracking.client_renamed
    slug = (await handle.query(TenantCreationWorkflow.get_state)).slug
    assert second.customer_tracking.customer_client_name == f"{company} ({slug})"
    assert second.customer_tracking.client_renamed


async def test_same_tenant_name_twice_is_rejected_before_tracking(client, start_worker, engine, management):
    task_queue = await start_worker(settings=management.settings)
    name, company = unique_name("Twice"), unique_name("Twice Co")
    _, first = await provision(client, task_queue, tenant_name=name, company_name=company)
    before = await tenant_row_counts(engine, management.tenant)
    with pytest.raises(TenantAlreadyProvisioned):  # same slug: the same business key
        await provision(client, task_queue, tenant_name=name.upper(), company_name=company)
    assert len((await tracking_records(engine, management.tenant, first.tenant_id))["client"]) == 1
    # Customer clients are named after the company, "<company> (<slug>)" when the name is taken: exactly one.
    clients_named = await rows(
        engine, "SELECT 1 FROM clients WHERE tenant = :m AND client_name LIKE :n", m=management.tenant, n=f"{company}%"
    )
    assert len(clients_named) == 1
    assert await tenant_row_counts(engine, management.tenant) == before


async def test_existing_unlinked_contact_is_reused_and_linked(client, start_worker, engine, management):
    email = f"reuse.{uuid.uuid4().hex[:8]}@acme.example.com"
    async with tenant_transaction(engine, management.tenant) as conn:
        existing = await contacts.create_contact(conn, management.tenant, {"full_name": "Known Person", "email": email})
    task_queue = await start_worker(settings=management.settings)
    _, result = await provision(
        client, task_queue, admin_user=AdminUser(first_name="Known", last_name="Person", email=email)
    )
    tracking = result.customer_tracking
    assert tracking.status == "ok"
    assert tracking.contact_reused
    assert tracking.customer_contact_id == str(existing.contact_name_id)
    (contact,) = (await tracking_records(engine, management.tenant, result.tenant_id))["contact"]
    assert contact.contact_name_id == existing.contact_name_id


async def test_contact_of_another_client_fails_tracking_with_the_reason(client, start_worker, engine, management):
    email = f"taken.{uuid.uuid4().hex[:8]}@acme.example.com"
    async with tenant_transaction(engine, management.tenant) as conn:
        other = await clients.create_client(conn, management.tenant, {"client_name": unique_name("Other")})
        await contacts.create_contact(
            conn, management.tenant, {"full_name": "Taken", "email": email, "client_id": other.client_id}
        )
    task_queue = await start_worker(settings=management.settings)
    _, result = await provision(client, task_queue, admin_user=AdminUser(first_name="A", last_name="B", email=email))
    assert result.success
    assert result.customer_tracking.status == "failed"
    assert "another management client" in result.customer_tracking.error
    assert result.customer_tracking.portal_user_id is None


TRACKING_ACTIVITIES = [
    "create_customer_client",
    "create_customer_contact",
    "tag_customer_client",
    "create_customer_portal_user",
]


@pytest.mark.parametrize("activity_type", TRACKING_ACTIVITIES)
async def test_cancel_during_tracking_removes_every_tracking_record(
    client, start_worker, engine, management, activity_type
):
    async def hook(info) -> None:
        if info.attempt == 1:
            handle = client.get_workflow_handle(info.workflow_id)
            await handle.signal(TenantCreationWorkflow.cancel, CancelSignal(reason="changed mind", cancelled_by="ops"))
            await wait_for_activity_cancel_request(client, info)  # the activity still commits after that

    task_queue = await start_worker(settings=management.settings, interceptors=[ActivityHooks({activity_type: hook})])
    handle = await start_tenant_creation(client, make_request(), task_queue=task_queue)
    with pytest.raises(WorkflowFailureError):
        await handle.result()
    state = await handle.query(TenantCreationWorkflow.get_state)
    assert state.step == "cancelled"
    assert state.compensation.status == "completed"
    assert state.compensation.compensated[0] == "tracking_customer"
    tenant_id = derived_id(handle.id, "tenant")
    assert all(not v for v in (await tracking_records(engine, management.tenant, tenant_id)).values())
    derived = CustomerTrackingArgs(target=TrackingTarget(tenant_id=tenant_id, company_name="x", slug="x"))
    leftovers = await rows(
        engine,
        """SELECT 1 FROM contacts WHERE tenant = :m AND contact_name_id = :c
           UNION ALL SELECT 1 FROM users WHERE tenant = :m AND user_id = :u""",
        m=management.tenant,
        c=derived.derived_id("contact"),
        u=derived.derived_id("portal_user"),
    )
    assert leftovers == []
    assert set((await tenant_row_counts(engine, tenant_id)).values()) == {0}


async def test_cancel_keeps_a_reused_contact(client, start_worker, engine, management):
    email = f"keep.{uuid.uuid4().hex[:8]}@acme.example.com"
    async with tenant_transaction(engine, management.tenant) as conn:
        existing = await contacts.create_contact(conn, management.tenant, {"full_name": "Keep Me", "email": email})

    async def hook(info) -> None:
        if info.attempt == 1:
            await client.get_workflow_handle(info.workflow_id).signal(TenantCreationWorkflow.cancel, CancelSignal())

    hooks = ActivityHooks({"create_customer_portal_user": hook})
    task_queue = await start_worker(settings=management.settings, interceptors=[hooks])
    handle = await start_tenant_creation(
        client, make_request(admin_user=AdminUser(first_name="K", last_name="M", email=email)), task_queue=task_queue
    )
    with pytest.raises(WorkflowFailureError):
        await handle.result()
    async with engine.connect() as conn:
        kept = await contacts.get_contact(conn, management.tenant, existing.contact_name_id)
    assert kept.client_id is None  # unlinked from the removed customer client, not deleted with it


async def test_worker_metrics_count_tracking_outcomes_and_durations(client, start_worker, management, base_settings):
    def sample(name: str, **labels) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    before = (
        sample("psa_customer_tracking_total", status="ok"),
        sample("psa_customer_tracking_total", status="skipped"),
        sample("psa_provisioning_duration_seconds_count", outcome="completed"),
    )
    ok_queue = await start_worker(settings=management.settings)
    await provision(client, ok_queue)
    await provision(client, ok_queue, skip_customer_tracking=True)
    after = (
        sample("psa_customer_tracking_total", status="ok"),
        sample("psa_customer_tracking_total", status="skipped"),
        sample("psa_provisioning_duration_seconds_count", outcome="completed"),
    )
    assert after[0] - before[0] == 1
    assert after[1] - before[1] == 1
    assert after[2] - before[2] == 2
    assert sample("psa_provisioning_duration_seconds_sum", outcome="completed") > 0


async def test_a_tracked_provisioning_sends_at_most_42_statements_besides_the_seeds(client, start_worker, management):
    """Issue 2's budget of 40 SQL statements per provisioning, seeds excluded, customer tracking included (counted
    as bench/provisioning.py counts them: every statement the activities send), plus the welcome email's outbox
    row (issue 14): queued and claimed in one statement, marked sent in another, each in its tenant transaction
    (docs/benchmarks.md)."""
    engine = make_engine(management.settings)
    sent: list[tuple[str, str]] = []

    def record(_conn, _cursor, statement, _params, _context, _executemany) -> None:
        sent.append((activity.info().workflow_id, statement))

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        task_queue = await start_worker(settings=management.settings, engine_=engine)
        handle, result = await provision(client, task_queue)
    finally:
        await engine.dispose()
    assert result.customer_tracking.status == "ok"
    ours = [statement for workflow_id, statement in sent if workflow_id == handle.id]
    seeds = [s for s in ours if re.match(rf"\s*INSERT\s+INTO\s+({'|'.join(SEEDED_TABLES)})\b", s, re.IGNORECASE)]
    assert len(seeds) == len(SEEDED_TABLES)
    assert len(ours) - len(seeds) <= 42, "\n".join(ours)
