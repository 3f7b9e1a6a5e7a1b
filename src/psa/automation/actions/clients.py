"""The 11 ``clients.*`` workflow actions (reference: spec runtime §3.2, contract §2; DESIGN.md "Automation runtime").

Each action is version 1 in category "Business Operations", with pydantic input and output models, the
permissions it needs (checked by the runtime before the handler, in order), an idempotency mode (``engine``:
the runtime's key; ``action``: the input's ``idempotency_key`` when given) and a handler that calls the
domain models (``psa.domain.*``) inside the runtime's tenant transaction. Side-effectful handlers hand the
runtime their audit ``changed_data`` and ``details`` (``ctx.audit``) and queue domain events in the
transactional outbox (``ctx.emit``) with deterministic keys whose timestamps are ISO-8601 UTC (``...Z``,
microseconds), never a locale date string (spec §6-9).

Input follows zod's semantics (spec §6-17): unknown keys are ignored, defaults are applied, and where a key
being absent differs from it being null (``clients.update``'s patch, ``clients.assign_to_ticket``'s
``contact_id`` / ``location_id``) the handler looks at ``model_fields_set``. Every rule that needs no
database is checked by the model, so a bad input fails with VALIDATION_ERROR naming the field path before
anything is written (not even a ledger row).

Deviations from the reference, each deliberate:
- ``clients.search`` never repeats a client when several tag filters match (spec §6-15).
- ``clients.delete`` also counts documents associated as ``client`` (other than the client's own notes
  document) as dependencies; the reference counted only ``company`` ones (§6-13) and would have deleted them.
- ``clients.add_interaction`` checks the interaction type and status (the domain model does; §6-14) and its
  INTERACTION_LOGGED event names the type (``interactionType`` = type name, channel derived from it, plus
  ``interactionTypeId``) instead of carrying the raw id with channel ``other``.
- ``parent_client_id`` / ``contract_line_id`` / ``is_default`` are accepted but not stored: our ``clients``
  table has no such columns, and the reference writes a column only when it exists. A given non-null
  ``parent_client_id`` must still name a client of the tenant (NOT_FOUND).
- ``client_type``, ``default_currency_code`` and ``client_name`` may be omitted from a patch but not set to
  null: their columns are NOT NULL.
- Tag texts follow the shared tag rules (at most 50 characters, the reference charset; spec §6-12).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import (
    BaseModel,
    Field,
    field_validator,
    model_serializer,
    model_validator,
)
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
    same,
)
from psa.automation.errors import ActionFailure
from psa.automation.registry import ActionContext, ActionDef, ActionRegistry, picker
from psa.config import get_settings
from psa.domain import clients, contacts, documents, interactions, tags, tickets, values
from psa.domain.clients import BillingEmail, Client, ClientName, ClientType, CurrencyCode, Notes, WebUrl
from psa.timeutil import iso_z

_EXTERNAL_REF = re.compile(r"[A-Za-z0-9._:-]+")


def _client_id_field(description: str = "Client id") -> Any:
    return Field(description=description, json_schema_extra=picker("client"))


# -- output shapes -----------------------------------------------------------------------------------------


class ClientSummary(BaseModel):
    """Reference ClientSummary (spec §2.8)."""

    client_id: UUID
    client_name: str
    client_type: str | None = None
    url: str | None = None
    billing_email: str | None = None
    is_inactive: bool
    properties: dict[str, Any] | None = None
    updated_at: IsoDateTime | None = None


class PrimaryContact(BaseModel):
    contact_name_id: UUID
    full_name: str | None = None
    email: str | None = None
    phone: str | None = None
    client_id: UUID | None = None


class MatchedLocation(BaseModel):
    location_id: UUID
    location_name: str | None = None
    phone: str | None = None


def summary(client: Client) -> ClientSummary:
    """The ClientSummary of a domain client."""
    return ClientSummary(
        client_id=client.client_id,
        client_name=client.client_name,
        client_type=client.client_type,
        url=client.url,
        billing_email=client.billing_email,
        is_inactive=client.is_inactive,
        properties=client.properties,
        updated_at=client.updated_at,
    )


# -- helpers -----------------------------------------------------------------------------------------------


def _client_not_found(client_id: UUID, field: str = "client_id") -> ActionFailure:
    return failure("ActionError", "NOT_FOUND", "Client not found", {field: str(client_id)})


async def _client(ctx: ActionContext, client_id: UUID, field: str = "client_id") -> Client:
    """The client, or NOT_FOUND "Client not found" (another tenant's id is not found)."""
    client = await clients.find_client(ctx.conn, ctx.tenant, client_id)
    if client is None:
        raise _client_not_found(client_id, field)
    return client


async def _check_parent(ctx: ActionContext, parent_client_id: UUID | None) -> None:
    if parent_client_id is not None and await clients.find_client(ctx.conn, ctx.tenant, parent_client_id) is None:
        raise failure(
            "ActionError", "NOT_FOUND", "Parent client not found", {"parent_client_id": str(parent_client_id)}
        )


# -- event payload builders (reference: domainEventBuilders, spec §2.6) ------------------------------------


def client_created_payload(client: Client, actor: UUID) -> dict[str, Any]:
    """CLIENT_CREATED: ``{clientId, clientName, createdByUserId, createdAt, status}``."""
    return compact(
        {
            "clientId": str(client.client_id),
            "clientName": client.client_name,
            "createdByUserId": str(actor),
            "createdAt": iso_z(client.created_at),
            "status": "inactive" if client.is_inactive else "active",
        }
    )


def client_updated_payload(
    client_id: UUID, before: dict[str, Any], after: dict[str, Any], keys: Iterable[str], updated_at: datetime | None
) -> dict[str, Any]:
    """CLIENT_UPDATED: ``{clientId, updatedAt?, updatedFields?, changes?}``. ``properties`` (when among
    ``keys``) is diffed key by key into ``properties.{camelKey}`` paths, then the other keys (except
    tenant / created_at / updated_at) into camelCase paths; ``changes[path] = {previous, new}``."""
    keys = list(keys)
    fields: list[str] = []
    changes: dict[str, Any] = {}

    def diff(path: str, old: Any, new: Any) -> None:
        if not same(old, new):
            if path not in fields:
                fields.append(path)
            changes[path] = {"previous": jsonable(old), "new": jsonable(new)}

    if "properties" in keys:
        old_props, new_props = before.get("properties") or {}, after.get("properties") or {}
        for key in [*old_props, *(k for k in new_props if k not in old_props)]:
            diff(f"properties.{camel(key)}", old_props.get(key), new_props.get(key))
    for key in keys:
        if key not in ("tenant", "updated_at", "created_at", "properties"):
            diff(camel(key), before.get(key), after.get(key))
    return compact(
        {
            "clientId": str(client_id),
            "updatedAt": iso_z(updated_at) if updated_at else None,
            "updatedFields": fields,
            "changes": changes,
        }
    )


def client_archived_payload(
    client_id: UUID, actor: UUID, archived_at: datetime, reason: str | None = None
) -> dict[str, Any]:
    """CLIENT_ARCHIVED: ``{clientId, archivedByUserId, archivedAt, reason?}``."""
    return compact(
        {"clientId": str(client_id), "archivedByUserId": str(actor), "archivedAt": iso_z(archived_at), "reason": reason}
    )


# -- clients.find ------------------------------------------------------------------------------------------


class FindInput(BaseModel):
    client_id: UUID | None = Field(default=None, description="Client id", json_schema_extra=picker("client"))
    name: str | None = Field(default=None, description="Exact client name (case-insensitive)")
    external_ref: str | None = Field(
        default=None, description="External reference (stored in clients.properties.external_ref)"
    )
    phone: str | None = Field(
        default=None, description="Phone number (normalized digits match against client locations)"
    )
    phone_match: values.PhoneMatch = Field(
        default="exact",
        description="Phone matching mode. last7/last10 can match multiple client locations; branch on matched_count.",
    )
    include_primary_contact: bool = False
    on_not_found: Literal["return_null", "error"] = "return_null"

    @field_validator("external_ref")
    @classmethod
    def _external_ref(cls, value: str | None) -> str | None:
        if value is not None and value != "" and not _EXTERNAL_REF.fullmatch(value):
            raise PydanticCustomError("external_ref", "external_ref has invalid format")
        return value

    @model_validator(mode="wrap")
    @classmethod
    def _one_key(cls, data: Any, handler: Any) -> FindInput:
        parsed = handler(data)
        if parsed.matched_by() is None:
            raise PydanticCustomError("lookup_required", "client_id, name, external_ref, or phone required")
        if parsed.matched_by() == "phone":
            digits = values.phone_digits(parsed.phone or "")
            if len(digits) < clients.PHONE_MATCH_MIN_DIGITS[parsed.phone_match]:
                raise field_error(cls, "phone", "phone is invalid", parsed.phone)
        return parsed

    def matched_by(self) -> str | None:
        """The lookup used: the first given of client_id, name, external_ref, phone (blank strings are absent)."""
        if self.client_id is not None:
            return "client_id"
        for key in ("name", "external_ref", "phone"):
            value = getattr(self, key)
            if value is not None and value.strip():
                return key
        return None


class FindOutput(BaseModel):
    client: ClientSummary | None
    primary_contact: PrimaryContact | None
    matched_location: MatchedLocation | None = None
    matched_count: int = Field(default=0, ge=0)

    @model_serializer(mode="wrap")
    def _phone_keys_only_when_set(self, handler: Any) -> dict[str, Any]:
        """``matched_location`` / ``matched_count`` appear only for phone lookups (reference output)."""
        data = handler(self)
        for key in ("matched_location", "matched_count"):
            if key not in self.model_fields_set:
                data.pop(key, None)
        return data


async def _primary_contact(ctx: ActionContext, client_id: UUID) -> PrimaryContact | None:
    contact = await contacts.primary_contact_of_client(ctx.conn, ctx.tenant, client_id)
    if contact is None:
        return None
    return PrimaryContact(
        contact_name_id=contact.contact_name_id,
        full_name=contact.full_name,
        email=contact.email,
        phone=contact.default_phone_number,
        client_id=contact.client_id,
    )


async def find_handler(ctx: ActionContext, inp: FindInput) -> FindOutput:
    """Reference clients.find: precedence client_id > name > external_ref > phone; inactive clients are
    returned; NOT_FOUND "Client not found" ``{matched_by}`` only with ``on_not_found='error'``."""
    matched_by = inp.matched_by()
    extra: dict[str, Any] = {}
    if matched_by == "client_id":
        client = await clients.find_client(ctx.conn, ctx.tenant, inp.client_id)
    elif matched_by == "name":
        client = await clients.find_client_by_name_ci(ctx.conn, ctx.tenant, inp.name or "")
    elif matched_by == "external_ref":
        client = await clients.find_client_by_property(ctx.conn, ctx.tenant, "external_ref", inp.external_ref or "")
    else:
        match = await clients.find_client_by_location_phone(ctx.conn, ctx.tenant, inp.phone or "", inp.phone_match)
        client = match.client if match else None
        extra = {
            "matched_location": MatchedLocation(
                location_id=match.location_id, location_name=match.location_name, phone=match.phone
            )
            if match
            else None,
            "matched_count": match.matched_count if match else 0,
        }
    if client is None:
        if inp.on_not_found == "error":
            raise failure("ActionError", "NOT_FOUND", "Client not found", {"matched_by": matched_by})
        return FindOutput(client=None, primary_contact=None, **extra)
    primary = await _primary_contact(ctx, client.client_id) if inp.include_primary_contact else None
    return FindOutput(client=summary(client), primary_contact=primary, **extra)


# -- clients.search ----------------------------------------------------------------------------------------


class SearchFilters(BaseModel):
    include_inactive: bool | None = None
    tags: list[str] | None = None
    sort_by: Literal["name", "updated_at"] | None = None
    sort_order: Literal["asc", "desc"] | None = None


class SearchInput(BaseModel):
    query: str = Field(min_length=1, description="Search query (client name)")
    filters: SearchFilters | None = None
    page: int = Field(default=1, gt=0, le=PAGE_MAX)
    page_size: int = Field(default=25, gt=0, le=100)

    @field_validator("query")
    @classmethod
    def _min_length(cls, value: str) -> str:
        minimum = get_settings().workflow_client_search_min_query_len
        if len(value.strip()) < minimum:
            raise PydanticCustomError("query_too_short", f"query must be at least {minimum} characters")
        return value


class SearchOutput(BaseModel):
    clients: list[ClientSummary]
    first_client: ClientSummary | None
    page: int
    page_size: int
    total: int


async def search_handler(ctx: ActionContext, inp: SearchInput) -> SearchOutput:
    """Reference clients.search: name contains the query, active only unless ``include_inactive``, any of
    ``tags``, ordered by name (or updated_at) then id, paged, with the distinct total."""
    filters = inp.filters or SearchFilters()
    tag_filter = [tag.strip() for tag in filters.tags or () if tag.strip()]  # exact texts: no case folding
    found, total = await clients.search_clients(
        ctx.conn,
        ctx.tenant,
        inp.query,
        include_inactive=bool(filters.include_inactive),
        tags=tag_filter or None,
        sort_by=filters.sort_by or "name",
        sort_order=filters.sort_order or "asc",
        limit=inp.page_size,
        offset=(inp.page - 1) * inp.page_size,
    )
    summaries = [summary(c) for c in found]
    return SearchOutput(
        clients=summaries,
        first_client=summaries[0] if summaries else None,
        page=inp.page,
        page_size=inp.page_size,
        total=total,
    )


# -- clients.create ----------------------------------------------------------------------------------------

# input key -> client_locations column of the default location
_LOCATION_INPUTS = {
    "address": "address_line1",
    "address_2": "address_line2",
    "city": "city",
    "state": "state_province",
    "zip": "postal_code",
    "country": "country_name",
    "phone_no": "phone",
    "email": "email",
}


class CreateInput(BaseModel):
    client_name: ClientName = Field(min_length=1)
    client_type: ClientType | None = None
    url: WebUrl = None
    phone_no: str | None = None
    email: BillingEmail = None
    address: str | None = None
    address_2: str | None = None
    city: str | None = None
    state: str | None = None
    zip: str | None = None
    country: str | None = None
    default_currency_code: CurrencyCode | None = None
    notes: Notes = None
    properties: dict[str, Any] | None = None
    parent_client_id: UUID | None = Field(default=None, json_schema_extra=picker("client"))
    contract_line_id: UUID | None = None
    is_default: bool | None = None
    tags: list[TagText] | None = None
    idempotency_key: str | None = idempotency_key_field()


class CreateOutput(BaseModel):
    client: ClientSummary
    tags: list[TagResult]


async def create_handler(ctx: ActionContext, inp: CreateInput) -> CreateOutput:
    """Reference clients.create: parent check, client (default type 'company', currency 'USD'), default
    location when any address, phone or email field is given, initial tags; audit and CLIENT_CREATED."""
    await _check_parent(ctx, inp.parent_client_id)
    data = {
        "client_name": inp.client_name,
        "client_type": inp.client_type or "company",
        "url": inp.url,
        "billing_email": inp.email,
        "notes": inp.notes,
        "properties": inp.properties,
        "default_currency_code": inp.default_currency_code or "USD",
    }
    client = await clients.create_client(ctx.conn, ctx.tenant, data)
    location = {column: getattr(inp, key) for key, column in _LOCATION_INPUTS.items() if getattr(inp, key) is not None}
    await clients.upsert_default_location(ctx.conn, ctx.tenant, client.client_id, location, create=True)
    added, existing = await ensure_tags(ctx, client.client_id, "client", inp.tags)
    await ctx.audit(
        {"client_id": str(client.client_id), "client_name": client.client_name},
        {"client_id": str(client.client_id)},
    )
    await ctx.emit(
        "CLIENT_CREATED", client_created_payload(client, ctx.actor_user_id), f"client_created:{client.client_id}"
    )
    return CreateOutput(client=summary(client), tags=[*added, *existing])


# -- clients.update ----------------------------------------------------------------------------------------

# Written columns in the reference's patch order (changed_fields keeps it); properties last.
_UPDATE_COLUMNS = (
    "client_name",
    "client_type",
    "url",
    "billing_email",
    "notes",
    "default_currency_code",
    "is_inactive",
    "properties",
)


class UpdatePatch(BaseModel):
    """Every key optional; a key present with null clears (url, email, notes, properties, the address
    fields). ``client_name``, ``client_type``, ``default_currency_code`` and ``is_inactive`` cannot be null."""

    client_name: ClientName = Field(default=None, min_length=1)  # absent: unchanged; null: rejected
    client_type: ClientType = None  # type: ignore[assignment]
    url: WebUrl = None
    phone_no: str | None = None
    email: BillingEmail = None
    address: str | None = None
    address_2: str | None = None
    city: str | None = None
    state: str | None = None
    zip: str | None = None
    country: str | None = None
    default_currency_code: CurrencyCode = None  # type: ignore[assignment]
    notes: Notes = None
    properties: dict[str, Any] | None = None
    parent_client_id: UUID | None = None
    contract_line_id: UUID | None = None
    is_default: bool | None = None
    is_inactive: bool = None  # type: ignore[assignment]

    @model_validator(mode="after")
    def _not_empty(self) -> UpdatePatch:
        if not self.model_fields_set:
            raise PydanticCustomError("patch_empty", "patch must include at least one editable field")
        return self


class UpdateInput(BaseModel):
    client_id: UUID = _client_id_field()
    patch: UpdatePatch


class UpdateOutput(BaseModel):
    client_before: ClientSummary
    client_after: ClientSummary
    changed_fields: list[str]


async def update_handler(ctx: ActionContext, inp: UpdateInput) -> UpdateOutput:
    """Reference clients.update: patch the client's columns (properties merged shallowly, null clears),
    patch the existing default location (never created here), deactivate contacts and portal users when
    ``is_inactive`` is true; audit, and CLIENT_UPDATED when a written column really changed."""
    patch, given = inp.patch, inp.patch.model_fields_set
    before = await _client(ctx, inp.client_id)
    if "parent_client_id" in given:
        await _check_parent(ctx, patch.parent_client_id)
    changes: dict[str, Any] = {}
    for key in ("client_name", "client_type", "url", "notes", "default_currency_code", "is_inactive"):
        if key in given:
            changes[key] = getattr(patch, key)
    if "email" in given:
        changes["billing_email"] = patch.email
    if "properties" in given:
        changes["properties"] = None if patch.properties is None else {**before.properties, **patch.properties}
    after = await clients.update_client(ctx.conn, ctx.tenant, inp.client_id, changes) if changes else before
    if patch.is_inactive is True:
        await clients.deactivate_client_users(ctx.conn, ctx.tenant, inp.client_id)
    location = {column: getattr(patch, key) for key, column in _LOCATION_INPUTS.items() if key in given}
    await clients.upsert_default_location(ctx.conn, ctx.tenant, inp.client_id, location, create=False)
    changed_fields = [column for column in _UPDATE_COLUMNS if column in changes]
    await ctx.audit(
        {"client_id": str(inp.client_id), "changed_fields": changed_fields}, {"client_id": str(inp.client_id)}
    )
    payload = client_updated_payload(
        inp.client_id, before.model_dump(), after.model_dump(), changed_fields, after.updated_at
    )
    if payload.get("updatedFields"):
        await ctx.emit("CLIENT_UPDATED", payload, f"client_updated:{inp.client_id}:{iso_z(after.updated_at)}")
    return UpdateOutput(client_before=summary(before), client_after=summary(after), changed_fields=changed_fields)


# -- clients.archive ---------------------------------------------------------------------------------------


class ArchiveInput(BaseModel):
    client_id: UUID = _client_id_field()


class ArchiveOutput(BaseModel):
    client_id: UUID
    archived: bool
    previous_is_inactive: bool
    current_is_inactive: bool
    archived_at: IsoDateTime | None


async def archive_handler(ctx: ActionContext, inp: ArchiveInput) -> ArchiveOutput:
    """Reference clients.archive: an active client becomes inactive with its contacts and portal users
    (``archived_at`` = the database time of the change) and CLIENT_ARCHIVED is queued; an inactive one is
    left alone (``archived: false``). The audit row is written either way."""
    before = await _client(ctx, inp.client_id)
    archived_at = None
    if not before.is_inactive:
        after = await clients.archive_client(ctx.conn, ctx.tenant, inp.client_id)
        await clients.deactivate_client_users(ctx.conn, ctx.tenant, inp.client_id)
        archived_at = after.updated_at
        await ctx.emit(
            "CLIENT_ARCHIVED",
            client_archived_payload(inp.client_id, ctx.actor_user_id, archived_at),
            f"client_archived:{inp.client_id}:{iso_z(archived_at)}",
        )
    await ctx.audit(
        {"client_id": str(inp.client_id), "previous_is_inactive": before.is_inactive, "current_is_inactive": True},
        {"client_id": str(inp.client_id)},
    )
    return ArchiveOutput(
        client_id=inp.client_id,
        archived=archived_at is not None,
        previous_is_inactive=before.is_inactive,
        current_is_inactive=True,
        archived_at=archived_at,
    )


# -- clients.delete ----------------------------------------------------------------------------------------


class DeleteInput(BaseModel):
    client_id: UUID = _client_id_field()
    confirm: confirm_flag("client")
    on_not_found: Literal["error", "return_false"] = "error"


class DeleteOutput(BaseModel):
    deleted: bool
    client_id: UUID


_DEPENDENCY_LABELS = {
    "contact": ("contact", "contacts"),
    "ticket": ("ticket", "tickets"),
    "interaction": ("interaction", "interactions"),
    "document": ("document", "documents"),
}


async def client_dependencies(ctx: ActionContext, client: Client) -> dict[str, int]:
    """Counts of the records that block deleting the client, by type (only those > 0): contacts, tickets,
    interactions, and documents associated as 'company' or 'client' other than the client's notes document."""
    conn, tenant, client_id = ctx.conn, ctx.tenant, client.client_id
    notes_document = await clients.notes_document_id(conn, tenant, client_id)
    client_documents = await documents.count_document_associations(conn, tenant, "client", client_id)
    counts = {
        "contact": await contacts.count_contacts_for_client(conn, tenant, client_id),
        "ticket": await tickets.count_tickets_for_client(conn, tenant, client_id),
        "interaction": await interactions.count_interactions_for_client(conn, tenant, client_id),
        "document": await documents.count_document_associations(conn, tenant, "company", client_id)
        + max(0, client_documents - (1 if notes_document is not None else 0)),
    }
    return {kind: n for kind, n in counts.items() if n}


async def delete_handler(ctx: ActionContext, inp: DeleteInput) -> DeleteOutput:
    """Reference clients.delete: refuses the tenant's default client (VALIDATION_ERROR) and a client with
    contacts, tickets, interactions or documents (CONFLICT with the dependencies); otherwise removes its
    notes document, tag mappings, locations, tax and email settings and the client."""
    client = await clients.find_client(ctx.conn, ctx.tenant, inp.client_id)
    if client is None:
        if inp.on_not_found == "error":
            raise _client_not_found(inp.client_id)
        await ctx.audit({"client_id": str(inp.client_id), "deleted": False}, {"client_id": str(inp.client_id)})
        return DeleteOutput(deleted=False, client_id=inp.client_id)
    if await clients.is_default_client(ctx.conn, ctx.tenant, inp.client_id):
        raise failure(
            "ValidationError",
            "VALIDATION_ERROR",
            "Cannot delete the default client. Please set another client as default in General Settings first.",
            {"client_id": str(inp.client_id)},
        )
    counts = await client_dependencies(ctx, client)
    if counts:
        raise dependency_conflict(
            "client", counts, _DEPENDENCY_LABELS, {"ticket": f"/msp/tickets?client_id={inp.client_id}"}
        )
    await clients.delete_client(ctx.conn, ctx.tenant, inp.client_id)  # also removes its notes documents
    await ctx.audit({"client_id": str(inp.client_id), "deleted": True}, {"client_id": str(inp.client_id)})
    return DeleteOutput(deleted=True, client_id=inp.client_id)


# -- clients.duplicate -------------------------------------------------------------------------------------


class DuplicateInput(BaseModel):
    source_client_id: UUID = _client_id_field("Client to duplicate")
    client_name: ClientName = Field(min_length=1, description="Name for the duplicated client")
    copy_tags: bool = True
    copy_locations: bool = False
    idempotency_key: str | None = idempotency_key_field()


class DuplicateOutput(BaseModel):
    source_client: ClientSummary
    duplicate_client: ClientSummary
    copied_tags: int
    copied_locations: int


async def duplicate_handler(ctx: ActionContext, inp: DuplicateInput) -> DuplicateOutput:
    """Reference clients.duplicate: a new active client with the source's profile, optionally its tags
    (re-applied by text) and locations (new ids); never contacts, tickets or notes."""
    source = await _client(ctx, inp.source_client_id, "source_client_id")
    duplicate = await clients.duplicate_client(ctx.conn, ctx.tenant, source.client_id, inp.client_name)
    copied_tags = copied_locations = 0
    if inp.copy_tags:
        source_tags = await tags.tags_for(ctx.conn, ctx.tenant, source.client_id, "client")
        added, existing = await ensure_tags(ctx, duplicate.client_id, "client", [m.tag_text for m in source_tags])
        copied_tags = len(added) + len(existing)
    if inp.copy_locations:
        copied_locations = await clients.copy_client_locations(
            ctx.conn, ctx.tenant, source.client_id, duplicate.client_id
        )
    await ctx.audit(
        {
            "source_client_id": str(source.client_id),
            "duplicate_client_id": str(duplicate.client_id),
            "copied_tags": copied_tags,
            "copied_locations": copied_locations,
        },
        {"client_id": str(duplicate.client_id)},
    )
    return DuplicateOutput(
        source_client=summary(source),
        duplicate_client=summary(duplicate),
        copied_tags=copied_tags,
        copied_locations=copied_locations,
    )


# -- clients.add_tag ---------------------------------------------------------------------------------------


class AddTagInput(BaseModel):
    client_id: UUID = _client_id_field()
    tags: list[TagText] = Field(min_length=1, description="Tags to attach")
    idempotency_key: str | None = idempotency_key_field()


class AddTagOutput(BaseModel):
    client_id: UUID
    added: list[TagResult]
    existing: list[TagResult]
    added_count: int
    existing_count: int


async def add_tag_handler(ctx: ActionContext, inp: AddTagInput) -> AddTagOutput:
    """Reference clients.add_tag: ensure each tag; tags the client already has are reported as existing."""
    await _client(ctx, inp.client_id)
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
    client_id: UUID = _client_id_field()
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


async def assign_to_ticket_handler(ctx: ActionContext, inp: AssignToTicketInput) -> AssignToTicketOutput:
    """Reference clients.assign_to_ticket: move the ticket to the client; ``contact_id`` / ``location_id``
    change only when their key is present (null clears) and must belong to the client."""
    await _client(ctx, inp.client_id)
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
    client_id: UUID = _client_id_field()
    body: NoteBody
    idempotency_key: str | None = idempotency_key_field()


class AddNoteOutput(BaseModel):
    client_id: UUID
    document_id: UUID
    created_document: bool
    updated_at: IsoDateTime


async def add_note_handler(ctx: ActionContext, inp: AddNoteInput) -> AddNoteOutput:
    """Reference clients.add_note: append a paragraph to the client's notes document, creating it
    ("{client_name} Notes") the first time, when NOTE_CREATED is queued."""
    await _client(ctx, inp.client_id)
    note = await append_entity_note(ctx, "client", inp.client_id, inp.body)
    return AddNoteOutput(
        client_id=inp.client_id,
        document_id=note.document_id,
        created_document=note.created_document,
        updated_at=note.updated_at,
    )


# -- clients.add_interaction -------------------------------------------------------------------------------


class AddInteractionInput(BaseModel):
    client_id: UUID = _client_id_field()
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


async def add_interaction_handler(ctx: ActionContext, inp: AddInteractionInput) -> AddInteractionOutput:
    """Reference clients.add_interaction: log an interaction owned by the workflow actor; the contact and
    ticket must belong to the client; default interaction status unless ``status_id``; INTERACTION_LOGGED."""
    await _client(ctx, inp.client_id)
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
    await ctx.emit(
        "INTERACTION_LOGGED",
        interaction_logged_payload(
            interaction, interaction_type.type_name if interaction_type else None, ctx.actor_user_id
        ),
        f"interaction_logged:{interaction.interaction_id}",
    )
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


# -- registration ------------------------------------------------------------------------------------------


READ, CREATE, UPDATE, DELETE = ("client", "read"), ("client", "create"), ("client", "update"), ("client", "delete")

ACTIONS: tuple[ActionDef, ...] = (
    action_def(
        "clients.find",
        "Find Client",
        "Find a client by id, name, external ref, or location phone",
        FindInput,
        FindOutput,
        find_handler,
        side_effectful=False,
        idempotency="engine",
        permissions=(READ,),
    ),
    action_def(
        "clients.search",
        "Search Clients",
        "Search clients by name",
        SearchInput,
        SearchOutput,
        search_handler,
        side_effectful=False,
        idempotency="engine",
        permissions=(READ,),
    ),
    action_def(
        "clients.create",
        "Create Client",
        "Create a client and optionally attach initial tags",
        CreateInput,
        CreateOutput,
        create_handler,
        side_effectful=True,
        idempotency="action",
        permissions=(CREATE,),
    ),
    action_def(
        "clients.update",
        "Edit Client",
        "Update editable fields on an existing client",
        UpdateInput,
        UpdateOutput,
        update_handler,
        side_effectful=True,
        idempotency="engine",
        permissions=(UPDATE,),
    ),
    action_def(
        "clients.archive",
        "Archive Client",
        "Set a client inactive with idempotent semantics",
        ArchiveInput,
        ArchiveOutput,
        archive_handler,
        side_effectful=True,
        idempotency="engine",
        permissions=(UPDATE,),
    ),
    action_def(
        "clients.delete",
        "Delete Client",
        "Hard-delete a client with dependency validation guardrails",
        DeleteInput,
        DeleteOutput,
        delete_handler,
        side_effectful=True,
        idempotency="engine",
        permissions=(DELETE,),
    ),
    action_def(
        "clients.duplicate",
        "Duplicate Client",
        "Create a new client from a source profile with safe copy options",
        DuplicateInput,
        DuplicateOutput,
        duplicate_handler,
        side_effectful=True,
        idempotency="action",
        permissions=(READ, CREATE),
    ),
    action_def(
        "clients.add_tag",
        "Add Tag to Client",
        "Attach one or more tags to a client with idempotent mapping behavior",
        AddTagInput,
        AddTagOutput,
        add_tag_handler,
        side_effectful=True,
        idempotency="action",
        permissions=(UPDATE,),
    ),
    action_def(
        "clients.assign_to_ticket",
        "Assign Client to Ticket",
        "Move a ticket to a client and optionally set/clear contact and location",
        AssignToTicketInput,
        AssignToTicketOutput,
        assign_to_ticket_handler,
        side_effectful=True,
        idempotency="engine",
        permissions=(READ, ("ticket", "update")),
    ),
    action_def(
        "clients.add_note",
        "Add Note to Client",
        "Append a note block to the client notes document",
        AddNoteInput,
        AddNoteOutput,
        add_note_handler,
        side_effectful=True,
        idempotency="action",
        permissions=(UPDATE,),
    ),
    action_def(
        "clients.add_interaction",
        "Add Interaction to Client",
        "Log an interaction against a client using the workflow actor as owner",
        AddInteractionInput,
        AddInteractionOutput,
        add_interaction_handler,
        side_effectful=True,
        idempotency="action",
        permissions=(UPDATE,),
    ),
)


def register(registry: ActionRegistry) -> ActionRegistry:
    """Register the 11 clients.* actions (spec runtime §3.2) on ``registry``, in the reference's order."""
    for action in ACTIONS:
        registry.register(action)
    return registry
