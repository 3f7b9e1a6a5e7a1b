"""``clients.create``, ``update``, ``archive``, ``delete`` and ``duplicate``: the actions that write a client's
own fields."""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, Field, model_validator
from pydantic_core import PydanticCustomError

from psa.automation.actions.clients.models import CREATE, DELETE, READ, UPDATE, ClientSummary, client_id_field, summary
from psa.automation.actions.common import (
    IsoDateTime,
    TagResult,
    TagText,
    confirm_flag,
    ensure_tags,
    idempotency_key_field,
)
from psa.automation.events import ClientArchived, ClientCreated, ClientUpdated
from psa.automation.registry import ActionContext, ActionSet, picker
from psa.domain import clients, deletion, lookups, tags
from psa.domain.clients import BillingEmail, ClientName, ClientType, CurrencyCode, Notes, WebUrl
from psa.domain.errors import NotFoundError

actions = ActionSet()
"""This module's actions (the package lists them in catalog order)."""


async def _check_parent(ctx: ActionContext, parent_client_id: UUID | None) -> None:
    """NOT_FOUND "Parent client not found" ``{parent_client_id}`` unless None or a client of the tenant."""
    if parent_client_id is not None:
        await lookups.require_client(
            ctx.conn,
            ctx.tenant,
            parent_client_id,
            field="parent_client_id",
            message="Parent client not found",
            cite="id",
        )


# -- clients.create ----------------------------------------------------------------------------------------


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


@actions.define(
    "clients.create",
    "Create Client",
    "Create a client and optionally attach initial tags",
    permissions=(CREATE,),
    idempotency="action",
)
async def create(ctx: ActionContext, inp: CreateInput) -> CreateOutput:
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
    await ctx.emit(ClientCreated.of(client, ctx.actor_user_id))
    return CreateOutput(client=summary(client), tags=[*added, *existing])


# -- clients.update ----------------------------------------------------------------------------------------


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
    client_id: UUID = client_id_field()
    patch: UpdatePatch


class UpdateOutput(BaseModel):
    client_before: ClientSummary
    client_after: ClientSummary
    changed_fields: list[str]


@actions.define(
    "clients.update",
    "Edit Client",
    "Update editable fields on an existing client",
    permissions=(UPDATE,),
    idempotency="engine",
)
async def update(ctx: ActionContext, inp: UpdateInput) -> UpdateOutput:
    """Reference clients.update: patch the client's columns (properties merged shallowly, null clears),
    patch the existing default location (never created here), deactivate contacts and portal users when
    ``is_inactive`` is true; audit, and CLIENT_UPDATED when a written column really changed."""
    patch, given = inp.patch, inp.patch.model_fields_set
    before = await lookups.require_client(ctx.conn, ctx.tenant, inp.client_id, cite="id")
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
    event = ClientUpdated.of(before, after, changed_fields)
    if event.updated_fields:
        await ctx.emit(event)
    return UpdateOutput(client_before=summary(before), client_after=summary(after), changed_fields=changed_fields)


# -- clients.archive ---------------------------------------------------------------------------------------


class ArchiveInput(BaseModel):
    client_id: UUID = client_id_field()


class ArchiveOutput(BaseModel):
    client_id: UUID
    archived: bool
    previous_is_inactive: bool
    current_is_inactive: bool
    archived_at: IsoDateTime | None


@actions.define(
    "clients.archive",
    "Archive Client",
    "Set a client inactive with idempotent semantics",
    permissions=(UPDATE,),
    idempotency="engine",
)
async def archive(ctx: ActionContext, inp: ArchiveInput) -> ArchiveOutput:
    """Reference clients.archive: an active client becomes inactive with its contacts and portal users
    (``archived_at`` = the database time of the change) and CLIENT_ARCHIVED is queued; an inactive one is
    left alone (``archived: false``). The audit row is written either way."""
    before = await lookups.require_client(ctx.conn, ctx.tenant, inp.client_id, cite="id")
    archived_at = None
    if not before.is_inactive:
        after = await clients.archive_client(ctx.conn, ctx.tenant, inp.client_id)
        await clients.deactivate_client_users(ctx.conn, ctx.tenant, inp.client_id)
        archived_at = after.updated_at
        await ctx.emit(
            ClientArchived(client_id=inp.client_id, archived_by_user_id=ctx.actor_user_id, archived_at=archived_at)
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
    client_id: UUID = client_id_field()
    confirm: confirm_flag("client")
    on_not_found: Literal["error", "return_false"] = "error"


class DeleteOutput(BaseModel):
    deleted: bool
    client_id: UUID


@actions.define(
    "clients.delete",
    "Delete Client",
    "Hard-delete a client with dependency validation guardrails",
    permissions=(DELETE,),
    idempotency="engine",
)
async def delete(ctx: ActionContext, inp: DeleteInput) -> DeleteOutput:
    """Reference clients.delete: refuses the tenant's default client (VALIDATION_ERROR) and a client with
    contacts, tickets, interactions or documents (CONFLICT with the dependencies); otherwise removes its
    notes document, tag mappings, locations, tax and email settings and the client."""
    if await clients.find_client(ctx.conn, ctx.tenant, inp.client_id) is None:
        if inp.on_not_found == "error":
            raise NotFoundError("Client not found", details={"client_id": str(inp.client_id)})
        await ctx.audit({"client_id": str(inp.client_id), "deleted": False}, {"client_id": str(inp.client_id)})
        return DeleteOutput(deleted=False, client_id=inp.client_id)
    await deletion.check_client_deletable(ctx.conn, ctx.tenant, inp.client_id)
    await clients.delete_client(ctx.conn, ctx.tenant, inp.client_id)  # also removes its notes documents
    await ctx.audit({"client_id": str(inp.client_id), "deleted": True}, {"client_id": str(inp.client_id)})
    return DeleteOutput(deleted=True, client_id=inp.client_id)


# -- clients.duplicate -------------------------------------------------------------------------------------


class DuplicateInput(BaseModel):
    source_client_id: UUID = client_id_field("Client to duplicate")
    client_name: ClientName = Field(min_length=1, description="Name for the duplicated client")
    copy_tags: bool = True
    copy_locations: bool = False
    idempotency_key: str | None = idempotency_key_field()


class DuplicateOutput(BaseModel):
    source_client: ClientSummary
    duplicate_client: ClientSummary
    copied_tags: int
    copied_locations: int


@actions.define(
    "clients.duplicate",
    "Duplicate Client",
    "Create a new client from a source profile with safe copy options",
    permissions=(READ, CREATE),
    idempotency="action",
)
async def duplicate(ctx: ActionContext, inp: DuplicateInput) -> DuplicateOutput:
    """Reference clients.duplicate: a new active client with the source's profile, optionally its tags
    (re-applied by text) and locations (new ids); never contacts, tickets or notes."""
    source = await lookups.require_client(
        ctx.conn, ctx.tenant, inp.source_client_id, field="source_client_id", cite="id"
    )
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
