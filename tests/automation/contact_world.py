"""Shared data for the contacts.* action tests: a tenant with clients, contacts, a ticket and a second tenant whose
ids must behave like missing ones, plus one valid input per action (real rows, no mocks)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text

from psa.db.engine import tenant_transaction
from psa.domain import contacts, tags
from tests.automation.conftest import Actors
from tests.automation.test_clients_actions import new_client, new_contact, new_ticket

CALL_TYPE = uuid.UUID("8e36ee4d-d124-5e40-8076-5d9b3b587fc1")  # system interaction type "Call" (migration 0003)


@dataclass
class World:
    """``contact``: Grace Hopper on ``client`` with a default phone and the tag 'vip'; ``loose``: an unassigned
    contact with no dependencies; ``ticket``: a ticket of ``client`` without a contact; ``foreign_*``: the same
    in the other tenant; ``new_email``: an address nobody uses."""

    client: uuid.UUID
    other_client: uuid.UUID
    contact: uuid.UUID
    contact_email: str
    loose: uuid.UUID
    ticket: uuid.UUID
    foreign_client: uuid.UUID
    foreign_contact: uuid.UUID
    foreign_ticket: uuid.UUID
    new_email: str


def email() -> str:
    return f"{uuid.uuid4().hex[:10]}@example.com"


async def tag_contact(engine, tenant: uuid.UUID, contact_id: uuid.UUID, *texts: str) -> None:
    async with tenant_transaction(engine, tenant) as conn:
        for tag_text in texts:
            await tags.apply_tag(conn, tenant, tag_text=tag_text, tagged_id=contact_id, tagged_type="contact")


async def get_contact(engine, tenant: uuid.UUID, contact_id: uuid.UUID) -> contacts.Contact | None:
    async with engine.connect() as conn:
        return await contacts.find_contact(conn, tenant, contact_id)


async def execute(engine, tenant: uuid.UUID, sql: str, **params: Any) -> Any:
    """Run one statement in a tenant transaction; returns the first column of the first row, if any."""
    async with tenant_transaction(engine, tenant) as conn:
        result = await conn.execute(text(sql), {"t": tenant, **params})
        return result.scalar() if result.returns_rows else None


async def wait_until_blocked_on_a_lock(engine) -> None:
    """Until some session of this database waits for a row lock."""
    for _ in range(500):
        waiting = await execute(
            engine,
            None,
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        if waiting:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("no session waited for a lock")


async def make_world(engine, actors: Actors, other: Actors) -> World:
    t = actors.tenant
    client = await new_client(engine, t, f"Acme {uuid.uuid4().hex[:6]}")
    other_client = await new_client(engine, t, f"Globex {uuid.uuid4().hex[:6]}")
    grace = await new_contact(
        engine,
        t,
        client.client_id,
        phone_numbers=[{"phone_number": "+1 415 555 0100", "canonical_type": "work", "is_default": True}],
    )
    await tag_contact(engine, t, grace.contact_name_id, "vip")
    loose = await new_contact(engine, t, None, full_name="Loose Contact")
    ticket = await new_ticket(engine, t, client_id=client.client_id)
    foreign_client = await new_client(engine, other.tenant, "Foreign Co")
    foreign_contact = await new_contact(engine, other.tenant, foreign_client.client_id, full_name="Grace Foreign")
    foreign_ticket = await new_ticket(engine, other.tenant, client_id=foreign_client.client_id)
    return World(
        client=client.client_id,
        other_client=other_client.client_id,
        contact=grace.contact_name_id,
        contact_email=grace.email,
        loose=loose.contact_name_id,
        ticket=ticket.ticket_id,
        foreign_client=foreign_client.client_id,
        foreign_contact=foreign_contact.contact_name_id,
        foreign_ticket=foreign_ticket.ticket_id,
        new_email=email(),
    )


Input = Callable[[World], dict[str, Any]]

# One valid call per action (ids as strings, as a workflow passes them).
VALID: dict[str, Input] = {
    "contacts.find": lambda w: {"contact_id": str(w.contact)},
    "contacts.search": lambda w: {"query": "Grace"},
    "contacts.create": lambda w: {
        "full_name": "Ada Lovelace",
        "email": w.new_email,
        "client_id": str(w.client),
        "tags": ["vip"],
    },
    "contacts.update": lambda w: {"contact_id": str(w.contact), "patch": {"role": "CTO"}},
    "contacts.deactivate": lambda w: {"contact_id": str(w.contact)},
    "contacts.delete": lambda w: {"contact_id": str(w.loose), "confirm": True},
    "contacts.duplicate": lambda w: {"source_contact_id": str(w.contact), "email": w.new_email},
    "contacts.add_tag": lambda w: {"contact_id": str(w.contact), "tags": ["gold"]},
    "contacts.assign_to_ticket": lambda w: {"contact_id": str(w.contact), "ticket_id": str(w.ticket)},
    "contacts.add_note": lambda w: {"contact_id": str(w.contact), "body": "Prefers email"},
    "contacts.add_interaction": lambda w: {
        "contact_id": str(w.contact),
        "interaction_type_id": str(CALL_TYPE),
        "title": "Intro call",
    },
    "contacts.add_to_client": lambda w: {"contact_id": str(w.loose), "client_id": str(w.client)},
    "contacts.move_to_client": lambda w: {"contact_id": str(w.contact), "target_client_id": str(w.other_client)},
    "contacts.upsert": lambda w: {"email": w.new_email, "full_name": "Ada Lovelace"},
    "contacts.remove_tag": lambda w: {"contact_id": str(w.contact), "tags": ["vip"]},
}

# The same calls naming another tenant's records, each of which must be NOT_FOUND (as if missing).
FOREIGN: dict[str, Input] = {
    "contacts.find": lambda w: {"contact_id": str(w.foreign_contact), "on_not_found": "error"},
    "contacts.create": lambda w: {"full_name": "Ada", "email": w.new_email, "client_id": str(w.foreign_client)},
    "contacts.update": lambda w: {"contact_id": str(w.foreign_contact), "patch": {"role": "CTO"}},
    "contacts.deactivate": lambda w: {"contact_id": str(w.foreign_contact)},
    "contacts.delete": lambda w: {"contact_id": str(w.foreign_contact), "confirm": True},
    "contacts.duplicate": lambda w: {"source_contact_id": str(w.foreign_contact), "email": w.new_email},
    "contacts.add_tag": lambda w: {"contact_id": str(w.foreign_contact), "tags": ["gold"]},
    "contacts.assign_to_ticket": lambda w: {"contact_id": str(w.contact), "ticket_id": str(w.foreign_ticket)},
    "contacts.add_note": lambda w: {"contact_id": str(w.foreign_contact), "body": "x"},
    "contacts.add_interaction": lambda w: {
        "contact_id": str(w.foreign_contact),
        "interaction_type_id": str(CALL_TYPE),
        "title": "Call",
    },
    "contacts.add_to_client": lambda w: {"contact_id": str(w.loose), "client_id": str(w.foreign_client)},
    "contacts.move_to_client": lambda w: {"contact_id": str(w.foreign_contact), "target_client_id": str(w.client)},
    "contacts.upsert": lambda w: {"email": w.new_email, "full_name": "Ada", "client_id": str(w.foreign_client)},
    "contacts.remove_tag": lambda w: {"contact_id": str(w.foreign_contact), "tags": ["vip"]},
}
