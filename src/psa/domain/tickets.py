"""Tickets: creation with per-tenant ticket numbers, lookups, and moving a ticket to a client, contact and location
(reference: clients.assign_to_ticket and contacts.assign_to_ticket; next_number: generate_next_number).

Every function takes an explicit connection and tenant and filters every query by tenant, so another tenant's id
is simply not found. Rows a write depends on are read ``FOR KEY SHARE`` (they cannot be deleted before commit) and
the ticket being changed ``FOR UPDATE``. Error messages are the reference's, so actions can pass them through.
"""

from __future__ import annotations

import enum
from typing import Any, Final
from uuid import UUID, uuid4

from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from psa.db.constraints import violation
from psa.domain.errors import ConflictError, NotFoundError, ValidationError
from psa.domain.lookups import contact_client, location_client, next_number, require_client
from psa.domain.values import UtcDatetime

TICKET_ENTITY_TYPE = "TICKET"
TICKET_PREFIX = "TIC"
TICKET_PADDING = 6
TICKET_INITIAL_NUMBER = 1000
"""The first ticket number of a tenant (the ``next_number.initial_value`` default): TIC001000."""

_COLUMNS = """tenant, ticket_id, ticket_number, title, client_id, contact_name_id, location_id, status_id,
              assigned_to, entered_by, created_at, updated_at, closed_at, attributes"""


class _Unset(enum.Enum):
    UNSET = "UNSET"


UNSET: Final = _Unset.UNSET
"""Marks an omitted keyword argument, as opposed to an explicit None (which clears)."""


class Ticket(BaseModel):
    """A ticket row. Timestamps are UTC."""

    tenant: UUID
    ticket_id: UUID
    ticket_number: str
    title: str
    client_id: UUID | None
    contact_name_id: UUID | None
    location_id: UUID | None
    status_id: UUID | None
    assigned_to: UUID | None
    entered_by: UUID | None
    created_at: UtcDatetime
    updated_at: UtcDatetime
    closed_at: UtcDatetime | None
    attributes: dict[str, Any] | None


class TicketClientAssignment(BaseModel):
    """Result of ``assign_ticket_client`` (reference: clients.assign_to_ticket output)."""

    ticket_id: UUID
    previous_client_id: UUID | None
    current_client_id: UUID | None
    previous_contact_id: UUID | None
    current_contact_id: UUID | None
    previous_location_id: UUID | None
    current_location_id: UUID | None


class TicketContactAssignment(BaseModel):
    """Result of ``assign_ticket_contact`` (reference: contacts.assign_to_ticket output)."""

    ticket_id: UUID
    previous_contact_id: UUID | None
    current_contact_id: UUID | None


# -- reads -----------------------------------------------------------------------------------------


async def _ticket(conn: AsyncConnection, tenant: UUID, ticket_id: UUID, *, lock: bool = False) -> Ticket | None:
    row = (
        await conn.execute(
            text(
                f"""SELECT {_COLUMNS} FROM tickets WHERE tenant = :tenant AND ticket_id = :ticket_id
                    {"FOR UPDATE" if lock else ""}"""
            ),
            {"tenant": tenant, "ticket_id": ticket_id},
        )
    ).first()
    return Ticket(**row._mapping) if row else None


async def find_ticket(conn: AsyncConnection, tenant: UUID, ticket_id: UUID) -> Ticket | None:
    """The ticket with ``ticket_id`` in ``tenant``, or None (also for another tenant's id)."""
    return await _ticket(conn, tenant, ticket_id)


async def get_ticket(conn: AsyncConnection, tenant: UUID, ticket_id: UUID) -> Ticket:
    """The ticket with ``ticket_id`` in ``tenant``. Raises NotFoundError("Ticket not found", field="ticket_id")."""
    ticket = await _ticket(conn, tenant, ticket_id)
    if ticket is None:
        raise NotFoundError("Ticket not found", field="ticket_id")
    return ticket


async def count_tickets_for_client(conn: AsyncConnection, tenant: UUID, client_id: UUID) -> int:
    """Tickets of the client (reference: the clients.delete dependency count)."""
    result = await conn.execute(
        text("SELECT count(*) FROM tickets WHERE tenant = :tenant AND client_id = :client_id"),
        {"tenant": tenant, "client_id": client_id},
    )
    return result.scalar_one()


async def count_tickets_for_contact(conn: AsyncConnection, tenant: UUID, contact_id: UUID) -> int:
    """Tickets whose contact is ``contact_id`` (reference: the contacts.delete dependency count)."""
    result = await conn.execute(
        text("SELECT count(*) FROM tickets WHERE tenant = :tenant AND contact_name_id = :contact_id"),
        {"tenant": tenant, "contact_id": contact_id},
    )
    return result.scalar_one()


async def _ticket_status(conn: AsyncConnection, tenant: UUID, status_id: UUID | None) -> tuple[UUID | None, bool]:
    """``(status_id, is_closed)``: the given ticket status, or the tenant's default ticket status (None when it
    has none). Raises NotFoundError("Ticket status not found", field="status_id")."""
    if status_id is None:
        row = (
            await conn.execute(
                text(
                    """SELECT status_id, is_closed FROM statuses
                        WHERE tenant = :tenant AND status_type = 'ticket' AND is_default FOR KEY SHARE"""
                ),
                {"tenant": tenant},
            )
        ).first()
        return (row.status_id, row.is_closed) if row else (None, False)
    row = (
        await conn.execute(
            text(
                """SELECT status_id, is_closed FROM statuses
                    WHERE tenant = :tenant AND status_id = :id AND status_type = 'ticket' FOR KEY SHARE"""
            ),
            {"tenant": tenant, "id": status_id},
        )
    ).first()
    if row is None:
        raise NotFoundError("Ticket status not found", field="status_id")
    return row.status_id, row.is_closed


# -- writes ----------------------------------------------------------------------------------------


async def create_ticket(
    conn: AsyncConnection,
    tenant: UUID,
    *,
    title: str,
    client_id: UUID | None = None,
    contact_id: UUID | None = None,
    location_id: UUID | None = None,
    status_id: UUID | None = None,
    entered_by: UUID | None = None,
    ticket_id: UUID | None = None,
) -> Ticket:
    """Open a ticket numbered from the tenant's ``TICKET`` series (``TIC001000``, ``TIC001001``, ...).

    ``title`` is trimmed and required. The client is ``client_id``, else the contact's client, else the
    location's client (a ticket for a contact belongs to the contact's client). The contact and the location
    must belong to that client. ``status_id`` must be a ticket status of the tenant; None takes the tenant's
    default ticket status (none when the tenant has no default). A closed status sets ``closed_at``.
    ``entered_by`` is recorded as given. ``ticket_id`` (default: new) makes a retried call safe: it returns
    ConflictError(field="ticket_id") rather than a second ticket.

    Raises ValidationError("title is required", field="title"), NotFoundError: "Client not found"
    (client_id), "Contact not found" (contact_id), "Location not found" (location_id), "Ticket status not
    found" (status_id); ValidationError: "contact_id must belong to the selected client" (contact_id),
    "location_id must belong to the selected client" (location_id); ConflictError(field="ticket_id").
    Reference: tickets created by the workflow ticket actions; numbering: generate_next_number.
    """
    cleaned = (title or "").strip()
    if not cleaned:
        raise ValidationError("title is required", field="title")
    if client_id is not None:
        await require_client(conn, tenant, client_id)
    contact_client_id = await contact_client(conn, tenant, contact_id) if contact_id is not None else None
    location_client_id = await location_client(conn, tenant, location_id) if location_id is not None else None
    if client_id is None:
        client_id = contact_client_id if contact_id is not None else location_client_id
    if contact_id is not None and contact_client_id != client_id:
        raise ValidationError("contact_id must belong to the selected client", field="contact_id")
    if location_id is not None and location_client_id != client_id:
        raise ValidationError("location_id must belong to the selected client", field="location_id")
    status, closed = await _ticket_status(conn, tenant, status_id)
    number = await next_number(
        conn, tenant, TICKET_ENTITY_TYPE, prefix=TICKET_PREFIX, padding=TICKET_PADDING, initial=TICKET_INITIAL_NUMBER
    )
    try:
        async with conn.begin_nested():
            result = await conn.execute(
                text(
                    f"""INSERT INTO tickets (tenant, ticket_id, ticket_number, title, client_id, contact_name_id,
                                             location_id, status_id, entered_by, closed_at)
                        VALUES (:tenant, :ticket_id, :number, :title, :client_id, :contact_id, :location_id,
                                :status_id, :entered_by, CASE WHEN :closed THEN now() END)
                        RETURNING {_COLUMNS}"""
                ),
                {
                    "tenant": tenant,
                    "ticket_id": ticket_id or uuid4(),
                    "number": number,
                    "title": cleaned,
                    "client_id": client_id,
                    "contact_id": contact_id,
                    "location_id": location_id,
                    "status_id": status,
                    "entered_by": entered_by,
                    "closed": closed,
                },
            )
    except IntegrityError as exc:
        found = violation(exc)
        constraint = found.constraint if found else None
        if constraint == "pk_tickets":
            raise ConflictError(f"ticket {ticket_id} already exists", field="ticket_id") from exc
        if constraint == "uq_tickets_tenant_ticket_number":
            raise ConflictError(f"ticket number {number} is already taken", field="ticket_number") from exc
        raise
    return Ticket(**result.one()._mapping)


async def assign_ticket_client(
    conn: AsyncConnection,
    tenant: UUID,
    ticket_id: UUID,
    *,
    client_id: UUID,
    contact_id: UUID | None | _Unset = UNSET,
    location_id: UUID | None | _Unset = UNSET,
) -> TicketClientAssignment:
    """Move a ticket to ``client_id`` and optionally set or clear its contact and location.

    Checks, in order: the client exists, the ticket exists (locked), a non-null ``contact_id`` exists and
    belongs to the client, a non-null ``location_id`` exists and belongs to the client. Then sets the
    ticket's client and ``updated_at``; the contact (``contact_name_id``) and location change only when
    their keyword is passed (None clears); omitted ones keep their current values, even when those belong
    to the previous client. Returns the previous and current ids.

    Raises NotFoundError: "Client not found" (client_id), "Ticket not found" (ticket_id), "Contact not
    found" (contact_id), "Location not found" (location_id); ValidationError: "contact_id must belong to
    the selected client" (contact_id), "location_id must belong to the selected client" (location_id).
    Reference: clients.assign_to_ticket.
    """
    await require_client(conn, tenant, client_id)
    ticket = await _ticket(conn, tenant, ticket_id, lock=True)
    if ticket is None:
        raise NotFoundError("Ticket not found", field="ticket_id")
    if contact_id not in (UNSET, None) and await contact_client(conn, tenant, contact_id) != client_id:
        raise ValidationError("contact_id must belong to the selected client", field="contact_id")
    if location_id not in (UNSET, None) and await location_client(conn, tenant, location_id) != client_id:
        raise ValidationError("location_id must belong to the selected client", field="location_id")
    contact = ticket.contact_name_id if contact_id is UNSET else contact_id
    location = ticket.location_id if location_id is UNSET else location_id
    await conn.execute(
        text(
            """UPDATE tickets SET client_id = :client_id, contact_name_id = :contact_id, location_id = :location_id,
                                  updated_at = now()
                WHERE tenant = :tenant AND ticket_id = :ticket_id"""
        ),
        {
            "tenant": tenant,
            "ticket_id": ticket_id,
            "client_id": client_id,
            "contact_id": contact,
            "location_id": location,
        },
    )
    return TicketClientAssignment(
        ticket_id=ticket_id,
        previous_client_id=ticket.client_id,
        current_client_id=client_id,
        previous_contact_id=ticket.contact_name_id,
        current_contact_id=contact,
        previous_location_id=ticket.location_id,
        current_location_id=location,
    )


async def assign_ticket_contact(
    conn: AsyncConnection, tenant: UUID, ticket_id: UUID, *, contact_id: UUID
) -> TicketContactAssignment:
    """Set the ticket's contact; the ticket's client is unchanged.

    The ticket (locked) and the contact must exist; when the ticket has a client, the contact must belong to
    it. Sets ``contact_name_id`` and ``updated_at``.
    Raises NotFoundError "Ticket not found" (ticket_id), "Contact not found" (contact_id);
    ValidationError("Contact must belong to the ticket client", field="contact_id").
    Reference: contacts.assign_to_ticket.
    """
    ticket = await _ticket(conn, tenant, ticket_id, lock=True)
    if ticket is None:
        raise NotFoundError("Ticket not found", field="ticket_id")
    client_of_contact = await contact_client(conn, tenant, contact_id)
    if ticket.client_id is not None and client_of_contact != ticket.client_id:
        raise ValidationError("Contact must belong to the ticket client", field="contact_id")
    await conn.execute(
        text(
            """UPDATE tickets SET contact_name_id = :contact_id, updated_at = now()
                WHERE tenant = :tenant AND ticket_id = :ticket_id"""
        ),
        {"tenant": tenant, "ticket_id": ticket_id, "contact_id": contact_id},
    )
    return TicketContactAssignment(
        ticket_id=ticket_id, previous_contact_id=ticket.contact_name_id, current_contact_id=contact_id
    )
