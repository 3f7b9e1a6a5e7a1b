"""Interactions (CRM activities): interaction types (the global catalogue and a tenant's own), interaction
statuses, and logging an interaction against a client, contact and ticket (reference: contacts.add_interaction,
clients.add_interaction, crm.schedule_activity; spec runtime §2.8, §3.1-3.3).

Every function takes an explicit connection and tenant and filters every query by tenant (the global
``system_interaction_types`` catalogue excepted), so another tenant's ids are not found. Error messages are the
reference's, so actions can pass them through; the error class says what kind of failure it is.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal
from uuid import UUID, uuid4

import pydantic_core
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from psa.domain.contacts import UtcDatetime
from psa.domain.errors import ConflictError, NotFoundError, ValidationError
from psa.domain.tickets import contact_client, require_client

Visibility = Literal["internal", "client_visible"]
VISIBILITIES = ("internal", "client_visible")

_COLUMNS = """tenant, interaction_id, type_id, client_id, contact_name_id, ticket_id, project_id, user_id, title,
              notes, interaction_date, start_time, end_time, duration, status_id, visibility, category, tags,
              created_at, updated_at"""


class InteractionType(BaseModel):
    """A tenant interaction type or a global system one (``is_system``; ``system_type_id`` is then None)."""

    type_id: UUID
    type_name: str
    icon: str | None
    is_system: bool
    system_type_id: UUID | None


class Interaction(BaseModel):
    """An interaction row. Timestamps are UTC; ``duration`` is in minutes."""

    tenant: UUID
    interaction_id: UUID
    type_id: UUID
    client_id: UUID | None
    contact_name_id: UUID | None
    ticket_id: UUID | None
    project_id: UUID | None
    user_id: UUID
    title: str
    notes: str | None
    interaction_date: UtcDatetime
    start_time: UtcDatetime | None
    end_time: UtcDatetime | None
    duration: int | None
    status_id: UUID | None
    visibility: str
    category: str | None
    tags: list[str] | None
    created_at: UtcDatetime
    updated_at: UtcDatetime


# -- types and statuses ----------------------------------------------------------------------------


async def find_interaction_type(conn: AsyncConnection, tenant: UUID, type_id: UUID) -> InteractionType | None:
    """The tenant's interaction type ``type_id``, else the global system type with that id, else None."""
    row = (
        await conn.execute(
            text(
                """SELECT type_id, type_name, icon, false AS is_system, system_type_id
                     FROM interaction_types WHERE tenant = :tenant AND type_id = :type_id
                   UNION ALL
                   SELECT type_id, type_name, icon, true, NULL
                     FROM system_interaction_types WHERE type_id = :type_id
                   LIMIT 1"""
            ),
            {"tenant": tenant, "type_id": type_id},
        )
    ).first()
    return InteractionType(**row._mapping) if row else None


async def resolve_interaction_type(conn: AsyncConnection, tenant: UUID, type_id: UUID) -> InteractionType:
    """The tenant or system interaction type ``type_id``.
    Raises NotFoundError("Interaction type not found", field="type_id") (also for another tenant's type).
    Reference: "interaction types = tenant interaction_types ∪ global system_interaction_types" (spec runtime §3.3)."""
    found = await find_interaction_type(conn, tenant, type_id)
    if found is None:
        raise NotFoundError("Interaction type not found", field="type_id")
    return found


async def find_system_interaction_type(conn: AsyncConnection, type_name: str) -> InteractionType | None:
    """The global interaction type named exactly ``type_name`` (``Call``, ``Email``, ``Meeting``, ``Note``;
    seeded by migration 0003), or None. Reference: crm.create_activity_note needs ``Note``."""
    row = (
        await conn.execute(
            text(
                """SELECT type_id, type_name, icon, true AS is_system, NULL AS system_type_id
                     FROM system_interaction_types WHERE type_name = :name"""
            ),
            {"name": type_name},
        )
    ).first()
    return InteractionType(**row._mapping) if row else None


async def default_interaction_status(conn: AsyncConnection, tenant: UUID) -> UUID:
    """The tenant's default interaction status (``statuses`` with status_type 'interaction' and is_default;
    seeded as 'Planned'). Raises NotFoundError("No default interaction status found", field="status_id")
    (the reference reports it as INTERNAL_ERROR, spec runtime §2.8)."""
    row = (
        await conn.execute(
            text(
                """SELECT status_id FROM statuses
                    WHERE tenant = :tenant AND status_type = 'interaction' AND is_default FOR KEY SHARE"""
            ),
            {"tenant": tenant},
        )
    ).first()
    if row is None:
        raise NotFoundError("No default interaction status found", field="status_id")
    return row.status_id


async def require_interaction_status(conn: AsyncConnection, tenant: UUID, status_id: UUID) -> None:
    """Raises NotFoundError("Interaction status not found", field="status_id") unless ``status_id`` is an
    interaction status of the tenant (reference: contacts.add_interaction)."""
    row = (
        await conn.execute(
            text(
                """SELECT 1 FROM statuses
                    WHERE tenant = :tenant AND status_id = :id AND status_type = 'interaction' FOR KEY SHARE"""
            ),
            {"tenant": tenant, "id": status_id},
        )
    ).first()
    if row is None:
        raise NotFoundError("Interaction status not found", field="status_id")


# -- interactions ----------------------------------------------------------------------------------


def _aware(value: datetime | None, field: str) -> datetime | None:
    if value is not None and value.utcoffset() is None:
        raise ValidationError(f"{field}: must include a time zone", field=field)
    return value


async def _ticket_links(conn: AsyncConnection, tenant: UUID, ticket_id: UUID) -> UUID | None:
    """The ticket's client. Raises NotFoundError("Ticket not found", field="ticket_id")."""
    row = (
        await conn.execute(
            text("SELECT client_id FROM tickets WHERE tenant = :tenant AND ticket_id = :id FOR KEY SHARE"),
            {"tenant": tenant, "id": ticket_id},
        )
    ).first()
    if row is None:
        raise NotFoundError("Ticket not found", field="ticket_id")
    return row.client_id


async def create_interaction(
    conn: AsyncConnection,
    tenant: UUID,
    *,
    type_id: UUID,
    title: str,
    user_id: UUID,
    client_id: UUID | None = None,
    contact_id: UUID | None = None,
    ticket_id: UUID | None = None,
    notes: str | None = None,
    interaction_date: datetime | None = None,
    start_time: datetime | None = None,
    end_time: datetime | None = None,
    duration: int | None = None,
    status_id: UUID | None = None,
    interaction_id: UUID | None = None,
    visibility: Visibility = "internal",
    category: str | None = None,
    tags: list[str] | None = None,
    project_id: UUID | None = None,
) -> Interaction:
    """Log an interaction and return it.

    Checks, in order (reference: clients.add_interaction / contacts.add_interaction / crm.schedule_activity):
    ``title`` trimmed and required; ``duration`` ≥ 0; datetimes carry a time zone; ``visibility`` known;
    the client exists; the contact exists and, when ``client_id`` is given, belongs to it (without
    ``client_id`` the contact's client is used, and a contact without a client is refused); the ticket
    exists and, when it has a client, that is the interaction's client (without any client the ticket's is
    used); the type is a tenant or system type; ``status_id`` is an interaction status of the tenant, None
    takes the default interaction status.

    Times (UTC-aware datetimes): ``interaction_date`` defaults to ``start_time``, else now;
    ``start_time`` to ``interaction_date``; ``end_time`` to ``start_time``; ``duration`` (minutes) to the
    rounded minutes between start and end (0 by default). ``user_id`` is the owner (the workflow actor),
    recorded as given. ``project_id`` is stored without a check (there are no projects yet).
    ``interaction_id`` (default: new) makes a retried call safe: an existing interaction with that id,
    type, title and owner is returned unchanged, any other raises ConflictError(field="interaction_id").

    Raises ValidationError: "title is required" (title), "duration must be greater than or equal to 0"
    (duration), "start_time must be less than or equal to end_time" (start_time), "contact_id must belong to
    the selected client" (contact_id), "Contact must be assigned to a client before logging interactions"
    (contact_id), "ticket_id must belong to the selected client" (ticket_id); NotFoundError: "Client not
    found" (client_id), "Contact not found" (contact_id), "Ticket not found" (ticket_id), "Interaction type
    not found" (type_id), "Interaction status not found" / "No default interaction status found"
    (status_id); ConflictError(field="interaction_id").
    """
    cleaned = (title or "").strip()
    if not cleaned:
        raise ValidationError("title is required", field="title")
    if duration is not None and duration < 0:
        raise ValidationError("duration must be greater than or equal to 0", field="duration")
    if visibility not in VISIBILITIES:
        raise ValidationError(f"visibility must be one of {', '.join(VISIBILITIES)}", field="visibility")
    interaction_date = _aware(interaction_date, "interaction_date")
    start_time = _aware(start_time, "start_time")
    end_time = _aware(end_time, "end_time")

    if client_id is not None:
        await require_client(conn, tenant, client_id)
    if contact_id is not None:
        client_of_contact = await contact_client(conn, tenant, contact_id)
        if client_id is not None and client_of_contact != client_id:
            raise ValidationError("contact_id must belong to the selected client", field="contact_id")
        if client_of_contact is None:
            raise ValidationError(
                "Contact must be assigned to a client before logging interactions", field="contact_id"
            )
        client_id = client_of_contact
    if ticket_id is not None:
        client_of_ticket = await _ticket_links(conn, tenant, ticket_id)
        if client_of_ticket is not None and client_id is not None and client_of_ticket != client_id:
            raise ValidationError("ticket_id must belong to the selected client", field="ticket_id")
        client_id = client_id or client_of_ticket
    await resolve_interaction_type(conn, tenant, type_id)
    if status_id is None:
        status_id = await default_interaction_status(conn, tenant)
    else:
        await require_interaction_status(conn, tenant, status_id)

    occurred = interaction_date or start_time or datetime.now(UTC)
    start = start_time or occurred
    end = end_time or start
    if start > end:
        raise ValidationError("start_time must be less than or equal to end_time", field="start_time")
    if duration is None:
        duration = max(0, round((end - start).total_seconds() / 60))

    new_id = interaction_id or uuid4()
    result = await conn.execute(
        text(
            f"""INSERT INTO interactions (tenant, interaction_id, type_id, client_id, contact_name_id, ticket_id,
                                          project_id, user_id, title, notes, interaction_date, start_time, end_time,
                                          duration, status_id, visibility, category, tags)
                VALUES (:tenant, :interaction_id, :type_id, :client_id, :contact_id, :ticket_id, :project_id,
                        :user_id, :title, :notes, :interaction_date, :start_time, :end_time, :duration, :status_id,
                        :visibility, :category, CAST(:tags AS jsonb))
                ON CONFLICT (tenant, interaction_id) DO NOTHING
                RETURNING {_COLUMNS}"""
        ),
        {
            "tenant": tenant, "interaction_id": new_id, "type_id": type_id, "client_id": client_id,
            "contact_id": contact_id, "ticket_id": ticket_id, "project_id": project_id, "user_id": user_id,
            "title": cleaned, "notes": notes, "interaction_date": occurred, "start_time": start, "end_time": end,
            "duration": duration, "status_id": status_id, "visibility": visibility, "category": category,
            "tags": None if tags is None else pydantic_core.to_json(tags).decode(),
        },
    )  # fmt: skip
    row = result.first()
    if row is not None:
        return Interaction(**row._mapping)
    existing = await get_interaction(conn, tenant, new_id)
    if (existing.type_id, existing.title, existing.user_id) != (type_id, cleaned, user_id):
        raise ConflictError(f"interaction {new_id} already exists", field="interaction_id")
    return existing


async def find_interaction(conn: AsyncConnection, tenant: UUID, interaction_id: UUID) -> Interaction | None:
    """The interaction with ``interaction_id`` in ``tenant``, or None (also for another tenant's id)."""
    row = (
        await conn.execute(
            text(f"SELECT {_COLUMNS} FROM interactions WHERE tenant = :tenant AND interaction_id = :id"),
            {"tenant": tenant, "id": interaction_id},
        )
    ).first()
    return Interaction(**row._mapping) if row else None


async def get_interaction(conn: AsyncConnection, tenant: UUID, interaction_id: UUID) -> Interaction:
    """The interaction with ``interaction_id`` in ``tenant``.
    Raises NotFoundError("Interaction not found", field="interaction_id")."""
    found = await find_interaction(conn, tenant, interaction_id)
    if found is None:
        raise NotFoundError("Interaction not found", field="interaction_id")
    return found


async def count_interactions_for_client(conn: AsyncConnection, tenant: UUID, client_id: UUID) -> int:
    """Interactions of the client (reference: the clients.delete dependency count)."""
    result = await conn.execute(
        text("SELECT count(*) FROM interactions WHERE tenant = :tenant AND client_id = :client_id"),
        {"tenant": tenant, "client_id": client_id},
    )
    return result.scalar_one()


async def count_interactions_for_contact(conn: AsyncConnection, tenant: UUID, contact_id: UUID) -> int:
    """Interactions of the contact (reference: the contacts.delete dependency count)."""
    result = await conn.execute(
        text("SELECT count(*) FROM interactions WHERE tenant = :tenant AND contact_name_id = :contact_id"),
        {"tenant": tenant, "contact_id": contact_id},
    )
    return result.scalar_one()
