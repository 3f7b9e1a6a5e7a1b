"""Clients (psa.domain.clients) against the real PostgreSQL test database."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from psa.db.engine import tenant_transaction
from psa.domain import clients, lookups, tags
from psa.domain.clients import Client, ClientInput, ClientUpdate
from psa.domain.errors import ConflictError, DuplicateError, NotFoundError, ValidationError
from psa.domain.tenants import create_default_client
from tests.factories import NewTenant, make_tenant
from tests.helpers import rows, table_count, tenant_row_counts


async def create(engine: AsyncEngine, t: NewTenant, data: dict[str, Any] | ClientInput, **kwargs) -> Client:
    async with tenant_transaction(engine, t.tenant) as conn:
        return await clients.create_client(conn, t.tenant, data, **kwargs)


async def update(engine: AsyncEngine, t: NewTenant, client_id: uuid.UUID, changes: dict[str, Any]) -> Client:
    async with tenant_transaction(engine, t.tenant) as conn:
        return await clients.update_client(conn, t.tenant, client_id, changes)


async def email_suffixes(engine: AsyncEngine, t: NewTenant) -> list[str]:
    found = await rows(engine, "SELECT email_suffix FROM client_email_settings WHERE tenant = :t", t=t.tenant)
    return [r.email_suffix for r in found]


async def add_contact(engine: AsyncEngine, t: NewTenant, client_id: uuid.UUID | None) -> uuid.UUID:
    contact_id = uuid.uuid4()
    async with tenant_transaction(engine, t.tenant) as conn:
        await conn.execute(
            text(
                "INSERT INTO contacts (tenant, contact_name_id, full_name, email, client_id) "
                "VALUES (:t, :id, 'Grace Hopper', :email, :client_id)"
            ),
            {"t": t.tenant, "id": contact_id, "email": f"{contact_id.hex}@example.com", "client_id": client_id},
        )
    return contact_id


@pytest.fixture
async def tenant(engine) -> NewTenant:
    return await make_tenant(engine, seeded=True)


# -- create ----------------------------------------------------------------------------------------


async def test_create_minimal_client_uses_defaults_and_default_tax_settings(engine, tenant):
    client = await create(engine, tenant, {"client_name": "  Acme Corp  "})
    assert (client.tenant, client.client_name, client.client_type) == (tenant.tenant, "Acme Corp", "company")
    assert (client.url, client.billing_email, client.notes, client.properties) == (None, None, None, {})
    assert (client.is_inactive, client.default_currency_code) == (False, "USD")
    assert client.created_at == client.updated_at
    [row] = await rows(engine, "SELECT client_name, properties FROM clients WHERE tenant = :t", t=tenant.tenant)
    assert tuple(row) == ("Acme Corp", {})
    [settings] = await rows(
        engine,
        "SELECT client_id, is_reverse_charge_applicable FROM client_tax_settings WHERE tenant = :t",
        t=tenant.tenant,
    )
    assert tuple(settings) == (client.client_id, False)
    [link] = await rows(
        engine,
        """SELECT l.client_id, l.is_default, r.description FROM client_tax_rates l
             JOIN tax_rates r ON r.tenant = l.tenant AND r.tax_rate_id = l.tax_rate_id WHERE l.tenant = :t""",
        t=tenant.tenant,
    )
    assert tuple(link) == (client.client_id, True, "Non-taxable")  # the seeded 0 % rate
    assert await table_count(engine, "client_email_settings", tenant.tenant) == 0  # no url, no suffix


async def test_create_with_every_field(engine, tenant):
    client = await create(
        engine,
        tenant,
        ClientInput(
            client_name="Jane Doe",
            client_type="individual",
            url="https://www.shop.Example.co.uk/about",
            billing_email=" Billing@Example.CO.UK ",
            notes="Pays on time",
            properties={"industry": "retail"},
            is_inactive=True,
            default_currency_code="gbp",
        ),
    )
    assert client.client_type == "individual"
    assert client.url == "https://www.shop.Example.co.uk/about"
    assert client.properties == {"industry": "retail", "website": client.url}
    assert (client.billing_email, client.notes) == ("billing@example.co.uk", "Pays on time")
    assert (client.is_inactive, client.default_currency_code) == (True, "GBP")
    async with engine.connect() as conn:
        assert await lookups.require_client(conn, tenant.tenant, client.client_id) == client
    [suffix] = await rows(
        engine,
        "SELECT client_id, email_suffix, self_registration_enabled FROM client_email_settings WHERE tenant = :t",
        t=tenant.tenant,
    )
    assert tuple(suffix) == (client.client_id, "example.co.uk", False)


async def test_bare_host_url_is_stored_with_https_and_synced_to_the_website(engine, tenant):
    client = await create(engine, tenant, {"client_name": "Bare", "url": "example.com/contact"})
    assert client.url == "https://example.com/contact"
    assert client.properties == {"website": "https://example.com/contact"}
    [(suffix,)] = await rows(
        engine, "SELECT email_suffix FROM client_email_settings WHERE tenant = :t", t=tenant.tenant
    )
    assert suffix == "example.com"


async def test_website_property_becomes_the_url(engine, tenant):
    client = await create(engine, tenant, {"client_name": "Site", "properties": {"website": "site.example.org"}})
    assert client.url == "https://site.example.org"
    assert client.properties == {"website": "https://site.example.org"}
    [(suffix,)] = await rows(
        engine, "SELECT email_suffix FROM client_email_settings WHERE tenant = :t", t=tenant.tenant
    )
    assert suffix == "example.org"


async def test_given_url_wins_over_a_different_website_property(engine, tenant):
    client = await create(
        engine, tenant, {"client_name": "Both", "url": "https://a.example.com", "properties": {"website": "b.com"}}
    )
    assert client.url == client.properties["website"] == "https://a.example.com"


@pytest.mark.parametrize("url", ["http://10.0.0.1/", "http://localhost:8080", "https://intranet"])
async def test_url_without_a_registered_domain_gets_no_email_suffix(engine, tenant, url):
    client = await create(engine, tenant, {"client_name": "Local", "url": url})
    assert client.url == url
    assert await table_count(engine, "client_email_settings", tenant.tenant) == 0


async def test_skip_flags_skip_tax_settings_and_email_suffix(engine, tenant):
    await create(
        engine,
        tenant,
        {"client_name": "Skipper", "url": "https://skipper.example.com"},
        skip_tax_settings=True,
        skip_email_suffix=True,
    )
    for table in ("client_tax_settings", "client_tax_rates", "client_email_settings"):
        assert await table_count(engine, table, tenant.tenant) == 0, table
    assert await table_count(engine, "clients", tenant.tenant) == 1


async def test_tax_settings_without_any_tax_rate_write_no_link(engine):
    t = await make_tenant(engine, seeded=False)
    await create(engine, t, {"client_name": "No Rates"})
    assert await table_count(engine, "client_tax_settings", t.tenant) == 1
    assert await table_count(engine, "client_tax_rates", t.tenant) == 0


async def test_tax_link_goes_to_the_first_active_rate_by_creation(engine, tenant):
    oldest_inactive, older_active = uuid.uuid4(), uuid.uuid4()
    async with tenant_transaction(engine, tenant.tenant) as conn:
        for rate_id, created, active in ((oldest_inactive, "2000-01-01", False), (older_active, "2001-01-01", True)):
            await conn.execute(
                text(
                    """INSERT INTO tax_rates (tenant, tax_rate_id, tax_percentage, description, start_date,
                                              region_code, is_active, created_at)
                       VALUES (:t, :id, 8.5, 'Old', CURRENT_DATE, 'DEFAULT', :active, CAST(:created AS timestamptz))"""
                ),
                {"t": tenant.tenant, "id": rate_id, "active": active, "created": created},
            )
    await create(engine, tenant, {"client_name": "Taxed"})
    [(rate_id,)] = await rows(engine, "SELECT tax_rate_id FROM client_tax_rates WHERE tenant = :t", t=tenant.tenant)
    assert rate_id == older_active


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"client_name": ""}, "client_name"),
        ({"client_name": "   \t"}, "client_name"),
        ({"client_name": "x" * 256}, "client_name"),
        ({"client_name": None}, "client_name"),
        ({}, "client_name"),
        ({"client_name": "Acme", "client_type": "partner"}, "client_type"),
        ({"client_name": "Acme", "url": "ftp://example.com"}, "url"),
        ({"client_name": "Acme", "url": "https://exa mple.com"}, "url"),
        ({"client_name": "Acme", "url": "https://"}, "url"),
        ({"client_name": "Acme", "url": "https://user:pw@example.com"}, "url"),
        ({"client_name": "Acme", "url": "https://example.com:99999"}, "url"),
        ({"client_name": "Acme", "url": "javascript:alert(1)"}, "url"),
        ({"client_name": "Acme", "url": "https://exa_mple.com"}, "url"),
        ({"client_name": "Acme", "properties": {"website": "gopher://x"}}, "properties.website"),
        ({"client_name": "Acme", "properties": {"website": 42}}, "properties.website"),
        ({"client_name": "Acme", "billing_email": "not-an-email"}, "billing_email"),
        ({"client_name": "Acme", "default_currency_code": "EURO"}, "default_currency_code"),
        ({"client_name": "Acme", "email": "a@example.com"}, "email"),  # unknown keys are rejected
        ({"client_name": "Acme", "properties": {"when": object()}}, "properties"),
    ],
)
async def test_invalid_input_is_rejected_and_writes_nothing(engine, tenant, data, field):
    before = await tenant_row_counts(engine, tenant.tenant)
    with pytest.raises(ValidationError) as exc:
        await create(engine, tenant, data)
    assert exc.value.field == field
    assert await tenant_row_counts(engine, tenant.tenant) == before  # no row in any tenant table


async def test_max_length_name_and_blank_optional_fields_are_accepted(engine, tenant):
    client = await create(engine, tenant, {"client_name": "n" * 255, "url": "", "billing_email": " ", "notes": "  "})
    assert len(client.client_name) == 255
    assert (client.url, client.billing_email, client.notes, client.properties) == (None, None, None, {})


# -- duplicates and idempotency --------------------------------------------------------------------


async def test_duplicate_name_is_rejected_and_the_callers_transaction_stays_usable(engine, tenant):
    await create(engine, tenant, {"client_name": "Acme"})
    async with tenant_transaction(engine, tenant.tenant) as conn:
        with pytest.raises(DuplicateError) as exc:
            await clients.create_client(conn, tenant.tenant, {"client_name": " Acme "})
        assert exc.value.field == "client_name"
        await clients.create_client(conn, tenant.tenant, {"client_name": "Acme Two"})
    found = await rows(engine, "SELECT client_name FROM clients WHERE tenant = :t ORDER BY 1", t=tenant.tenant)
    assert [r.client_name for r in found] == ["Acme", "Acme Two"]


async def test_the_same_name_in_another_tenant_is_fine(engine, tenant):
    other = await make_tenant(engine, seeded=True)
    a = await create(engine, tenant, {"client_name": "Shared Name"})
    b = await create(engine, other, {"client_name": "Shared Name"})
    assert a.client_id != b.client_id


async def test_concurrent_duplicate_names_make_exactly_one_row(engine, tenant):
    both_open = asyncio.Barrier(2)

    async def attempt(url: str) -> Client:
        async with tenant_transaction(engine, tenant.tenant) as conn:
            await conn.execute(text("SELECT 1"))
            await both_open.wait()  # both transactions are open and have passed no check yet
            return await clients.create_client(conn, tenant.tenant, {"client_name": "Racer", "url": url})

    results = await asyncio.wait_for(
        asyncio.gather(attempt("https://a.example.com"), attempt("https://b.example.com"), return_exceptions=True),
        timeout=30,
    )
    errors = [r for r in results if isinstance(r, BaseException)]
    assert len(errors) == 1, results
    assert isinstance(errors[0], DuplicateError)
    assert errors[0].field == "client_name"
    assert await table_count(engine, "clients", tenant.tenant) == 1
    assert await table_count(engine, "client_tax_settings", tenant.tenant) == 1
    assert await table_count(engine, "client_email_settings", tenant.tenant) == 1  # the loser's suffix rolled back


async def test_concurrent_retries_of_one_client_id_both_get_the_client(engine, tenant):
    client_id = uuid.uuid4()
    both_open = asyncio.Barrier(2)

    async def attempt() -> Client:
        async with tenant_transaction(engine, tenant.tenant) as conn:
            await conn.execute(text("SELECT 1"))
            await both_open.wait()
            return await clients.create_client(conn, tenant.tenant, {"client_name": "Retried"}, client_id=client_id)

    first, second = await asyncio.wait_for(asyncio.gather(attempt(), attempt()), timeout=30)
    assert first == second
    assert first.client_id == client_id
    assert await table_count(engine, "clients", tenant.tenant) == 1
    assert await table_count(engine, "client_tax_rates", tenant.tenant) == 1


async def test_recreate_with_the_same_id_and_name_returns_the_client_unchanged(engine, tenant):
    client_id = uuid.uuid4()
    first = await create(engine, tenant, {"client_name": "Idem", "url": "idem.example.com"}, client_id=client_id)
    again = await create(engine, tenant, {"client_name": " Idem ", "notes": "ignored"}, client_id=client_id)
    assert again == first
    assert await table_count(engine, "clients", tenant.tenant) == 1
    assert await table_count(engine, "client_tax_rates", tenant.tenant) == 1
    assert await table_count(engine, "client_email_settings", tenant.tenant) == 1


async def test_recreate_with_the_same_id_and_another_name_is_a_conflict(engine, tenant):
    client_id = uuid.uuid4()
    await create(engine, tenant, {"client_name": "Original"}, client_id=client_id)
    with pytest.raises(ConflictError) as exc:
        await create(engine, tenant, {"client_name": "Other"}, client_id=client_id)
    assert not isinstance(exc.value, DuplicateError)
    assert exc.value.field == "client_id"
    [(name,)] = await rows(engine, "SELECT client_name FROM clients WHERE tenant = :t", t=tenant.tenant)
    assert name == "Original"


async def test_new_id_with_a_taken_name_is_a_duplicate(engine, tenant):
    await create(engine, tenant, {"client_name": "Taken"}, client_id=uuid.uuid4())
    with pytest.raises(DuplicateError):
        await create(engine, tenant, {"client_name": "Taken"}, client_id=uuid.uuid4())


async def test_two_clients_tracking_one_tenant_id_is_a_duplicate(engine, tenant):
    tracked = str(uuid.uuid4())
    first = await create(engine, tenant, {"client_name": "Customer A", "properties": {"tenant_id": tracked}})
    with pytest.raises(DuplicateError) as exc:
        await create(engine, tenant, {"client_name": "Customer B", "properties": {"tenant_id": tracked}})
    assert exc.value.field == "properties.tenant_id"
    async with engine.connect() as conn:
        assert await clients.find_client_by_property(conn, tenant.tenant, "tenant_id", tracked) == first
        assert await clients.find_client_by_property(conn, tenant.tenant, "tenant_id", "nope") is None


async def test_create_default_client_goes_through_create_client(engine):
    t = await make_tenant(engine, seeded=True)
    client_id = uuid.uuid4()
    async with tenant_transaction(engine, t.tenant) as conn:
        await create_default_client(
            conn,
            tenant=t.tenant,
            client_id=client_id,
            location_id=uuid.uuid4(),
            client_name=t.name,
            email="office@example.com",
        )
    async with engine.connect() as conn:
        client = await lookups.require_client(conn, t.tenant, client_id)
    assert client.properties == {"type": "msp", "is_system_client": True, "created_by": "tenant_setup"}
    for table in ("client_tax_settings", "client_tax_rates", "client_email_settings"):
        assert await table_count(engine, table, t.tenant) == 0, table
    with pytest.raises(ConflictError):
        async with tenant_transaction(engine, t.tenant) as conn:
            await create_default_client(
                conn,
                tenant=t.tenant,
                client_id=client_id,
                location_id=uuid.uuid4(),
                client_name="Renamed",
                email="office@example.com",
            )


# -- reads and tenant isolation --------------------------------------------------------------------


async def test_lookups_are_scoped_to_the_tenant(engine, tenant):
    other = await make_tenant(engine)
    client = await create(engine, tenant, {"client_name": "Mine", "properties": {"tenant_id": "abc"}})
    async with engine.connect() as conn:
        assert await lookups.require_client(conn, tenant.tenant, client.client_id) == client
        assert await clients.find_client_by_name(conn, tenant.tenant, " Mine ") == client
        assert await clients.find_client(conn, other.tenant, client.client_id) is None
        assert await clients.find_client_by_name(conn, other.tenant, "Mine") is None
        assert await clients.find_client_by_name(conn, tenant.tenant, "MINE") == client  # by name_key
        assert await clients.find_client_by_property(conn, other.tenant, "tenant_id", "abc") is None
        with pytest.raises(NotFoundError) as exc:
            await lookups.require_client(conn, other.tenant, client.client_id)
    assert exc.value.field == "client_id"


# -- update ----------------------------------------------------------------------------------------


async def test_update_changes_only_the_given_fields(engine, tenant):
    data = {"client_name": "Before", "notes": "keep", "url": "before.example.com", "properties": {"tier": "gold"}}
    client = await create(engine, tenant, data)
    updated = await update(engine, tenant, client.client_id, {"client_name": " After ", "billing_email": "A@B.com"})
    assert (updated.client_name, updated.billing_email) == ("After", "a@b.com")
    assert (updated.notes, updated.url, updated.properties) == (client.notes, client.url, client.properties)
    assert updated.created_at == client.created_at
    assert updated.updated_at > client.updated_at


async def test_update_with_a_model_and_with_nothing(engine, tenant):
    client = await create(engine, tenant, {"client_name": "Model"})
    updated = await update(engine, tenant, client.client_id, ClientUpdate(client_type="individual", notes=None))
    assert (updated.client_type, updated.notes) == ("individual", None)
    assert await update(engine, tenant, client.client_id, {}) == updated


async def test_update_url_syncs_the_website(engine, tenant):
    client = await create(engine, tenant, {"client_name": "Sync", "properties": {"tier": "gold"}})
    updated = await update(engine, tenant, client.client_id, {"url": "new.example.com"})
    assert updated.url == "https://new.example.com"
    assert updated.properties == {"tier": "gold", "website": "https://new.example.com"}
    cleared = await update(engine, tenant, client.client_id, {"url": None})
    assert (cleared.url, cleared.properties) == (None, {"tier": "gold"})


async def test_update_website_property_syncs_the_url(engine, tenant):
    client = await create(engine, tenant, {"client_name": "Web", "url": "https://old.example.com"})
    updated = await update(engine, tenant, client.client_id, {"properties": {"website": "https://new.example.com"}})
    assert updated.url == updated.properties["website"] == "https://new.example.com"
    # new properties without a website keep the url (and so the website)
    kept = await update(engine, tenant, client.client_id, {"properties": {"tier": "silver"}})
    assert kept.url == "https://new.example.com"
    assert kept.properties == {"tier": "silver", "website": "https://new.example.com"}
    emptied = await update(engine, tenant, client.client_id, {"properties": None})
    assert emptied.properties == {"website": "https://new.example.com"}


async def test_rename_onto_another_clients_name_is_a_duplicate(engine, tenant):
    await create(engine, tenant, {"client_name": "Alpha"})
    beta = await create(engine, tenant, {"client_name": "Beta"})
    with pytest.raises(DuplicateError) as exc:
        await update(engine, tenant, beta.client_id, {"client_name": "Alpha"})
    assert exc.value.field == "client_name"
    assert (await update(engine, tenant, beta.client_id, {"client_name": "Beta"})).client_name == "Beta"


async def test_concurrent_renames_onto_one_name_leave_one_client_with_it(engine, tenant):
    a = await create(engine, tenant, {"client_name": "A"})
    b = await create(engine, tenant, {"client_name": "B"})
    both_open = asyncio.Barrier(2)

    async def rename(client: Client) -> Client:
        async with tenant_transaction(engine, tenant.tenant) as conn:
            await conn.execute(text("SELECT 1"))
            await both_open.wait()
            return await clients.update_client(conn, tenant.tenant, client.client_id, {"client_name": "Winner"})

    results = await asyncio.wait_for(asyncio.gather(rename(a), rename(b), return_exceptions=True), timeout=30)
    assert [type(r) for r in results].count(DuplicateError) == 1, results
    winners = await rows(engine, "SELECT 1 FROM clients WHERE tenant = :t AND client_name = 'Winner'", t=tenant.tenant)
    assert len(winners) == 1


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"client_name": "  "}, "client_name"),
        ({"client_name": None}, "client_name"),
        ({"client_type": None}, "client_type"),
        ({"is_inactive": None}, "is_inactive"),
        ({"url": "not a url"}, "url"),
        ({"properties": {"website": "ftp://x.com"}}, "properties.website"),
        ({"billing_email": "@"}, "billing_email"),
        ({"tenant": str(uuid.uuid4())}, "tenant"),
    ],
)
async def test_invalid_update_is_rejected_and_changes_nothing(engine, tenant, changes, field):
    client = await create(engine, tenant, {"client_name": "Stable"})
    with pytest.raises(ValidationError) as exc:
        await update(engine, tenant, client.client_id, changes)
    assert exc.value.field == field
    async with engine.connect() as conn:
        assert await lookups.require_client(conn, tenant.tenant, client.client_id) == client


async def test_update_of_another_tenants_client_is_not_found(engine, tenant):
    other = await make_tenant(engine)
    client = await create(engine, tenant, {"client_name": "Private"})
    with pytest.raises(NotFoundError) as exc:
        await update(engine, other, client.client_id, {"client_name": "Stolen"})
    assert exc.value.field == "client_id"
    with pytest.raises(NotFoundError):
        await update(engine, tenant, uuid.uuid4(), {"notes": "x"})


# -- archive and delete ----------------------------------------------------------------------------


async def test_archive_deactivates_the_client_and_its_contacts_idempotently(engine, tenant):
    client = await create(engine, tenant, {"client_name": "Leaving"})
    other = await create(engine, tenant, {"client_name": "Staying"})
    leaving_contacts = [await add_contact(engine, tenant, client.client_id) for _ in range(2)]
    staying_contact = await add_contact(engine, tenant, other.client_id)
    async with tenant_transaction(engine, tenant.tenant) as conn:
        archived = await clients.archive_client(conn, tenant.tenant, client.client_id)
    assert archived.is_inactive
    assert archived.updated_at > client.updated_at
    async with tenant_transaction(engine, tenant.tenant) as conn:
        again = await clients.archive_client(conn, tenant.tenant, client.client_id)
    assert again == archived  # nothing moved
    inactive = {
        r.contact_name_id: r.is_inactive
        for r in await rows(
            engine, "SELECT contact_name_id, is_inactive FROM contacts WHERE tenant = :t", t=tenant.tenant
        )
    }
    assert inactive == {**dict.fromkeys(leaving_contacts, True), staying_contact: False}
    async with engine.connect() as conn:
        assert not (await lookups.require_client(conn, tenant.tenant, other.client_id)).is_inactive


async def test_archive_of_a_missing_or_foreign_client_is_not_found(engine, tenant):
    other = await make_tenant(engine)
    client = await create(engine, tenant, {"client_name": "Mine"})
    async with tenant_transaction(engine, other.tenant) as conn:
        with pytest.raises(NotFoundError):
            await clients.archive_client(conn, other.tenant, client.client_id)
    async with engine.connect() as conn:
        assert not (await lookups.require_client(conn, tenant.tenant, client.client_id)).is_inactive


async def test_delete_cascades_to_children_and_removes_tags(engine, tenant):
    client = await create(engine, tenant, {"client_name": "Doomed", "url": "doomed.example.com"})
    keeper = await create(engine, tenant, {"client_name": "Keeper"})
    contact = await add_contact(engine, tenant, client.client_id)
    async with tenant_transaction(engine, tenant.tenant) as conn:
        await tags.apply_tag(conn, tenant.tenant, tag_text="VIP", tagged_id=client.client_id, tagged_type="client")
        await tags.apply_tag(conn, tenant.tenant, tag_text="VIP", tagged_id=keeper.client_id, tagged_type="client")
        await tags.apply_tag(conn, tenant.tenant, tag_text="Boss", tagged_id=contact, tagged_type="contact")
    other = await make_tenant(engine)
    async with tenant_transaction(engine, other.tenant) as conn:
        assert await clients.delete_client(conn, other.tenant, client.client_id) == 0
    async with tenant_transaction(engine, tenant.tenant) as conn:
        assert await clients.delete_client(conn, tenant.tenant, client.client_id) == 1
        assert await clients.delete_client(conn, tenant.tenant, client.client_id) == 0
    for table in ("contacts", "client_tax_settings", "client_tax_rates", "client_email_settings", "clients"):
        [(n,)] = await rows(
            engine,
            f"SELECT count(*) FROM {table} WHERE tenant = :t AND client_id = :c",
            t=tenant.tenant,
            c=client.client_id,
        )
        assert n == 0, table
    [(tagged,)] = await rows(engine, "SELECT tagged_id FROM tag_mappings WHERE tenant = :t", t=tenant.tenant)
    assert tagged == keeper.client_id
    assert await table_count(engine, "tag_definitions", tenant.tenant) == 2  # definitions stay
