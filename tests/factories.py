"""Test data factories: committed rows made through the domain functions (no mocks) and valid requests. Tenants,
actor sets, clients, contacts, tickets, API keys, the contact-actions world, provisioning requests."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import SecretStr
from slugify import slugify
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from psa.db.engine import tenant_transaction
from psa.domain import clients, contacts, tags, tickets
from psa.domain.api_keys import create_api_key
from psa.domain.seeds import seed_tenant
from psa.domain.tenants import create_tenant
from psa.domain.users import create_internal_user
from psa.email import WelcomeEmail
from psa.provisioning.types import AdminUser, TenantCreationInput
from tests.helpers import unique_email, unique_name

CALL_TYPE = uuid.UUID("8e36ee4d-d124-5e40-8076-5d9b3b587fc1")  # system interaction type "Call" (migration 0003)
NO_ACCESS_ROLE = "No Access"  # an MSP role that make_actors creates with no permission


@dataclass
class NewTenant:
    """A committed tenant: its id, slug and company name."""

    tenant: uuid.UUID
    slug: str
    name: str


async def make_tenant(engine: AsyncEngine, *, seeded: bool = False, name: str | None = None) -> NewTenant:
    """A committed tenant row (optionally seeded with roles, permissions and the default tax rate)."""
    tenant, name = uuid.uuid4(), name or unique_name("Acme")
    slug = slugify(name)
    async with tenant_transaction(engine, tenant) as conn:
        await create_tenant(conn, tenant=tenant, slug=slug, company_name=name, email="Owner@Example.com")
        if seeded:
            await seed_tenant(conn, tenant)
    return NewTenant(tenant, slug, name)


@dataclass
class Actors:
    """A seeded tenant and three of its internal users: ``admin`` (MSP "Admin": every MSP permission),
    ``technician`` (MSP "Technician": client:read only among client permissions, ticket CRUD) and ``nobody``
    (a role that grants nothing)."""

    tenant: uuid.UUID
    admin: uuid.UUID
    technician: uuid.UUID
    nobody: uuid.UUID
    info: NewTenant


async def add_user(engine: AsyncEngine, tenant: uuid.UUID, role_name: str) -> uuid.UUID:
    """An internal user of ``tenant`` holding the MSP role ``role_name``."""
    user_id = uuid.uuid4()
    async with tenant_transaction(engine, tenant) as conn:
        await create_internal_user(
            conn,
            tenant=tenant,
            user_id=user_id,
            first_name="Test",
            last_name=role_name,
            email=unique_email(role_name.lower().replace(" ", "-")),
            password_hash="unused",
            role_name=role_name,
        )
    return user_id


async def make_actors(engine: AsyncEngine) -> Actors:
    """A new seeded tenant with its three actors."""
    info = await make_tenant(engine, seeded=True)
    async with tenant_transaction(engine, info.tenant) as conn:
        await conn.execute(
            text(
                "INSERT INTO roles (tenant, role_name, description, msp, client) "
                "VALUES (:t, :n, 'grants nothing', true, false)"
            ),
            {"t": info.tenant, "n": NO_ACCESS_ROLE},
        )
    return Actors(
        tenant=info.tenant,
        admin=await add_user(engine, info.tenant, "Admin"),
        technician=await add_user(engine, info.tenant, "Technician"),
        nobody=await add_user(engine, info.tenant, NO_ACCESS_ROLE),
        info=info,
    )


@dataclass
class Keyed:
    """A tenant's actors with a real API key each (created through psa.domain.api_keys, stored hashed)."""

    actors: Actors
    admin_key: str
    technician_key: str
    nobody_key: str

    @property
    def tenant(self) -> uuid.UUID:
        return self.actors.tenant

    def headers(self, who: str = "admin") -> dict[str, str]:
        """The ``x-api-key`` header of ``who`` (admin, technician or nobody)."""
        return {"x-api-key": getattr(self, f"{who}_key")}


async def new_key(engine: AsyncEngine, tenant: uuid.UUID, user_id: uuid.UUID) -> str:
    """A new API key of ``user_id``; the plain key."""
    async with tenant_transaction(engine, tenant) as conn:
        return (await create_api_key(conn, tenant, user_id, name="tests")).key


async def keyed(engine: AsyncEngine, actors: Actors) -> Keyed:
    """``actors`` with an API key each."""
    return Keyed(
        actors,
        await new_key(engine, actors.tenant, actors.admin),
        await new_key(engine, actors.tenant, actors.technician),
        await new_key(engine, actors.tenant, actors.nobody),
    )


async def set_tenant_timezone(engine: AsyncEngine, tenant: uuid.UUID, zone: str) -> None:
    """Store ``zone`` as ``tenant_settings.settings.timezone`` (the tenant's time zone, docs/automation.md,
    "Dates"), keeping the other settings."""
    async with tenant_transaction(engine, tenant) as conn:
        await conn.execute(
            text(
                """INSERT INTO tenant_settings (tenant, settings)
                   VALUES (:t, jsonb_build_object('timezone', CAST(:zone AS text)))
                   ON CONFLICT (tenant) DO UPDATE
                      SET settings = coalesce(tenant_settings.settings, '{}'::jsonb) || EXCLUDED.settings"""
            ),
            {"t": tenant, "zone": zone},
        )


async def keyed_management(engine: AsyncEngine, tenant: uuid.UUID) -> Keyed:
    """Users of the management tenant ``tenant`` (a "No Access" role added unless there): an admin (who holds
    tenant:create), a technician and nobody, each with an API key."""
    async with tenant_transaction(engine, tenant) as conn:
        await conn.execute(
            text(
                "INSERT INTO roles (tenant, role_name, msp, client) VALUES (:t, :n, true, false) ON CONFLICT DO NOTHING"
            ),
            {"t": tenant, "n": NO_ACCESS_ROLE},
        )
    actors = Actors(
        tenant=tenant,
        admin=await add_user(engine, tenant, "Admin"),
        technician=await add_user(engine, tenant, "Technician"),
        nobody=await add_user(engine, tenant, NO_ACCESS_ROLE),
        info=None,  # type: ignore[arg-type]
    )
    return await keyed(engine, actors)


async def new_client(engine: AsyncEngine, tenant: uuid.UUID, name: str | None = None, **data: Any) -> clients.Client:
    """A committed client (a random name unless ``name``; ``data`` adds ClientInput fields)."""
    async with tenant_transaction(engine, tenant) as conn:
        return await clients.create_client(
            conn, tenant, {"client_name": name or f"Client {uuid.uuid4().hex[:8]}", **data}
        )


async def new_contact(
    engine: AsyncEngine, tenant: uuid.UUID, client_id: uuid.UUID | None, **data: Any
) -> contacts.Contact:
    """A committed contact "Grace Hopper" with a unique email on ``client_id`` (or none); ``data`` overrides."""
    async with tenant_transaction(engine, tenant) as conn:
        return await contacts.create_contact(
            conn,
            tenant,
            {
                "full_name": "Grace Hopper",
                "email": f"{uuid.uuid4().hex[:10]}@example.com",
                "client_id": client_id,
                **data,
            },
        )


async def new_location(
    engine: AsyncEngine,
    tenant: uuid.UUID,
    client_id: uuid.UUID,
    phone: str,
    *,
    default: bool = False,
    active: bool = True,
) -> uuid.UUID:
    """A committed location of ``client_id`` with ``phone``; its id."""
    async with tenant_transaction(engine, tenant) as conn:
        return await conn.scalar(
            text(
                """INSERT INTO client_locations (tenant, client_id, location_name, address_line1, city, country_code,
                                                 country_name, phone, is_default, is_active)
                   VALUES (:t, :c, 'Branch', '1 Main St', 'Springfield', 'US', 'United States', :p, :d, :a)
                   RETURNING location_id"""
            ),
            {"t": tenant, "c": client_id, "p": phone, "d": default, "a": active},
        )


async def new_ticket(engine: AsyncEngine, tenant: uuid.UUID, **kwargs: Any) -> tickets.Ticket:
    """A committed ticket titled "Printer on fire" unless ``title``; ``kwargs`` go to tickets.create_ticket."""
    async with tenant_transaction(engine, tenant) as conn:
        return await tickets.create_ticket(conn, tenant, **{"title": "Printer on fire", **kwargs})


async def tag_client(engine: AsyncEngine, tenant: uuid.UUID, client_id: uuid.UUID, *texts: str) -> None:
    """Apply the tags ``texts`` to the client."""
    async with tenant_transaction(engine, tenant) as conn:
        for tag_text in texts:
            await tags.apply_tag(conn, tenant, tag_text=tag_text, tagged_id=client_id, tagged_type="client")


async def tag_contact(engine: AsyncEngine, tenant: uuid.UUID, contact_id: uuid.UUID, *texts: str) -> None:
    """Apply the tags ``texts`` to the contact."""
    async with tenant_transaction(engine, tenant) as conn:
        for tag_text in texts:
            await tags.apply_tag(conn, tenant, tag_text=tag_text, tagged_id=contact_id, tagged_type="contact")


@dataclass
class ContactWorld:
    """The data of the contacts.* action tests. ``contact``: Grace Hopper on ``client`` with a default phone and
    the tag 'vip'; ``loose``: an unassigned contact with no dependencies; ``ticket``: a ticket of ``client``
    without a contact; ``foreign_*``: the same in the other tenant, whose ids must behave like missing ones;
    ``new_email``: an address nobody uses."""

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


async def make_contact_world(engine: AsyncEngine, actors: Actors, other: Actors) -> ContactWorld:
    """The ContactWorld of ``actors``' tenant, with its foreign records in ``other``'s."""
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
    return ContactWorld(
        client=client.client_id,
        other_client=other_client.client_id,
        contact=grace.contact_name_id,
        contact_email=grace.email,
        loose=loose.contact_name_id,
        ticket=ticket.ticket_id,
        foreign_client=foreign_client.client_id,
        foreign_contact=foreign_contact.contact_name_id,
        foreign_ticket=foreign_ticket.ticket_id,
        new_email=unique_email("contact"),
    )


ContactInput = Callable[[ContactWorld], dict[str, Any]]

# One valid call per contacts.* action (ids as strings, as a workflow passes them).
VALID_CONTACT_INPUTS: dict[str, ContactInput] = {
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
FOREIGN_CONTACT_INPUTS: dict[str, ContactInput] = {
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


def make_request(**overrides) -> TenantCreationInput:
    """A valid provisioning request with a unique tenant name and admin email; ``overrides`` replace fields."""
    token = uuid.uuid4().hex[:10]
    admin = overrides.pop("admin_user", None) or AdminUser(
        first_name="John", last_name="Doe", email=f"john.doe.{token}@acme.example.com"
    )
    data = {"tenant_name": f"Acme {token}", "company_name": f"Acme {token} Corporation", "admin_user": admin}
    data.update(overrides)
    return TenantCreationInput(**data)


def make_welcome(password: str, **overrides: Any) -> WelcomeEmail:
    """A welcome email to Peter Gibbons of Initech carrying the temporary ``password``; ``overrides`` replace
    fields."""
    values: dict[str, Any] = {
        "tenant_id": "ten_1",
        "tenant_name": "Initech",
        "user_id": "usr_1",
        "first_name": "Peter",
        "last_name": "Gibbons",
        "email": "peter@initech.example",
        "temporary_password": SecretStr(password),
    }
    values.update(overrides)
    return WelcomeEmail(**values)


def tenant_request_body(**overrides) -> dict:
    """The JSON body of a valid ``POST /api/v1/tenants`` with a unique tenant name and admin email."""
    token = uuid.uuid4().hex[:10]
    body = {
        "tenant_name": f"Api Corp {token}",
        "company_name": f"Api Corp {token} Inc",
        "admin_user": {"first_name": "Ada", "last_name": "Lovelace", "email": f"ada.{token}@api.example.com"},
    }
    return {**body, **overrides}
