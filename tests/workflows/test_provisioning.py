"""TenantCreationWorkflow on a real Temporal dev server and PostgreSQL: success, duplicates, bad input."""

from __future__ import annotations

import asyncio
import email
import email.policy
import logging
import uuid
from pathlib import Path

import pytest
from sqlalchemy import text
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError

from psa.domain.seeds import PSA
from psa.domain.users import PASSWORD_CLASSES, verify_password
from psa.provisioning.starter import TenantAlreadyProvisioned, start_tenant_creation
from psa.provisioning.types import AdminUser
from psa.provisioning.workflow import TenantCreationWorkflow, derived_id
from tests.factories import make_request
from tests.helpers import outbox_rows, rows, scalar, tenant_row_counts

EXPECTED_STEPS = [
    "initializing",
    "validating",
    "creating_tenant",
    "seeding",
    "creating_admin_user",
    "setting_up_data",
    "sending_welcome_email",
    "completed",
]


async def test_success_writes_every_table(client, worker, engine, base_settings):
    request = make_request()
    handle = await start_tenant_creation(client, request, task_queue=worker)
    result = await handle.result()

    assert result.success
    assert result.email_sent
    assert result.created_at.endswith("Z")
    counts = await tenant_row_counts(engine, result.tenant_id)
    catalogue = PSA.permission_catalogue()
    assert counts["tenants"] == 1
    assert counts["clients"] == 1
    assert counts["client_locations"] == 1
    assert counts["tenant_companies"] == 1
    assert counts["users"] == 1
    assert counts["user_roles"] == 1
    assert counts["roles"] == len(PSA.roles)
    assert counts["permissions"] == len(catalogue)
    assert counts["role_permissions"] > len([p for p in catalogue if p.msp])
    assert counts["tax_regions"] == 1
    assert counts["tax_rates"] == 1
    assert counts["tenant_settings"] == 1
    assert counts["tenant_email_settings"] == 1
    assert counts["email_outbox"] == 1  # the welcome email
    for untouched in ("contacts", "tag_definitions", "tag_mappings", "audit_logs", "client_tax_settings"):
        assert counts[untouched] == 0, untouched

    async with engine.connect() as conn:
        tenant = (await conn.execute(text("SELECT * FROM tenants WHERE tenant = :t"), {"t": result.tenant_id})).one()
        client_row = (
            await conn.execute(text("SELECT * FROM clients WHERE tenant = :t"), {"t": result.tenant_id})
        ).one()
        user = (await conn.execute(text("SELECT * FROM users WHERE tenant = :t"), {"t": result.tenant_id})).one()
        role = (
            await conn.execute(
                text(
                    "SELECT r.role_name, r.msp FROM user_roles ur JOIN roles r USING (tenant, role_id)"
                    " WHERE ur.tenant = :t"
                ),
                {"t": result.tenant_id},
            )
        ).one()
        email_settings = (
            await conn.execute(text("SELECT * FROM tenant_email_settings WHERE tenant = :t"), {"t": result.tenant_id})
        ).one()
    assert tenant.client_name == request.company_name
    assert tenant.email == request.admin_user.email.lower()
    assert str(client_row.client_id) == result.client_id
    assert client_row.client_name == request.company_name
    assert client_row.properties["type"] == "msp"
    assert str(user.user_id) == result.admin_user_id
    assert user.user_type == "internal"
    assert user.must_change_password
    assert (role.role_name, role.msp) == ("Admin", True)
    assert email_settings.email_provider == "resend"
    assert email_settings.provider_configs[0]["isEnabled"] is False

    # The temporary password: 16 characters, every class, and it is the one stored (bcrypt).
    password = result.temporary_password
    assert len(password) == 16
    assert all(any(c in cls for c in password) for cls in PASSWORD_CLASSES)
    assert user.hashed_password.startswith("$2b$")
    assert password not in user.hashed_password
    assert verify_password(password, user.hashed_password)

    # The welcome email: its outbox row (keyed by the workflow id, sent once) and the file named after its Message-ID.
    [queued] = await outbox_rows(engine, result.tenant_id)
    assert (queued.source_key, queued.kind, queued.status, queued.attempts, queued.location) == (
        f"{handle.id}/tenant_welcome",
        "tenant_welcome",
        "sent",
        1,
        result.email_location,
    )
    message = email.message_from_bytes(Path(result.email_location).read_bytes(), policy=email.policy.default)
    assert message["Message-ID"] == queued.message_id
    assert Path(result.email_location).name == queued.message_id.strip("<>") + ".eml"
    assert message["To"].addresses[0].addr_spec == request.admin_user.email.lower()
    body = message.get_body(("plain",)).get_content()
    assert request.tenant_name in body
    assert password in body

    # Progress rose monotonically through every step.
    state = await handle.query(TenantCreationWorkflow.get_state)
    assert [t.step for t in state.history] == EXPECTED_STEPS
    progress = [t.progress for t in state.history]
    assert progress == sorted(progress)
    assert progress[0] == 0
    assert progress[-1] == 100
    assert state.compensation.status == "not_needed"


async def test_algadesk_tenant_gets_the_algadesk_seeds_and_welcome_email(client, worker, engine):
    """product_code reaches seeding and the welcome email (reference: the AlgaDesk tenant-creation workflow)."""
    request = make_request(product_code="algadesk")
    result = await (await start_tenant_creation(client, request, task_queue=worker)).result()
    tenant = result.tenant_id
    assert await scalar(engine, "SELECT product_code FROM tenants WHERE tenant = :t", t=tenant) == "algadesk"
    roles = await rows(engine, "SELECT role_name, msp, client FROM roles WHERE tenant = :t", t=tenant)
    assert {tuple(r) for r in roles} == {
        ("Admin", True, False),
        ("Agent", True, False),
        ("Admin", False, True),
        ("User", False, True),
    }
    counts = await tenant_row_counts(engine, tenant)
    assert counts["permissions"] == 67
    assert counts["role_permissions"] == 92
    assert counts["tax_regions"] == 0
    assert counts["tax_rates"] == 0
    assert counts["statuses"] == 2  # the default interaction statuses only
    assert (
        await scalar(
            engine,
            """SELECT count(*) FROM permissions WHERE tenant = :t
              AND resource IN ('asset', 'billing', 'invoice', 'project', 'timesheet', 'workflow')""",
            t=tenant,
        )
        == 0
    )
    admin_role = await rows(
        engine,
        "SELECT r.role_name, r.msp FROM user_roles ur JOIN roles r USING (tenant, role_id) WHERE ur.tenant = :t",
        t=tenant,
    )
    assert [tuple(r) for r in admin_role] == [("Admin", True)]

    message = email.message_from_bytes(Path(result.email_location).read_bytes(), policy=email.policy.default)
    assert message["Subject"] == "Welcome to AlgaDesk - Your Account is Ready"
    body = message.get_body(("plain",)).get_content()
    assert "Welcome to AlgaDesk!" in body
    assert "Open AlgaDesk →" in body


async def test_same_request_started_twice_at_once_makes_one_tenant(client, worker, engine):
    request = make_request()
    handles = await asyncio.gather(*(start_tenant_creation(client, request, task_queue=worker) for _ in range(4)))
    assert len({h.id for h in handles}) == 1
    results = await asyncio.gather(*(h.result() for h in handles))
    assert len({r.tenant_id for r in results}) == 1
    slug = handles[0].id.removeprefix("tenant-creation-")
    assert await scalar(engine, "SELECT count(*) FROM tenants WHERE slug = :s", s=slug) == 1
    assert await scalar(engine, "SELECT count(*) FROM users WHERE email = :e", e=request.admin_user.email) == 1


async def test_second_start_after_completion_reports_existing_tenant(client, worker):
    request = make_request()
    await (await start_tenant_creation(client, request, task_queue=worker)).result()
    with pytest.raises(TenantAlreadyProvisioned, match="already exists"):
        await start_tenant_creation(client, request, task_queue=worker)


async def _run_raw(client, worker, request) -> tuple[ApplicationError, str]:
    """Start the workflow directly (bypassing client-side checks); its failure cause and the id of the tenant it
    would have created (derived from the workflow id)."""
    handle = await client.start_workflow(
        TenantCreationWorkflow.run, request, id=f"test-raw-{uuid.uuid4()}", task_queue=worker
    )
    with pytest.raises(WorkflowFailureError) as info:
        await handle.result()
    cause = info.value.cause
    assert isinstance(cause, ApplicationError)
    state = await handle.query(TenantCreationWorkflow.get_state)
    assert state.step == "failed"
    assert state.compensation.status == "not_needed", "validation failures happen before any write"
    return cause, derived_id(handle.id, "tenant")


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"tenant_name": "   "}, "tenant_name"),
        ({"tenant_name": "x" * 256}, "tenant_name"),
        ({"tenant_name": "!!!"}, "tenant_name"),
        ({"admin_user": AdminUser(first_name="J", last_name="D", email="not-an-email")}, "admin_user.email"),
        ({"admin_user": AdminUser(first_name="J", last_name="D", email="")}, "admin_user.email"),
        ({"admin_user": AdminUser(first_name=" ", last_name="D", email="j@example.com")}, "admin_user.first_name"),
        ({"email_provider": "carrier-pigeon"}, "email_provider"),
        ({"product_code": "erp"}, "product_code"),
    ],
)
async def test_bad_input_fails_validation_and_writes_nothing(client, worker, engine, overrides, field):
    cause, tenant_id = await _run_raw(client, worker, make_request(**overrides))
    assert cause.type == "ValidationError"
    assert cause.non_retryable
    assert cause.details[0]["field"] == field
    assert set((await tenant_row_counts(engine, tenant_id)).values()) == {0}  # no row in any tenant table


async def test_admin_email_used_in_another_tenant_is_duplicate_and_writes_nothing(client, worker, engine):
    first = make_request()
    await (await start_tenant_creation(client, first, task_queue=worker)).result()
    second = make_request(
        admin_user=AdminUser(first_name="Jane", last_name="Roe", email=first.admin_user.email.upper())
    )
    cause, tenant_id = await _run_raw(client, worker, second)
    assert cause.type == "DuplicateError"
    assert cause.details[0]["field"] == "admin_user.email"
    assert set((await tenant_row_counts(engine, tenant_id)).values()) == {0}  # no row in any tenant table


async def test_tenant_name_taken_by_another_tenant_is_duplicate(client, worker, engine):
    first = make_request()
    await (await start_tenant_creation(client, first, task_queue=worker)).result()
    cause, _ = await _run_raw(client, worker, make_request(tenant_name=first.tenant_name.upper()))
    assert cause.type == "DuplicateError"
    assert cause.details[0]["field"] == "tenant_name"


async def test_password_never_in_logs_workflow_history_or_the_email_outbox(client, worker, engine, caplog):
    caplog.set_level(logging.DEBUG)
    handle = await start_tenant_creation(client, make_request(), task_queue=worker)
    result = await handle.result()
    password = result.temporary_password
    assert password not in caplog.text
    [row] = await outbox_rows(engine, result.tenant_id)
    assert row.sealed is True
    assert password.encode() not in row.message
    whole_row = "SELECT count(*) FROM email_outbox o WHERE tenant = :t AND strpos(o::text, :pw) > 0"
    assert await scalar(engine, whole_row, t=result.tenant_id, pw=password) == 0
    assert await scalar(engine, whole_row, t=result.tenant_id, pw=password.encode().hex()) == 0
    history = await handle.fetch_history()
    raw = b"".join(event.SerializeToString() for event in history.events)
    assert password.encode() not in raw, "payloads must be encrypted by the codec"
    assert b"binary/encrypted-aes256gcm" in raw
