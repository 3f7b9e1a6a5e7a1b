"""Row-level security (migration 0006): every table with a tenant column is secured, and the API role sees and
writes only the rows of ``app.current_tenant``, even with a query that forgets the tenant filter."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, ProgrammingError

from psa.db.engine import DIRECTORY_ROLE, make_api_engine, tenant_transaction
from psa.db.schema import TENANT_TABLES
from psa.domain import contacts, users
from psa.domain.tenants import list_tenants
from tests.helpers import rows, unique_email


@pytest.fixture(scope="module")
async def api_engine(base_settings):
    engine = make_api_engine(base_settings)
    yield engine
    await engine.dispose()


TENANT_TABLE_SECURITY = text(
    """SELECT c.table_name, k.relrowsecurity AS secured,
              EXISTS (SELECT 1 FROM pg_policies p WHERE p.schemaname = c.table_schema AND p.tablename = c.table_name
                        AND p.policyname = 'tenant_isolation') AS has_policy
         FROM information_schema.columns c
         JOIN pg_class k ON k.relname = c.table_name AND k.relnamespace = to_regnamespace(c.table_schema)
        WHERE c.table_schema = current_schema() AND c.column_name = 'tenant' AND k.relkind = 'r'"""
)


def unsecured(tables) -> list[str]:
    return sorted(t.table_name for t in tables if not (t.secured and t.has_policy))


async def test_every_table_with_a_tenant_column_has_row_level_security(engine):
    async with engine.connect() as conn:
        tables = list(await conn.execute(TENANT_TABLE_SECURITY))
    assert {t.name for t in TENANT_TABLES} <= {t.table_name for t in tables}  # the discovery finds them all
    assert unsecured(tables) == [], f"tables with a tenant column but no tenant_isolation policy: {unsecured(tables)}"


async def test_a_new_tenant_table_is_flagged_until_psa_enable_tenant_rls_covers_it(engine):
    async with engine.connect() as conn:  # rolled back at the end: the shared test database is untouched
        await conn.execute(text("CREATE TABLE rls_probe (tenant uuid NOT NULL, note text)"))
        assert unsecured(await conn.execute(TENANT_TABLE_SECURITY)) == ["rls_probe"]
        assert await conn.scalar(text("SELECT psa_enable_tenant_rls()")) == 1
        assert unsecured(await conn.execute(TENANT_TABLE_SECURITY)) == []
        assert await conn.scalar(text("SELECT psa_enable_tenant_rls()")) == 0  # idempotent
        await conn.rollback()


async def test_api_role_is_subject_to_the_policies(api_engine):
    async with api_engine.connect() as conn:
        role = (
            await conn.execute(
                text("SELECT current_user, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user")
            )
        ).one()
    assert tuple(role) == ("psa_api", False, False)


async def test_a_query_without_a_tenant_filter_sees_only_the_current_tenant(api_engine, tenant_a, tenant_b):
    async with tenant_transaction(api_engine, tenant_a.tenant) as conn:
        users = {r.tenant for r in await conn.execute(text("SELECT tenant FROM users"))}
        tenants = {r.tenant for r in await conn.execute(text("SELECT tenant FROM tenants"))}
        roles = await conn.scalar(text("SELECT count(*) FROM roles WHERE tenant = :b"), {"b": tenant_b.tenant})
    assert users == {tenant_a.tenant}
    assert tenants == {tenant_a.tenant}
    assert roles == 0
    async with api_engine.begin() as conn:  # no tenant scope at all: nothing
        assert await conn.scalar(text("SELECT count(*) FROM users")) == 0


async def test_the_api_role_cannot_write_into_another_tenant(api_engine, engine, tenant_a, tenant_b):
    with pytest.raises(DBAPIError, match="row-level security"):
        async with tenant_transaction(api_engine, tenant_a.tenant) as conn:
            await conn.execute(
                text("INSERT INTO roles (tenant, role_name, msp, client) VALUES (:b, 'Intruder', true, false)"),
                {"b": tenant_b.tenant},
            )
    async with tenant_transaction(api_engine, tenant_a.tenant) as conn:
        moved = await conn.execute(
            text("UPDATE users SET first_name = 'Hijacked' WHERE tenant = :b"), {"b": tenant_b.tenant}
        )
        deleted = await conn.execute(text("DELETE FROM roles WHERE tenant = :b"), {"b": tenant_b.tenant})
    assert moved.rowcount == 0
    assert deleted.rowcount == 0
    hijacked = "SELECT 1 FROM users WHERE tenant = :b AND first_name = 'Hijacked'"
    assert not await rows(engine, hijacked, b=tenant_b.tenant)


async def test_the_api_role_cannot_read_api_keys_directly(api_engine, tenant_a):
    with pytest.raises(ProgrammingError, match="permission denied"):
        async with tenant_transaction(api_engine, tenant_a.tenant) as conn:
            await conn.execute(text("SELECT key_hash FROM api_keys"))


async def test_the_directory_role_reads_tenants_across_tenants_and_nothing_else(api_engine, tenant_a, tenant_b):
    async with tenant_transaction(api_engine, tenant_a.tenant) as conn:
        await conn.execute(text(f"SET LOCAL ROLE {DIRECTORY_ROLE}"))
        seen = {r.tenant for r in await conn.execute(text("SELECT tenant FROM tenants"))}
    assert {tenant_a.tenant, tenant_b.tenant} <= seen
    with pytest.raises(ProgrammingError, match="permission denied"):
        async with tenant_transaction(api_engine, tenant_a.tenant) as conn:
            await conn.execute(text(f"SET LOCAL ROLE {DIRECTORY_ROLE}"))
            await conn.execute(text("SELECT 1 FROM clients"))
    with pytest.raises(ProgrammingError, match="permission denied"):
        async with tenant_transaction(api_engine, tenant_a.tenant) as conn:
            await conn.execute(text(f"SET LOCAL ROLE {DIRECTORY_ROLE}"))
            await conn.execute(text("UPDATE tenants SET plan = 'x'"))


async def test_the_directory_role_reads_no_password_hashes(api_engine, tenant_a, tenant_b):
    async with tenant_transaction(api_engine, tenant_a.tenant) as conn:  # what the tenant listing reads still works
        await conn.execute(text(f"SET LOCAL ROLE {DIRECTORY_ROLE}"))
        admins = {r.tenant for r in await list_tenants(conn, limit=None) if r.admin_email}
    assert {tenant_a.tenant, tenant_b.tenant} <= admins
    for column in ("hashed_password", "username", "*"):
        with pytest.raises(ProgrammingError, match="permission denied"):
            async with tenant_transaction(api_engine, tenant_a.tenant) as conn:
                await conn.execute(text(f"SET LOCAL ROLE {DIRECTORY_ROLE}"))
                await conn.execute(text(f"SELECT {column} FROM users WHERE tenant = :b"), {"b": tenant_b.tenant})


async def test_the_directory_role_sees_no_client_portal_users(api_engine, engine, tenant_a, tenant_b):
    t = tenant_b.tenant
    async with tenant_transaction(engine, t) as conn:
        person = {"full_name": "Portal Person", "email": unique_email("portal")}
        contact = await contacts.create_contact(conn, t, person)
        await users.create_portal_user(conn, tenant=t, user_id=uuid.uuid4(), contact_id=contact.contact_name_id)
    portal_users = "SELECT count(*) FROM users WHERE tenant = :b AND user_type <> 'internal'"
    assert (await rows(engine, portal_users, b=t))[0][0] == 1
    async with tenant_transaction(api_engine, tenant_a.tenant) as conn:
        await conn.execute(text(f"SET LOCAL ROLE {DIRECTORY_ROLE}"))
        assert await conn.scalar(text(portal_users), {"b": t}) == 0
        assert await conn.scalar(text("SELECT count(*) FROM users WHERE tenant = :b"), {"b": t}) > 0


async def test_the_api_role_cannot_change_the_global_catalogue(api_engine, tenant_a):
    async with tenant_transaction(api_engine, tenant_a.tenant) as conn:  # read by interactions of every tenant
        assert await conn.scalar(text("SELECT count(*) FROM system_interaction_types")) > 0
    for statement in (
        "UPDATE system_interaction_types SET type_name = 'Hijacked'",
        "DELETE FROM system_interaction_types",
        "INSERT INTO system_interaction_types (type_name) VALUES ('Intruder')",
    ):
        with pytest.raises(ProgrammingError, match="permission denied"):
            async with tenant_transaction(api_engine, tenant_a.tenant) as conn:
                await conn.execute(text(statement))
