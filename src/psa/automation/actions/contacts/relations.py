"""``contacts.add_tag``, ``remove_tag``, ``assign_to_ticket``, ``add_note``, ``add_interaction``,
``add_to_client`` and ``move_to_client``: the actions that attach a contact to other records (tests:
tests/automation/test_contacts_relations.py)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from pydantic import BaseModel, Field, field_validator
from pydantic_core import PydanticCustomError

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
    normalize_tags,
)
from psa.automation.actions.contacts.lookup import require_contact
from psa.automation.actions.contacts.models import READ, UPDATE, ContactSummary, contact_id_field, summary
from psa.automation.events import InteractionLogged
from psa.automation.registry import ActionContext, ActionSet, picker
from psa.domain import contacts, interactions, lookups, tags, tickets
from psa.domain.contacts import Contact
from psa.domain.errors import ConflictError, NotFoundError
from psa.domain.values import name_key

actions = ActionSet()
"""This module's actions (the package lists them in catalog order)."""


# -- contacts.add_tag / contacts.remove_tag ----------------------------------------------------------------


class AddTagInput(BaseModel):
    contact_id: UUID = contact_id_field()
    tags: list[TagText] = Field(min_length=1, description="Tags to attach")
    idempotency_key: str | None = idempotency_key_field()


class AddTagOutput(BaseModel):
    contact_id: UUID
    added: list[TagResult]
    existing: list[TagResult]
    added_count: int
    existing_count: int


@actions.define(
    "contacts.add_tag",
    "Add Tag to Contact",
    "Attach one or more tags to a contact with idempotent behavior",
    permissions=(UPDATE,),
    idempotency="action",
)
async def add_tag(ctx: ActionContext, inp: AddTagInput) -> AddTagOutput:
    """Reference contacts.add_tag: definitions and mappings are looked up first and created when missing
    (never through a unique violation); tags the contact already has are reported as existing."""
    await require_contact(ctx, inp.contact_id)
    added, existing = await ensure_tags(ctx, inp.contact_id, "contact", inp.tags)
    await ctx.audit(
        {"contact_id": str(inp.contact_id), "added_count": len(added), "existing_count": len(existing)},
        {"contact_id": str(inp.contact_id)},
    )
    return AddTagOutput(
        contact_id=inp.contact_id,
        added=added,
        existing=existing,
        added_count=len(added),
        existing_count=len(existing),
    )


class RemoveTagInput(BaseModel):
    contact_id: UUID = contact_id_field()
    tags: list[TagText] = Field(min_length=1, description="Tags to remove (matched by name, case and spacing aside)")


class RemoveTagOutput(BaseModel):
    contact_id: UUID
    removed: list[TagResult]
    not_present: list[str]
    removed_count: int


@actions.define(
    "contacts.remove_tag",
    "Remove Tag from Contact",
    "Remove one or more tags from a contact with idempotent behavior",
    permissions=(UPDATE,),
    idempotency="engine",
)
async def remove_tag(ctx: ActionContext, inp: RemoveTagInput) -> RemoveTagOutput:
    """Beyond the reference (issue 5): remove tags from a contact. Each given text removes the contact's tag of
    the same text (an equal ``name_key``); texts the contact does not have are reported in ``not_present``, so
    repeating the call is harmless. Tag definitions stay."""
    await require_contact(ctx, inp.contact_id)
    current = await tags.tags_for(ctx.conn, ctx.tenant, inp.contact_id, "contact")
    removed: list[TagResult] = []
    not_present: list[str] = []
    for tag_text in normalize_tags(inp.tags):
        matching = [m for m in current if name_key(m.tag_text) == name_key(tag_text)]
        if not matching:
            not_present.append(tag_text)
        for mapping in matching:
            await tags.remove_tag(ctx.conn, ctx.tenant, tag_id=mapping.tag_id, tagged_id=inp.contact_id)
            removed.append(TagResult(tag_id=mapping.tag_id, tag_text=mapping.tag_text, mapping_id=mapping.mapping_id))
    await ctx.audit(
        {"contact_id": str(inp.contact_id), "removed_count": len(removed), "not_present": not_present},
        {"contact_id": str(inp.contact_id)},
    )
    return RemoveTagOutput(
        contact_id=inp.contact_id, removed=removed, not_present=not_present, removed_count=len(removed)
    )


# -- contacts.assign_to_ticket -----------------------------------------------------------------------------


class AssignToTicketInput(BaseModel):
    contact_id: UUID = contact_id_field()
    ticket_id: UUID = Field(description="Ticket id", json_schema_extra=picker("ticket"))
    reason: str | None = None
    comment: str | None = None


AssignToTicketOutput = tickets.TicketContactAssignment


@actions.define(
    "contacts.assign_to_ticket",
    "Assign Contact to Ticket",
    "Set a ticket contact with tenant/client relationship validation",
    permissions=(("ticket", "update"), READ),
    idempotency="engine",
)
async def assign_to_ticket(ctx: ActionContext, inp: AssignToTicketInput) -> AssignToTicketOutput:
    """Reference contacts.assign_to_ticket: sets only the ticket's contact; the contact must belong to the
    ticket's client when it has one (VALIDATION_ERROR "Contact must belong to the ticket client")."""
    result = await tickets.assign_ticket_contact(ctx.conn, ctx.tenant, inp.ticket_id, contact_id=inp.contact_id)
    await ctx.audit(
        result.model_dump(mode="json"),
        {"contact_id": str(inp.contact_id), "reason": inp.reason, "comment": inp.comment},
    )
    return result


# -- contacts.add_note -------------------------------------------------------------------------------------


class AddNoteInput(BaseModel):
    contact_id: UUID = contact_id_field()
    body: NoteBody
    idempotency_key: str | None = idempotency_key_field()


class AddNoteOutput(BaseModel):
    contact_id: UUID
    document_id: UUID
    created_document: bool
    updated_at: IsoDateTime


@actions.define(
    "contacts.add_note",
    "Add Note to Contact",
    "Append a note block to the contact notes document",
    permissions=(UPDATE,),
    idempotency="action",
)
async def add_note(ctx: ActionContext, inp: AddNoteInput) -> AddNoteOutput:
    """Reference contacts.add_note: append a paragraph to the contact's notes document, creating it
    ("{full_name} Notes") the first time, when NOTE_CREATED is queued. No interaction is written."""
    note = await append_entity_note(ctx, "contact", inp.contact_id, inp.body)
    return AddNoteOutput(
        contact_id=inp.contact_id,
        document_id=note.document_id,
        created_document=note.created_document,
        updated_at=note.updated_at,
    )


# -- contacts.add_interaction ------------------------------------------------------------------------------


class AddInteractionInput(BaseModel):
    contact_id: UUID = contact_id_field()
    interaction_type_id: UUID = Field(description="Interaction type id (system or tenant type)")
    title: str = Field(min_length=1)
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
    contact_id: UUID
    client_id: UUID
    ticket_id: UUID | None
    interaction_type_id: UUID
    status_id: UUID | None
    title: str
    notes: str | None
    interaction_date: IsoDateTime
    start_time: IsoDateTime | None
    end_time: IsoDateTime | None
    duration: int | None
    user_id: UUID


@actions.define(
    "contacts.add_interaction",
    "Add Interaction to Contact",
    "Log an interaction for a contact using the workflow actor as owner",
    permissions=(UPDATE,),
    idempotency="action",
)
async def add_interaction(ctx: ActionContext, inp: AddInteractionInput) -> AddInteractionOutput:
    """Reference contacts.add_interaction: log an interaction owned by the workflow actor on the contact's
    client (a contact without a client is refused); the ticket must belong to that client; the default
    interaction status unless ``status_id``; INTERACTION_LOGGED."""
    try:
        interaction = await interactions.create_interaction(
            ctx.conn,
            ctx.tenant,
            type_id=inp.interaction_type_id,
            title=inp.title,
            user_id=ctx.actor_user_id,
            contact_id=inp.contact_id,
            ticket_id=inp.ticket_id,
            notes=inp.notes,
            interaction_date=inp.interaction_date,
            start_time=inp.start_time,
            end_time=inp.end_time,
            duration=inp.duration,
            status_id=inp.status_id,
        )
    except NotFoundError as exc:  # the domain names its own parameter; the input calls it interaction_type_id
        if exc.field != "type_id":
            raise
        raise NotFoundError(exc.message, field="interaction_type_id") from None
    interaction_type = await interactions.find_interaction_type(ctx.conn, ctx.tenant, interaction.type_id)
    await ctx.audit(
        {
            "interaction_id": str(interaction.interaction_id),
            "contact_id": str(inp.contact_id),
            "client_id": str(interaction.client_id),
            "ticket_id": str(interaction.ticket_id) if interaction.ticket_id else None,
            "type_id": str(interaction.type_id),
        },
        {"contact_id": str(inp.contact_id), "interaction_id": str(interaction.interaction_id)},
    )
    type_name = interaction_type.type_name if interaction_type else None
    await ctx.emit(InteractionLogged.of(interaction, type_name, ctx.actor_user_id))
    return AddInteractionOutput(
        interaction_id=interaction.interaction_id,
        contact_id=inp.contact_id,
        client_id=interaction.client_id,
        ticket_id=interaction.ticket_id,
        interaction_type_id=interaction.type_id,
        status_id=interaction.status_id,
        title=interaction.title,
        notes=interaction.notes,
        interaction_date=interaction.interaction_date,
        start_time=interaction.start_time,
        end_time=interaction.end_time,
        duration=interaction.duration,
        user_id=interaction.user_id,
    )


# -- contacts.add_to_client / contacts.move_to_client ------------------------------------------------------


class AddToClientInput(BaseModel):
    contact_id: UUID = contact_id_field()
    client_id: UUID = Field(description="Client id", json_schema_extra=picker("client"))


class MoveToClientInput(BaseModel):
    contact_id: UUID = contact_id_field()
    target_client_id: UUID = Field(description="Client to move the contact to", json_schema_extra=picker("client"))
    expected_current_client_id: UUID | None = Field(
        default=None,
        description="Guard: the contact's current client (null: unassigned); absent: no guard",
        json_schema_extra=picker("client"),
    )


class ClientAssignmentOutput(BaseModel):
    contact_id: UUID
    previous_client_id: UUID | None
    current_client_id: UUID | None
    noop: bool
    contact: ContactSummary


async def _assign_client(
    ctx: ActionContext, contact: Contact, client_id: UUID, details: dict[str, Any]
) -> ClientAssignmentOutput:
    """Set the contact's client unless it is already ``client_id`` (``noop``); audit either way."""
    noop = contact.client_id == client_id
    after = (
        contact
        if noop
        else await contacts.update_contact(ctx.conn, ctx.tenant, contact.contact_name_id, {"client_id": client_id})
    )
    previous = str(contact.client_id) if contact.client_id else None
    await ctx.audit(
        {
            "contact_id": str(contact.contact_name_id),
            "previous_client_id": previous,
            "current_client_id": str(client_id),
            "noop": noop,
        },
        {"contact_id": str(contact.contact_name_id), **details},
    )
    return ClientAssignmentOutput(
        contact_id=contact.contact_name_id,
        previous_client_id=contact.client_id,
        current_client_id=client_id,
        noop=noop,
        contact=summary(after),
    )


@actions.define(
    "contacts.add_to_client",
    "Add Contact to Client",
    "Assign an unassigned contact to a client with idempotent semantics",
    permissions=(UPDATE,),
    idempotency="engine",
)
async def add_to_client(ctx: ActionContext, inp: AddToClientInput) -> ClientAssignmentOutput:
    """Reference contacts.add_to_client: client then contact must exist; an unassigned contact is assigned,
    one already on this client is a no-op, one on another client is a CONFLICT (use move_to_client)."""
    await lookups.require_client(ctx.conn, ctx.tenant, inp.client_id)
    contact = await require_contact(ctx, inp.contact_id, lock=True)
    if contact.client_id is not None and contact.client_id != inp.client_id:
        raise ConflictError(
            "Contact is already assigned to a different client; use contacts.move_to_client",
            details={
                "contact_id": str(inp.contact_id),
                "previous_client_id": str(contact.client_id),
                "requested_client_id": str(inp.client_id),
            },
        )
    return await _assign_client(ctx, contact, inp.client_id, {})


@actions.define(
    "contacts.move_to_client",
    "Move Contact to Client",
    "Move a contact to another client with optional source-client guard",
    permissions=(UPDATE,),
    idempotency="engine",
)
async def move_to_client(ctx: ActionContext, inp: MoveToClientInput) -> ClientAssignmentOutput:
    """Reference contacts.move_to_client: target client then contact must exist; when
    ``expected_current_client_id`` is given (null = unassigned) it must be the contact's current client, else
    CONFLICT naming it (as the reference answers); already there is a no-op."""
    await lookups.require_client(ctx.conn, ctx.tenant, inp.target_client_id)
    contact = await require_contact(ctx, inp.contact_id, lock=True)
    expected = inp.expected_current_client_id
    if "expected_current_client_id" in inp.model_fields_set and expected != contact.client_id:
        raise ConflictError(
            "Contact current client did not match expected_current_client_id",
            field="expected_current_client_id",
            details={
                "contact_id": str(inp.contact_id),
                "expected_current_client_id": str(expected) if expected else None,
                "actual_current_client_id": str(contact.client_id) if contact.client_id else None,
            },
        )
    return await _assign_client(
        ctx, contact, inp.target_client_id, {"expected_current_client_id": str(expected) if expected else None}
    )
