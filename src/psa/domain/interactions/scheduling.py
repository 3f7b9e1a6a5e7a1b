"""Scheduling a follow-up CRM activity: the rules that tie it to a client, contact and ticket, then the insert
(reference: crm.schedule_activity; crm.complete_activity's next follow-up uses the same rules)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncConnection

from psa.domain import tickets
from psa.domain.errors import NotFoundError, ValidationError
from psa.domain.interactions.models import Activity, Interaction, Visibility
from psa.domain.interactions.search import require_user
from psa.domain.interactions.service import check_activity_type_and_status, create_interaction, get_activity
from psa.domain.lookups import contact_client, require_client


class FollowUp(BaseModel):
    """A follow-up to schedule: what it links to (a client, or a contact whose client is taken; optionally a
    ticket), its type, title, owner and times (UTC), and the optional status, duration (minutes), visibility,
    category and tags."""

    client_id: UUID | None = None
    contact_id: UUID | None = None
    ticket_id: UUID | None = None
    type_id: UUID
    title: str
    owner: UUID
    notes: str | None = None
    status_id: UUID | None = None
    start_time: datetime
    end_time: datetime | None = None
    duration: int | None = None
    visibility: Visibility | None = None
    category: str | None = None
    tags: list[str] | None = None


async def _follow_up_client(
    conn: AsyncConnection, tenant: UUID, *, client_id: UUID | None, contact_id: UUID | None, ticket_id: UUID | None
) -> UUID:
    """The client a follow-up belongs to, after the reference's checks in order: the contact exists and, when
    ``client_id`` is given, belongs to it (its client is taken otherwise); some client results; the client
    exists; the ticket exists, belongs to that client (when it has one) and to the contact (when both have
    one). Every check locks what it read against deletion until commit.

    Raises NotFoundError "Contact not found" (contact_id), "Client not found" (client_id), "Ticket not found"
    ``{ticket_id}``; ValidationError "contact_id must belong to the selected client" ``{contact_id,
    client_id}``, "Unable to resolve a client from client_id/contact_id", "ticket_id must belong to the
    selected client" ``{ticket_id}``, "ticket_id contact does not match the selected contact_id"
    ``{ticket_id}``."""
    if contact_id is not None:
        client_of_contact = await contact_client(conn, tenant, contact_id)
        if client_id is not None and client_of_contact != client_id:
            raise ValidationError(
                "contact_id must belong to the selected client",
                details={"contact_id": str(contact_id), "client_id": str(client_id)},
            )
        client_id = client_of_contact or client_id
    if client_id is None:
        raise ValidationError("Unable to resolve a client from client_id/contact_id")
    await require_client(conn, tenant, client_id)
    if ticket_id is not None:
        ticket = await tickets.find_ticket(conn, tenant, ticket_id)
        if ticket is None:
            raise NotFoundError("Ticket not found", details={"ticket_id": str(ticket_id)})
        if ticket.client_id is not None and ticket.client_id != client_id:
            raise ValidationError("ticket_id must belong to the selected client", details={"ticket_id": str(ticket_id)})
        if ticket.contact_name_id is not None and contact_id is not None and ticket.contact_name_id != contact_id:
            raise ValidationError(
                "ticket_id contact does not match the selected contact_id", details={"ticket_id": str(ticket_id)}
            )
    return client_id


async def schedule_activity(conn: AsyncConnection, tenant: UUID, follow_up: FollowUp) -> tuple[Interaction, Activity]:
    """Schedule ``follow_up``; returns the interaction written and the same as an activity. Its client is
    resolved and checked (``_follow_up_client``), then its type and status (ValidationError ``INVALID_TYPE`` /
    ``INVALID_STATUS``) and its owner (NotFoundError "Assigned user not found"); the interaction is dated at the
    start time, internal unless ``visibility`` says otherwise, with the tenant's default status when none is
    given (``create_interaction`` derives end and duration and applies its own rules)."""
    client_id = await _follow_up_client(
        conn, tenant, client_id=follow_up.client_id, contact_id=follow_up.contact_id, ticket_id=follow_up.ticket_id
    )
    await check_activity_type_and_status(conn, tenant, type_id=follow_up.type_id, status_id=follow_up.status_id)
    await require_user(conn, tenant, follow_up.owner, "Assigned user not found")
    created = await create_interaction(
        conn,
        tenant,
        type_id=follow_up.type_id,
        title=follow_up.title,
        user_id=follow_up.owner,
        client_id=client_id,
        contact_id=follow_up.contact_id,
        ticket_id=follow_up.ticket_id,
        notes=follow_up.notes,
        interaction_date=follow_up.start_time,
        start_time=follow_up.start_time,
        end_time=follow_up.end_time,
        duration=follow_up.duration,
        status_id=follow_up.status_id,
        visibility=follow_up.visibility or "internal",
        category=follow_up.category,
        tags=follow_up.tags,
    )
    return created, await get_activity(conn, tenant, created.interaction_id)
