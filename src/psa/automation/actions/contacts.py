"""The ``contacts.*`` workflow actions (reference: spec runtime §3.1, contract §2; issue 5; DESIGN.md "Automation
runtime"): the reference's 13 actions plus ``contacts.upsert`` and ``contacts.remove_tag``.

Each action is version 1 in category "Business Operations", with pydantic input and output models, the
permissions it needs (checked by the runtime before the handler, in order), an idempotency mode (``engine``:
the runtime's key; ``action``: the input's ``idempotency_key`` when given) and a handler that calls the shared
domain models (``psa.domain.*``) inside the runtime's tenant transaction, so the handler's writes, its audit row
(``ctx.audit``), the ledger row and the outbox events (``ctx.emit``) commit together or not at all. Event keys
carry ISO-8601 UTC timestamps (spec §6-9).

Input follows zod's semantics (spec §6-17): unknown keys are ignored, defaults are applied, and where a key
being absent differs from it being null (``contacts.update``'s patch, ``contacts.duplicate``'s
``target_client_id`` / ``role`` / ``notes``, ``contacts.move_to_client``'s guard, ``contacts.upsert``) the
handler looks at ``model_fields_set``. Malformed emails and phone numbers fail in the input model, naming the
field, before anything is written (not even a ledger row).

Deviations from the reference, each deliberate:
- ``contacts.find`` by phone and ``contacts.search`` match ``contact_phone_numbers`` (the reference queried a
  column that no longer exists, §6-5). Stored numbers are E.164, so an exact lookup also tries the E.164 digits
  of the given number ("415-555-0100" finds +14155550100).
- ``contacts.search`` has an ``is_inactive`` filter (absent: both, as in the reference) and never repeats a
  contact; its total counts distinct contacts.
- ``contacts.delete`` does not count the contact's own notes document as a dependency (§6-13), and counts the
  quotes naming the contact (their foreign key would otherwise refuse the delete).
- A duplicate email (create, update, duplicate, upsert) and a ``contacts.move_to_client`` guard that does not
  match fail with VALIDATION_ERROR naming the field (issue 5), where the reference answered CONFLICT.
- ``contacts.add_interaction`` checks the interaction type too, and its INTERACTION_LOGGED event names the type
  (as ``clients.add_interaction`` does; §6-14).
- ``contacts.update`` reports CONTACT_UPDATED diffs of every field that really changed (phone and additional
  email rows compared without their row ids, which a replacement renews).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AfterValidator, BaseModel, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from psa.automation.actions.common import (
    INT4_MAX,
    PAGE_MAX,
    IsoDateTime,
    IsoDateTimeIn,
    NoteBody,
    TagResult,
    TagText,
    action_def,
    append_entity_note,
    camel,
    compact,
    confirm_flag,
    dependency_conflict,
    ensure_tags,
    failure,
    field_error,
    idempotency_key_field,
    interaction_logged_payload,
    jsonable,
    normalize_tags,
    same,
)
from psa.automation.errors import ActionFailure
from psa.automation.registry import ActionContext, ActionDef, ActionRegistry, picker
from psa.config import get_settings
from psa.domain import contacts, interactions, lookups, tags, tickets
from psa.domain.contacts import Contact, ContactBrief
from psa.domain.errors import EmailExistsError, NotFoundError, ValidationError
from psa.domain.values import normalize_email
from psa.timeutil import iso_z

EmailType = Literal["work", "personal", "billing", "other"]
PhoneType = Literal["work", "mobile", "home", "fax", "other"]
_DEPENDENCY_LABELS = {
    "ticket": ("ticket", "tickets"),
    "interaction": ("interaction", "interactions"),
    "document": ("document", "documents"),
    "portal_user": ("portal user account", "portal user accounts"),
    "survey_invitation": ("survey invitation", "survey invitations"),
    "survey_response": ("survey response", "survey responses"),
    "asset_association": ("asset association", "asset associations"),
    "quote": ("quote", "quotes"),
}


def _contact_id_field(description: str = "Contact id") -> Any:
    return Field(description=description, json_schema_extra=picker("contact"))


# -- input field types ---------------------------------------------------------------------------------------


def _message(exc: ValidationError) -> str:
    """The domain message without its leading "field: "."""
    return exc.message.split(": ", 1)[-1] if exc.field and exc.message.startswith(f"{exc.field}:") else exc.message


def _email(value: str) -> str:
    try:
        return normalize_email(value, field="email")
    except ValidationError as exc:
        raise PydanticCustomError("email", _message(exc)) from None


def _phone(value: str) -> str:
    try:
        contacts.normalize_phone(value, field="phone_number")
    except ValidationError as exc:
        raise PydanticCustomError("phone_number", _message(exc)) from None
    return value


EmailAddress = Annotated[str, AfterValidator(_email)]
"""An email address (email-validator syntax), normalised to lower case."""
PhoneNumberText = Annotated[str, Field(min_length=1), AfterValidator(_phone)]
"""A valid phone number (``phonenumbers``; without ``+`` read as a US number); stored in E.164 form."""


class PhoneRow(BaseModel):
    """Reference PhoneRow. The row id is accepted and ignored (a given list replaces the stored rows);
    ``display_order`` orders the rows (rows without one keep their place after those with one)."""

    contact_phone_number_id: UUID | None = None
    phone_number: PhoneNumberText
    extension: str | None = None
    canonical_type: PhoneType | None = None
    custom_type: str | None = None
    is_default: bool = False
    display_order: int | None = Field(default=None, ge=0, le=INT4_MAX)


class AdditionalEmailRow(BaseModel):
    """Reference AdditionalEmailRow (row id accepted and ignored; ``display_order`` as for phones)."""

    contact_additional_email_address_id: UUID | None = None
    email_address: EmailAddress
    canonical_type: EmailType | None = None
    custom_type: str | None = None
    display_order: int | None = Field(default=None, ge=0, le=INT4_MAX)


def _rows(rows: list[PhoneRow] | list[AdditionalEmailRow] | None) -> list[dict[str, Any]]:
    """Domain input rows, ordered by ``display_order`` (stable; rows without one last)."""
    ordered = sorted(rows or [], key=lambda r: (r.display_order is None, r.display_order or 0))
    drop = {"contact_phone_number_id", "contact_additional_email_address_id", "display_order"}
    return [row.model_dump(exclude=drop) for row in ordered]


# -- output shapes -----------------------------------------------------------------------------------------


class ContactSummary(BaseModel):
    """Reference contact summary (spec §2.8): ``phone`` is the default phone number."""

    contact_name_id: UUID
    full_name: str | None
    email: str | None
    phone: str | None
    client_id: UUID | None
    is_inactive: bool


def summary(contact: Contact | ContactBrief) -> ContactSummary:
    """The ContactSummary of a hydrated or listed contact."""
    return ContactSummary(
        contact_name_id=contact.contact_name_id,
        full_name=contact.full_name,
        email=contact.email,
        phone=contact.default_phone_number,
        client_id=contact.client_id,
        is_inactive=contact.is_inactive,
    )


# -- helpers -----------------------------------------------------------------------------------------------


def _not_found(contact_id: UUID, field: str = "contact_id") -> ActionFailure:
    return failure("ActionError", "NOT_FOUND", "Contact not found", {field: str(contact_id)})


async def _contact(ctx: ActionContext, contact_id: UUID, field: str = "contact_id", *, lock: bool = False) -> Contact:
    """The hydrated contact, or NOT_FOUND "Contact not found" (another tenant's id is not found). ``lock``: for
    an action that decides on what it reads (a no-op, a guard, a conflict), the row is locked until commit."""
    contact = await contacts.find_contact(ctx.conn, ctx.tenant, contact_id, lock=lock)
    if contact is None:
        raise _not_found(contact_id, field)
    return contact


@contextmanager
def _email_taken_is_invalid() -> Iterator[None]:
    """An address used by another contact of the tenant as VALIDATION_ERROR naming the field (issue 5)."""
    try:
        yield
    except EmailExistsError as exc:
        details = {"field": exc.field, "fields": [{"path": exc.field, "message": _message(exc)}]}
        raise failure("ValidationError", "VALIDATION_ERROR", exc.message, details) from None


def _diffable(contact: Contact) -> dict[str, Any]:
    """What CONTACT_UPDATED compares: the editable fields, type labels, and the phone and additional email rows
    without their row ids and timestamps."""
    data = contact.model_dump(
        include={
            "full_name",
            "email",
            "client_id",
            "role",
            "notes",
            "is_inactive",
            "primary_email_type",
            "primary_email_canonical_type",
            "primary_email_custom_type",
            "default_phone_number",
        }
    )
    data["phone_numbers"] = [p.model_dump(exclude={"contact_phone_number_id"}) for p in contact.phone_numbers]
    data["additional_email_addresses"] = [
        e.model_dump(exclude={"contact_additional_email_address_id"}) for e in contact.additional_email_addresses
    ]
    return data


def _camel_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{camel(k): jsonable(v) for k, v in row.items()} for row in rows]


# -- event payload builders (reference: domainEventBuilders, spec §2.6) ------------------------------------


def contact_created_payload(contact: Contact, actor: UUID) -> dict[str, Any]:
    """CONTACT_CREATED: ``{contactId, clientId?, fullName, email?, primaryEmailCanonicalType,
    primaryEmailCustomTypeId?, primaryEmailCustomType?, primaryEmailType?, additionalEmailAddresses?,
    phoneNumbers?, defaultPhoneNumber?, defaultPhoneType?, createdByUserId, createdAt}``."""
    data = _diffable(contact)
    payload = compact(
        {
            "contactId": str(contact.contact_name_id),
            "clientId": str(contact.client_id) if contact.client_id else None,
            "fullName": contact.full_name,
            "email": contact.email,
            "primaryEmailCustomTypeId": str(contact.primary_email_custom_type_id)
            if contact.primary_email_custom_type_id
            else None,
            "primaryEmailCustomType": contact.primary_email_custom_type,
            "primaryEmailType": contact.primary_email_type,
            "additionalEmailAddresses": _camel_rows(data["additional_email_addresses"]),
            "phoneNumbers": _camel_rows(data["phone_numbers"]),
            "defaultPhoneNumber": contact.default_phone_number,
            "defaultPhoneType": contact.default_phone_type,
            "createdByUserId": str(actor),
            "createdAt": iso_z(contact.created_at),
        }
    )
    return {**payload, "primaryEmailCanonicalType": contact.primary_email_canonical_type}


def contact_updated_payload(before: Contact, after: Contact, actor: UUID) -> dict[str, Any]:
    """CONTACT_UPDATED: ``{contactId, clientId?, updatedByUserId, updatedAt, updatedFields?, changes?}`` with
    camelCase paths and ``changes[path] = {previous, new}`` for every compared field that changed."""
    old, new = _diffable(before), _diffable(after)
    changes = {
        camel(k): {"previous": jsonable(old[k]), "new": jsonable(new[k])} for k in old if not same(old[k], new[k])
    }
    client_id = after.client_id or before.client_id
    return compact(
        {
            "contactId": str(after.contact_name_id),
            "clientId": str(client_id) if client_id else None,
            "updatedByUserId": str(actor),
            "updatedAt": iso_z(after.updated_at),
            "updatedFields": list(changes),
            "changes": changes,
        }
    )


async def _emit_archived(ctx: ActionContext, contact: Contact, reason: str | None = None) -> None:
    """CONTACT_ARCHIVED ``{contactId, clientId?, archivedByUserId, archivedAt, reason?}``, keyed by the
    contact and the time it became inactive."""
    payload = compact(
        {
            "contactId": str(contact.contact_name_id),
            "clientId": str(contact.client_id) if contact.client_id else None,
            "archivedByUserId": str(ctx.actor_user_id),
            "archivedAt": iso_z(contact.updated_at),
            "reason": reason,
        }
    )
    key = f"contact_archived:{contact.contact_name_id}:{iso_z(contact.updated_at)}"
    await ctx.emit("CONTACT_ARCHIVED", payload, key, contact.updated_at)


async def _emit_updated(ctx: ActionContext, before: Contact, after: Contact) -> None:
    """CONTACT_UPDATED when a field really changed, and CONTACT_ARCHIVED when the contact became inactive."""
    payload = contact_updated_payload(before, after, ctx.actor_user_id)
    if payload.get("updatedFields"):
        key = f"contact_updated:{after.contact_name_id}:{iso_z(after.updated_at)}"
        await ctx.emit("CONTACT_UPDATED", payload, key, after.updated_at)
    if after.is_inactive and not before.is_inactive:
        await _emit_archived(ctx, after)


# -- contacts.find -----------------------------------------------------------------------------------------


class FindInput(BaseModel):
    contact_id: UUID | None = Field(default=None, description="Contact id", json_schema_extra=picker("contact"))
    email: EmailAddress | None = Field(default=None, description="Primary or additional email address")
    phone: str | None = Field(default=None, description="Phone number (normalized digits match)")
    phone_match: contacts.PhoneMatch = Field(
        default="exact", description="exact: whole number; last7 / last10: the last 7 / 10 digits"
    )
    client_id: UUID | None = Field(
        default=None, description="Optional client scope", json_schema_extra=picker("client")
    )
    on_not_found: Literal["return_null", "error"] = "return_null"
    match_strategy: Literal["first_created", "most_recent"] = "first_created"

    @model_validator(mode="wrap")
    @classmethod
    def _one_key(cls, data: Any, handler: Any) -> FindInput:
        parsed = handler(data)
        matched_by = parsed.matched_by()
        if matched_by is None:
            raise PydanticCustomError("lookup_required", "contact_id, email, or phone required")
        if matched_by == "phone":
            digits = sum(ch.isdigit() for ch in parsed.phone or "")
            if digits < contacts.PHONE_MATCH_MIN_DIGITS[parsed.phone_match]:
                raise field_error(cls, "phone", "phone is invalid", parsed.phone)
        return parsed

    def matched_by(self) -> str | None:
        """The lookup used: the first given of contact_id, email, phone (a blank phone is absent)."""
        if self.contact_id is not None:
            return "contact_id"
        if self.email is not None:
            return "email"
        return "phone" if self.phone is not None and self.phone.strip() else None


class FindOutput(BaseModel):
    contact: ContactSummary | None


async def find_handler(ctx: ActionContext, inp: FindInput) -> FindOutput:
    """Reference contacts.find: precedence contact_id > email (primary, then additional addresses) > phone
    (active contacts first, then oldest or newest by ``match_strategy``); ``client_id`` scopes every lookup;
    NOT_FOUND "Contact not found" ``{matched_by}`` only with ``on_not_found='error'``."""
    matched_by = inp.matched_by()
    found: Contact | ContactBrief | None
    if matched_by == "contact_id":
        found = await contacts.find_contact(ctx.conn, ctx.tenant, inp.contact_id)
    elif matched_by == "email":
        found = await contacts.get_contact_by_email(ctx.conn, ctx.tenant, inp.email or "")
    else:
        matches = await contacts.find_contacts_by_phone(
            ctx.conn,
            ctx.tenant,
            inp.phone or "",
            inp.phone_match,
            client_id=inp.client_id,
            most_recent=inp.match_strategy == "most_recent",
            limit=1,
        )
        found = matches[0] if matches else None
    if found is not None and inp.client_id is not None and found.client_id != inp.client_id:
        found = None
    if found is None:
        if inp.on_not_found == "error":
            raise failure("ActionError", "NOT_FOUND", "Contact not found", {"matched_by": matched_by})
        return FindOutput(contact=None)
    return FindOutput(contact=summary(found))


# -- contacts.search ---------------------------------------------------------------------------------------


class SearchFilters(BaseModel):
    tags: list[str] | None = Field(default=None, description="Any of these tag texts (exact)")
    is_inactive: bool | None = Field(
        default=None, description="true: inactive contacts only; false: active only; absent: both"
    )
    sort_by: Literal["name", "updated_at"] | None = None
    sort_order: Literal["asc", "desc"] | None = None


class SearchInput(BaseModel):
    query: str = Field(min_length=1, description="Search query (name/email/phone)")
    client_id: UUID | None = Field(
        default=None, description="Optional client scope", json_schema_extra=picker("client")
    )
    filters: SearchFilters | None = None
    page: int = Field(default=1, gt=0, le=PAGE_MAX)
    page_size: int = Field(default=25, gt=0, le=100)

    @field_validator("query")
    @classmethod
    def _min_length(cls, value: str) -> str:
        minimum = get_settings().workflow_contact_search_min_query_len
        if len(value.strip()) < minimum:
            raise PydanticCustomError("query_too_short", f"query must be at least {minimum} characters")
        return value


class SearchOutput(BaseModel):
    contacts: list[ContactSummary]
    first_contact: ContactSummary | None
    page: int
    page_size: int
    total: int


async def search_handler(ctx: ActionContext, inp: SearchInput) -> SearchOutput:
    """Reference contacts.search: name, primary or additional email, or phone digits contain the query;
    optional client, active and tag filters; ordered by name (or updated_at) then id; paged, with the total."""
    filters = inp.filters or SearchFilters()
    tag_filter = [tag.strip() for tag in filters.tags or () if tag.strip()]
    found, total = await contacts.search_contacts(
        ctx.conn,
        ctx.tenant,
        inp.query,
        client_id=inp.client_id,
        is_inactive=filters.is_inactive,
        tags=tag_filter or None,
        sort_by=filters.sort_by or "name",
        sort_order=filters.sort_order or "asc",
        limit=inp.page_size,
        offset=(inp.page - 1) * inp.page_size,
    )
    summaries = [summary(c) for c in found]
    return SearchOutput(
        contacts=summaries,
        first_contact=summaries[0] if summaries else None,
        page=inp.page,
        page_size=inp.page_size,
        total=total,
    )


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
                data[key] = _rows(getattr(self, key))
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


async def _check_client(ctx: ActionContext, client_id: UUID | None) -> None:
    """NOT_FOUND "Client not found" unless ``client_id`` is None or a client of the tenant."""
    if client_id is not None:
        await lookups.require_client(ctx.conn, ctx.tenant, client_id)


async def create_handler(ctx: ActionContext, inp: CreateInput) -> CreateOutput:
    """Reference contacts.create: client check, the contact with its phones and additional emails (contact
    model rules), initial tags; audit and CONTACT_CREATED."""
    await _check_client(ctx, inp.client_id)
    with _email_taken_is_invalid():
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
    await ctx.emit(
        "CONTACT_CREATED",
        contact_created_payload(contact, ctx.actor_user_id),
        f"contact_created:{contact_id}",
        contact.created_at,
    )


# -- contacts.update ---------------------------------------------------------------------------------------


class UpdatePatch(BaseModel):
    """Every key optional; a key present with null clears (role, notes, client_id, the primary email type).
    ``full_name`` and ``is_inactive`` cannot be null; ``email: null`` is refused ("Primary email cannot be
    removed"). Changing ``email`` follows the primary-email promotion rules (spec §3.1)."""

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
    contact_id: UUID = _contact_id_field()
    patch: UpdatePatch


class UpdateOutput(BaseModel):
    contact_before: ContactSummary
    contact_after: ContactSummary
    changed_fields: list[str]


async def update_handler(ctx: ActionContext, inp: UpdateInput) -> UpdateOutput:
    """Reference contacts.update: patch the given fields through the contact model (phones and additional
    emails replaced wholesale when given); audit; CONTACT_UPDATED with the field diffs, and CONTACT_ARCHIVED
    when the contact became inactive."""
    patch, fields = inp.patch, inp.patch.changed_fields()
    before = await _contact(ctx, inp.contact_id, lock=True)
    if patch.client_id is not None and patch.client_id != before.client_id:
        await _check_client(ctx, patch.client_id)
    changes: dict[str, Any] = {}
    for key in fields:
        if key in ("phone_numbers", "additional_email_addresses"):
            changes[key] = _rows(getattr(patch, key))
        elif key == "primary_email_custom_type_id":
            type_id = patch.primary_email_custom_type_id
            label = await contacts.email_type_label(ctx.conn, ctx.tenant, type_id) if type_id else None
            changes["primary_email_custom_type"] = label
        else:
            changes[key] = getattr(patch, key)
    with _email_taken_is_invalid():
        after = await contacts.update_contact(ctx.conn, ctx.tenant, inp.contact_id, changes)
    await ctx.audit({"contact_id": str(inp.contact_id), "changed_fields": fields}, {"contact_id": str(inp.contact_id)})
    await _emit_updated(ctx, before, after)
    return UpdateOutput(contact_before=summary(before), contact_after=summary(after), changed_fields=fields)


# -- contacts.deactivate -----------------------------------------------------------------------------------


class DeactivateInput(BaseModel):
    contact_id: UUID = _contact_id_field()
    reason: str | None = None


class DeactivateOutput(BaseModel):
    contact_id: UUID
    deactivated: bool
    noop: bool
    previous_is_inactive: bool
    current_is_inactive: bool
    contact: ContactSummary


async def deactivate_handler(ctx: ActionContext, inp: DeactivateInput) -> DeactivateOutput:
    """Reference contacts.deactivate: an active contact becomes inactive and CONTACT_ARCHIVED is queued; an
    inactive one is left alone (``noop``). The audit row is written either way."""
    before = await _contact(ctx, inp.contact_id, lock=True)
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
    contact_id: UUID = _contact_id_field()
    confirm: confirm_flag("contact")
    on_not_found: Literal["error", "return_false"] = "error"


class DeleteOutput(BaseModel):
    deleted: bool
    contact_id: UUID


async def contact_dependencies(ctx: ActionContext, contact_id: UUID) -> dict[str, int]:
    """Counts of the records that keep the contact from being deleted, by type (only those > 0): tickets,
    interactions, documents (not its own notes document), portal users, survey invitations and responses,
    asset associations, quotes (reference: contacts.delete dependency validation; quotes beyond it)."""
    counts = {
        "ticket": await tickets.count_tickets_for_contact(ctx.conn, ctx.tenant, contact_id),
        "interaction": await interactions.count_interactions_for_contact(ctx.conn, ctx.tenant, contact_id),
        **await contacts.count_contact_dependencies(ctx.conn, ctx.tenant, contact_id),
    }
    return {kind: n for kind, n in counts.items() if n}


async def delete_handler(ctx: ActionContext, inp: DeleteInput) -> DeleteOutput:
    """Reference contacts.delete: a contact with dependencies is refused (CONFLICT listing them, with the
    deactivate alternative); otherwise its tags, phones, emails, comments, portal invitations and notes
    document go with it."""
    contact_id = str(inp.contact_id)
    if await contacts.find_contact(ctx.conn, ctx.tenant, inp.contact_id, lock=True) is None:
        if inp.on_not_found == "error":
            raise _not_found(inp.contact_id)
        await ctx.audit({"contact_id": contact_id, "deleted": False}, {"contact_id": contact_id})
        return DeleteOutput(deleted=False, contact_id=inp.contact_id)
    counts = await contact_dependencies(ctx, inp.contact_id)
    if counts:
        raise dependency_conflict(
            "contact", counts, _DEPENDENCY_LABELS, {"ticket": f"/msp/tickets?contact_id={contact_id}"}
        )
    await contacts.delete_contact(ctx.conn, ctx.tenant, inp.contact_id)
    await ctx.audit({"contact_id": contact_id, "deleted": True}, {"contact_id": contact_id})
    return DeleteOutput(deleted=True, contact_id=inp.contact_id)


# -- contacts.duplicate ------------------------------------------------------------------------------------


class DuplicateInput(BaseModel):
    source_contact_id: UUID = _contact_id_field("Contact to duplicate")
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


async def duplicate_handler(ctx: ActionContext, inp: DuplicateInput) -> DuplicateOutput:
    """Reference contacts.duplicate: a new contact with the new unique ``email`` and the source's profile
    (each given field overrides); the source's phones unless given, additional emails only when given, tags
    when ``copy_tags``; never tickets, interactions or notes."""
    given = inp.model_fields_set
    source = await _contact(ctx, inp.source_contact_id, "source_contact_id")
    client_id = inp.target_client_id if "target_client_id" in given else source.client_id
    await _check_client(ctx, client_id)
    phones = (
        _rows(inp.phone_numbers)
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
        "additional_email_addresses": _rows(inp.additional_email_addresses),
    }
    if data["primary_email_custom_type"]:
        data["primary_email_canonical_type"] = inp.primary_email_canonical_type
    with _email_taken_is_invalid():
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


# -- contacts.add_tag / contacts.remove_tag ----------------------------------------------------------------


class AddTagInput(BaseModel):
    contact_id: UUID = _contact_id_field()
    tags: list[TagText] = Field(min_length=1, description="Tags to attach")
    idempotency_key: str | None = idempotency_key_field()


class AddTagOutput(BaseModel):
    contact_id: UUID
    added: list[TagResult]
    existing: list[TagResult]
    added_count: int
    existing_count: int


async def add_tag_handler(ctx: ActionContext, inp: AddTagInput) -> AddTagOutput:
    """Reference contacts.add_tag: definitions and mappings are looked up first and created when missing
    (never through a unique violation); tags the contact already has are reported as existing."""
    await _contact(ctx, inp.contact_id)
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
    contact_id: UUID = _contact_id_field()
    tags: list[TagText] = Field(min_length=1, description="Tags to remove (matched ignoring case)")


class RemoveTagOutput(BaseModel):
    contact_id: UUID
    removed: list[TagResult]
    not_present: list[str]
    removed_count: int


async def remove_tag_handler(ctx: ActionContext, inp: RemoveTagInput) -> RemoveTagOutput:
    """Beyond the reference (issue 5): remove tags from a contact. Each given text removes the contact's tags
    with that text ignoring case; texts the contact does not have are reported in ``not_present``, so
    repeating the call is harmless. Tag definitions stay."""
    await _contact(ctx, inp.contact_id)
    current = await tags.tags_for(ctx.conn, ctx.tenant, inp.contact_id, "contact")
    removed: list[TagResult] = []
    not_present: list[str] = []
    for tag_text in normalize_tags(inp.tags):
        matching = [m for m in current if m.tag_text.casefold() == tag_text.casefold()]
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
    contact_id: UUID = _contact_id_field()
    ticket_id: UUID = Field(description="Ticket id", json_schema_extra=picker("ticket"))
    reason: str | None = None
    comment: str | None = None


AssignToTicketOutput = tickets.TicketContactAssignment


async def assign_to_ticket_handler(ctx: ActionContext, inp: AssignToTicketInput) -> AssignToTicketOutput:
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
    contact_id: UUID = _contact_id_field()
    body: NoteBody
    idempotency_key: str | None = idempotency_key_field()


class AddNoteOutput(BaseModel):
    contact_id: UUID
    document_id: UUID
    created_document: bool
    updated_at: IsoDateTime


async def add_note_handler(ctx: ActionContext, inp: AddNoteInput) -> AddNoteOutput:
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
    contact_id: UUID = _contact_id_field()
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


async def add_interaction_handler(ctx: ActionContext, inp: AddInteractionInput) -> AddInteractionOutput:
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
    await ctx.emit(
        "INTERACTION_LOGGED",
        interaction_logged_payload(
            interaction, interaction_type.type_name if interaction_type else None, ctx.actor_user_id
        ),
        f"interaction_logged:{interaction.interaction_id}",
    )
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
    contact_id: UUID = _contact_id_field()
    client_id: UUID = Field(description="Client id", json_schema_extra=picker("client"))


class MoveToClientInput(BaseModel):
    contact_id: UUID = _contact_id_field()
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


async def add_to_client_handler(ctx: ActionContext, inp: AddToClientInput) -> ClientAssignmentOutput:
    """Reference contacts.add_to_client: client then contact must exist; an unassigned contact is assigned,
    one already on this client is a no-op, one on another client is a CONFLICT (use move_to_client)."""
    await _check_client(ctx, inp.client_id)
    contact = await _contact(ctx, inp.contact_id, lock=True)
    if contact.client_id is not None and contact.client_id != inp.client_id:
        raise failure(
            "ActionError",
            "CONFLICT",
            "Contact is already assigned to a different client; use contacts.move_to_client",
            {
                "contact_id": str(inp.contact_id),
                "previous_client_id": str(contact.client_id),
                "requested_client_id": str(inp.client_id),
            },
        )
    return await _assign_client(ctx, contact, inp.client_id, {})


async def move_to_client_handler(ctx: ActionContext, inp: MoveToClientInput) -> ClientAssignmentOutput:
    """Reference contacts.move_to_client: target client then contact must exist; when
    ``expected_current_client_id`` is given (null = unassigned) it must be the contact's current client, else
    VALIDATION_ERROR naming it (issue 5; the reference answered CONFLICT); already there is a no-op."""
    await _check_client(ctx, inp.target_client_id)
    contact = await _contact(ctx, inp.contact_id, lock=True)
    expected = inp.expected_current_client_id
    if "expected_current_client_id" in inp.model_fields_set and expected != contact.client_id:
        message = "Contact current client did not match expected_current_client_id"
        raise failure(
            "ValidationError",
            "VALIDATION_ERROR",
            message,
            {
                "contact_id": str(inp.contact_id),
                "expected_current_client_id": str(expected) if expected else None,
                "actual_current_client_id": str(contact.client_id) if contact.client_id else None,
                "field": "expected_current_client_id",
                "fields": [{"path": "expected_current_client_id", "message": message}],
            },
        )
    return await _assign_client(
        ctx, contact, inp.target_client_id, {"expected_current_client_id": str(expected) if expected else None}
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


async def upsert_handler(ctx: ActionContext, inp: UpsertInput) -> UpsertOutput:
    """Beyond the reference (issue 5): create the contact keyed by ``email`` (its primary or an additional
    address), or update only the fields given (absent ones are never blanked; null clears role, notes or
    client). Tags are added. CONTACT_CREATED, or CONTACT_UPDATED with the diffs."""
    await _check_client(ctx, inp.client_id)
    given = inp.model_fields_set - {"tags", "idempotency_key"}
    before = await contacts.get_contact_by_email(ctx.conn, ctx.tenant, inp.email)
    with _email_taken_is_invalid():
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


# -- registration ------------------------------------------------------------------------------------------


READ, CREATE, UPDATE, DELETE = ("contact", "read"), ("contact", "create"), ("contact", "update"), ("contact", "delete")

ACTIONS: tuple[ActionDef, ...] = (
    action_def(
        "contacts.find",
        "Find Contact",
        "Find a contact by id, email, or phone",
        FindInput,
        FindOutput,
        find_handler,
        side_effectful=False,
        idempotency="engine",
        permissions=(READ,),
    ),
    action_def(
        "contacts.search",
        "Search Contacts",
        "Search contacts by name or email",
        SearchInput,
        SearchOutput,
        search_handler,
        side_effectful=False,
        idempotency="engine",
        permissions=(READ,),
    ),
    action_def(
        "contacts.create",
        "Create Contact",
        "Create a contact with optional client assignment, details, and initial tags",
        CreateInput,
        CreateOutput,
        create_handler,
        idempotency="action",
        permissions=(CREATE,),
    ),
    action_def(
        "contacts.update",
        "Edit Contact",
        "Patch editable fields on an existing contact",
        UpdateInput,
        UpdateOutput,
        update_handler,
        idempotency="engine",
        permissions=(UPDATE,),
    ),
    action_def(
        "contacts.deactivate",
        "Deactivate Contact",
        "Set a contact inactive without deleting records",
        DeactivateInput,
        DeactivateOutput,
        deactivate_handler,
        idempotency="engine",
        permissions=(UPDATE,),
    ),
    action_def(
        "contacts.delete",
        "Delete Contact",
        "Destructive hard-delete for a contact with dependency validation",
        DeleteInput,
        DeleteOutput,
        delete_handler,
        idempotency="engine",
        permissions=(DELETE,),
    ),
    action_def(
        "contacts.duplicate",
        "Duplicate Contact",
        "Create a new contact from a source contact with explicit email override",
        DuplicateInput,
        DuplicateOutput,
        duplicate_handler,
        idempotency="action",
        permissions=(READ, CREATE),
    ),
    action_def(
        "contacts.add_tag",
        "Add Tag to Contact",
        "Attach one or more tags to a contact with idempotent behavior",
        AddTagInput,
        AddTagOutput,
        add_tag_handler,
        idempotency="action",
        permissions=(UPDATE,),
    ),
    action_def(
        "contacts.assign_to_ticket",
        "Assign Contact to Ticket",
        "Set a ticket contact with tenant/client relationship validation",
        AssignToTicketInput,
        AssignToTicketOutput,
        assign_to_ticket_handler,
        idempotency="engine",
        permissions=(("ticket", "update"), READ),
    ),
    action_def(
        "contacts.add_note",
        "Add Note to Contact",
        "Append a note block to the contact notes document",
        AddNoteInput,
        AddNoteOutput,
        add_note_handler,
        idempotency="action",
        permissions=(UPDATE,),
    ),
    action_def(
        "contacts.add_interaction",
        "Add Interaction to Contact",
        "Log an interaction for a contact using the workflow actor as owner",
        AddInteractionInput,
        AddInteractionOutput,
        add_interaction_handler,
        idempotency="action",
        permissions=(UPDATE,),
    ),
    action_def(
        "contacts.add_to_client",
        "Add Contact to Client",
        "Assign an unassigned contact to a client with idempotent semantics",
        AddToClientInput,
        ClientAssignmentOutput,
        add_to_client_handler,
        idempotency="engine",
        permissions=(UPDATE,),
    ),
    action_def(
        "contacts.move_to_client",
        "Move Contact to Client",
        "Move a contact to another client with optional source-client guard",
        MoveToClientInput,
        ClientAssignmentOutput,
        move_to_client_handler,
        idempotency="engine",
        permissions=(UPDATE,),
    ),
    action_def(
        "contacts.upsert",
        "Create or Update Contact",
        "Create a contact, or update the given fields of the contact with this email",
        UpsertInput,
        UpsertOutput,
        upsert_handler,
        idempotency="action",
        permissions=(CREATE, UPDATE),
    ),
    action_def(
        "contacts.remove_tag",
        "Remove Tag from Contact",
        "Remove one or more tags from a contact with idempotent behavior",
        RemoveTagInput,
        RemoveTagOutput,
        remove_tag_handler,
        idempotency="engine",
        permissions=(UPDATE,),
    ),
)


def register(registry: ActionRegistry) -> ActionRegistry:
    """Register the 15 contacts.* actions (spec runtime §3.1 and issue 5) on ``registry``."""
    for action in ACTIONS:
        registry.register(action)
    return registry
