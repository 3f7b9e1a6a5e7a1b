"""The shared contact model (psa.domain.contacts) against the real PostgreSQL test database."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from psa.db.engine import tenant_transaction
from psa.domain.contacts import (
    Contact,
    ContactInput,
    ContactUpdate,
    PhoneNumberInput,
    create_contact,
    delete_contact,
    find_contact,
    get_contact,
    get_contact_by_email,
    update_contact,
)
from psa.domain.errors import ConflictError, EmailExistsError, NotFoundError, ValidationError
from tests.factories import make_tenant
from tests.helpers import rows, unique_email, wait_until_blocked_on_a_lock

CONTACT_TABLES = (
    "contacts",
    "contact_phone_numbers",
    "contact_additional_email_addresses",
    "contact_phone_type_definitions",
    "contact_email_type_definitions",
)


def contact_data(**overrides) -> dict:
    return {"full_name": "Ada Lovelace", "email": unique_email("ada"), **overrides}


def phone(number: str = "+1 650-253-0000", **overrides) -> dict:
    return {"phone_number": number, "canonical_type": "work", "is_default": True, **overrides}


async def create(engine: AsyncEngine, tenant: uuid.UUID, data, **kwargs) -> Contact:
    async with tenant_transaction(engine, tenant) as conn:
        return await create_contact(conn, tenant, data, **kwargs)


async def update(engine: AsyncEngine, tenant: uuid.UUID, contact_id: uuid.UUID, changes) -> Contact:
    async with tenant_transaction(engine, tenant) as conn:
        return await update_contact(conn, tenant, contact_id, changes)


async def fetch(engine: AsyncEngine, tenant: uuid.UUID, contact_id: uuid.UUID) -> Contact | None:
    async with engine.connect() as conn:
        return await find_contact(conn, tenant, contact_id)


async def counts(engine: AsyncEngine, tenant: uuid.UUID) -> dict[str, int]:
    return {
        table: (await rows(engine, f"SELECT count(*) FROM {table} WHERE tenant = :t", t=tenant))[0][0]
        for table in CONTACT_TABLES
    }


async def make_client(engine: AsyncEngine, tenant: uuid.UUID) -> uuid.UUID:
    client_id = uuid.uuid4()
    async with tenant_transaction(engine, tenant) as conn:
        await conn.execute(
            text("INSERT INTO clients (tenant, client_id, client_name, name_key) VALUES (:t, :c, :name, :key)"),
            {"t": tenant, "c": client_id, "name": f"Client {client_id.hex[:8]}", "key": f"client {client_id.hex[:8]}"},
        )
    return client_id


# -- create and hydrate ----------------------------------------------------------------------------


async def test_create_hydrates_phones_emails_and_custom_types(engine):
    t = await make_tenant(engine)
    client_id = await make_client(engine, t.tenant)
    email = unique_email("grace")
    contact = await create(
        engine,
        t.tenant,
        ContactInput(
            full_name="  Grace Hopper ",
            email=f"  {email.upper()} ",
            client_id=client_id,
            role="  CTO ",
            notes="   ",
            primary_email_custom_type=" Main   inbox ",
            phone_numbers=[
                PhoneNumberInput(phone_number="(650) 253-0000", extension=" 42 ", canonical_type="work"),
                PhoneNumberInput(phone_number="+44 20 7946 0958", custom_type="  Assistant   Line ", is_default=True),
                PhoneNumberInput(phone_number="650.253.0001 ext. 7", canonical_type="Mobile"),
            ],
            additional_email_addresses=[
                {"email_address": "Billing@Example.com", "canonical_type": "billing"},
                {"email_address": "grace.home@example.com", "custom_type": "Weekend"},
            ],
        ),
    )
    assert contact.tenant == t.tenant
    assert (contact.full_name, contact.email, contact.client_id) == ("Grace Hopper", email, client_id)
    assert (contact.role, contact.notes, contact.is_inactive, contact.is_client_admin) == ("CTO", None, False, False)
    assert contact.primary_email_type == "Main inbox"
    assert contact.primary_email_custom_type == "Main inbox"
    assert contact.primary_email_canonical_type is None
    assert [
        (p.phone_number, p.extension, p.phone_type, p.is_default, p.display_order) for p in contact.phone_numbers
    ] == [
        ("+16502530000", "42", "work", False, 0),
        ("+442079460958", None, "Assistant Line", True, 1),
        ("+16502530001", "7", "mobile", False, 2),  # the extension parsed from the number is kept
    ]
    assert (contact.default_phone_number, contact.default_phone_type) == ("+442079460958", "Assistant Line")
    assert [
        (e.email_address, e.email_type, e.canonical_type, e.custom_type, e.display_order)
        for e in contact.additional_email_addresses
    ] == [
        ("billing@example.com", "billing", "billing", None, 0),
        ("grace.home@example.com", "Weekend", None, "Weekend", 1),
    ]
    assert contact.created_at == contact.updated_at
    assert contact.created_at.utcoffset() == timedelta(0)
    assert contact.model_dump(mode="json")["created_at"].endswith("Z")
    assert await fetch(engine, t.tenant, contact.contact_name_id) == contact
    [(label, normalized)] = await rows(
        engine, "SELECT label, normalized_label FROM contact_phone_type_definitions WHERE tenant = :t", t=t.tenant
    )
    assert (label, normalized) == ("Assistant Line", "assistant line")


async def test_custom_type_labels_are_shared_per_tenant(engine):
    t = await make_tenant(engine)
    first = await create(
        engine, t.tenant, contact_data(phone_numbers=[phone(custom_type="Assistant Line", canonical_type=None)])
    )
    second = await create(
        engine, t.tenant, contact_data(phone_numbers=[phone(custom_type=" ASSISTANT  line", canonical_type=None)])
    )
    assert first.default_phone_type == second.default_phone_type == "Assistant Line"  # the first spelling wins
    assert (await counts(engine, t.tenant))["contact_phone_type_definitions"] == 1


async def test_minimal_contact_defaults(engine):
    t = await make_tenant(engine)
    contact = await create(engine, t.tenant, contact_data())
    assert contact.primary_email_type == "work"
    assert contact.phone_numbers == []
    assert contact.additional_email_addresses == []
    assert (contact.default_phone_number, contact.default_phone_type, contact.client_id) == (None, None, None)


# -- validation ------------------------------------------------------------------------------------

INVALID = [
    pytest.param({"full_name": "   "}, "full_name", id="blank-name"),
    pytest.param({"full_name": "x" * 256}, "full_name", id="name-too-long"),
    pytest.param({"full_name": 3}, "full_name", id="name-wrong-type"),
    pytest.param({"email": "  "}, "email", id="blank-email"),
    pytest.param({"email": "not-an-email"}, "email", id="invalid-email"),
    pytest.param({"email": None}, "email", id="null-email"),
    pytest.param({"first_name": "Ada"}, "first_name", id="unknown-field"),
    pytest.param({"client_id": "nope"}, "client_id", id="client-not-uuid"),
    pytest.param({"phone_numbers": [phone("12345")]}, "phone_numbers.0.phone_number", id="invalid-phone"),
    pytest.param({"phone_numbers": [phone("call me")]}, "phone_numbers.0.phone_number", id="garbage-phone"),
    pytest.param({"phone_numbers": [phone(" ")]}, "phone_numbers.0.phone_number", id="blank-phone"),
    pytest.param({"phone_numbers": [phone(extension="12a")]}, "phone_numbers.0.extension", id="ext-not-digits"),
    pytest.param({"phone_numbers": [phone(extension="1" * 11)]}, "phone_numbers.0.extension", id="ext-too-long"),
    pytest.param({"phone_numbers": [phone(), phone("+16502530001")]}, "phone_numbers", id="two-defaults"),
    pytest.param({"phone_numbers": [phone(is_default=False)]}, "phone_numbers", id="no-default"),
    pytest.param({"phone_numbers": [phone(custom_type="Desk")]}, "phone_numbers.0", id="both-type-kinds"),
    pytest.param({"phone_numbers": [phone(canonical_type=None)]}, "phone_numbers.0", id="no-type"),
    pytest.param(
        {"phone_numbers": [phone(canonical_type="pager")]}, "phone_numbers.0.canonical_type", id="unknown-canonical"
    ),
    pytest.param(
        {"phone_numbers": [phone(canonical_type=None, custom_type="  MOBILE ")]},
        "phone_numbers.0.custom_type",
        id="custom-equals-canonical",
    ),
    pytest.param(
        {
            "phone_numbers": [
                phone(canonical_type=None, custom_type="Desk"),
                phone("+16502530001", canonical_type=None, custom_type=" desk", is_default=False),
            ]
        },
        "phone_numbers.1.custom_type",
        id="duplicate-custom-label",
    ),
    pytest.param(
        {"phone_numbers": [{"phone_number": 6502530000}]}, "phone_numbers.0.phone_number", id="phone-wrong-type"
    ),
    pytest.param(
        {"additional_email_addresses": [{"email_address": "nope", "canonical_type": "work"}]},
        "additional_email_addresses.0.email_address",
        id="invalid-additional",
    ),
    pytest.param(
        {
            "email": "a@example.com",
            "additional_email_addresses": [{"email_address": " A@Example.COM", "canonical_type": "work"}],
        },
        "additional_email_addresses.0.email_address",
        id="additional-equals-primary",
    ),
    pytest.param(
        {
            "additional_email_addresses": [
                {"email_address": "b@example.com", "canonical_type": "work"},
                {"email_address": "B@example.com", "canonical_type": "other"},
            ]
        },
        "additional_email_addresses.1.email_address",
        id="duplicate-additional",
    ),
    pytest.param(
        {"additional_email_addresses": [{"email_address": "b@example.com", "custom_type": "Billing"}]},
        "additional_email_addresses.0.custom_type",
        id="additional-custom-equals-canonical",
    ),
    pytest.param(
        {
            "additional_email_addresses": [
                {"email_address": "b@example.com", "canonical_type": "work", "custom_type": "Other inbox"}
            ]
        },
        "additional_email_addresses.0",
        id="additional-both-type-kinds",
    ),
    pytest.param(
        {"primary_email_canonical_type": "work", "primary_email_custom_type": "Main"},
        "primary_email_custom_type",
        id="primary-both-type-kinds",
    ),
    pytest.param(
        {"primary_email_custom_type": "Personal"}, "primary_email_custom_type", id="primary-custom-equals-canonical"
    ),
    pytest.param(
        {"primary_email_canonical_type": "mobile"}, "primary_email_canonical_type", id="primary-unknown-canonical"
    ),
]


@pytest.mark.parametrize(("overrides", "field"), INVALID)
async def test_invalid_input_is_rejected_without_writing(engine, overrides, field):
    t = await make_tenant(engine)
    with pytest.raises(ValidationError) as exc:
        await create(engine, t.tenant, contact_data(**overrides))
    assert exc.value.field == field
    assert exc.value.code == "VALIDATION_ERROR"
    assert exc.value.message.startswith(f"{field}")
    assert set((await counts(engine, t.tenant)).values()) == {0}


async def test_custom_label_equal_to_canonical_names_the_picker(engine):
    t = await make_tenant(engine)
    with pytest.raises(ValidationError, match='Use the canonical type picker for "Fax"'):
        await create(engine, t.tenant, contact_data(phone_numbers=[phone(canonical_type=None, custom_type=" Fax ")]))


# -- email uniqueness ------------------------------------------------------------------------------


async def test_primary_email_is_unique_per_tenant_ignoring_case(engine):
    t, other = await make_tenant(engine), await make_tenant(engine)
    email = unique_email("dup")
    await create(engine, t.tenant, contact_data(email=email))
    with pytest.raises(EmailExistsError) as exc:
        await create(engine, t.tenant, contact_data(email=f" {email.upper()}"))
    assert (exc.value.field, exc.value.code) == ("email", "EMAIL_EXISTS")
    await create(engine, other.tenant, contact_data(email=email))  # another tenant may use it
    assert (await counts(engine, t.tenant))["contacts"] == 1


async def test_primary_email_may_not_be_another_contacts_additional_email(engine):
    t = await make_tenant(engine)
    taken = unique_email("extra")
    await create(
        engine, t.tenant, contact_data(additional_email_addresses=[{"email_address": taken, "canonical_type": "work"}])
    )
    with pytest.raises(EmailExistsError) as exc:
        await create(engine, t.tenant, contact_data(email=taken.upper()))
    assert exc.value.field == "email"


@pytest.mark.parametrize("taken_as", ["primary", "additional"])
async def test_additional_email_may_not_be_used_by_another_contact(engine, taken_as):
    t = await make_tenant(engine)
    taken = unique_email("taken")
    first = (
        {"email": taken}
        if taken_as == "primary"
        else {"additional_email_addresses": [{"email_address": taken, "canonical_type": "other"}]}
    )
    await create(engine, t.tenant, contact_data(**first))
    extra = [
        {"email_address": unique_email("ok"), "canonical_type": "work"},
        {"email_address": taken.title(), "canonical_type": "work"},
    ]
    with pytest.raises(EmailExistsError) as exc:
        await create(engine, t.tenant, contact_data(additional_email_addresses=extra))
    assert exc.value.field == "additional_email_addresses.1.email_address"
    assert (await counts(engine, t.tenant))["contacts"] == 1


@pytest.mark.parametrize(
    ("second", "field"),
    [
        pytest.param(lambda email: {"email": email}, "email", id="primary-vs-primary"),
        pytest.param(
            lambda email: {"additional_email_addresses": [{"email_address": email, "canonical_type": "work"}]},
            "additional_email_addresses.0.email_address",
            id="additional-vs-primary",
        ),
    ],
)
async def test_concurrent_duplicate_gets_typed_error_from_the_database(engine, second, field):
    """The loser passes the pre-check (the winner has not committed yet) and blocks in the database; the
    unique constraint or trigger rejects it once the winner commits. Its savepoint rolls back (no custom type
    row remains) and its transaction stays usable."""
    t = await make_tenant(engine)
    email = unique_email("race")
    inserted = asyncio.Event()

    async def winner():
        async with tenant_transaction(engine, t.tenant) as conn:
            contact = await create_contact(conn, t.tenant, contact_data(email=email))
            inserted.set()
            await wait_until_blocked_on_a_lock(engine)
            return contact

    async def loser():
        await inserted.wait()
        async with tenant_transaction(engine, t.tenant) as conn:
            loser_phone = phone(canonical_type=None, custom_type="Loser Line")
            with pytest.raises(EmailExistsError) as exc:
                await create_contact(conn, t.tenant, contact_data(phone_numbers=[loser_phone], **second(email)))
            await create_contact(conn, t.tenant, contact_data())  # the transaction is still usable
            return exc.value

    won, error = await asyncio.gather(winner(), loser())
    assert error.field == field
    assert isinstance(error.__cause__, IntegrityError)  # raised by the database, not by the pre-check
    assert [
        r.email
        for r in await rows(engine, "SELECT email FROM contacts WHERE tenant = :t", t=t.tenant)
        if r.email == email
    ] == [won.email]
    assert await counts(engine, t.tenant) == {
        "contacts": 2,
        "contact_phone_numbers": 0,
        "contact_additional_email_addresses": 0,
        "contact_phone_type_definitions": 0,
        "contact_email_type_definitions": 0,
    }


async def test_simultaneous_creates_of_one_email_leave_one_contact(engine):
    t = await make_tenant(engine)
    email = unique_email("same")
    results = await asyncio.gather(
        *(create(engine, t.tenant, contact_data(email=email, full_name=f"Twin {i}")) for i in range(4)),
        return_exceptions=True,
    )
    assert sum(isinstance(r, Contact) for r in results) == 1
    assert sum(isinstance(r, EmailExistsError) for r in results) == 3
    assert (await counts(engine, t.tenant))["contacts"] == 1


# -- clients ---------------------------------------------------------------------------------------


async def test_client_must_belong_to_the_tenant(engine):
    t, other = await make_tenant(engine), await make_tenant(engine)
    foreign_client = await make_client(engine, other.tenant)
    for client_id in (foreign_client, uuid.uuid4()):
        with pytest.raises(NotFoundError) as exc:
            await create(engine, t.tenant, contact_data(client_id=client_id))
        assert exc.value.field == "client_id"
    assert (await counts(engine, t.tenant))["contacts"] == 0


# -- lookups ---------------------------------------------------------------------------------------


async def test_get_contact_by_primary_or_additional_email(engine):
    t, other = await make_tenant(engine), await make_tenant(engine)
    primary, extra = unique_email("main"), unique_email("alias")
    contact = await create(
        engine,
        t.tenant,
        contact_data(email=primary, additional_email_addresses=[{"email_address": extra, "custom_type": "Alias"}]),
    )
    async with engine.connect() as conn:
        assert await get_contact_by_email(conn, t.tenant, f"  {extra.upper()} ") == contact
        assert await get_contact_by_email(conn, t.tenant, primary.title()) == contact
        assert await get_contact_by_email(conn, t.tenant, unique_email("nobody")) is None
        assert await get_contact_by_email(conn, t.tenant, "not an address") is None
        assert await get_contact_by_email(conn, other.tenant, primary) is None  # tenant isolation
        assert await find_contact(conn, other.tenant, contact.contact_name_id) is None
        with pytest.raises(NotFoundError) as exc:
            await get_contact(conn, other.tenant, contact.contact_name_id)
        assert exc.value.field == "contact_id"


# -- update ----------------------------------------------------------------------------------------


async def test_update_promotes_an_additional_email_and_demotes_the_primary(engine):
    t = await make_tenant(engine)
    old, billing, alias = unique_email("old"), unique_email("billing"), unique_email("alias")
    contact = await create(
        engine,
        t.tenant,
        contact_data(
            email=old,
            primary_email_custom_type="Main",
            additional_email_addresses=[
                {"email_address": billing, "canonical_type": "billing"},
                {"email_address": alias, "custom_type": "Alias"},
            ],
        ),
    )
    updated = await update(engine, t.tenant, contact.contact_name_id, {"email": billing.upper()})
    assert (updated.email, updated.primary_email_type) == (billing, "billing")
    assert [(e.email_address, e.email_type, e.display_order) for e in updated.additional_email_addresses] == [
        (alias, "Alias", 0),
        (old, "Main", 1),
    ]
    assert updated.updated_at > contact.updated_at
    async with engine.connect() as conn:
        assert (await get_contact_by_email(conn, t.tenant, old)).contact_name_id == contact.contact_name_id


async def test_update_rejects_a_primary_email_that_is_not_promoted(engine):
    t = await make_tenant(engine)
    contact = await create(engine, t.tenant, contact_data())
    with pytest.raises(ValidationError) as exc:
        await update(engine, t.tenant, contact.contact_name_id, {"email": unique_email("new")})
    assert exc.value.field == "email"
    with pytest.raises(ValidationError, match="Primary email cannot be removed") as exc:
        await update(engine, t.tenant, contact.contact_name_id, ContactUpdate(email=None))
    assert exc.value.field == "email"
    assert await fetch(engine, t.tenant, contact.contact_name_id) == contact


async def test_update_changes_only_given_fields_and_replaces_phone_list(engine):
    t = await make_tenant(engine)
    client_id = await make_client(engine, t.tenant)
    contact = await create(
        engine,
        t.tenant,
        contact_data(
            role="Dev",
            notes="Met at a conference",
            client_id=client_id,
            phone_numbers=[phone(), phone("+16502530001", canonical_type="mobile", is_default=False)],
        ),
    )
    updated = await update(
        engine,
        t.tenant,
        contact.contact_name_id,
        {
            "role": "  ",
            "is_inactive": True,
            "full_name": " Ada King ",
            "phone_numbers": [phone("+44 20 7946 0958", canonical_type=None, custom_type="London desk")],
        },
    )
    assert (updated.full_name, updated.role, updated.is_inactive) == ("Ada King", None, True)
    assert (updated.notes, updated.client_id, updated.email) == ("Met at a conference", client_id, contact.email)
    assert [(p.phone_number, p.phone_type) for p in updated.phone_numbers] == [("+442079460958", "London desk")]
    assert (await counts(engine, t.tenant))["contact_phone_numbers"] == 1
    cleared = await update(engine, t.tenant, contact.contact_name_id, {"phone_numbers": [], "client_id": None})
    assert (cleared.phone_numbers, cleared.default_phone_number, cleared.client_id) == ([], None, None)


async def test_update_errors(engine):
    t, other = await make_tenant(engine), await make_tenant(engine)
    taken = unique_email("taken")
    await create(engine, t.tenant, contact_data(email=taken))
    contact = await create(engine, t.tenant, contact_data())
    with pytest.raises(NotFoundError) as exc:
        await update(engine, t.tenant, uuid.uuid4(), {"role": "x"})
    assert exc.value.field == "contact_id"
    with pytest.raises(NotFoundError) as exc:
        await update(engine, t.tenant, contact.contact_name_id, {"client_id": await make_client(engine, other.tenant)})
    assert exc.value.field == "client_id"
    with pytest.raises(EmailExistsError) as exc:
        await update(
            engine,
            t.tenant,
            contact.contact_name_id,
            {"additional_email_addresses": [{"email_address": taken, "canonical_type": "work"}]},
        )
    assert exc.value.field == "additional_email_addresses.0.email_address"
    with pytest.raises(ValidationError) as exc:
        await update(engine, t.tenant, contact.contact_name_id, {"phone_numbers": [phone(extension="x")]})
    assert exc.value.field == "phone_numbers.0.extension"
    with pytest.raises(ValidationError) as exc:
        await update(engine, t.tenant, contact.contact_name_id, {"is_inactive": None})
    assert exc.value.field == "is_inactive"
    assert await fetch(engine, t.tenant, contact.contact_name_id) == contact


# -- idempotency and delete ------------------------------------------------------------------------


async def test_create_with_the_same_contact_id_is_idempotent(engine):
    t = await make_tenant(engine)
    contact_id, email = uuid.uuid4(), unique_email("retry")
    first = await create(engine, t.tenant, contact_data(email=email), contact_id=contact_id)
    retry = await create(
        engine, t.tenant, contact_data(email=email.upper(), full_name="Changed"), contact_id=contact_id
    )
    assert retry == first
    assert retry.contact_name_id == contact_id
    with pytest.raises(ConflictError) as exc:
        await create(engine, t.tenant, contact_data(), contact_id=contact_id)
    assert exc.value.field == "contact_id"
    assert (await counts(engine, t.tenant))["contacts"] == 1


async def test_concurrent_retries_of_one_create_return_the_same_contact(engine):
    t = await make_tenant(engine)
    contact_id, data = uuid.uuid4(), contact_data(phone_numbers=[phone()])
    results = await asyncio.gather(*(create(engine, t.tenant, data, contact_id=contact_id) for _ in range(4)))
    assert all(r == results[0] for r in results)
    assert (await counts(engine, t.tenant))["contact_phone_numbers"] == 1


async def test_delete_contact_cascades_to_its_rows(engine):
    t = await make_tenant(engine)
    contact = await create(
        engine,
        t.tenant,
        contact_data(
            phone_numbers=[phone()], additional_email_addresses=[{"email_address": unique_email(), "custom_type": "X"}]
        ),
    )
    async with tenant_transaction(engine, t.tenant) as conn:
        assert await delete_contact(conn, t.tenant, contact.contact_name_id) == 1
        assert await delete_contact(conn, t.tenant, contact.contact_name_id) == 0
    assert await counts(engine, t.tenant) == {
        "contacts": 0,
        "contact_phone_numbers": 0,
        "contact_additional_email_addresses": 0,
        "contact_phone_type_definitions": 0,
        "contact_email_type_definitions": 1,  # labels stay for reuse
    }
