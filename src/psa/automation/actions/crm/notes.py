"""crm.create_activity_note: a note (an interaction of the system type ``Note``) on a client, contact or ticket."""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, Field, model_validator

from psa.automation.actions.common import (
    IsoDateTime,
    field_error,
)
from psa.automation.actions.crm.models import (
    RequiredText,
    str_or_none,
)
from psa.automation.registry import ActionContext, ActionSet
from psa.domain import clients, contacts, interactions, tickets
from psa.domain.errors import InternalError, NotFoundError
from psa.domain.interactions import Visibility

actions = ActionSet()
"""crm.create_activity_note."""


class NoteTarget(BaseModel):
    type: Literal["client", "contact", "ticket", "project"]
    id: UUID


class CreateActivityNoteInput(BaseModel):
    target: NoteTarget
    body: RequiredText = Field(description="Note text")
    visibility: Visibility = "internal"
    tags: list[str] | None = None
    category: str | None = None

    @model_validator(mode="after")
    def _project_visibility(self) -> CreateActivityNoteInput:
        if self.visibility == "client_visible" and self.target.type == "project":
            raise field_error(
                type(self), "visibility", "client_visible notes are not supported for project targets", self.visibility
            )
        return self


class CreateActivityNoteOutput(BaseModel):
    note_id: UUID
    created_at: IsoDateTime
    target_type: str
    target_id: UUID
    target_summary: dict[str, Any] | None


async def _note_links(ctx: ActionContext, target: NoteTarget) -> tuple[dict[str, UUID | None], dict[str, Any]]:
    """The interaction links of a note target and its target_summary; NotFoundError "{Type} not found"."""
    missing = NotFoundError(f"{target.type.capitalize()} not found")
    if target.type == "client":
        client = await clients.find_client(ctx.conn, ctx.tenant, target.id)
        if client is None:
            raise missing
        return {"client_id": client.client_id}, {"client_id": str(client.client_id), "client_name": client.client_name}
    if target.type == "contact":
        contact = await contacts.find_contact(ctx.conn, ctx.tenant, target.id)
        if contact is None:
            raise missing
        return (
            {"contact_id": contact.contact_name_id, "client_id": contact.client_id},
            {
                "contact_id": str(contact.contact_name_id),
                "full_name": contact.full_name,
                "email": contact.email,
                "client_id": str_or_none(contact.client_id),
            },
        )
    if target.type == "ticket":
        ticket = await tickets.find_ticket(ctx.conn, ctx.tenant, target.id)
        if ticket is None:
            raise missing
        return (
            {"ticket_id": ticket.ticket_id, "client_id": ticket.client_id, "contact_id": ticket.contact_name_id},
            {
                "ticket_id": str(ticket.ticket_id),
                "ticket_number": ticket.ticket_number,
                "title": ticket.title,
                "client_id": str_or_none(ticket.client_id),
            },
        )
    raise missing  # no projects in this back end yet


def _note_permissions(inp: CreateActivityNoteInput) -> tuple[tuple[str, str], ...]:
    """``{client|contact|ticket|project}:update`` by target type (reference)."""
    return ((inp.target.type, "update"),)


@actions.define(
    "crm.create_activity_note",
    "Create Activity Note",
    "Create a CRM activity note (interaction)",
    permissions=(),
    idempotency="engine",
    input_permissions=_note_permissions,
)
async def create_activity_note(ctx: ActionContext, inp: CreateActivityNoteInput) -> CreateActivityNoteOutput:
    """Reference crm.create_activity_note: an interaction of the system type ``Note`` (no status), owned by
    the actor, titled ``category`` else "Note", linked to the target and what it belongs to; no event."""
    note_type = await interactions.find_system_interaction_type(ctx.conn, "Note")
    if note_type is None:
        raise InternalError("System interaction type Note missing")
    links, target_summary = await _note_links(ctx, inp.target)
    note = await interactions.create_interaction(
        ctx.conn,
        ctx.tenant,
        type_id=note_type.type_id,
        title=(inp.category or "").strip() or "Note",
        user_id=ctx.actor_user_id,
        notes=inp.body,
        interaction_date=ctx.now,
        duration=0,
        visibility=inp.visibility,
        category=inp.category,
        tags=inp.tags,
        default_status=False,
        **links,
    )
    await ctx.audit(
        {"interaction_id": str(note.interaction_id), "target": inp.target.model_dump(mode="json")},
        {"note_id": str(note.interaction_id)},
    )
    return CreateActivityNoteOutput(
        note_id=note.interaction_id,
        created_at=note.created_at,
        target_type=inp.target.type,
        target_id=inp.target.id,
        target_summary=target_summary,
    )
