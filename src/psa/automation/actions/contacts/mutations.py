"""``contacts.create``, ``update``, ``deactivate``, ``delete``, ``duplicate`` and ``upsert``: the actions that
write a contact's own fields (tests: tests/automation/test_contacts_mutations.py)."""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, Field, model_validator
from pydantic_core import PydanticCustomError

from psa.automation.actions.common import (
    TagText,
    confirm_flag,
    ensure_tags,
    field_error,
    idempotency_key_field,
)
from psa.automation.actions.contacts.lookup import not_found, require_contact
from psa.automation.actions.contacts.models import (
    CREATE,
    DELETE,
    READ,
    UPDATE,
    AdditionalEmailRow,
    ContactSummary,
    EmailAddress,
    EmailType,
    PhoneRow,
    contact_id_field,
    domain_rows,
    summary,
)
from psa.automation.events import ContactArchived, ContactCreated, ContactUpdated
from psa.automation.registry import ActionContext, ActionSet, picker
from psa.domain import contacts, deletion, lookups, tags
from psa.domain.contacts import Contact

actions = ActionSet()
"""This module's actions (the package lists them in catalog order)."""


async def _emit_archived(ctx: ActionContext, contact: Contact, reason: str | None = None) -> None:
    """CONTACT_ARCHIVED for ``contact``, which has just become inactive."""
    await ctx.emit(ContactArchived.of(contact, ctx.actor_user_id, reason))


async def _emit_updated(ctx: ActionContext, before: Contact, after: Contact) -> None:
    """CONTACT_UPDATED when a field really changed, and CONTACT_ARCHIVED when the contact became inactive."""
    event = ContactUpdated.of(before, after, ctx.actor_user_id)
    if event.updated_fields:
        await ctx.emit(event)
    if after.is_inactive and not before.is_inactive:
        await _emit_archived(ctx, after)


# -- contacts.create ---------------------------------------------------------------------------------------


class ContactFields(BaseModel):
    """The contact fields shared by create, duplicate and upsert (reference CreateContactInput)."""

    client_id: UUID | None = Field(default=None, description="Client id", json_schema_extra=picker("client"))
    role: str | None = None
    notes: str | None = None
    is_inactive: bool | None = None
    primary_email_canonical_type: EmailType | None = None
    primary_email_custom_type: str | None = None
    phone_numbers: list[PhoneRow] | None = None
    additional_email_addresses: list[AdditionalEmailRow] | None = None

    def domain_data(self, keys: set[str] | None = None) -> dict[str, Any]:
        """The given fields (``keys``, default all that are set) as domain input; rows in display order."""
        data: dict[str, Any] = {}
        for key in keys if keys is not None else self.model_fields_set:
            if key in ("phone_numbers", "additional_email_addresses"):
                data[key] = domain_rows(getattr(self, key))
            elif key in ContactFields.model_fields or key in ("full_name", "email"):
                data[key] = getattr(self, key)
        if data.get("is_inactive", False) is None:
            del data["is_inactive"]
        return data


class CreateInput(ContactFields):
    full_name: str = Field(min_length=1)
    email: EmailAddress
    tags: list[TagText] | None = None
    idempotency_key: str | None = idempotency_key_field()


class CreateOutput(BaseModel):
    created: Literal[True] = True
    contact: ContactSummary


@actions.define(
    "contacts.create",
    "Create Contact",
    "Create a contact with optional client assignment, details, and initial tags",
    permissions=(CREATE,),
    idempotency="action",
)
async def create(ctx: ActionContext, inp: CreateInput) -> CreateOutput:
    """Reference contacts.create: client check, the contact with its phones and additional emails (contact
    model rules), initial tags; audit and CONTACT_CREATED."""
    if inp.client_id is not None:
        await lookups.require_client(ctx.conn, ctx.tenant, inp.client_id)
    contact = await contacts.create_contact(ctx.conn, ctx.tenant, inp.domain_data())
    await ensure_tags(ctx, contact.contact_name_id, "contact", inp.tags)
    await _audit_created(ctx, contact)
    return CreateOutput(contact=summary(contact))


async def _audit_created(ctx: ActionContext, contact: Contact) -> None:
    contact_id = str(contact.contact_name_id)
    await ctx.audit(
        {
            "contact_id": contact_id,
            "full_name": contact.full_name,
            "client_id": str(contact.client_id) if contact.client_id else None,
        },
        {"contact_id": contact_id},
    )
    await ctx.emit(ContactCreated.of(contact, ctx.actor_user_id))


# -- contacts.update ---------------------------------------------------------------------------------------


class UpdatePatch(BaseModel):
    """Every key optional; a key present with null clears (role, notes, client_id, the primary email type).
    ``full_name`` and ``is_inactive`` cannot be null; ``email: null`` is refused ("Primary email cannot be
    removed"). Changing ``email`` follows the primary-email promotion rules (reference: contacts.update)."""

    full_name: str = Field(default=None, min_length=1)  # type: ignore[assignment]
    email: EmailAddress | None = None
    client_id: UUID | None = Field(default=None, json_schema_extra=picker("client"))
    role: str | None = None
    notes: str | None = None
    is_inactive: bool = None  # type: ignore[assignment]
    primary_email_canonical_type: EmailType | None = None
    primary_email_custom_type: str | None = None
    primary_email_custom_type_id: UUID | None = None
    phone_numbers: list[PhoneRow] | None = None
    additional_email_addresses: list[AdditionalEmailRow] | None = None

    @model_validator(mode="after")
    def _not_empty(self) -> UpdatePatch:
        if not self.model_fields_set:
            raise PydanticCustomError("patch_empty", "patch must include at least one editable field")
        if {"primary_email_custom_type", "primary_email_custom_type_id"} <= self.model_fields_set:
            raise field_error(  # reference contacts.update: one way to name the custom type
                UpdatePatch,
                "primary_email_custom_type_id",
                "give primary_email_custom_type or primary_email_custom_type_id, not both",
                self.primary_email_custom_type_id,
            )
        return self

    def changed_fields(self) -> list[str]:
        """The given keys in schema order (reference ``changed_fields``)."""
        return [key for key in type(self).model_fields if key in self.model_fields_set]


class UpdateInput(BaseModel):
    contact_id: UUID = contact_id_field()
    patch: UpdatePatch


class UpdateOutput(BaseModel):
    contact_before: ContactSummary
    contact_after: ContactSummary
    changed_fields: list[str]


@actions.define(
    "contacts.update",
    "Edit Contact",
    "Patch editable fields on an existing contact",
    permissions=(UPDATE,),
    idempotency="engine",
)
async def update(ctx: ActionContext, inp: UpdateInput) -> UpdateOutput:
    """Reference contacts.update: patch the given fields through the contact model (phones and additional
    emails replaced wholesale when given); audit; CONTACT_UPDATED with the field diffs, and CONTACT_ARCHIVED
    when the contact became inactive."""
    patch, fields = inp.patch, inp.patch.changed_fields()
    before = await require_contact(ctx, inp.contact_id, lock=True)
    if patch.client_id is not None and patch.client_id != before.client_id:
        await lookups.require_client(ctx.conn, ctx.tenant, patch.client_id)
    changes: dict[str, Any] = {}
    for key in fields:
        if key in ("phone_numbers", "additional_email_addresses"):
            changes[key] = domain_rows(getattr(patch, key))
        elif key == "primary_email_custom_type_id":
            type_id = patch.primary_email_custom_type_id
            label = await contacts.email_type_label(ctx.conn, ctx.tenant, type_id) if type_id else None
            changes["primary_email_custom_type"] = label
        else:
            changes[key] = getattr(patch, key)
    after = await contacts.update_contact(ctx.conn, ctx.tenant, inp.contact_id, changes)
    await ctx.audit({"contact_id": str(inp.contact_id), "changed_fields": fields}, {"contact_id": str(inp.contact_id)})
    await _emit_updated(ctx, before, after)
    return UpdateOutput(contact_before=summary(before), contact_after=summary(after), changed_fields=fields)


# -- contacts.deactivate -----------------------------------------------------------------------------------


class DeactivateInput(BaseModel):
    contact_id: UUID = contact_id_field()
    reason: str | None = None


class DeactivateOutput(BaseModel):
    contact_id: UUID
    deactivated: bool
    noop: bool
    previous_is_inactive: bool
    current_is_inactive: bool
    contact: ContactSummary


@actions.define(
    "contacts.deactivate",
    "Deactivate Contact",
    "Set a contact inactive without deleting records",
    permissions=(UPDATE,),
    idempotency="engine",
)
async def deactivate(ctx: ActionContext, inp: DeactivateInput) -> DeactivateOutput:
    """Reference contacts.deactivate: an active contact becomes inactive and CONTACT_ARCHIVED is queued; an
    inactive one is left alone (``noop``). The audit row is written either way."""
    before = await require_contact(ctx, inp.contact_id, lock=True)
    after = before
    if not before.is_inactive:
        after = await contacts.update_contact(ctx.conn, ctx.tenant, inp.contact_id, {"is_inactive": True})
        await _emit_archived(ctx, after, inp.reason)
    noop = before.is_inactive
    await ctx.audit(
        {
            "contact_id": str(inp.contact_id),
            "previous_is_inactive": before.is_inactive,
            "current_is_inactive": True,
            "noop": noop,
        },
        {"contact_id": str(inp.contact_id), "reason": inp.reason},
    )
    return DeactivateOutput(
        contact_id=inp.contact_id,
        deactivated=not noop,
        noop=noop,
        previous_is_inactive=before.is_inactive,
        current_is_inactive=True,
        contact=summary(after),
    )


# -- contacts.delete ---------------------------------------------------------------------------------------


class DeleteInput(BaseModel):
    contact_id: UUID = contact_id_field()
    confirm: confirm_flag("contact")
    on_not_found: Literal["error", "return_false"] = "error"


class DeleteOutput(BaseModel):
    deleted: bool
    contact_id: UUID


@actions.define(
    "contacts.delete",
    "Delete Contact",
    "Destructive hard-delete for a contact with dependency validation",
    permissions=(DELETE,),
    idempotency="engine",
)
async def delete(ctx: ActionContext, inp: DeleteInput) -> DeleteOutput:
    """Reference contacts.delete: a contact with dependencies is refused (CONFLICT listing them, with the
    deactivate alternative); otherwise its tags, phones, emails, comments, portal invitations and notes
    document go with it."""
    contact_id = str(inp.contact_id)
    if await contacts.find_contact(ctx.conn, ctx.tenant, inp.contact_id, lock=True) is None:
        if inp.on_not_found == "error":
            raise not_found(inp.contact_id)
        await ctx.audit({"contact_id": contact_id, "deleted": False}, {"contact_id": contact_id})
        return DeleteOutput(deleted=False, contact_id=inp.contact_id)
    await deletion.check_contact_deletable(ctx.conn, ctx.tenant, inp.contact_id)
    await contacts.delete_contact(ctx.conn, ctx.tenant, inp.contact_id)
    await ctx.audit({"contact_id": contact_id, "deleted": True}, {"contact_id": contact_id})
    return DeleteOutput(deleted=True, contact_id=inp.contact_id)


# -- contacts.duplicate ------------------------------------------------------------------------------------


class DuplicateInput(BaseModel):
    source_contact_id: UUID = contact_id_field("Contact to duplicate")
    email: EmailAddress = Field(description="New unique primary email for duplicated contact")
    full_name: str | None = Field(default=None, min_length=1)
    target_client_id: UUID | None = Field(
        default=None,
        description="Client of the duplicate (null: none; absent: the source's)",
        json_schema_extra=picker("client"),
    )
    role: str | None = None
    notes: str | None = None
    is_inactive: bool | None = None
    primary_email_canonical_type: EmailType | None = None
    primary_email_custom_type: str | None = None
    phone_numbers: list[PhoneRow] | None = None
    additional_email_addresses: list[AdditionalEmailRow] | None = None
    copy_tags: bool = True
    idempotency_key: str | None = idempotency_key_field()


class DuplicateOutput(BaseModel):
    source_contact: ContactSummary
    duplicate_contact: ContactSummary
    copied_tags: int


@actions.define(
    "contacts.duplicate",
    "Duplicate Contact",
    "Create a new contact from a source contact with explicit email override",
    permissions=(READ, CREATE),
    idempotency="action",
)
async def duplicate(ctx: ActionContext, inp: DuplicateInput) -> DuplicateOutput:
    """Reference contacts.duplicate: a new contact with the new unique ``email`` and the source's profile
    (each given field overrides); the source's phones unless given, additional emails only when given, tags
    when ``copy_tags``; never tickets, interactions or notes."""
    given = inp.model_fields_set
    source = await require_contact(ctx, inp.source_contact_id, "source_contact_id")
    client_id = inp.target_client_id if "target_client_id" in given else source.client_id
    if client_id is not None:
        await lookups.require_client(ctx.conn, ctx.tenant, client_id)
    phones = (
        domain_rows(inp.phone_numbers)
        if inp.phone_numbers is not None
        else [
            p.model_dump(include={"phone_number", "extension", "canonical_type", "custom_type", "is_default"})
            for p in source.phone_numbers
        ]
    )
    data = {
        "full_name": inp.full_name or source.full_name,
        "email": inp.email,
        "client_id": client_id,
        "role": inp.role if "role" in given else source.role,
        "notes": inp.notes if "notes" in given else source.notes,
        "is_inactive": source.is_inactive if inp.is_inactive is None else inp.is_inactive,
        "primary_email_canonical_type": inp.primary_email_canonical_type or source.primary_email_canonical_type,
        "primary_email_custom_type": inp.primary_email_custom_type,
        "phone_numbers": phones,
        "additional_email_addresses": domain_rows(inp.additional_email_addresses),
    }
    if data["primary_email_custom_type"]:
        data["primary_email_canonical_type"] = inp.primary_email_canonical_type
    duplicate = await contacts.create_contact(ctx.conn, ctx.tenant, data)
    copied_tags = 0
    if inp.copy_tags:
        source_tags = await tags.tags_for(ctx.conn, ctx.tenant, source.contact_name_id, "contact")
        added, existing = await ensure_tags(
            ctx, duplicate.contact_name_id, "contact", [m.tag_text for m in source_tags]
        )
        copied_tags = len(added) + len(existing)
    await ctx.audit(
        {
            "source_contact_id": str(source.contact_name_id),
            "duplicate_contact_id": str(duplicate.contact_name_id),
            "copied_tags": copied_tags,
        },
        {"contact_id": str(duplicate.contact_name_id)},
    )
    return DuplicateOutput(
        source_contact=summary(source), duplicate_contact=summary(duplicate), copied_tags=copied_tags
    )


# -- contacts.upsert ---------------------------------------------------------------------------------------


class UpsertInput(ContactFields):
    email: EmailAddress = Field(description="Key: the contact with this primary or additional email")
    full_name: str | None = Field(default=None, min_length=1, description="Required when the contact is created")
    tags: list[TagText] | None = Field(default=None, description="Tags to add (existing tags are kept)")
    idempotency_key: str | None = idempotency_key_field()


class UpsertOutput(BaseModel):
    created: bool
    contact: ContactSummary


@actions.define(
    "contacts.upsert",
    "Create or Update Contact",
    "Create a contact, or update the given fields of the contact with this email",
    permissions=(CREATE, UPDATE),
    idempotency="action",
)
async def upsert(ctx: ActionContext, inp: UpsertInput) -> UpsertOutput:
    """Beyond the reference (issue 5): create the contact keyed by ``email`` (its primary or an additional
    address), or update only the fields given (absent ones are never blanked; null clears role, notes or
    client). Tags are added. CONTACT_CREATED, or CONTACT_UPDATED with the diffs."""
    if inp.client_id is not None:
        await lookups.require_client(ctx.conn, ctx.tenant, inp.client_id)
    given = inp.model_fields_set - {"tags", "idempotency_key"}
    before = await contacts.get_contact_by_email(ctx.conn, ctx.tenant, inp.email)
    created, contact = await contacts.upsert_contact(ctx.conn, ctx.tenant, inp.domain_data(given))
    await ensure_tags(ctx, contact.contact_name_id, "contact", inp.tags)
    if created:
        await _audit_created(ctx, contact)
    else:
        await ctx.audit(
            {"contact_id": str(contact.contact_name_id), "created": False, "changed_fields": sorted(given - {"email"})},
            {"contact_id": str(contact.contact_name_id)},
        )
        if before is not None:  # else a concurrent upsert created it just now, with its own CONTACT_CREATED
            await _emit_updated(ctx, before, contact)
    return UpsertOutput(created=created, contact=summary(contact))
