"""Tenant seeds (psa.domain.seeds) against the real PostgreSQL test database."""

from __future__ import annotations

import uuid

from slugify import slugify
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from psa.db.engine import tenant_transaction
from psa.domain.seeds import (
    ROLE_GRANTS,
    ROLES,
    STATUSES,
    SeedResult,
    permission_catalogue,
    remove_seeds,
    seed_tenant,
)
from psa.domain.tenants import create_tenant
from tests.helpers import scalar, tenant_row_counts, unique_name

SEEDED_TABLES = ("roles", "permissions", "role_permissions", "tax_regions", "tax_rates", "statuses")


async def new_tenant(engine: AsyncEngine) -> uuid.UUID:
    tenant = uuid.uuid4()
    name = unique_name("Seeds")
    async with tenant_transaction(engine, tenant) as conn:
        await create_tenant(conn, tenant=tenant, slug=slugify(name), company_name=name, email="owner@seeds.com")
    return tenant


async def seed(engine: AsyncEngine, tenant: uuid.UUID) -> SeedResult:
    async with tenant_transaction(engine, tenant) as conn:
        return await seed_tenant(conn, tenant)


def expected_grants() -> int:
    """MSP Admin gets every MSP permission; every other role its listed (distinct) pairs."""
    msp_admin = sum(p.msp for p in permission_catalogue())
    return msp_admin + sum(len(set(pairs)) for pairs in ROLE_GRANTS.values())


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
    catalogue = permission_catalogue()

    first = await seed(engine, tenant)
    assert first.roles == len(ROLES) == 8
    assert first.permissions == len(catalogue)
    assert first.role_permissions == expected_grants() > 0
    assert first.tax_regions == 1
    assert first.tax_rates == 1
    assert first.statuses == len(STATUSES) == 5

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
        assert {tuple(r) for r in rows} == set(ROLES)


async def test_msp_admin_has_every_msp_permission(engine):
    tenant = await new_tenant(engine)
    await seed(engine, tenant)
    msp_permissions = await permissions_where(engine, tenant, "msp")
    admin = await grants_of(engine, tenant, "Admin", True, False)
    assert admin == msp_permissions
    assert len(admin) == sum(p.msp for p in permission_catalogue())
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
    """No grant in ROLE_GRANTS is silently dropped (the reference dropped its unresolvable keys)."""
    tenant = await new_tenant(engine)
    await seed(engine, tenant)
    for (role, msp, client), pairs in ROLE_GRANTS.items():
        granted = await grants_of(engine, tenant, role, msp, client)
        assert {(res, act) for res, act, _, _ in granted} == set(pairs), role
        for _, _, p_msp, p_client in granted:
            assert (msp and p_msp) or (client and p_client), (role, msp, client)


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
        assert [tuple(r) for r in rows] == sorted(STATUSES, key=lambda s: (s[0], s[2]))
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
    assert result.statuses == len(STATUSES) - 1
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
