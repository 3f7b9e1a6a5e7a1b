"""The client lookups, location and guardrail helpers the clients.* actions use (psa.domain.clients,
psa.domain.contacts), against the real database."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text

from psa.db.engine import tenant_transaction
from psa.domain import clients, contacts, values
from psa.domain.errors import NotFoundError, ValidationError
from psa.domain.tenants import create_default_client
from psa.domain.users import create_portal_user
from tests.factories import NewTenant, make_tenant
from tests.helpers import rows


@pytest.fixture
async def tenant(engine) -> NewTenant:
    return await make_tenant(engine, seeded=True)


async def location(conn, tenant: uuid.UUID, client_id: uuid.UUID, phone: str, *, default=False, active=True):
    return await conn.scalar(
        text(
            """INSERT INTO client_locations (tenant, client_id, address_line1, city, country_code, country_name,
                                             phone, is_default, is_active)
               VALUES (:t, :c, 'a', 'b', 'US', 'United States', :p, :d, :a) RETURNING location_id"""
        ),
        {"t": tenant, "c": client_id, "p": phone, "d": default, "a": active},
    )


def test_phone_digits():
    assert values.phone_digits("+1 (555) 010-0000 ext. 7") == "155501000007"
    assert values.phone_digits("") == ""


async def test_find_by_name_ignores_case_and_surrounding_spaces(engine, tenant):
    async with tenant_transaction(engine, tenant.tenant) as conn:
        made = await clients.create_client(conn, tenant.tenant, {"client_name": "Wayne Enterprises"})
        found = await clients.find_client_by_name(conn, tenant.tenant, "  wayne\x1fENTERPRISES ")
        assert found is not None
        assert found.client_id == made.client_id
        assert await clients.find_client_by_name(conn, tenant.tenant, "wayne") is None
    other = await make_tenant(engine)
    async with engine.connect() as conn:
        assert await clients.find_client_by_name(conn, other.tenant, "Wayne Enterprises") is None


async def test_find_by_location_phone_modes_and_counts(engine, tenant):
    t = tenant.tenant
    async with tenant_transaction(engine, t) as conn:
        a = await clients.create_client(conn, t, {"client_name": "A"})
        b = await clients.create_client(conn, t, {"client_name": "B"})
        a_branch = await location(conn, t, a.client_id, "(212) 555-0100")
        a_main = await location(conn, t, a.client_id, "212.555.0100", default=True)
        b_main = await location(conn, t, b.client_id, "+1 212 555 0100")
        await location(conn, t, b.client_id, "555-0100", active=False)

        exact = await clients.find_client_by_location_phone(conn, t, "212-555-0100")
        assert exact.client.client_id == a.client_id
        assert exact.location_id == a_main
        assert exact.matched_count == 1
        last10 = await clients.find_client_by_location_phone(conn, t, "2125550100", "last10")
        assert (last10.location_id, last10.matched_count) == (a_main, 2)
        await conn.execute(text("UPDATE client_locations SET is_default = false WHERE location_id = :l"), {"l": a_main})
        first_by_id = await clients.find_client_by_location_phone(conn, t, "5550100", "last7")
        assert first_by_id.location_id == min(a_branch, a_main, b_main)  # no default: lowest id (inactive skipped)
        assert await clients.find_client_by_location_phone(conn, t, "999 9999", "last7") is None
        with pytest.raises(ValidationError, match="phone is invalid"):
            await clients.find_client_by_location_phone(conn, t, "555 010", "last7")
        with pytest.raises(ValidationError, match="phone is invalid"):
            await clients.find_client_by_location_phone(conn, t, "no digits")


async def test_search_filters_pages_and_escapes(engine, tenant):
    t = tenant.tenant
    async with tenant_transaction(engine, t) as conn:
        for name in ("Gamma_1", "Gamma 2", "Gamma 3", "gamma_x"):
            await clients.create_client(conn, t, {"client_name": name, "is_inactive": name == "Gamma 3"})
        page, total = await clients.search_clients(conn, t, "gamma", limit=2)
        assert total == 3
        assert [c.client_name for c in page] == ["Gamma 2", "Gamma_1"]
        _, with_inactive = await clients.search_clients(conn, t, "gamma", include_inactive=True)
        assert with_inactive == 4
        underscore, total = await clients.search_clients(conn, t, "a_", sort_order="desc")
        assert total == 2
        assert [c.client_name for c in underscore] == ["gamma_x", "Gamma_1"]
        none, total = await clients.search_clients(conn, t, "gamma", tags=["missing"])
        assert (none, total) == ([], 0)


async def test_upsert_default_location(engine, tenant):
    t = tenant.tenant
    async with tenant_transaction(engine, t) as conn:
        client = await clients.create_client(conn, t, {"client_name": "Loc Co"})
        assert await clients.upsert_default_location(conn, t, client.client_id, {}, create=True) is None
        assert await clients.upsert_default_location(conn, t, client.client_id, {"city": "Oslo"}, create=False) is None
        created = await clients.upsert_default_location(
            conn, t, client.client_id, {"city": "Oslo", "country_name": "norway"}, create=True
        )
        patched = await clients.upsert_default_location(
            conn, t, client.client_id, {"address_line1": None, "phone": "+47 1234"}, create=False
        )
        assert patched == created
        with pytest.raises(ValidationError):
            await clients.upsert_default_location(conn, t, client.client_id, {"bogus": "x"}, create=True)
    [row] = await rows(
        engine,
        "SELECT location_name, address_line1, city, country_code, country_name, phone, is_default, is_billing_address "
        "FROM client_locations WHERE tenant = :t",
        t=t,
    )
    assert tuple(row) == ("Main Office", "", "Oslo", "NO", "norway", "+47 1234", True, True)


async def test_deactivate_client_users_and_default_client(engine, tenant):
    t = tenant.tenant
    default_id = uuid.uuid4()
    async with tenant_transaction(engine, t) as conn:
        await create_default_client(
            conn, tenant=t, client_id=default_id, location_id=uuid.uuid4(), client_name="MSP", email="msp@example.com"
        )
        client = await clients.create_client(conn, t, {"client_name": "Portal Co"})
        contact = await contacts.create_contact(
            conn, t, {"full_name": "Ada", "email": f"{uuid.uuid4().hex}@example.com", "client_id": client.client_id}
        )
        await create_portal_user(conn, tenant=t, user_id=uuid.uuid4(), contact_id=contact.contact_name_id)
        assert await clients.is_default_client(conn, t, default_id)
        assert not await clients.is_default_client(conn, t, client.client_id)
        assert await contacts.count_contacts_for_client(conn, t, client.client_id) == 1
        assert (await contacts.primary_contact_of_client(conn, t, client.client_id)).contact_name_id == (
            contact.contact_name_id
        )
        assert await contacts.primary_contact_of_client(conn, t, default_id) is None
        assert await clients.deactivate_client_users(conn, t, client.client_id) == 1
        assert await clients.deactivate_client_users(conn, t, client.client_id) == 0  # idempotent
    flags = await rows(engine, "SELECT is_inactive FROM users WHERE tenant = :t AND user_type = 'client'", t=t)
    assert [r.is_inactive for r in flags] == [True]


async def test_duplicate_client_and_copy_locations(engine, tenant):
    t = tenant.tenant
    async with tenant_transaction(engine, t) as conn:
        source = await clients.create_client(
            conn, t, {"client_name": "Orig", "url": "orig.example.com", "properties": {"tenant_id": "x", "k": 1}}
        )
        await conn.execute(
            text("UPDATE clients SET is_tax_exempt = true, region_code = 'EU' WHERE client_id = :c"),
            {"c": source.client_id},
        )
        await location(conn, t, source.client_id, "1", default=True)
        copy = await clients.duplicate_client(conn, t, source.client_id, "Orig (copy)")
        assert copy.properties == {"k": 1, "website": "https://orig.example.com"}
        assert copy.client_id != source.client_id
        assert not copy.is_inactive
        assert await clients.copy_client_locations(conn, t, source.client_id, copy.client_id) == 1
        with pytest.raises(NotFoundError):
            await clients.duplicate_client(conn, t, uuid.uuid4(), "Nope")
        assert await clients.notes_document_id(conn, t, copy.client_id) is None
    [row] = await rows(engine, "SELECT is_tax_exempt, region_code FROM clients WHERE client_id = :c", c=copy.client_id)
    assert tuple(row) == (True, "EU")
    suffixes = await rows(
        engine, "SELECT email_suffix FROM client_email_settings WHERE client_id = :c", c=copy.client_id
    )
    assert [r.email_suffix for r in suffixes] == ["example.com"]
