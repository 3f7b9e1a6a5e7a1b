"""``clients.find`` and ``clients.search``. The other clients actions check a client given by id with
``psa.domain.lookups.require_client`` (``cite="id"``: NOT_FOUND "Client not found" ``{client_id}``)."""

from __future__ import annotations

import re
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, Field, field_validator, model_serializer, model_validator
from pydantic_core import PydanticCustomError

from psa.automation.actions.clients.models import READ, ClientSummary, summary
from psa.automation.actions.common import PAGE_MAX, field_error
from psa.automation.registry import ActionContext, ActionSet, picker
from psa.config import get_settings
from psa.domain import clients, contacts, values
from psa.domain.errors import NotFoundError

actions = ActionSet()
"""This module's actions (the package lists them in catalog order)."""
_EXTERNAL_REF = re.compile(r"[A-Za-z0-9._:-]+")


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


# -- clients.find ------------------------------------------------------------------------------------------


class FindInput(BaseModel):
    client_id: UUID | None = Field(default=None, description="Client id", json_schema_extra=picker("client"))
    name: str | None = Field(default=None, description="Client name (case and spacing aside: the same name_key)")
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


@actions.define(
    "clients.find",
    "Find Client",
    "Find a client by id, name, external ref, or location phone",
    permissions=(READ,),
    idempotency="engine",
    side_effectful=False,
)
async def find(ctx: ActionContext, inp: FindInput) -> FindOutput:
    """Reference clients.find: precedence client_id > name > external_ref > phone; inactive clients are
    returned; NOT_FOUND "Client not found" ``{matched_by}`` only with ``on_not_found='error'``."""
    matched_by = inp.matched_by()
    extra: dict[str, Any] = {}
    if matched_by == "client_id":
        client = await clients.find_client(ctx.conn, ctx.tenant, inp.client_id)
    elif matched_by == "name":
        client = await clients.find_client_by_name(ctx.conn, ctx.tenant, inp.name or "")
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
            raise NotFoundError("Client not found", details={"matched_by": matched_by})
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


@actions.define(
    "clients.search",
    "Search Clients",
    "Search clients by name",
    permissions=(READ,),
    idempotency="engine",
    side_effectful=False,
)
async def search(ctx: ActionContext, inp: SearchInput) -> SearchOutput:
    """Reference clients.search: name contains the query, active only unless ``include_inactive``, any of
    ``tags``, ordered by name (or updated_at) then id, paged, with the distinct total."""
    filters = inp.filters or SearchFilters()
    tag_filter = [tag.strip() for tag in filters.tags or () if tag.strip()]  # compared by name_key
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
