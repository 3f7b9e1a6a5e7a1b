"""Tickets, interactions, notes documents and the automation runtime tables (migration 0003) against the real
PostgreSQL test database."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from psa.db.engine import tenant_transaction
from psa.domain import clients, contacts, documents, interactions, lookups, tickets
from psa.domain.clients import create_client
from psa.domain.contacts import create_contact
from psa.domain.errors import ConflictError, NotFoundError, ValidationError
from psa.domain.tenants import delete_tenant
from psa.domain.values import name_key
from tests.factories import NewTenant, make_tenant, new_ticket
from tests.helpers import rows, tenant_row_counts, unique_email

SYSTEM_TYPES = {
    "Call": uuid.UUID("8e36ee4d-d124-5e40-8076-5d9b3b587fc1"),
    "Email": uuid.UUID("2db33f79-cfd5-54c2-b07b-04f5efa37c70"),
    "Meeting": uuid.UUID("933a78c3-f69c-5ae9-98cc-73480fb3a89a"),
    "Note": uuid.UUID("1af97a91-1713-5a9a-a018-72d449958989"),
}
CALL = SYSTEM_TYPES["Call"]


@dataclass
class World:
    """A seeded tenant with clients A and B, a contact and a location of each, and an unassigned contact."""

    t: NewTenant
    client_a: uuid.UUID
    client_b: uuid.UUID
    contact_a: uuid.UUID
    contact_b: uuid.UUID
    contact_free: uuid.UUID
    location_a: uuid.UUID
    location_b: uuid.UUID
    user: uuid.UUID

    @property
    def tenant(self) -> uuid.UUID:
        return self.t.tenant


async def add_location(conn, tenant: uuid.UUID, client_id: uuid.UUID) -> uuid.UUID:
    return (
        await conn.execute(
            text(
                """INSERT INTO client_locations (tenant, client_id, location_name, address_line1, city, country_code,
                                                 country_name)
                   VALUES (:t, :c, 'Main Office', '1 Main St', 'Springfield', 'US', 'United States')
                   RETURNING location_id"""
            ),
            {"t": tenant, "c": client_id},
        )
    ).scalar_one()


async def make_world(engine: AsyncEngine) -> World:
    t = await make_tenant(engine, seeded=True)
    async with tenant_transaction(engine, t.tenant) as conn:
        a = await create_client(conn, t.tenant, {"client_name": "Alpha"}, skip_tax_settings=True)
        b = await create_client(conn, t.tenant, {"client_name": "Beta"}, skip_tax_settings=True)
        ca = await create_contact(
            conn, t.tenant, {"full_name": "Ada A", "email": unique_email("a"), "client_id": a.client_id}
        )
        cb = await create_contact(
            conn, t.tenant, {"full_name": "Bob B", "email": unique_email("b"), "client_id": b.client_id}
        )
        free = await create_contact(conn, t.tenant, {"full_name": "Free F", "email": unique_email("f")})
        la = await add_location(conn, t.tenant, a.client_id)
        lb = await add_location(conn, t.tenant, b.client_id)
    return World(
        t, a.client_id, b.client_id, ca.contact_name_id, cb.contact_name_id, free.contact_name_id, la, lb, uuid.uuid4()
    )


@pytest.fixture
async def world(engine) -> World:
    return await make_world(engine)


@pytest.fixture
async def other(engine) -> World:
    """A second tenant: its ids must be invisible to the first."""
    return await make_world(engine)


async def status_id(engine: AsyncEngine, tenant: uuid.UUID, status_type: str, name: str) -> uuid.UUID:
    [(found,)] = await rows(
        engine,
        "SELECT status_id FROM statuses WHERE tenant = :t AND status_type = :k AND name = :n",
        t=tenant,
        k=status_type,
        n=name,
    )
    return found


async def expect(engine: AsyncEngine, tenant: uuid.UUID, error: type, message: str, field: str, call):
    """Run ``call(conn)`` in a transaction of ``tenant`` and check the typed error it raises."""
    with pytest.raises(error) as info:
        async with tenant_transaction(engine, tenant) as conn:
            await call(conn)
    assert (info.value.message, info.value.field) == (message, field)


# -- tickets ---------------------------------------------------------------------------------------


async def test_ticket_numbers_start_at_tic001000_and_increment_per_tenant(engine, world, other):
    first = await new_ticket(engine, world.tenant)
    second = await new_ticket(engine, world.tenant)
    elsewhere = await new_ticket(engine, other.tenant)
    assert (first.ticket_number, second.ticket_number) == ("TIC001000", "TIC001001")
    assert elsewhere.ticket_number == "TIC001000"  # each tenant has its own series
    [series] = await rows(engine, "SELECT * FROM next_number WHERE tenant = :t", t=world.tenant)
    assert (series.entity_type, series.last_number, series.prefix, series.padding_length) == ("TICKET", 1001, "TIC", 6)


async def test_next_number_honours_a_raised_initial_value_and_never_truncates(engine, world):
    async with tenant_transaction(engine, world.tenant) as conn:
        assert await lookups.next_number(conn, world.tenant, "QUOTE", prefix="Q", padding=2, initial=98) == "Q98"
        assert await lookups.next_number(conn, world.tenant, "QUOTE") == "Q99"
        assert await lookups.next_number(conn, world.tenant, "QUOTE") == "Q100"
        await conn.execute(
            text("UPDATE next_number SET initial_value = 500 WHERE tenant = :t AND entity_type = 'QUOTE'"),
            {"t": world.tenant},
        )
        assert await lookups.next_number(conn, world.tenant, "QUOTE") == "Q500"


async def test_ticket_numbers_are_unique_under_concurrency(engine, world):
    async def one() -> str:
        return (await new_ticket(engine, world.tenant, client_id=world.client_a)).ticket_number

    numbers = await asyncio.gather(*(one() for _ in range(20)))
    assert sorted(numbers) == [f"TIC{n:06d}" for n in range(1000, 1020)]


async def test_create_ticket_defaults(engine, world):
    ticket = await new_ticket(
        engine, world.tenant, title="  Email down  ", contact_id=world.contact_a, entered_by=world.user
    )
    assert ticket.title == "Email down"
    assert ticket.client_id == world.client_a  # the contact's client
    assert ticket.contact_name_id == world.contact_a
    assert ticket.status_id == await status_id(engine, world.tenant, "ticket", "New")
    assert ticket.entered_by == world.user
    assert ticket.closed_at is None
    assert ticket.created_at.tzinfo == UTC

    by_location = await new_ticket(engine, world.tenant, location_id=world.location_b)
    assert (by_location.client_id, by_location.location_id) == (world.client_b, world.location_b)

    closed = await new_ticket(engine, world.tenant, status_id=await status_id(engine, world.tenant, "ticket", "Closed"))
    assert closed.closed_at is not None

    async with engine.connect() as conn:
        assert await tickets.get_ticket(conn, world.tenant, ticket.ticket_id) == ticket
        assert await tickets.count_tickets_for_client(conn, world.tenant, world.client_a) == 1
        assert await tickets.count_tickets_for_contact(conn, world.tenant, world.contact_a) == 1


async def test_create_ticket_rules(engine, world, other):
    w, tenant = world, world.tenant

    def create(**kwargs):
        return lambda conn: tickets.create_ticket(conn, tenant, **{"title": "T", **kwargs})

    await expect(engine, tenant, ValidationError, "title is required", "title", create(title="  "))
    await expect(engine, tenant, NotFoundError, "Client not found", "client_id", create(client_id=uuid.uuid4()))
    await expect(engine, tenant, NotFoundError, "Client not found", "client_id", create(client_id=other.client_a))
    await expect(engine, tenant, NotFoundError, "Contact not found", "contact_id", create(contact_id=other.contact_a))
    await expect(
        engine, tenant, NotFoundError, "Location not found", "location_id", create(location_id=other.location_a)
    )
    await expect(
        engine,
        tenant,
        ValidationError,
        "contact_id must belong to the selected client",
        "contact_id",
        create(client_id=w.client_a, contact_id=w.contact_b),
    )
    await expect(
        engine,
        tenant,
        ValidationError,
        "contact_id must belong to the selected client",
        "contact_id",
        create(client_id=w.client_a, contact_id=w.contact_free),
    )
    await expect(
        engine,
        tenant,
        ValidationError,
        "location_id must belong to the selected client",
        "location_id",
        create(client_id=w.client_a, location_id=w.location_b),
    )
    planned = await status_id(engine, tenant, "interaction", "Planned")
    await expect(engine, tenant, NotFoundError, "Ticket status not found", "status_id", create(status_id=planned))
    other_new = await status_id(engine, other.tenant, "ticket", "New")
    await expect(engine, tenant, NotFoundError, "Ticket status not found", "status_id", create(status_id=other_new))
    assert await rows(engine, "SELECT 1 FROM tickets WHERE tenant = :t", t=tenant) == []


async def test_create_ticket_is_safe_to_retry_with_its_id(engine, world):
    ticket_id = uuid.uuid4()
    await new_ticket(engine, world.tenant, ticket_id=ticket_id)
    await expect(
        engine,
        world.tenant,
        ConflictError,
        f"ticket {ticket_id} already exists",
        "ticket_id",
        lambda conn: tickets.create_ticket(conn, world.tenant, title="again", ticket_id=ticket_id),
    )


async def test_tickets_of_another_tenant_are_not_found(engine, world, other):
    ticket = await new_ticket(engine, other.tenant)
    async with engine.connect() as conn:
        assert await tickets.find_ticket(conn, world.tenant, ticket.ticket_id) is None
        with pytest.raises(NotFoundError) as info:
            await tickets.get_ticket(conn, world.tenant, ticket.ticket_id)
    assert (info.value.message, info.value.field) == ("Ticket not found", "ticket_id")


async def test_assign_ticket_client_moves_and_preserves_omitted_keys(engine, world):
    ticket = await new_ticket(
        engine, world.tenant, client_id=world.client_a, contact_id=world.contact_a, location_id=world.location_a
    )
    async with tenant_transaction(engine, world.tenant) as conn:
        moved = await tickets.assign_ticket_client(conn, world.tenant, ticket.ticket_id, client_id=world.client_b)
    # omitted contact and location keep their values, even though they belong to the old client
    assert moved.model_dump() == {
        "ticket_id": ticket.ticket_id,
        "previous_client_id": world.client_a,
        "current_client_id": world.client_b,
        "previous_contact_id": world.contact_a,
        "current_contact_id": world.contact_a,
        "previous_location_id": world.location_a,
        "current_location_id": world.location_a,
    }

    async with tenant_transaction(engine, world.tenant) as conn:
        again = await tickets.assign_ticket_client(
            conn,
            world.tenant,
            ticket.ticket_id,
            client_id=world.client_b,
            contact_id=world.contact_b,
            location_id=None,
        )
        after = await tickets.get_ticket(conn, world.tenant, ticket.ticket_id)
    assert (again.previous_contact_id, again.current_contact_id) == (world.contact_a, world.contact_b)
    assert (again.previous_location_id, again.current_location_id) == (world.location_a, None)
    assert (after.client_id, after.contact_name_id, after.location_id) == (world.client_b, world.contact_b, None)
    assert after.updated_at >= ticket.updated_at

    async with tenant_transaction(engine, world.tenant) as conn:
        cleared = await tickets.assign_ticket_client(
            conn,
            world.tenant,
            ticket.ticket_id,
            client_id=world.client_b,
            contact_id=None,
            location_id=world.location_b,
        )
    assert (cleared.current_contact_id, cleared.current_location_id) == (None, world.location_b)


async def test_assign_ticket_client_rules(engine, world, other):
    w, tenant = world, world.tenant
    ticket = await new_ticket(engine, tenant, client_id=w.client_a)

    def assign(ticket_id=ticket.ticket_id, **kwargs):
        return lambda conn: tickets.assign_ticket_client(conn, tenant, ticket_id, **{"client_id": w.client_b, **kwargs})

    # the client is checked before the ticket
    await expect(
        engine, tenant, NotFoundError, "Client not found", "client_id", assign(uuid.uuid4(), client_id=other.client_a)
    )
    await expect(engine, tenant, NotFoundError, "Ticket not found", "ticket_id", assign(uuid.uuid4()))
    other_ticket = await new_ticket(engine, other.tenant)
    await expect(engine, tenant, NotFoundError, "Ticket not found", "ticket_id", assign(other_ticket.ticket_id))
    await expect(engine, tenant, NotFoundError, "Contact not found", "contact_id", assign(contact_id=other.contact_b))
    await expect(
        engine,
        tenant,
        ValidationError,
        "contact_id must belong to the selected client",
        "contact_id",
        assign(contact_id=w.contact_a),
    )
    await expect(engine, tenant, NotFoundError, "Location not found", "location_id", assign(location_id=uuid.uuid4()))
    await expect(
        engine,
        tenant,
        ValidationError,
        "location_id must belong to the selected client",
        "location_id",
        assign(location_id=w.location_a),
    )
    async with engine.connect() as conn:
        assert (await tickets.get_ticket(conn, tenant, ticket.ticket_id)).client_id == w.client_a  # unchanged


async def test_assign_ticket_contact(engine, world):
    ticket = await new_ticket(engine, world.tenant, client_id=world.client_a)
    await expect(
        engine,
        world.tenant,
        ValidationError,
        "Contact must belong to the ticket client",
        "contact_id",
        lambda conn: tickets.assign_ticket_contact(conn, world.tenant, ticket.ticket_id, contact_id=world.contact_b),
    )
    async with tenant_transaction(engine, world.tenant) as conn:
        result = await tickets.assign_ticket_contact(conn, world.tenant, ticket.ticket_id, contact_id=world.contact_a)
    assert (result.previous_contact_id, result.current_contact_id) == (None, world.contact_a)
    # a ticket without a client takes any contact of the tenant; its client stays unset
    loose = await new_ticket(engine, world.tenant)
    async with tenant_transaction(engine, world.tenant) as conn:
        await tickets.assign_ticket_contact(conn, world.tenant, loose.ticket_id, contact_id=world.contact_b)
        assert (await tickets.get_ticket(conn, world.tenant, loose.ticket_id)).client_id is None


async def test_a_client_with_tickets_cannot_be_deleted(engine, world):
    await new_ticket(engine, world.tenant, client_id=world.client_a)
    with pytest.raises(IntegrityError):
        async with tenant_transaction(engine, world.tenant) as conn:
            await conn.execute(
                text("DELETE FROM clients WHERE tenant = :t AND client_id = :c"),
                {"t": world.tenant, "c": world.client_a},
            )


# -- interaction types and statuses ----------------------------------------------------------------


async def test_system_interaction_types_are_seeded_by_the_migration(engine):
    found = await rows(engine, "SELECT type_id, type_name FROM system_interaction_types ORDER BY display_order")
    assert {r.type_name: r.type_id for r in found} == SYSTEM_TYPES
    async with engine.connect() as conn:
        note = await interactions.find_system_interaction_type(conn, "Note")
    assert note is not None
    assert (note.type_id, note.is_system) == (SYSTEM_TYPES["Note"], True)


async def test_resolve_interaction_type(engine, world, other):
    async with tenant_transaction(engine, world.tenant) as conn:
        own = (
            await conn.execute(
                text(
                    """INSERT INTO interaction_types (tenant, type_name, name_key, icon, system_type_id)
                       VALUES (:t, 'Site Visit', 'site visit', 'map', :call) RETURNING type_id"""
                ),
                {"t": world.tenant, "call": CALL},
            )
        ).scalar_one()
        system = await interactions.resolve_interaction_type(conn, world.tenant, CALL)
        tenant_type = await interactions.resolve_interaction_type(conn, world.tenant, own)
    assert (system.type_name, system.is_system, system.system_type_id) == ("Call", True, None)
    assert (tenant_type.type_name, tenant_type.is_system, tenant_type.system_type_id) == ("Site Visit", False, CALL)
    for missing in (own, uuid.uuid4()):  # another tenant's type is not found
        await expect(
            engine,
            other.tenant,
            NotFoundError,
            "Interaction type not found",
            "type_id",
            lambda conn, m=missing: interactions.resolve_interaction_type(conn, other.tenant, m),
        )
    # type names are unique per tenant by their key
    with pytest.raises(IntegrityError):
        async with tenant_transaction(engine, world.tenant) as conn:
            await conn.execute(
                text("INSERT INTO interaction_types (tenant, type_name, name_key) VALUES (:t, 'SITE VISIT', :k)"),
                {"t": world.tenant, "k": name_key("SITE VISIT")},
            )


async def test_default_interaction_status(engine, world):
    async with engine.connect() as conn:
        assert await interactions.default_interaction_status(conn, world.tenant) == await status_id(
            engine, world.tenant, "interaction", "Planned"
        )
    unseeded = await make_tenant(engine)
    await expect(
        engine,
        unseeded.tenant,
        NotFoundError,
        "No default interaction status found",
        "status_id",
        lambda conn: interactions.default_interaction_status(conn, unseeded.tenant),
    )


# -- interactions ----------------------------------------------------------------------------------


async def log(engine: AsyncEngine, w: World, **kwargs) -> interactions.Interaction:
    async with tenant_transaction(engine, w.tenant) as conn:
        return await interactions.create_interaction(
            conn, w.tenant, **{"type_id": CALL, "title": "Called", "user_id": w.user, **kwargs}
        )


async def test_create_interaction_defaults(engine, world):
    before = datetime.now(UTC)
    logged = await log(engine, world, client_id=world.client_a, title="  Quarterly review ", notes="went well")
    after = datetime.now(UTC)
    assert (logged.client_id, logged.contact_name_id, logged.ticket_id) == (world.client_a, None, None)
    assert (logged.title, logged.notes, logged.user_id, logged.type_id) == (
        "Quarterly review",
        "went well",
        world.user,
        CALL,
    )
    assert logged.status_id == await status_id(engine, world.tenant, "interaction", "Planned")
    assert before <= logged.interaction_date <= after  # "now": taken while the call ran
    assert logged.start_time == logged.end_time == logged.interaction_date
    assert (logged.duration, logged.visibility) == (0, "internal")
    async with engine.connect() as conn:
        assert await interactions.get_interaction(conn, world.tenant, logged.interaction_id) == logged
        assert await interactions.count_interactions_for_client(conn, world.tenant, world.client_a) == 1
        assert await interactions.count_interactions_for_contact(conn, world.tenant, world.contact_a) == 0


async def test_create_interaction_times(engine, world):
    start = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    window = await log(engine, world, client_id=world.client_a, start_time=start, end_time=start + timedelta(hours=1))
    assert (window.interaction_date, window.start_time, window.end_time, window.duration) == (
        start,
        start,
        start + timedelta(hours=1),
        60,
    )
    dated = await log(engine, world, client_id=world.client_a, interaction_date=start, duration=15)
    assert (dated.start_time, dated.end_time, dated.duration) == (start, start, 15)
    await expect(
        engine,
        world.tenant,
        ValidationError,
        "start_time must be less than or equal to end_time",
        "start_time",
        lambda conn: interactions.create_interaction(
            conn,
            world.tenant,
            type_id=CALL,
            title="x",
            user_id=world.user,
            client_id=world.client_a,
            start_time=start,
            end_time=start - timedelta(minutes=1),
        ),
    )
    await expect(
        engine,
        world.tenant,
        ValidationError,
        "start_time: must include a time zone",
        "start_time",
        lambda conn: interactions.create_interaction(
            conn,
            world.tenant,
            type_id=CALL,
            title="x",
            user_id=world.user,
            client_id=world.client_a,
            start_time=datetime(2026, 1, 1),
        ),
    )


async def test_create_interaction_links(engine, world):
    by_contact = await log(engine, world, contact_id=world.contact_a)
    assert (by_contact.client_id, by_contact.contact_name_id) == (world.client_a, world.contact_a)

    ticket = await new_ticket(engine, world.tenant, client_id=world.client_b, contact_id=world.contact_b)
    by_ticket = await log(engine, world, ticket_id=ticket.ticket_id)
    assert (by_ticket.client_id, by_ticket.ticket_id) == (world.client_b, ticket.ticket_id)

    loose_ticket = await new_ticket(engine, world.tenant)
    on_loose = await log(engine, world, client_id=world.client_a, ticket_id=loose_ticket.ticket_id)
    assert (on_loose.client_id, on_loose.ticket_id) == (world.client_a, loose_ticket.ticket_id)

    completed = await status_id(engine, world.tenant, "interaction", "Completed")
    tagged = await log(
        engine,
        world,
        client_id=world.client_a,
        status_id=completed,
        visibility="client_visible",
        category="Follow-up",
        tags=["vip", "renewal"],
    )
    assert (tagged.status_id, tagged.visibility, tagged.category, tagged.tags) == (
        completed,
        "client_visible",
        "Follow-up",
        ["vip", "renewal"],
    )


async def test_create_interaction_rules(engine, world, other):
    w, tenant = world, world.tenant
    ticket_b = await new_ticket(engine, tenant, client_id=w.client_b)

    def create(**kwargs):
        return lambda conn: interactions.create_interaction(
            conn, tenant, **{"type_id": CALL, "title": "T", "user_id": w.user, "client_id": w.client_a, **kwargs}
        )

    cases = [
        (ValidationError, "title is required", "title", {"title": " "}),
        (ValidationError, "duration must be greater than or equal to 0", "duration", {"duration": -1}),
        (ValidationError, "visibility must be one of internal, client_visible", "visibility", {"visibility": "public"}),
        (NotFoundError, "Client not found", "client_id", {"client_id": other.client_a}),
        (NotFoundError, "Contact not found", "contact_id", {"contact_id": other.contact_a}),
        (ValidationError, "contact_id must belong to the selected client", "contact_id", {"contact_id": w.contact_b}),
        (
            ValidationError,
            "contact_id must belong to the selected client",
            "contact_id",
            {"contact_id": w.contact_free},
        ),
        (
            ValidationError,
            "Contact must be assigned to a client before logging interactions",
            "contact_id",
            {"client_id": None, "contact_id": w.contact_free},
        ),
        (NotFoundError, "Ticket not found", "ticket_id", {"ticket_id": uuid.uuid4()}),
        (
            ValidationError,
            "ticket_id must belong to the selected client",
            "ticket_id",
            {"ticket_id": ticket_b.ticket_id},
        ),
        (
            ValidationError,
            "ticket_id must belong to the selected client",
            "ticket_id",
            {"client_id": None, "contact_id": w.contact_a, "ticket_id": ticket_b.ticket_id},
        ),
        (NotFoundError, "Interaction type not found", "type_id", {"type_id": uuid.uuid4()}),
        (
            NotFoundError,
            "Interaction status not found",
            "status_id",
            {"status_id": await status_id(engine, tenant, "ticket", "New")},
        ),
        (
            NotFoundError,
            "Interaction status not found",
            "status_id",
            {"status_id": await status_id(engine, other.tenant, "interaction", "Planned")},
        ),
    ]
    for error, message, field, kwargs in cases:
        await expect(engine, tenant, error, message, field, create(**kwargs))
    assert await rows(engine, "SELECT 1 FROM interactions WHERE tenant = :t", t=tenant) == []


async def test_create_interaction_is_safe_to_retry_with_its_id(engine, world):
    interaction_id = uuid.uuid4()
    first = await log(engine, world, client_id=world.client_a, interaction_id=interaction_id)
    assert await log(engine, world, client_id=world.client_a, interaction_id=interaction_id) == first
    await expect(
        engine,
        world.tenant,
        ConflictError,
        f"interaction {interaction_id} already exists",
        "interaction_id",
        lambda conn: interactions.create_interaction(
            conn,
            world.tenant,
            type_id=CALL,
            title="Other",
            user_id=world.user,
            client_id=world.client_a,
            interaction_id=interaction_id,
        ),
    )


async def test_interactions_of_another_tenant_are_not_found(engine, world, other):
    theirs = await log(engine, other, client_id=other.client_a)
    async with engine.connect() as conn:
        assert await interactions.find_interaction(conn, world.tenant, theirs.interaction_id) is None
        assert await interactions.count_interactions_for_client(conn, world.tenant, other.client_a) == 0
    await expect(
        engine,
        world.tenant,
        NotFoundError,
        "Interaction not found",
        "interaction_id",
        lambda conn: interactions.get_interaction(conn, world.tenant, theirs.interaction_id),
    )


# -- notes documents -------------------------------------------------------------------------------


async def append(engine: AsyncEngine, w: World, entity_type: str, entity_id: uuid.UUID, body: str):
    async with tenant_transaction(engine, w.tenant) as conn:
        return await documents.append_note_block(
            conn, w.tenant, entity_type=entity_type, entity_id=entity_id, body=body, actor_user_id=w.user
        )


async def test_note_append_creates_the_document_then_appends(engine, world):
    first = await append(engine, world, "client", world.client_a, "First note")
    assert first.created_document
    [doc] = await rows(engine, "SELECT * FROM documents WHERE tenant = :t", t=world.tenant)
    assert (doc.document_id, doc.document_name, doc.created_by, doc.user_id) == (
        first.document_id,
        "Alpha Notes",
        world.user,
        world.user,
    )
    [assoc] = await rows(engine, "SELECT * FROM document_associations WHERE tenant = :t", t=world.tenant)
    assert (assoc.document_id, assoc.entity_id, assoc.entity_type) == (first.document_id, world.client_a, "client")
    [(notes_doc,)] = await rows(
        engine,
        "SELECT notes_document_id FROM clients WHERE tenant = :t AND client_id = :c",
        t=world.tenant,
        c=world.client_a,
    )
    assert notes_doc == first.document_id

    second = await append(engine, world, "client", world.client_a, "Second note")
    assert (second.document_id, second.created_document) == (first.document_id, False)
    assert second.updated_at >= first.updated_at
    async with engine.connect() as conn:
        assert await documents.read_note_blocks(conn, world.tenant, first.document_id) == [
            documents.note_block("First note"),
            documents.note_block("Second note"),
        ]
        assert await documents.count_document_associations(conn, world.tenant, "client", world.client_a) == 1
    assert documents.note_block("x") == {"type": "paragraph", "content": [{"type": "text", "text": "x"}]}
    assert await rows(engine, "SELECT 1 FROM interactions WHERE tenant = :t", t=world.tenant) == []


async def test_contact_notes_are_named_after_the_contact(engine, world):
    result = await append(engine, world, "contact", world.contact_b, "Likes tea")
    [(name,)] = await rows(engine, "SELECT document_name FROM documents WHERE tenant = :t", t=world.tenant)
    assert (result.created_document, name) == (True, "Bob B Notes")
    [(notes_doc,)] = await rows(
        engine,
        "SELECT notes_document_id FROM contacts WHERE tenant = :t AND contact_name_id = :c",
        t=world.tenant,
        c=world.contact_b,
    )
    assert notes_doc == result.document_id


async def test_note_append_rules(engine, world, other):
    def call(**kwargs):
        args = {"entity_type": "client", "entity_id": world.client_a, "body": "b", "actor_user_id": None, **kwargs}
        return lambda conn: documents.append_note_block(conn, world.tenant, **args)

    await expect(
        engine,
        world.tenant,
        ValidationError,
        "entity_type must be one of client, contact",
        "entity_type",
        call(entity_type="ticket"),
    )
    await expect(engine, world.tenant, ValidationError, "body is required", "body", call(body="  "))
    await expect(engine, world.tenant, NotFoundError, "Client not found", "client_id", call(entity_id=other.client_a))
    await expect(
        engine,
        world.tenant,
        NotFoundError,
        "Contact not found",
        "contact_id",
        call(entity_type="contact", entity_id=other.contact_a),
    )
    theirs = await append(engine, other, "client", other.client_a, "secret")
    await expect(
        engine,
        world.tenant,
        NotFoundError,
        "Document not found",
        "document_id",
        lambda conn: documents.read_note_blocks(conn, world.tenant, theirs.document_id),
    )


async def test_note_append_repairs_bad_content(engine, world):
    first = await append(engine, world, "client", world.client_a, "one")
    params = {"t": world.tenant, "d": first.document_id}
    async with tenant_transaction(engine, world.tenant) as conn:  # content stored as a JSON string
        await conn.execute(
            text(
                """UPDATE document_block_content SET block_data = to_jsonb(block_data::text)
                    WHERE tenant = :t AND document_id = :d"""
            ),
            params,
        )
    await append(engine, world, "client", world.client_a, "two")
    async with engine.connect() as conn:
        blocks = await documents.read_note_blocks(conn, world.tenant, first.document_id)
    assert blocks == [documents.note_block("one"), documents.note_block("two")]

    async with tenant_transaction(engine, world.tenant) as conn:  # invalid content, then a lost content row
        await conn.execute(
            text("UPDATE document_block_content SET block_data = '\"{oops\"' WHERE tenant = :t AND document_id = :d"),
            params,
        )
    await append(engine, world, "client", world.client_a, "three")
    async with tenant_transaction(engine, world.tenant) as conn:
        assert await documents.read_note_blocks(conn, world.tenant, first.document_id) == [
            documents.note_block("three")
        ]
        await conn.execute(text("DELETE FROM document_block_content WHERE tenant = :t AND document_id = :d"), params)
        assert await documents.read_note_blocks(conn, world.tenant, first.document_id) == []
    again = await append(engine, world, "client", world.client_a, "four")
    assert (again.document_id, again.created_document) == (first.document_id, False)

    async with tenant_transaction(engine, world.tenant) as conn:  # a dangling notes_document_id: a new document
        await conn.execute(text("DELETE FROM documents WHERE tenant = :t AND document_id = :d"), params)
    fresh = await append(engine, world, "client", world.client_a, "five")
    assert fresh.created_document
    assert fresh.document_id != first.document_id


async def test_concurrent_note_appends_make_one_document_and_keep_every_block(engine, world):
    results = await asyncio.gather(*(append(engine, world, "contact", world.contact_a, f"n{i}") for i in range(10)))
    assert sum(r.created_document for r in results) == 1
    assert len({r.document_id for r in results}) == 1
    async with engine.connect() as conn:
        blocks = await documents.read_note_blocks(conn, world.tenant, results[0].document_id)
    assert sorted(b["content"][0]["text"] for b in blocks) == sorted(f"n{i}" for i in range(10))


async def test_delete_entity_documents(engine, world):
    notes = await append(engine, world, "client", world.client_a, "bye")
    async with tenant_transaction(engine, world.tenant) as conn:  # a document shared with client B stays
        shared = (
            await conn.execute(
                text("INSERT INTO documents (tenant, document_name) VALUES (:t, 'Contract') RETURNING document_id"),
                {"t": world.tenant},
            )
        ).scalar_one()
        for client_id in (world.client_a, world.client_b):
            await conn.execute(
                text(
                    """INSERT INTO document_associations (tenant, document_id, entity_id, entity_type)
                       VALUES (:t, :d, :c, 'client')"""
                ),
                {"t": world.tenant, "d": shared, "c": client_id},
            )
        assert await documents.count_document_associations(conn, world.tenant, "client", world.client_a) == 2
        assert await documents.delete_entity_documents(conn, world.tenant, "client", world.client_a) == 1
        assert await documents.delete_entity_documents(conn, world.tenant, "client", world.client_a) == 0
        assert await documents.count_document_associations(conn, world.tenant, "client", world.client_a) == 0
        assert await documents.count_document_associations(conn, world.tenant, "client", world.client_b) == 1
    remaining = await rows(engine, "SELECT document_id FROM documents WHERE tenant = :t", t=world.tenant)
    assert [r.document_id for r in remaining] == [shared]
    assert await rows(engine, "SELECT 1 FROM document_block_content WHERE tenant = :t", t=world.tenant) == []
    [(notes_doc,)] = await rows(
        engine,
        "SELECT notes_document_id FROM clients WHERE tenant = :t AND client_id = :c",
        t=world.tenant,
        c=world.client_a,
    )
    assert notes_doc is None
    assert notes.created_document
    with pytest.raises(ValidationError):
        async with engine.connect() as conn:
            await documents.count_document_associations(conn, world.tenant, "galaxy", world.client_a)


# -- automation runtime tables ---------------------------------------------------------------------


async def fill_runtime_tables(conn, tenant: uuid.UUID) -> uuid.UUID:
    """One row in each runtime table; returns the workflow id."""
    p = {"t": tenant}
    workflow_id = (
        await conn.execute(
            text(
                """INSERT INTO workflow_definitions (tenant, key, name, draft_definition)
                   VALUES (:t, 'demo.key', 'Demo', '{}') RETURNING workflow_id"""
            ),
            p,
        )
    ).scalar_one()
    p["w"] = workflow_id
    await conn.execute(
        text(
            """INSERT INTO workflow_definition_versions (tenant, workflow_id, version, definition_json, definition_hash)
               VALUES (:t, :w, 1, '{}', 'h')"""
        ),
        p,
    )
    p["r"] = (
        await conn.execute(
            text(
                """INSERT INTO workflow_runs (tenant, workflow_id, workflow_version, status)
                   VALUES (:t, :w, 1, 'RUNNING') RETURNING run_id"""
            ),
            p,
        )
    ).scalar_one()
    for sql in (
        """INSERT INTO workflow_run_steps (tenant, run_id, step_path, definition_step_id, status)
           VALUES (:t, :r, 'root.steps[0]', 's1', 'STARTED')""",
        """INSERT INTO workflow_action_invocations (tenant, run_id, step_path, action_id, action_version,
                                                    idempotency_key, status)
           VALUES (:t, :r, 'root.steps[0]', 'clients.add_tag', 1, 'k1', 'STARTED'),
                  (:t, NULL, 'direct', 'clients.add_tag', 1, 'k2', 'SUCCEEDED')""",
        "INSERT INTO workflow_run_logs (tenant, run_id, level, message) VALUES (:t, :r, 'INFO', 'hello')",
        """INSERT INTO workflow_event_outbox (tenant, event_type, idempotency_key, payload, occurred_at, run_id)
           VALUES (:t, 'CLIENT_CREATED', 'client_created:x', '{}', now(), :r)""",
    ):
        await conn.execute(text(sql), p)
    return workflow_id


RUNTIME_TABLES = (
    "workflow_definitions",
    "workflow_definition_versions",
    "workflow_runs",
    "workflow_run_steps",
    "workflow_action_invocations",
    "workflow_run_logs",
    "workflow_event_outbox",
)


async def test_runtime_tables_cascade_from_their_workflow(engine, world):
    async with tenant_transaction(engine, world.tenant) as conn:
        workflow_id = await fill_runtime_tables(conn, world.tenant)
    counts = await tenant_row_counts(engine, world.tenant)
    assert [counts[t] for t in RUNTIME_TABLES] == [1, 1, 1, 1, 2, 1, 1]
    async with tenant_transaction(engine, world.tenant) as conn:
        await conn.execute(
            text("DELETE FROM workflow_definitions WHERE tenant = :t AND workflow_id = :w"),
            {"t": world.tenant, "w": workflow_id},
        )
    counts = await tenant_row_counts(engine, world.tenant)
    # the direct invocation (no run) and the outbox event (no foreign key) stay
    assert [counts[t] for t in RUNTIME_TABLES] == [0, 0, 0, 0, 1, 0, 1]


@pytest.mark.parametrize(
    "sql",
    [
        # one ledger row per (action, version, idempotency key)
        """INSERT INTO workflow_action_invocations (tenant, step_path, action_id, action_version,
                                                    idempotency_key, status)
           VALUES (:t, 'direct', 'clients.add_tag', 1, 'k2', 'FAILED')""",
        # one outbox event per idempotency key
        """INSERT INTO workflow_event_outbox (tenant, event_type, idempotency_key, payload, occurred_at)
           VALUES (:t, 'X', 'client_created:x', '{}', now())""",
        # workflow keys are unique per tenant
        "INSERT INTO workflow_definitions (tenant, key, name, draft_definition) VALUES (:t, 'demo.key', 'D2', '{}')",
        # statuses and levels are checked
        "UPDATE workflow_runs SET status = 'PAUSED' WHERE tenant = :t",
        """INSERT INTO workflow_run_logs (tenant, run_id, level, message)
           SELECT :t, run_id, 'TRACE', 'm' FROM workflow_runs WHERE tenant = :t""",
        # one default status per kind
        """INSERT INTO statuses (tenant, status_type, name, name_key, order_number, is_default)
           VALUES (:t, 'ticket', 'Open', 'open', 9, true)""",
    ],
    ids=["ledger-key", "outbox-key", "workflow-key", "run-status", "log-level", "default-status"],
)
async def test_runtime_constraints(engine, world, sql):
    async with tenant_transaction(engine, world.tenant) as conn:
        await fill_runtime_tables(conn, world.tenant)
    with pytest.raises(IntegrityError):
        async with tenant_transaction(engine, world.tenant) as conn:
            await conn.execute(text(sql), {"t": world.tenant})


async def test_keys_without_a_workflow_key_are_not_unique(engine, world):
    async with tenant_transaction(engine, world.tenant) as conn:
        for _ in range(2):
            await conn.execute(
                text("INSERT INTO workflow_definitions (tenant, name, draft_definition) VALUES (:t, 'D', '{}')"),
                {"t": world.tenant},
            )


async def test_deleting_the_tenant_removes_every_new_row(engine, world):
    ticket = await new_ticket(
        engine, world.tenant, client_id=world.client_a, contact_id=world.contact_a, location_id=world.location_a
    )
    await log(engine, world, contact_id=world.contact_a, ticket_id=ticket.ticket_id)
    await append(engine, world, "client", world.client_a, "note")
    async with tenant_transaction(engine, world.tenant) as conn:
        await fill_runtime_tables(conn, world.tenant)
        await conn.execute(
            text("INSERT INTO interaction_types (tenant, type_name, name_key) VALUES (:t, 'Lunch', 'lunch')"),
            {"t": world.tenant},
        )
    before = await tenant_row_counts(engine, world.tenant)
    for table in (
        "statuses",
        "interaction_types",
        "tickets",
        "interactions",
        "documents",
        "document_block_content",
        "document_associations",
        *RUNTIME_TABLES,
    ):
        assert before[table] > 0, table
    async with tenant_transaction(engine, world.tenant) as conn:
        assert await delete_tenant(conn, tenant=world.tenant, slug=world.t.slug) == 1
    counts = await tenant_row_counts(engine, world.tenant)
    assert counts == dict.fromkeys(counts, 0)
    assert len(await rows(engine, "SELECT 1 FROM system_interaction_types")) == 4  # the global catalogue stays


async def test_deleting_a_client_or_contact_removes_their_notes_documents(engine):
    t = await make_tenant(engine)
    async with tenant_transaction(engine, t.tenant) as conn:
        client = await clients.create_client(conn, t.tenant, {"client_name": "Notes Co"})
        contact = await contacts.create_contact(
            conn, t.tenant, {"full_name": "Noted Person", "email": unique_email("noted"), "client_id": client.client_id}
        )
        loner = await contacts.create_contact(conn, t.tenant, {"full_name": "Loner", "email": unique_email("loner")})
        for entity_type, entity_id in (
            ("client", client.client_id),
            ("contact", contact.contact_name_id),
            ("contact", loner.contact_name_id),
        ):
            await documents.append_note_block(
                conn, t.tenant, entity_type=entity_type, entity_id=entity_id, body="remember", actor_user_id=None
            )
    assert len(await rows(engine, "SELECT 1 FROM documents WHERE tenant = :t", t=t.tenant)) == 3
    async with tenant_transaction(engine, t.tenant) as conn:
        assert await contacts.delete_contact(conn, t.tenant, loner.contact_name_id) == 1
        assert await clients.delete_client(conn, t.tenant, client.client_id) == 1
    for table in ("documents", "document_block_content", "document_associations"):
        assert await rows(engine, f"SELECT 1 FROM {table} WHERE tenant = :t", t=t.tenant) == [], table
