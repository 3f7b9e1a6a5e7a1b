"""Management tenant bootstrap, customer-tracking steps and ``reconcile`` against the real database."""

from __future__ import annotations

import uuid

import pytest

from psa.db.engine import tenant_transaction
from psa.domain import clients, users
from psa.domain.errors import NotFoundError, ValidationError
from psa.domain.tenants import resolve_management_tenant
from psa.provisioning.customer_tracking import bootstrap_management_tenant, reconcile
from tests.factories import make_tenant
from tests.helpers import rows, unique_email, unique_name


async def add_admin(engine, tenant: uuid.UUID, email: str) -> None:
    async with tenant_transaction(engine, tenant) as conn:
        await users.create_internal_user(
            conn,
            tenant=tenant,
            user_id=uuid.uuid4(),
            first_name="Ada",
            last_name="Byron",
            email=email,
            password_hash=users.hash_password("first-password", rounds=4),
        )


@pytest.fixture
async def mgmt_settings(engine, base_settings):
    mgmt = await bootstrap_management_tenant(engine, unique_name("Mgmt"), email="ops@mgmt.example.com")
    return mgmt, base_settings.model_copy(update={"management_tenant_id": mgmt.tenant})


async def customer_counts(engine, mgmt: uuid.UUID) -> dict[str, int]:
    counts = {}
    for table in ("clients", "contacts", "tag_mappings", "users"):
        counts[table] = len(await rows(engine, f"SELECT 1 FROM {table} WHERE tenant = :m", m=mgmt))
    return counts


async def test_bootstrap_is_idempotent_and_seeds_the_tenant(engine):
    name = unique_name("Mgmt")
    first = await bootstrap_management_tenant(engine, name, email="Ops@Mgmt.Example.com")
    again = await bootstrap_management_tenant(engine, name, email="ops@mgmt.example.com")
    assert first.created
    assert not again.created
    assert again.tenant == first.tenant
    roles = await rows(engine, "SELECT role_name FROM roles WHERE tenant = :t AND client", t=first.tenant)
    assert {"Admin", "User"} <= {r.role_name for r in roles}  # client-portal roles for customer portal users
    (service,) = await rows(engine, "SELECT is_inactive, hashed_password FROM users WHERE tenant = :t", t=first.tenant)
    assert service.is_inactive
    assert not users.verify_password("", service.hashed_password)


@pytest.mark.parametrize("name", ["", "   ", "x" * 256, "!!!"])
async def test_bootstrap_rejects_bad_names(engine, name):
    with pytest.raises(ValidationError):
        await bootstrap_management_tenant(engine, name, email="ops@example.com")


async def test_bootstrap_rejects_a_bad_email_and_writes_nothing(engine):
    name = unique_name("Mgmt")
    with pytest.raises(ValidationError) as info:
        await bootstrap_management_tenant(engine, name, email="not-an-email")
    assert info.value.field == "email"
    assert await rows(engine, "SELECT 1 FROM tenants WHERE client_name = :n", n=name) == []


async def test_resolve_management_tenant_by_name_id_and_missing(engine, base_settings):
    mgmt = await bootstrap_management_tenant(engine, unique_name("Mgmt"), email="ops@example.com")
    async with engine.connect() as conn:
        by_name = base_settings.model_copy(update={"management_tenant_name": mgmt.name.upper()})
        assert await resolve_management_tenant(conn, by_name) == mgmt.tenant
        by_id = base_settings.model_copy(update={"management_tenant_id": mgmt.tenant})
        assert await resolve_management_tenant(conn, by_id) == mgmt.tenant
        with pytest.raises(NotFoundError, match="PSA_MANAGEMENT_TENANT_ID"):
            await resolve_management_tenant(
                conn, base_settings.model_copy(update={"management_tenant_id": uuid.uuid4()})
            )
        with pytest.raises(NotFoundError, match="bootstrap-management"):
            missing = base_settings.model_copy(update={"management_tenant_name": unique_name("Nobody")})
            await resolve_management_tenant(conn, missing)


async def test_reconcile_backfills_then_finds_everything_ok(engine, mgmt_settings):
    mgmt, settings = mgmt_settings
    tenant = await make_tenant(engine, seeded=True)
    await add_admin(engine, tenant.tenant, unique_email("backfill"))
    only = [str(tenant.tenant)]

    dry = await reconcile(engine, settings, dry_run=True, only=only)
    assert [(r.action, r.missing) for r in dry] == [("would create", ["client", "contact", "tag", "portal_user"])]
    assert (await customer_counts(engine, mgmt.tenant))["clients"] == 1  # only the management tenant's own client

    (created,) = await reconcile(engine, settings, only=only)
    assert created.action == "created"
    assert created.tracking.status == "ok"
    assert created.tracking.customer_client_name == tenant.name
    counts = await customer_counts(engine, mgmt.tenant)

    (again,) = await reconcile(engine, settings, only=[tenant.slug])
    assert again.action == "ok"
    assert again.missing == []
    assert again.tracking.customer_client_name == tenant.name
    assert await customer_counts(engine, mgmt.tenant) == counts  # no duplicates


async def test_reconcile_repairs_a_partial_record(engine, mgmt_settings):
    mgmt, settings = mgmt_settings
    tenant = await make_tenant(engine, seeded=True)
    await add_admin(engine, tenant.tenant, unique_email("repair"))
    (created,) = await reconcile(engine, settings, only=[tenant.slug])
    async with tenant_transaction(engine, mgmt.tenant) as conn:  # lose the contact (and its portal user)
        await conn.exec_driver_sql(
            "DELETE FROM contacts WHERE tenant = %s AND contact_name_id = %s",
            (mgmt.tenant, uuid.UUID(created.tracking.customer_contact_id)),
        )
    (repaired,) = await reconcile(engine, settings, only=[tenant.slug])
    assert repaired.action == "repaired"
    assert repaired.missing == ["contact", "portal_user"]
    assert repaired.tracking.status == "ok"
    assert repaired.tracking.customer_client_id == created.tracking.customer_client_id


async def test_reconcile_without_admin_records_client_and_tag_and_reports_failure(engine, mgmt_settings):
    mgmt, settings = mgmt_settings
    tenant = await make_tenant(engine, seeded=True)
    (row,) = await reconcile(engine, settings, only=[tenant.slug])
    assert row.action == "failed"
    assert "no admin user" in row.tracking.error
    async with engine.connect() as conn:
        customer = await clients.find_client_by_property(conn, mgmt.tenant, "tenant_id", str(tenant.tenant))
    assert customer is not None
    assert row.tracking.tag_id is not None


async def customers_of(engine, mgmt: uuid.UUID, tenant_ids: set[str]) -> dict[str, list]:
    """The management tenant's customer records of ``tenant_ids``: client, contact, tag mapping and portal user ids."""
    ids = list(tenant_ids)
    customers = """SELECT client_id FROM clients WHERE tenant = :m AND properties->>'tenant_id' = ANY(:ids)"""
    contacts = f"SELECT contact_name_id FROM contacts WHERE tenant = :m AND client_id IN ({customers})"
    queries = {
        "clients": customers,
        "contacts": contacts,
        "tag_mappings": f"SELECT mapping_id FROM tag_mappings WHERE tenant = :m AND tagged_id IN ({customers})",
        "users": f"SELECT user_id FROM users WHERE tenant = :m AND contact_id IN ({contacts})",
    }
    return {table: sorted(r[0] for r in await rows(engine, sql, m=mgmt, ids=ids)) for table, sql in queries.items()}


async def test_reconcile_over_every_tenant_twice_creates_no_duplicates(engine, mgmt_settings):
    mgmt, settings = mgmt_settings
    mine = await make_tenant(engine, seeded=True)
    await add_admin(engine, mine.tenant, unique_email("every"))
    first = await reconcile(engine, settings)
    seen = {r.tenant_id for r in first}
    assert str(mine.tenant) in seen
    assert str(mgmt.tenant) not in seen
    # Scoped to the tenants the first run saw: a tenant another test makes meanwhile is new to the second run.
    records = await customers_of(engine, mgmt.tenant, seen)
    assert records["clients"]
    second = await reconcile(engine, settings)
    assert await customers_of(engine, mgmt.tenant, seen) == records
    assert {r.tenant_id for r in second if r.tenant_id in seen and r.action not in ("ok", "failed")} == set()
    duplicates = await rows(
        engine,
        """SELECT properties->>'tenant_id' FROM clients WHERE tenant = :m AND properties ? 'tenant_id'
            GROUP BY 1 HAVING count(*) > 1""",
        m=mgmt.tenant,
    )
    assert duplicates == []
