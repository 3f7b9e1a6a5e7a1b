"""Tenants and users (psa.domain.tenants, psa.domain.users) against the real PostgreSQL test database."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from slugify import slugify
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from psa.db.engine import tenant_transaction
from psa.domain.errors import DuplicateError, NotFoundError, ValidationError
from psa.domain.seeds import remove_seeds
from psa.domain.tenants import (
    create_default_client,
    create_tenant,
    delete_tenant,
    get_tenant_by_slug,
    list_tenants,
    remove_tenant_settings,
    setup_tenant_settings,
    tenant_exists,
)
from psa.domain.users import (
    create_internal_user,
    delete_user,
    find_internal_user_tenant,
    hash_password,
    verify_password,
)
from tests.factories import NewTenant, make_tenant
from tests.helpers import rows, table_count, tenant_row_counts, unique_email, unique_name


async def add_admin(
    engine: AsyncEngine, t: NewTenant, email: str, *, user_id: uuid.UUID | None = None, password: str = "first-password"
) -> uuid.UUID:
    async with tenant_transaction(engine, t.tenant) as conn:
        return await create_internal_user(
            conn,
            tenant=t.tenant,
            user_id=user_id or uuid.uuid4(),
            first_name="Ada",
            last_name="Lovelace",
            email=email,
            password_hash=hash_password(password, rounds=4),
        )


# -- create_tenant ---------------------------------------------------------------------------------


async def test_create_tenant_writes_the_row(engine):
    t = await make_tenant(engine)
    [row] = await rows(
        engine,
        "SELECT client_name, slug, email, product_code, billing_source, licensed_user_count FROM tenants "
        "WHERE tenant = :t",
        t=t.tenant,
    )
    assert tuple(row) == (t.name, t.slug, "owner@example.com", "psa", "manual", None)


async def test_create_tenant_is_idempotent_for_the_same_id_and_slug(engine):
    t = await make_tenant(engine)
    for _ in range(2):
        async with tenant_transaction(engine, t.tenant) as conn:
            await create_tenant(conn, tenant=t.tenant, slug=t.slug, company_name="Renamed", email="x@example.com")
    [row] = await rows(engine, "SELECT client_name, email FROM tenants WHERE slug = :s", s=t.slug)
    assert tuple(row) == (t.name, "owner@example.com")  # the replay changed nothing


async def test_create_tenant_with_licenses_records_the_update_time(engine):
    tenant, slug = uuid.uuid4(), slugify(unique_name("Lic"))
    async with tenant_transaction(engine, tenant) as conn:
        await create_tenant(
            conn,
            tenant=tenant,
            slug=slug,
            company_name="Lic",
            email="a@example.com",
            licensed_user_count=5,
            product_code="algadesk",
            billing_source="stripe",
            plan="pro",
        )
    [row] = await rows(
        engine,
        "SELECT licensed_user_count, last_license_update IS NOT NULL, product_code, billing_source, plan "
        "FROM tenants WHERE tenant = :t",
        t=tenant,
    )
    assert tuple(row) == (5, True, "algadesk", "stripe", "pro")


async def test_create_tenant_same_slug_other_id_is_a_duplicate(engine):
    t = await make_tenant(engine)
    other = uuid.uuid4()
    with pytest.raises(DuplicateError) as exc:
        async with tenant_transaction(engine, other) as conn:
            await create_tenant(conn, tenant=other, slug=t.slug, company_name="Other", email="o@example.com")
    assert exc.value.field == "tenant_name"
    async with engine.connect() as conn:
        assert not await tenant_exists(conn, other)
    assert len(await rows(engine, "SELECT 1 FROM tenants WHERE slug = :s", s=t.slug)) == 1


async def test_create_tenant_same_id_other_slug_is_a_duplicate(engine):
    t = await make_tenant(engine)
    other_slug = slugify(unique_name("Other"))
    with pytest.raises(DuplicateError):
        async with tenant_transaction(engine, t.tenant) as conn:
            await create_tenant(conn, tenant=t.tenant, slug=other_slug, company_name="Other", email="o@example.com")
    async with engine.connect() as conn:
        assert await get_tenant_by_slug(conn, other_slug) is None
        assert (await get_tenant_by_slug(conn, t.slug)).tenant == t.tenant


# -- create_default_client -------------------------------------------------------------------------


async def test_create_default_client_twice_writes_one_of_each(engine):
    t = await make_tenant(engine)
    client_id, location_id = uuid.uuid4(), uuid.uuid4()
    for _ in range(2):
        async with tenant_transaction(engine, t.tenant) as conn:
            await create_default_client(
                conn,
                tenant=t.tenant,
                client_id=client_id,
                location_id=location_id,
                client_name=t.name,
                email="Office@Example.com",
            )
    [client] = await rows(
        engine, "SELECT client_id, client_name, client_type, properties FROM clients WHERE tenant = :t", t=t.tenant
    )
    assert (client.client_id, client.client_name, client.client_type) == (client_id, t.name, "company")
    assert client.properties == {"type": "msp", "is_system_client": True, "created_by": "tenant_setup"}
    [location] = await rows(
        engine,
        "SELECT location_id, client_id, location_name, is_default, is_active, email FROM client_locations "
        "WHERE tenant = :t",
        t=t.tenant,
    )
    assert tuple(location) == (location_id, client_id, "Main Office", True, True, "office@example.com")
    [company] = await rows(engine, "SELECT client_id, is_default FROM tenant_companies WHERE tenant = :t", t=t.tenant)
    assert tuple(company) == (client_id, True)


# -- setup_tenant_settings -------------------------------------------------------------------------


@pytest.mark.parametrize("provider", ["smtp", "resend", "hybrid", "microsoft"])
async def test_setup_tenant_settings_twice_writes_one_row_each(engine, provider):
    t = await make_tenant(engine)
    for _ in range(2):
        async with tenant_transaction(engine, t.tenant) as conn:
            await setup_tenant_settings(conn, tenant=t.tenant, email_provider=provider)
    [email] = await rows(
        engine,
        "SELECT email_provider, provider_configs, fallback_enabled, tracking_enabled FROM tenant_email_settings "
        "WHERE tenant = :t",
        t=t.tenant,
    )
    assert email.email_provider == provider
    assert (email.fallback_enabled, email.tracking_enabled) == (True, False)
    [config] = email.provider_configs
    assert config["providerType"] == provider
    assert config["providerId"] == f"{provider}-provider"
    assert config["isEnabled"] is False
    [settings] = await rows(
        engine, "SELECT onboarding_completed, onboarding_skipped FROM tenant_settings WHERE tenant = :t", t=t.tenant
    )
    assert tuple(settings) == (False, False)

    async with tenant_transaction(engine, t.tenant) as conn:
        assert await remove_tenant_settings(conn, t.tenant) == 2
    assert await table_count(engine, "tenant_email_settings", t.tenant) == 0
    assert await table_count(engine, "tenant_settings", t.tenant) == 0


async def test_setup_tenant_settings_config_carries_no_secret_values(engine):
    t = await make_tenant(engine)
    async with tenant_transaction(engine, t.tenant) as conn:
        await setup_tenant_settings(conn, tenant=t.tenant, email_provider="smtp")
    [(configs,)] = await rows(
        engine, "SELECT provider_configs FROM tenant_email_settings WHERE tenant = :t", t=t.tenant
    )
    assert configs[0]["config"]["password"] == ""
    assert json.dumps(configs)  # plain JSON


@pytest.mark.parametrize("provider", ["carrier-pigeon", "outbox", "", "SMTP"])
async def test_setup_tenant_settings_unknown_provider(engine, provider):
    t = await make_tenant(engine)
    with pytest.raises(ValidationError) as exc:
        async with tenant_transaction(engine, t.tenant) as conn:
            await setup_tenant_settings(conn, tenant=t.tenant, email_provider=provider)
    assert exc.value.field == "email_provider"
    assert await table_count(engine, "tenant_email_settings", t.tenant) == 0
    assert await table_count(engine, "tenant_settings", t.tenant) == 0


# -- create_admin_user -----------------------------------------------------------------------------


async def test_create_admin_user_after_seeding(engine):
    t = await make_tenant(engine, seeded=True)
    email, user_id = unique_email(), uuid.uuid4()
    role_id = await add_admin(engine, t, email, user_id=user_id, password="first-password")
    [user] = await rows(
        engine,
        "SELECT user_id, username, email, first_name, last_name, hashed_password, user_type, must_change_password "
        "FROM users WHERE tenant = :t",
        t=t.tenant,
    )
    assert (user.user_id, user.username, user.email, user.first_name, user.last_name) == (
        user_id,
        email,
        email,
        "Ada",
        "Lovelace",
    )
    assert user.hashed_password.startswith("$2b$04$")
    assert verify_password("first-password", user.hashed_password)
    assert (user.user_type, user.must_change_password) == ("internal", True)
    [link] = await rows(
        engine,
        """SELECT ur.user_id, r.role_id, r.role_name, r.msp, r.client FROM user_roles ur
             JOIN roles r ON r.tenant = ur.tenant AND r.role_id = ur.role_id WHERE ur.tenant = :t""",
        t=t.tenant,
    )
    assert tuple(link) == (user_id, role_id, "Admin", True, False)
    async with engine.connect() as conn:
        assert await find_internal_user_tenant(conn, email) == t.tenant


async def test_create_admin_user_retry_keeps_one_user_and_updates_the_hash(engine):
    t = await make_tenant(engine, seeded=True)
    email, user_id = unique_email(), uuid.uuid4()
    first_role = await add_admin(engine, t, email, user_id=user_id, password="first-password")
    second_role = await add_admin(engine, t, email, user_id=user_id, password="second-password")
    assert first_role == second_role
    [(hashed,)] = await rows(engine, "SELECT hashed_password FROM users WHERE tenant = :t", t=t.tenant)
    assert verify_password("second-password", hashed)
    assert not verify_password("first-password", hashed)
    assert await table_count(engine, "users", t.tenant) == 1
    assert await table_count(engine, "user_roles", t.tenant) == 1


async def test_same_email_under_another_id_in_the_same_tenant_is_a_duplicate(engine):
    t = await make_tenant(engine, seeded=True)
    email = unique_email()
    await add_admin(engine, t, email)
    with pytest.raises(DuplicateError) as exc:
        await add_admin(engine, t, email)
    assert exc.value.field == "admin_user.email"
    assert await table_count(engine, "users", t.tenant) == 1


async def test_same_email_in_another_tenant_is_a_duplicate_and_writes_nothing(engine):
    a, b = await make_tenant(engine, seeded=True), await make_tenant(engine, seeded=True)
    email = unique_email()
    await add_admin(engine, a, email)
    before = await tenant_row_counts(engine, b.tenant)
    with pytest.raises(DuplicateError) as exc:
        await add_admin(engine, b, email)
    assert exc.value.field == "admin_user.email"
    assert exc.value.code == "DUPLICATE"
    assert await table_count(engine, "users", b.tenant) == 0
    assert await tenant_row_counts(engine, b.tenant) == before
    assert await table_count(engine, "users", a.tenant) == 1


async def test_email_uniqueness_is_case_insensitive_against_stored_rows(engine):
    """A row stored with upper-case letters (e.g. by an older writer) still blocks the normalised email."""
    a, b = await make_tenant(engine, seeded=True), await make_tenant(engine, seeded=True)
    email = unique_email()
    await add_admin(engine, a, email.upper().replace("@EXAMPLE.COM", "@Example.com"))
    with pytest.raises(DuplicateError):
        await add_admin(engine, b, email)


async def test_concurrent_admin_creation_with_one_email_in_two_tenants(engine):
    a, b = await make_tenant(engine, seeded=True), await make_tenant(engine, seeded=True)
    email = unique_email("race")
    both_open = asyncio.Barrier(2)
    hashed = hash_password("race-password", rounds=4)

    async def create(t: NewTenant) -> uuid.UUID:
        async with tenant_transaction(engine, t.tenant) as conn:
            await conn.execute(text("SELECT 1"))  # the transaction is open
            await both_open.wait()  # ... and so is the other one
            return await create_internal_user(
                conn,
                tenant=t.tenant,
                user_id=uuid.uuid4(),
                first_name="R",
                last_name="C",
                email=email,
                password_hash=hashed,
            )

    results = await asyncio.wait_for(asyncio.gather(create(a), create(b), return_exceptions=True), timeout=30)
    errors = [r for r in results if isinstance(r, BaseException)]
    assert len(errors) == 1, results
    assert isinstance(errors[0], DuplicateError)
    [(n,)] = await rows(
        engine, "SELECT count(*) FROM users WHERE email = :e AND tenant IN (:a, :b)", e=email, a=a.tenant, b=b.tenant
    )
    assert n == 1


async def test_create_admin_user_on_unseeded_tenant_is_not_found_and_writes_nothing(engine):
    t = await make_tenant(engine, seeded=False)
    with pytest.raises(NotFoundError) as exc:
        await add_admin(engine, t, unique_email())
    assert exc.value.field == "tenant_id"
    assert await table_count(engine, "users", t.tenant) == 0
    assert await table_count(engine, "user_roles", t.tenant) == 0


async def test_delete_user_removes_the_user_and_its_role_link(engine):
    t = await make_tenant(engine, seeded=True)
    user_id = uuid.uuid4()
    await add_admin(engine, t, unique_email(), user_id=user_id)
    async with tenant_transaction(engine, t.tenant) as conn:
        assert await delete_user(conn, tenant=t.tenant, user_id=user_id) == 1
    async with tenant_transaction(engine, t.tenant) as conn:
        assert await delete_user(conn, tenant=t.tenant, user_id=user_id) == 0
    assert await table_count(engine, "users", t.tenant) == 0
    assert await table_count(engine, "user_roles", t.tenant) == 0
    assert await table_count(engine, "roles", t.tenant) == 8  # roles stay


# -- a fully provisioned tenant: listing and deletion ------------------------------------------------


async def provision(engine: AsyncEngine, *, seeded: bool = True) -> tuple[NewTenant, str]:
    t = await make_tenant(engine, seeded=seeded)
    email = unique_email()
    async with tenant_transaction(engine, t.tenant) as conn:
        await create_default_client(
            conn,
            tenant=t.tenant,
            client_id=uuid.uuid4(),
            location_id=uuid.uuid4(),
            client_name=t.name,
            email=email,
        )
        await setup_tenant_settings(conn, tenant=t.tenant, email_provider="resend")
    if seeded:
        await add_admin(engine, t, email)
    return t, email


async def test_list_tenants_and_get_by_slug_return_the_admin_email(engine):
    t, email = await provision(engine)
    async with engine.connect() as conn:
        row = await get_tenant_by_slug(conn, t.slug)
        listed = {r.tenant: r for r in await list_tenants(conn, limit=1000)}
        assert await get_tenant_by_slug(conn, "no-such-" + uuid.uuid4().hex) is None
    assert row is not None
    assert (row.tenant, row.client_name, row.slug, row.email, row.product_code) == (
        t.tenant,
        t.name,
        t.slug,
        "owner@example.com",
        "psa",
    )
    assert row.admin_email == email
    assert listed[t.tenant] == row


async def test_list_tenants_newest_first_and_limited(engine):
    older = await make_tenant(engine)
    newest = await make_tenant(engine)
    async with engine.connect() as conn:
        limited = await list_tenants(conn, limit=2)
        everything = await list_tenants(conn, limit=None)
    assert len(limited) == 2
    assert limited[0].created_at >= limited[1].created_at
    # Scoped to the two made here: another test may add a tenant meanwhile.
    mine = [row for row in everything if row.tenant in (older.tenant, newest.tenant)]
    assert [row.tenant for row in mine] == [newest.tenant, older.tenant]
    assert mine[0].admin_email is None  # not provisioned with a user
    assert [row.created_at for row in everything] == sorted((row.created_at for row in everything), reverse=True)


async def test_delete_tenant_with_wrong_slug_deletes_nothing(engine):
    t, _ = await provision(engine)
    before = await tenant_row_counts(engine, t.tenant)
    async with tenant_transaction(engine, t.tenant) as conn:
        assert await delete_tenant(conn, tenant=t.tenant, slug=t.slug + "-other") == 0
    assert await tenant_row_counts(engine, t.tenant) == before


async def test_delete_unseeded_tenant_cascades_to_every_row(engine):
    t, _ = await provision(engine, seeded=False)
    before = await tenant_row_counts(engine, t.tenant)
    assert before["clients"] == before["client_locations"] == before["tenant_settings"] == 1
    async with tenant_transaction(engine, t.tenant) as conn:
        assert await delete_tenant(conn, tenant=t.tenant, slug=t.slug) == 1
    counts = await tenant_row_counts(engine, t.tenant)
    assert counts == dict.fromkeys(counts, 0)


async def test_compensation_order_remove_seeds_then_delete_tenant_leaves_nothing(engine):
    """The workflow's compensation path: seeds are removed before the tenant row."""
    t, _ = await provision(engine)
    async with tenant_transaction(engine, t.tenant) as conn:
        await remove_seeds(conn, t.tenant)
    async with tenant_transaction(engine, t.tenant) as conn:
        assert await delete_tenant(conn, tenant=t.tenant, slug=t.slug) == 1
    counts = await tenant_row_counts(engine, t.tenant)
    assert counts == dict.fromkeys(counts, 0)


async def test_delete_tenant_with_right_slug_cascades_to_every_row(engine):
    t, _ = await provision(engine)
    before = await tenant_row_counts(engine, t.tenant)
    for table in (
        "tenants",
        "clients",
        "client_locations",
        "tenant_companies",
        "users",
        "user_roles",
        "roles",
        "permissions",
        "role_permissions",
        "tenant_settings",
        "tenant_email_settings",
        "tax_regions",
        "tax_rates",
    ):
        assert before[table] > 0, table
    async with tenant_transaction(engine, t.tenant) as conn:
        assert await delete_tenant(conn, tenant=t.tenant, slug=t.slug) == 1
    counts = await tenant_row_counts(engine, t.tenant)
    assert counts == dict.fromkeys(counts, 0)
    async with tenant_transaction(engine, t.tenant) as conn:
        assert await delete_tenant(conn, tenant=t.tenant, slug=t.slug) == 0  # idempotent compensation
