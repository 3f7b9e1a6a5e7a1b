"""``contacts.find`` and ``contacts.search``, and the lookup the other contacts actions share: a contact by id
(NOT_FOUND otherwise). They check a given client with ``psa.domain.lookups.require_client``."""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from psa.automation.actions.common import PAGE_MAX, field_error
from psa.automation.actions.contacts.models import READ, ContactSummary, EmailAddress, summary
from psa.automation.registry import ActionContext, ActionSet, picker
from psa.config import get_settings
from psa.domain import contacts
from psa.domain.contacts import Contact, ContactBrief
from psa.domain.errors import NotFoundError

actions = ActionSet()
"""This module's actions (the package lists them in catalog order)."""


def not_found(contact_id: UUID, field: str = "contact_id") -> NotFoundError:
    """NotFoundError "Contact not found" ``{<field>: <id>}``."""
    return NotFoundError("Contact not found", details={field: str(contact_id)})


async def require_contact(
    ctx: ActionContext, contact_id: UUID, field: str = "contact_id", *, lock: bool = False
) -> Contact:
    """The hydrated contact, or NotFoundError "Contact not found" ``{<field>: <id>}`` (another tenant's id is not
    found). ``lock``: for an action that decides on what it reads (a no-op, a guard, a conflict), the row is
    locked until commit."""
    contact = await contacts.find_contact(ctx.conn, ctx.tenant, contact_id, lock=lock)
    if contact is None:
        raise not_found(contact_id, field)
    return contact


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


@actions.define(
    "contacts.find",
    "Find Contact",
    "Find a contact by id, email, or phone",
    permissions=(READ,),
    idempotency="engine",
    side_effectful=False,
)
async def find(ctx: ActionContext, inp: FindInput) -> FindOutput:
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
            raise NotFoundError("Contact not found", details={"matched_by": matched_by})
        return FindOutput(contact=None)
    return FindOutput(contact=summary(found))


# -- contacts.search ---------------------------------------------------------------------------------------


class SearchFilters(BaseModel):
    tags: list[str] | None = Field(default=None, description="Any of these tag texts (case and spacing aside)")
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


@actions.define(
    "contacts.search",
    "Search Contacts",
    "Search contacts by name or email",
    permissions=(READ,),
    idempotency="engine",
    side_effectful=False,
)
async def search(ctx: ActionContext, inp: SearchInput) -> SearchOutput:
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
