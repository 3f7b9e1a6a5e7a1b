"""``clients.add_tag``, ``assign_to_ticket``, ``add_note`` and ``add_interaction``: the actions that attach a
client to other records."""

from __future__ import annotations

from uuid import UUID

from pydantic import BaseModel, Field, field_validator
from pydantic_core import PydanticCustomError

from psa.automation.actions.clients.models import READ, UPDATE, client_id_field
from psa.automation.actions.common import (
    INT4_MAX,
    IsoDateTime,
    IsoDateTimeIn,
    NoteBody,
    TagResult,
    TagText,
    append_entity_note,
    ensure_tags,
    idempotency_key_field,
)
from psa.automation.events import InteractionLogged
from psa.automation.registry import ActionContext, ActionSet, picker
from psa.domain import interactions, lookups, tickets

actions = ActionSet()
"""This module's actions (the package lists them in catalog order)."""


# -- clients.add_tag ---------------------------------------------------------------------------------------


class AddTagInput(BaseModel):
    client_id: UUID = client_id_field()
    tags: list[TagText] = Field(min_length=1, description="Tags to attach")
    idempotency_key: str | None = idempotency_key_field()


class AddTagOutput(BaseModel):
    client_id: UUID
    added: list[TagResult]
    existing: list[TagResult]
    added_count: int
    existing_count: int


@actions.define(
    "clients.add_tag",
    "Add Tag to Client",
    "Attach one or more tags to a client with idempotent mapping behavior",
    permissions=(UPDATE,),
    idempotency="action",
)
async def add_tag(ctx: ActionContext, inp: AddTagInput) -> AddTagOutput:
    """Reference clients.add_tag: ensure each tag; tags the client already has are reported as existing."""
    await lookups.require_client(ctx.conn, ctx.tenant, inp.client_id, cite="id")
    added, existing = await ensure_tags(ctx, inp.client_id, "client", inp.tags)
    await ctx.audit(
        {"client_id": str(inp.client_id), "added_count": len(added), "existing_count": len(existing)},
        {"client_id": str(inp.client_id)},
    )
    return AddTagOutput(
        client_id=inp.client_id,
        added=added,
        existing=existing,
        added_count=len(added),
        existing_count=len(existing),
    )


# -- clients.assign_to_ticket ------------------------------------------------------------------------------


class AssignToTicketInput(BaseModel):
    client_id: UUID = client_id_field()
    ticket_id: UUID = Field(description="Ticket id", json_schema_extra=picker("ticket"))
    contact_id: UUID | None = Field(
        default=None,
        description="Optional contact id (null clears)",
        json_schema_extra=picker("contact", ["client_id"]),
    )
    location_id: UUID | None = Field(
        default=None,
        description="Optional location id (null clears)",
        json_schema_extra=picker("client-location", ["client_id"]),
    )
    reason: str | None = None
    comment: str | None = None


AssignToTicketOutput = tickets.TicketClientAssignment


@actions.define(
    "clients.assign_to_ticket",
    "Assign Client to Ticket",
    "Move a ticket to a client and optionally set/clear contact and location",
    permissions=(READ, ("ticket", "update")),
    idempotency="engine",
)
async def assign_to_ticket(ctx: ActionContext, inp: AssignToTicketInput) -> AssignToTicketOutput:
    """Reference clients.assign_to_ticket: move the ticket to the client; ``contact_id`` / ``location_id``
    change only when their key is present (null clears) and must belong to the client."""
    await lookups.require_client(ctx.conn, ctx.tenant, inp.client_id, cite="id")
    given = inp.model_fields_set
    options = {key: getattr(inp, key) for key in ("contact_id", "location_id") if key in given}
    result = await tickets.assign_ticket_client(ctx.conn, ctx.tenant, inp.ticket_id, client_id=inp.client_id, **options)
    output = result
    await ctx.audit(
        output.model_dump(mode="json"),
        {"client_id": str(inp.client_id), "reason": inp.reason, "comment": inp.comment},
    )
    return output


# -- clients.add_note --------------------------------------------------------------------------------------


class AddNoteInput(BaseModel):
    client_id: UUID = client_id_field()
    body: NoteBody
    idempotency_key: str | None = idempotency_key_field()


class AddNoteOutput(BaseModel):
    client_id: UUID
    document_id: UUID
    created_document: bool
    updated_at: IsoDateTime


@actions.define(
    "clients.add_note",
    "Add Note to Client",
    "Append a note block to the client notes document",
    permissions=(UPDATE,),
    idempotency="action",
)
async def add_note(ctx: ActionContext, inp: AddNoteInput) -> AddNoteOutput:
    """Reference clients.add_note: append a paragraph to the client's notes document, creating it
    ("{client_name} Notes") the first time, when NOTE_CREATED is queued."""
    await lookups.require_client(ctx.conn, ctx.tenant, inp.client_id, cite="id")
    note = await append_entity_note(ctx, "client", inp.client_id, inp.body)
    return AddNoteOutput(
        client_id=inp.client_id,
        document_id=note.document_id,
        created_document=note.created_document,
        updated_at=note.updated_at,
    )


# -- clients.add_interaction -------------------------------------------------------------------------------


class AddInteractionInput(BaseModel):
    client_id: UUID = client_id_field()
    type_id: UUID = Field(description="Interaction type id (system or tenant type)")
    title: str = Field(min_length=1)
    contact_id: UUID | None = Field(
        default=None, description="Optional contact id", json_schema_extra=picker("contact", ["client_id"])
    )
    ticket_id: UUID | None = Field(default=None, description="Optional ticket id", json_schema_extra=picker("ticket"))
    notes: str | None = None
    start_time: IsoDateTimeIn | None = None
    end_time: IsoDateTimeIn | None = None
    duration: int | None = Field(default=None, ge=0, le=INT4_MAX, description="Duration in minutes")
    status_id: UUID | None = None
    interaction_date: IsoDateTimeIn | None = None
    idempotency_key: str | None = idempotency_key_field()

    @field_validator("title")
    @classmethod
    def _title(cls, value: str) -> str:
        if not value.strip():
            raise PydanticCustomError("title", "title is required")
        return value


class AddInteractionOutput(BaseModel):
    interaction_id: UUID
    client_id: UUID
    contact_id: UUID | None
    ticket_id: UUID | None
    type_id: UUID
    status_id: UUID | None
    title: str
    notes: str | None
    interaction_date: IsoDateTime
    start_time: IsoDateTime | None
    end_time: IsoDateTime | None
    duration: int | None
    user_id: UUID


@actions.define(
    "clients.add_interaction",
    "Add Interaction to Client",
    "Log an interaction against a client using the workflow actor as owner",
    permissions=(UPDATE,),
    idempotency="action",
)
async def add_interaction(ctx: ActionContext, inp: AddInteractionInput) -> AddInteractionOutput:
    """Reference clients.add_interaction: log an interaction owned by the workflow actor; the contact and
    ticket must belong to the client; default interaction status unless ``status_id``; INTERACTION_LOGGED."""
    await lookups.require_client(ctx.conn, ctx.tenant, inp.client_id, cite="id")
    interaction = await interactions.create_interaction(
        ctx.conn,
        ctx.tenant,
        type_id=inp.type_id,
        title=inp.title,
        user_id=ctx.actor_user_id,
        client_id=inp.client_id,
        contact_id=inp.contact_id,
        ticket_id=inp.ticket_id,
        notes=inp.notes,
        interaction_date=inp.interaction_date,
        start_time=inp.start_time,
        end_time=inp.end_time,
        duration=inp.duration,
        status_id=inp.status_id,
    )
    interaction_type = await interactions.find_interaction_type(ctx.conn, ctx.tenant, interaction.type_id)
    await ctx.audit(
        {
            "interaction_id": str(interaction.interaction_id),
            "client_id": str(inp.client_id),
            "ticket_id": str(interaction.ticket_id) if interaction.ticket_id else None,
            "contact_id": str(interaction.contact_name_id) if interaction.contact_name_id else None,
            "type_id": str(interaction.type_id),
        },
        {"client_id": str(inp.client_id), "interaction_id": str(interaction.interaction_id)},
    )
    type_name = interaction_type.type_name if interaction_type else None
    await ctx.emit(InteractionLogged.of(interaction, type_name, ctx.actor_user_id))
    return AddInteractionOutput(
        interaction_id=interaction.interaction_id,
        client_id=inp.client_id,
        contact_id=interaction.contact_name_id,
        ticket_id=interaction.ticket_id,
        type_id=interaction.type_id,
        status_id=interaction.status_id,
        title=interaction.title,
        notes=interaction.notes,
        interaction_date=interaction.interaction_date,
        start_time=interaction.start_time,
        end_time=interaction.end_time,
        duration=interaction.duration,
        user_id=interaction.user_id,
    )
