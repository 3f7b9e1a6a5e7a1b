"""Client-portal users linked to contacts, and the service user (psa.domain.users) on the real database."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from psa.db.engine import tenant_transaction
from psa.domain import contacts, users
from psa.domain.errors import DuplicateError, NotFoundError
from tests.factories import make_tenant
from tests.helpers import rows, unique_email


async def new_contact(engine, tenant: uuid.UUID, *, admin: bool = False, email: str | None = None) -> uuid.UUID:
    async with tenant_transaction(engine, tenant) as conn:
        contact = await contacts.create_contact(
            conn,
            tenant,
            {"full_name": "Grace Hopper", "email": email or unique_email("grace"), "is_client_admin": admin},
        )
    return contact.contact_name_id


async def portal(engine, tenant, contact_id, **kwargs) -> users.PortalUser:
    async with tenant_transaction(engine, tenant) as conn:
        return await users.create_portal_user(conn, tenant=tenant, contact_id=contact_id, **kwargs)


async def role_of(engine, tenant, user_id) -> list:
    return await rows(
        engine,
        """SELECT r.role_name, r.client, r.msp, u.user_type, u.first_name, u.last_name, u.must_change_password,
                  u.hashed_password FROM users u
             JOIN user_roles ur ON ur.tenant = u.tenant AND ur.user_id = u.user_id
             JOIN roles r ON r.tenant = ur.tenant AND r.role_id = ur.role_id
            WHERE u.tenant = :t AND u.user_id = :u""",
        t=tenant,
        u=user_id,
    )


@pytest.mark.parametrize(("is_admin", "role"), [(True, "Admin"), (False, "User"), (None, "User")])
async def test_portal_user_role_follows_client_admin_flag(engine, is_admin, role):
    t = await make_tenant(engine, seeded=True)
    contact_id = await new_contact(engine, t.tenant)
    created = await portal(engine, t.tenant, contact_id, user_id=uuid.uuid4(), is_client_admin=is_admin)
    assert created.created
    (row,) = await role_of(engine, t.tenant, created.user_id)
    assert (row.role_name, row.client, row.msp, row.user_type) == (role, True, False, "client")
    assert (row.first_name, row.last_name) == ("Grace", "Hopper")
    assert row.must_change_password
    assert not users.verify_password("", row.hashed_password)  # no usable password until a reset


async def test_portal_user_admin_flag_defaults_to_the_contact(engine):
    t = await make_tenant(engine, seeded=True)
    contact_id = await new_contact(engine, t.tenant, admin=True)
    created = await portal(engine, t.tenant, contact_id, user_id=uuid.uuid4())
    assert (await role_of(engine, t.tenant, created.user_id))[0].role_name == "Admin"


async def test_portal_user_is_idempotent_per_contact_and_concurrent_calls_make_one(engine):
    t = await make_tenant(engine, seeded=True)
    contact_id = await new_contact(engine, t.tenant)
    results = await asyncio.gather(*(portal(engine, t.tenant, contact_id, user_id=uuid.uuid4()) for _ in range(3)))
    assert sum(r.created for r in results) == 1
    assert len({r.user_id for r in results}) == 1
    assert (
        len(await rows(engine, "SELECT 1 FROM users WHERE tenant = :t AND contact_id = :c", t=t.tenant, c=contact_id))
        == 1
    )


async def test_portal_user_of_a_missing_or_foreign_contact_is_not_found(engine):
    t, other = await make_tenant(engine, seeded=True), await make_tenant(engine, seeded=True)
    foreign = await new_contact(engine, other.tenant)
    for contact_id in (uuid.uuid4(), foreign):
        with pytest.raises(NotFoundError) as info:
            await portal(engine, t.tenant, contact_id, user_id=uuid.uuid4())
        assert info.value.field == "contact_id"


async def test_portal_user_email_of_another_contact_is_a_duplicate(engine):
    t = await make_tenant(engine, seeded=True)
    email = unique_email("shared")
    first = await new_contact(engine, t.tenant, email=email)
    await portal(engine, t.tenant, first, user_id=uuid.uuid4())
    async with tenant_transaction(engine, t.tenant) as conn:  # the address moves to another contact
        await contacts.delete_contact(conn, t.tenant, first)
    # deleting the contact removed its portal login too (fk_users_contact cascades)
    second = await new_contact(engine, t.tenant, email=email)
    assert (await portal(engine, t.tenant, second, user_id=uuid.uuid4())).created
    third = await new_contact(engine, t.tenant)
    async with tenant_transaction(engine, t.tenant) as conn:
        await conn.exec_driver_sql(
            "UPDATE users SET contact_id = %s WHERE tenant = %s AND contact_id = %s", (third, t.tenant, second)
        )
    with pytest.raises(DuplicateError) as info:
        await portal(engine, t.tenant, second, user_id=uuid.uuid4())
    assert info.value.field == "email"


async def test_portal_user_needs_the_client_portal_roles(engine):
    t = await make_tenant(engine, seeded=False)
    contact_id = await new_contact(engine, t.tenant)
    with pytest.raises(NotFoundError):
        await portal(engine, t.tenant, contact_id, user_id=uuid.uuid4())
    assert await rows(engine, "SELECT 1 FROM users WHERE tenant = :t", t=t.tenant) == []


async def test_service_user_is_one_inactive_row_per_tenant(engine):
    t = await make_tenant(engine)

    async def ensure() -> uuid.UUID:
        async with tenant_transaction(engine, t.tenant) as conn:
            return await users.ensure_service_user(conn, t.tenant)

    ids = await asyncio.gather(ensure(), ensure())
    assert ids[0] == ids[1]
    (row,) = await rows(engine, "SELECT is_inactive, user_type FROM users WHERE tenant = :t", t=t.tenant)
    assert row.is_inactive
    assert row.user_type == "internal"
