"""Tenant seeds (psa.domain.seeds) against the real PostgreSQL test database."""

from __future__ import annotations

import uuid

import pytest
from slugify import slugify
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from psa.db.engine import tenant_transaction
from psa.domain.errors import ValidationError
from psa.domain.seeds import PSA, SEEDED_TABLES, SeedResult, remove_seeds, seed_tenant
from psa.domain.tenants import create_tenant
from tests.helpers import scalar, tenant_row_counts, unique_name


async def new_tenant(engine: AsyncEngine, product_code: str = "psa") -> uuid.UUID:
    tenant = uuid.uuid4()
    name = unique_name("Seeds")
    async with tenant_transaction(engine, tenant) as conn:
        await create_tenant(
            conn,
            tenant=tenant,
            slug=slugify(name),
            company_name=name,
            email="owner@seeds.com",
            product_code=product_code,
        )
    return tenant


async def seed(engine: AsyncEngine, tenant: uuid.UUID, product_code: str = "psa") -> SeedResult:
    async with tenant_transaction(engine, tenant) as conn:
        return await seed_tenant(conn, tenant, product_code)


def expected_grants() -> int:
    """Every role's grants: the Admins every permission of their portal, the others their listed pairs."""
    return sum(len(set(PSA.role_grants(role))) for role in PSA.roles)


async def grants_of(engine: AsyncEngine, tenant: uuid.UUID, role: str, msp: bool, client: bool) -> set[tuple]:
    async with engine.connect() as conn:
        result = await conn.execute(
            text(
                """SELECT p.resource, p.action, p.msp, p.client
                     FROM role_permissions rp
                     JOIN roles r ON r.tenant = rp.tenant AND r.role_id = rp.role_id
                     JOIN permissions p ON p.tenant = rp.tenant AND p.permission_id = rp.permission_id
                    WHERE rp.tenant = :t AND r.role_name = :role AND r.msp = :msp AND r.client = :client"""
            ),
            {"t": tenant, "role": role, "msp": msp, "client": client},
        )
        return {tuple(row) for row in result}


async def permissions_where(engine: AsyncEngine, tenant: uuid.UUID, condition: str) -> set[tuple]:
    async with engine.connect() as conn:
        result = await conn.execute(
            text(f"SELECT resource, action, msp, client FROM permissions WHERE tenant = :t AND {condition}"),
            {"t": tenant},
        )
        return {tuple(row) for row in result}


async def test_seed_inserts_everything_once_and_is_idempotent(engine):
    tenant = await new_tenant(engine)
    catalogue = PSA.permission_catalogue()

    first = await seed(engine, tenant)
    assert first.roles == len(PSA.roles) == 8
    assert first.permissions == len(catalogue)
    assert first.role_permissions == expected_grants() > 0
    assert first.tax_regions == 1
    assert first.tax_rates == 1
    assert first.statuses == len(PSA.statuses) == 5

    counts = await tenant_row_counts(engine, tenant)
    assert counts["roles"] == 8
    assert counts["permissions"] == len(catalogue)
    assert counts["role_permissions"] == first.role_permissions
    assert counts["tax_regions"] == 1
    assert counts["tax_rates"] == 1
    assert counts["statuses"] == 5

    second = await seed(engine, tenant)
    assert second == SeedResult(roles=0, permissions=0, role_permissions=0, tax_regions=0, tax_rates=0, statuses=0)
    assert await tenant_row_counts(engine, tenant) == counts


async def test_seed_rows_keep_their_ids_on_a_rerun(engine):
    """Unlike the reference, whose role-permission seed wipes every grant of the tenant on each run (reference:
    run_onboarding_seeds), grants are never wiped and re-inserted."""
    tenant = await new_tenant(engine)
    await seed(engine, tenant)
    sql = """SELECT string_agg(role_id::text || permission_id::text || created_at::text, ',' ORDER BY role_id,
                               permission_id) FROM role_permissions WHERE tenant = :t"""
    before = await scalar(engine, sql, t=tenant)
    await seed(engine, tenant)
    assert await scalar(engine, sql, t=tenant) == before


async def test_seeded_roles_match_the_reference(engine):
    tenant = await new_tenant(engine)
    await seed(engine, tenant)
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT role_name, msp, client, description FROM roles WHERE tenant = :t"), {"t": tenant}
        )
        assert {tuple(r) for r in rows} == {(r.name, r.msp, r.client, r.description) for r in PSA.roles}


async def test_msp_admin_has_every_msp_permission(engine):
    tenant = await new_tenant(engine)
    await seed(engine, tenant)
    msp_permissions = await permissions_where(engine, tenant, "msp")
    admin = await grants_of(engine, tenant, "Admin", True, False)
    assert admin == msp_permissions
    assert len(admin) == sum(p.msp for p in PSA.permission_catalogue())
    assert await scalar(
        engine,
        """SELECT count(*) FROM role_permissions rp
             JOIN roles r ON r.tenant = rp.tenant AND r.role_id = rp.role_id
             JOIN permissions p ON p.tenant = rp.tenant AND p.permission_id = rp.permission_id
            WHERE rp.tenant = :t AND r.role_name = 'Admin' AND r.msp AND NOT r.client AND p.msp""",
        t=tenant,
    ) == await scalar(engine, "SELECT count(*) FROM permissions WHERE tenant = :t AND msp", t=tenant)


async def test_client_portal_admin_has_every_client_permission(engine):
    tenant = await new_tenant(engine)
    await seed(engine, tenant)
    client_permissions = await permissions_where(engine, tenant, "client")
    assert ("settings", "read", True, True) in client_permissions
    assert await grants_of(engine, tenant, "Admin", False, True) == client_permissions


async def test_every_grant_resolves_to_a_permission_of_its_portal(engine):
    """No listed grant is silently dropped (the reference dropped its unresolvable keys)."""
    tenant = await new_tenant(engine)
    await seed(engine, tenant)
    for role in PSA.roles:
        if role.grants is None:
            continue
        granted = await grants_of(engine, tenant, role.name, role.msp, role.client)
        assert {(res, act) for res, act, _, _ in granted} == set(role.grants), role.name
        for _, _, p_msp, p_client in granted:
            assert (role.msp and p_msp) or (role.client and p_client), role


async def test_seeds_are_per_tenant(engine):
    a, b = await new_tenant(engine), await new_tenant(engine)
    await seed(engine, a)
    assert (await seed(engine, b)).roles == 8
    counts_a, counts_b = await tenant_row_counts(engine, a), await tenant_row_counts(engine, b)
    for table in SEEDED_TABLES:
        assert counts_a[table] == counts_b[table] > 0
    # no grant links a role of one tenant with a permission of another
    assert (
        await scalar(
            engine,
            """SELECT count(*) FROM role_permissions rp
                 JOIN permissions p ON p.permission_id = rp.permission_id AND p.tenant <> rp.tenant
                WHERE rp.tenant IN (:a, :b)""",
            a=a,
            b=b,
        )
        == 0
    )


async def test_default_tax_region_and_rate(engine):
    tenant = await new_tenant(engine)
    await seed(engine, tenant)
    async with engine.connect() as conn:
        region = (
            await conn.execute(
                text("SELECT region_code, region_name, is_active FROM tax_regions WHERE tenant = :t"), {"t": tenant}
            )
        ).one()
        rate = (
            await conn.execute(
                text("SELECT tax_percentage, description, region_code, is_active FROM tax_rates WHERE tenant = :t"),
                {"t": tenant},
            )
        ).one()
    assert tuple(region) == ("DEFAULT", "Default Tax Region", True)
    assert (float(rate.tax_percentage), rate.description, rate.region_code, rate.is_active) == (
        0.0,
        "Non-taxable",
        "DEFAULT",
        True,
    )


async def test_default_ticket_and_interaction_statuses(engine):
    tenant = await new_tenant(engine)
    await seed(engine, tenant)
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                """SELECT status_type, name, order_number, is_default, is_closed FROM statuses
                    WHERE tenant = :t ORDER BY status_type, order_number"""
            ),
            {"t": tenant},
        )
        assert [tuple(r) for r in rows] == sorted(PSA.statuses, key=lambda s: (s[0], s[2]))
    # exactly one default per kind
    assert (
        await scalar(
            engine,
            "SELECT count(*) FROM statuses WHERE tenant = :t AND is_default AND status_type = 'ticket'",
            t=tenant,
        )
        == 1
    )
    assert (
        await scalar(
            engine,
            "SELECT name FROM statuses WHERE tenant = :t AND is_default AND status_type = 'interaction'",
            t=tenant,
        )
        == "Planned"
    )


async def test_status_seeds_keep_a_tenants_own_default(engine):
    """A tenant that chose another default interaction status keeps it; the seeded default is skipped."""
    tenant = await new_tenant(engine)
    async with tenant_transaction(engine, tenant) as conn:
        await conn.execute(
            text(
                """INSERT INTO statuses (tenant, status_type, name, name_key, order_number, is_default)
                   VALUES (:t, 'interaction', 'Scheduled', 'scheduled', 1, true)"""
            ),
            {"t": tenant},
        )
    result = await seed(engine, tenant)
    assert result.statuses == len(PSA.statuses) - 1
    assert (
        await scalar(
            engine,
            "SELECT name FROM statuses WHERE tenant = :t AND is_default AND status_type = 'interaction'",
            t=tenant,
        )
        == "Scheduled"
    )
    assert (await seed(engine, tenant)).statuses == 0


async def test_remove_seeds_leaves_nothing_and_can_reseed(engine):
    tenant = await new_tenant(engine)
    first = await seed(engine, tenant)
    async with tenant_transaction(engine, tenant) as conn:
        deleted = await remove_seeds(conn, tenant)
    # role_permissions go by cascade, so they are not in the returned count
    assert deleted == first.roles + first.permissions + first.tax_regions + first.tax_rates + first.statuses
    counts = await tenant_row_counts(engine, tenant)
    for table in SEEDED_TABLES:
        assert counts[table] == 0, table
    assert counts["tenants"] == 1  # only the seeds are removed

    async with tenant_transaction(engine, tenant) as conn:
        assert await remove_seeds(conn, tenant) == 0  # idempotent compensation

    assert await seed(engine, tenant) == first


async def test_remove_seeds_touches_no_other_tenant(engine):
    a, b = await new_tenant(engine), await new_tenant(engine)
    await seed(engine, a)
    await seed(engine, b)
    before = await tenant_row_counts(engine, b)
    async with tenant_transaction(engine, a) as conn:
        await remove_seeds(conn, a)
    assert await tenant_row_counts(engine, b) == before


# -- seed sets by product, row by row (reference: the psa and algadesk onboarding seeds) --------------------------
def pairs(spec: str) -> set[tuple[str, str]]:
    """``"client:read,update ticket:create"`` -> {("client", "read"), ("client", "update"), ("ticket", "create")}."""
    return {(res, act) for item in spec.split() for res, acts in [item.split(":")] for act in acts.split(",")}


CRUD = "create,read,update,delete"
ALGADESK_MSP = pairs(
    f"account_management:read,update,delete client:{CRUD} contact:{CRUD} document:{CRUD} profile:read,update "
    f"reports:{CRUD} settings:read,update system_settings:read,update security_settings:read,update tag:{CRUD} "
    f"ticket:{CRUD} ticket_settings:{CRUD} user:{CRUD},invite,reset_password user_settings:{CRUD}"
)
ALGADESK_CLIENT = pairs(
    f"client:read,update contact:read,update document:create,read,update settings:read,update ticket:{CRUD} "
    f"user:{CRUD},reset_password"
)
ALGADESK_AGENT = pairs(
    "client:read contact:read document:create,read,update profile:read,update reports:read tag:create,read,update "
    "ticket:create,read,update ticket_settings:read user:read user_settings:read"
)
ALGADESK_CLIENT_USER = pairs("client:read contact:read document:create,read,update ticket:create,read,update")
PSA_ONLY_ROLES = {"Finance", "Technician", "Project Manager", "Dispatcher"}
PSA_ONLY_RESOURCES = {
    "asset",
    "billing",
    "invoice",
    "credit",
    "financial",
    "interaction",
    "project",
    "project_task",
    "timeentry",
    "timesheet",
    "workflow",
    "tenant",
}


async def roles_of(engine: AsyncEngine, tenant: uuid.UUID) -> set[tuple]:
    async with engine.connect() as conn:
        result = await conn.execute(
            text("SELECT role_name, msp, client, description FROM roles WHERE tenant = :t"), {"t": tenant}
        )
        return {tuple(row) for row in result}


def msp(spec: set[tuple[str, str]]) -> set[tuple]:
    return {(res, act, True, False) for res, act in spec}


def client(spec: set[tuple[str, str]]) -> set[tuple]:
    return {(res, act, False, True) for res, act in spec}


async def test_algadesk_seeds_its_roles_row_by_row(engine):
    tenant = await new_tenant(engine, "algadesk")
    await seed(engine, tenant, "algadesk")
    assert await roles_of(engine, tenant) == {
        ("Admin", True, False, "Full Algadesk administrator access"),
        ("Agent", True, False, "Help desk agent access for tickets, clients, contacts, and documents"),
        ("Admin", False, True, "Client portal administrator"),
        ("User", False, True, "Standard client portal user"),
    }


async def test_algadesk_seeds_the_restricted_permission_set(engine):
    tenant = await new_tenant(engine, "algadesk")
    await seed(engine, tenant, "algadesk")
    assert len(ALGADESK_MSP) == 49
    assert len(ALGADESK_CLIENT) == 18
    assert await permissions_where(engine, tenant, "true") == msp(ALGADESK_MSP) | client(ALGADESK_CLIENT)


async def test_algadesk_grants_per_role(engine):
    tenant = await new_tenant(engine, "algadesk")
    await seed(engine, tenant, "algadesk")
    assert await grants_of(engine, tenant, "Admin", True, False) == msp(ALGADESK_MSP)
    assert await grants_of(engine, tenant, "Agent", True, False) == msp(ALGADESK_AGENT)
    assert await grants_of(engine, tenant, "Admin", False, True) == client(ALGADESK_CLIENT)
    assert await grants_of(engine, tenant, "User", False, True) == client(ALGADESK_CLIENT_USER)
    assert len(ALGADESK_AGENT) == 17
    assert len(ALGADESK_CLIENT_USER) == 8
    assert await scalar(engine, "SELECT count(*) FROM role_permissions WHERE tenant = :t", t=tenant) == 49 + 17 + 18 + 8


async def test_algadesk_has_none_of_the_psa_seeds(engine):
    """No tax, no ticket statuses, no PSA-only role or resource; only the default interaction statuses, which the
    actions an AlgaDesk admin may invoke need (docs/decisions.md, "Seeds")."""
    tenant = await new_tenant(engine, "algadesk")
    result = await seed(engine, tenant, "algadesk")
    assert (result.tax_regions, result.tax_rates) == (0, 0)
    counts = await tenant_row_counts(engine, tenant)
    assert counts["tax_regions"] == 0
    assert counts["tax_rates"] == 0
    assert {name for name, *_ in await roles_of(engine, tenant)} & PSA_ONLY_ROLES == set()
    assert {res for res, *_ in await permissions_where(engine, tenant, "true")} & PSA_ONLY_RESOURCES == set()
    async with engine.connect() as conn:
        statuses = await conn.execute(
            text("SELECT status_type, name, is_default, is_closed FROM statuses WHERE tenant = :t"), {"t": tenant}
        )
        assert {tuple(r) for r in statuses} == {
            ("interaction", "Planned", True, False),
            ("interaction", "Completed", False, True),
        }


async def test_algadesk_seeds_are_idempotent(engine):
    tenant = await new_tenant(engine, "algadesk")
    first = await seed(engine, tenant, "algadesk")
    assert first == SeedResult(roles=4, permissions=67, role_permissions=92, tax_regions=0, tax_rates=0, statuses=2)
    counts = await tenant_row_counts(engine, tenant)
    assert await seed(engine, tenant, "algadesk") == SeedResult(0, 0, 0, 0, 0, 0)
    assert await tenant_row_counts(engine, tenant) == counts


async def test_psa_seeds_row_counts_per_role(engine):
    """The psa seed set, role by role: every role of both portals, its grant count, the tax and statuses."""
    tenant = await new_tenant(engine)
    await seed(engine, tenant)
    assert {(name, m, c) for name, m, c, _ in await roles_of(engine, tenant)} == {
        ("Admin", True, False),
        ("Finance", True, False),
        ("Technician", True, False),
        ("Project Manager", True, False),
        ("Dispatcher", True, False),
        ("Admin", False, True),
        ("Finance", False, True),
        ("User", False, True),
    }
    permissions = await permissions_where(engine, tenant, "true")
    assert len(permissions) == 202
    assert {res for res, *_ in permissions} >= PSA_ONLY_RESOURCES
    grant_counts = {
        (name, m, c): len(await grants_of(engine, tenant, name, m, c))
        for name, m, c, _ in await roles_of(engine, tenant)
    }
    assert grant_counts == {
        ("Admin", True, False): 176,
        ("Finance", True, False): 42,
        ("Technician", True, False): 33,
        ("Project Manager", True, False): 34,
        ("Dispatcher", True, False): 20,
        ("Admin", False, True): 30,
        ("Finance", False, True): 10,
        ("User", False, True): 10,
    }
    counts = await tenant_row_counts(engine, tenant)
    assert (counts["tax_regions"], counts["tax_rates"], counts["statuses"]) == (1, 1, 5)


async def test_unsupported_product_is_refused_and_seeds_nothing(engine):
    tenant = await new_tenant(engine)
    with pytest.raises(ValidationError) as refused:
        await seed(engine, tenant, "erp")
    assert refused.value.field == "product_code"
    counts = await tenant_row_counts(engine, tenant)
    for table in SEEDED_TABLES:
        assert counts[table] == 0, table
