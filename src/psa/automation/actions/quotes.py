"""The ``crm.*`` quote actions (reference: the crm quote actions; docs/automation.md, "Action contract"; the
catalog is docs/actions.md): create a draft quote, add items (totals recalculated), find quotes, submit for
approval, and send a quote by email through the project's email service (``psa.email``, provider chosen by the
settings).

Conventions are those of ``actions/clients``. Amounts are integer minor units (cents). Deliberate
deviations from the reference:
- The reference's record-level "quote authorization" kernel (which only bundle narrowing rules could deny)
  is not modelled: the ``billing:*`` permissions are the check.
- A no-op (already pending, already sent) still leaves an audit row with ``no_op: true``: the runtime audits
  every side-effectful invocation.
- crm.send_quote deduplicates recipients ignoring case, keeping the first spelling, and validates addresses
  (``email-validator``); the email is queued in the email outbox inside the action's transaction and delivered
  after commit, so a failure of the same invocation leaves no email (the reference sent it inside the
  transaction); the output says ``email_status: "queued"`` with the ``message_id``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AfterValidator, BaseModel, BeforeValidator, EmailStr, Field, model_validator
from pydantic_core import PydanticCustomError

from psa.automation.actions.common import (
    INT4_MAX,
    PAGE_MAX,
    IsoDateTime,
    day_or,
    field_error,
    idempotency_key_field,
    out_of_order,
)
from psa.automation.registry import ActionContext, ActionSet, picker
from psa.config import get_settings
from psa.domain import contacts, lookups, quotes, tenants
from psa.domain.errors import NotFoundError
from psa.domain.quotes import NewQuoteItem, Quote, QuoteItem, QuoteStatus
from psa.domain.values import local_day
from psa.email import EMAIL_TYPE_QUOTE, QuoteEmail, render_quote
from psa.timeutil import iso_z

UNBOUNDED_PAGE_SIZE_MAX = 25
QUANTITY_MAX = 1_000_000_000
AMOUNT_MAX = 1_000_000_000
"""Largest quantity and unit price / cost (cents, 10 million in major units): their product stays inside the
``bigint`` totals."""
PORTAL_QUOTES_PATH = "/client-portal/billing?tab=quotes"
READ, CREATE, UPDATE = ("billing", "read"), ("billing", "create"), ("billing", "update")

actions = ActionSet()
"""The crm.* quote actions, in catalog order (the order they are defined in below)."""


def _trimmed(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


def _utc(value: datetime) -> datetime:
    """A date or naive date-time is taken as UTC (reference: ``z.coerce.date()``); one whose UTC time falls
    outside 0001-01-01 .. 9999-12-31 is refused."""
    try:
        return value.replace(tzinfo=UTC) if value.utcoffset() is None else value.astimezone(UTC)
    except OverflowError:
        raise PydanticCustomError("date_range", "must fall between 0001-01-01 and 9999-12-31 in UTC") from None


QuoteDate = Annotated[datetime, AfterValidator(_utc)]
"""A quote instant: an ISO-8601 date-time (UTC when no offset is given)."""
QuoteDay = day_or(QuoteDate)
"""A quote date: a calendar day ``2026-01-05`` (in the tenant's time zone: docs/automation.md, "Dates") or a
QuoteDate."""
Trimmed = Annotated[str, BeforeValidator(_trimmed)]
Currency = Annotated[str, BeforeValidator(_trimmed), Field(min_length=3, max_length=3)]


# -- output shapes -------------------------------------------------------------------------------------------


class QuoteSummary(BaseModel):
    quote_id: UUID
    quote_number: str | None
    status: str | None
    client_id: UUID | None
    title: str


class QuoteDetailSummary(BaseModel):
    """Reference QuoteDetailSummary; amounts in integer minor units."""

    quote_id: UUID
    quote_number: str | None
    status: str | None
    client_id: UUID | None
    contact_id: UUID | None
    title: str
    quote_date: IsoDateTime | None
    valid_until: IsoDateTime | None
    currency_code: str | None
    subtotal: int | None
    discount_total: int | None
    tax: int | None
    total_amount: int | None
    sent_at: IsoDateTime | None
    converted_contract_id: UUID | None
    converted_invoice_id: UUID | None
    is_template: bool


class QuoteItemSummary(BaseModel):
    quote_item_id: UUID
    quote_id: UUID
    description: str
    quantity: int
    unit_price: int
    total_price: int
    display_order: int
    is_optional: bool
    is_selected: bool
    is_recurring: bool
    is_discount: bool
    billing_frequency: str | None
    discount_type: str | None
    discount_percentage: int | None
    created_at: IsoDateTime | None


def detail(quote: Quote) -> QuoteDetailSummary:
    """The QuoteDetailSummary of a domain quote."""
    return QuoteDetailSummary(**quote.model_dump(include=set(QuoteDetailSummary.model_fields)))


def brief(quote: Quote) -> QuoteSummary:
    """The QuoteSummary of a domain quote."""
    return QuoteSummary(**quote.model_dump(include=set(QuoteSummary.model_fields)))


def item_summary(item: QuoteItem) -> QuoteItemSummary:
    """The QuoteItemSummary of a domain quote item."""
    return QuoteItemSummary(**item.model_dump(include=set(QuoteItemSummary.model_fields)))


async def _quote(ctx: ActionContext, quote_id: UUID, *, lock: bool = True) -> Quote:
    """The quote (locked for the transaction), or NotFoundError "Quote not found" ``{quote_id}``."""
    found = await quotes.find_quote(ctx.conn, ctx.tenant, quote_id, lock=lock)
    if found is None:
        raise NotFoundError("Quote not found", details={"quote_id": str(quote_id)})
    return found


# -- crm.send_quote ------------------------------------------------------------------------------------------


class SendQuoteInput(BaseModel):
    quote_id: UUID
    email_addresses: list[EmailStr] | None = None
    subject: str | None = None
    message: str | None = None
    no_op_if_already_sent: bool = True

    @model_validator(mode="after")
    def _subject(self) -> SendQuoteInput:
        if self.subject is not None and ("\r" in self.subject or "\n" in self.subject):
            raise field_error(type(self), "subject", "subject must be a single line", None)
        return self


class SendQuoteOutput(BaseModel):
    quote: QuoteSummary
    previous_status: str | None
    new_status: str | None
    sent_at: IsoDateTime | None
    recipients: list[str]
    email_sent: bool = Field(
        description="an email to the recipients was queued with the quote's change; it is delivered after commit"
    )
    email_status: Literal["queued", "none"] = Field(
        description="queued: in the email outbox, delivered after commit (at least once, de-duplicated by "
        "message_id); none: no recipients, or a no-op"
    )
    message_id: str | None = Field(description="the queued email's Message-ID")
    no_op: bool


def unique_recipients(*addresses: str | None) -> list[str]:
    """Trimmed, non-empty, first spelling kept among addresses equal ignoring case, in the given order."""
    seen: dict[str, str] = {}
    for address in addresses:
        cleaned = (address or "").strip()
        if cleaned and cleaned.casefold() not in seen:
            seen[cleaned.casefold()] = cleaned
    return list(seen.values())


def format_amount(amount: int, currency_code: str) -> str:
    """``USD 1,234.56`` for 123456 minor units, in exact integer arithmetic (a float loses cents past 2^53)."""
    major, minor = divmod(abs(amount), 100)
    return f"{currency_code} {'-' if amount < 0 else ''}{major:,}.{minor:02d}"


@actions.define(
    "crm.send_quote",
    "Send Quote",
    "Send an existing quote to the client using current quote send semantics",
    permissions=(READ, UPDATE),
    idempotency="engine",
)
async def send_quote(ctx: ActionContext, inp: SendQuoteInput) -> SendQuoteOutput:
    """Reference crm.send_quote. A template is refused; an already sent quote is a no-op
    (``no_op_if_already_sent``) or VALIDATION_ERROR. With the tenant's ``approvalRequired`` only approved
    quotes may be sent, otherwise draft or approved ones. The quote becomes ``sent`` (``sent_at`` now); one
    email to the given addresses, the quote's contact and the client's billing email (deduplicated) is queued in
    the email outbox in the same transaction (``email_status: "queued"``, its ``message_id``) and delivered after
    commit by the worker's email sender, so a rollback leaves no email (docs/decisions.md, "quotes"). A ``sent``
    quote activity records recipients and the Message-ID."""
    quote = await _quote(ctx, inp.quote_id)
    if quote.status == "sent" and inp.no_op_if_already_sent and not quote.is_template:
        await ctx.audit({"quote_id": str(quote.quote_id), "no_op": True}, {"quote_id": str(quote.quote_id)})
        return SendQuoteOutput(
            quote=brief(quote),
            previous_status="sent",
            new_status="sent",
            sent_at=quote.sent_at,
            recipients=[],
            email_sent=False,
            email_status="none",
            message_id=None,
            no_op=True,
        )
    await quotes.check_sendable(ctx.conn, ctx.tenant, quote)
    sent = await quotes.set_status(ctx.conn, ctx.tenant, quote, "sent", updated_by=ctx.actor_user_id)
    client = await lookups.require_client(ctx.conn, ctx.tenant, quote.client_id)
    contact = await contacts.find_contact(ctx.conn, ctx.tenant, quote.contact_id) if quote.contact_id else None
    recipients = unique_recipients(
        *(inp.email_addresses or []), contact.email if contact else None, client.billing_email
    )
    message_id = None
    if recipients:
        settings = get_settings()
        message = render_quote(
            settings,
            QuoteEmail(
                tenant_id=str(ctx.tenant),
                quote_id=str(quote.quote_id),
                quote_number=quote.quote_number,
                title=quote.title,
                client_name=client.client_name,
                recipients=recipients,
                subject=inp.subject or f"Quote {quote.quote_number} is ready",
                message=inp.message,
                link=settings.application_url.rstrip("/") + PORTAL_QUOTES_PATH,
                total=format_amount(quote.total_amount, quote.currency_code),
                valid_until=local_day(quote.valid_until, await tenants.tenant_zone(ctx.conn, ctx.tenant)).isoformat(),
            ),
        )
        message_id = (await ctx.queue_email(EMAIL_TYPE_QUOTE, message)).message_id
    email_sent = message_id is not None
    email_status = "queued" if email_sent else "none"
    description = (
        f"Quote sent to {', '.join(recipients)} and published in client portal"
        if email_sent
        else "Quote published in client portal"
    )
    await quotes.add_activity(
        ctx.conn,
        ctx.tenant,
        quote.quote_id,
        "sent",
        description,
        performed_by=ctx.actor_user_id,
        metadata={
            "recipients": recipients,
            "email_sent": email_sent,
            "email_status": email_status,
            "message_id": message_id,
            "workflow_source": "crm.send_quote",
        },
    )
    sent_at = iso_z(sent.sent_at) if sent.sent_at else None
    await ctx.audit(
        {
            "quote_id": str(quote.quote_id),
            "previous_status": quote.status,
            "new_status": "sent",
            "sent_at": sent_at,
            "recipients": recipients,
            "email_sent": email_sent,
            "email_status": email_status,
            "message_id": message_id,
        },
        {"quote_id": str(quote.quote_id)},
    )
    return SendQuoteOutput(
        quote=brief(sent),
        previous_status=quote.status,
        new_status=sent.status,
        sent_at=sent.sent_at,
        recipients=recipients,
        email_sent=email_sent,
        email_status=email_status,
        message_id=message_id,
        no_op=False,
    )


# -- crm.create_quote ----------------------------------------------------------------------------------------


class CreateQuoteInput(BaseModel):
    client_id: UUID = Field(description="Client id", json_schema_extra=picker("client"))
    contact_id: UUID | None = Field(
        default=None, description="Contact id", json_schema_extra=picker("contact", ["client_id"])
    )
    title: Annotated[Trimmed, Field(min_length=1)]
    description: str | None = None
    quote_date: QuoteDay
    valid_until: QuoteDay
    po_number: str | None = Field(default=None, max_length=255)
    internal_notes: str | None = None
    client_notes: str | None = None
    terms_and_conditions: str | None = None
    currency_code: Currency = "USD"
    idempotency_key: str | None = idempotency_key_field()

    @model_validator(mode="after")
    def _dates(self) -> CreateQuoteInput:
        if out_of_order(self.quote_date, self.valid_until):
            raise field_error(type(self), "valid_until", "valid_until must be on or after quote_date", None)
        return self


class CreateQuoteOutput(BaseModel):
    quote: QuoteDetailSummary


@actions.define(
    "crm.create_quote",
    "Create Quote",
    "Create a draft quote header for a client/contact",
    permissions=(CREATE, READ),
    idempotency="action",
)
async def create_quote(ctx: ActionContext, inp: CreateQuoteInput) -> CreateQuoteOutput:
    """Reference crm.create_quote: a draft numbered from the tenant's QUOTE series (next_number), version 1,
    totals 0, with a ``created`` quote activity; the contact must belong to the client."""
    quote = await quotes.create_quote(
        ctx.conn,
        ctx.tenant,
        created_by=ctx.actor_user_id,
        **inp.model_dump(exclude={"idempotency_key"}),
    )
    await ctx.audit(
        {
            "quote_id": str(quote.quote_id),
            "client_id": str(quote.client_id),
            "contact_id": str(quote.contact_id) if quote.contact_id else None,
            "status": quote.status,
        },
        {"quote_id": str(quote.quote_id)},
    )
    return CreateQuoteOutput(quote=detail(quote))


# -- crm.add_quote_item --------------------------------------------------------------------------------------


class AddQuoteItemInput(BaseModel):
    quote_id: UUID
    description: Annotated[Trimmed, Field(min_length=1)]
    quantity: int = Field(gt=0, le=QUANTITY_MAX)
    unit_price: int | None = Field(default=None, ge=0, le=AMOUNT_MAX, description="Minor units (cents)")
    unit_of_measure: str | None = None
    display_order: int | None = Field(default=None, ge=0, le=INT4_MAX)
    phase: str | None = None
    is_optional: bool = False
    is_selected: bool = True
    is_recurring: bool = False
    billing_frequency: str | None = None
    billing_method: Literal["fixed", "hourly", "usage"] | None = None
    is_discount: bool = False
    discount_type: Literal["percentage", "fixed"] | None = None
    discount_percentage: int | None = Field(default=None, ge=0, le=100)
    applies_to_item_id: UUID | None = None
    applies_to_service_id: UUID | None = None
    is_taxable: bool = True
    tax_region: str | None = None
    tax_rate: int | None = Field(default=None, ge=0, le=INT4_MAX, description="Whole percent")
    location_id: UUID | None = None
    cost: int | None = Field(default=None, ge=0, le=AMOUNT_MAX)
    cost_currency: str | None = Field(default=None, min_length=3, max_length=3)
    idempotency_key: str | None = idempotency_key_field()

    @model_validator(mode="after")
    def _rules(self) -> AddQuoteItemInput:
        if self.is_recurring and not self.billing_frequency:
            message = "billing_frequency is required for recurring items"
            raise field_error(type(self), "billing_frequency", message, None)
        if self.is_discount and not self.discount_type:
            raise field_error(type(self), "discount_type", "discount_type is required for discount items", None)
        if self.discount_type == "percentage" and self.discount_percentage is None:
            raise field_error(
                type(self), "discount_percentage", "discount_percentage is required for percentage discounts", None
            )
        return self


class AddQuoteItemOutput(BaseModel):
    quote_item: QuoteItemSummary
    quote: QuoteDetailSummary


@actions.define(
    "crm.add_quote_item",
    "Add Quote Item",
    "Add an item to an editable quote and return refreshed totals",
    permissions=(UPDATE, READ),
    idempotency="action",
)
async def add_quote_item(ctx: ActionContext, inp: AddQuoteItemInput) -> AddQuoteItemOutput:
    """Reference crm.add_quote_item: only a draft, non-template quote takes items; total_price = quantity ×
    unit_price (default 0); the quote's totals are recalculated (quotes module doc)."""
    await _quote(ctx, inp.quote_id)
    item = NewQuoteItem(
        **inp.model_dump(exclude={"quote_id", "idempotency_key", "unit_price"}), unit_price=inp.unit_price or 0
    )
    added, quote = await quotes.add_quote_item(ctx.conn, ctx.tenant, inp.quote_id, item, created_by=ctx.actor_user_id)
    await ctx.audit(
        {
            "quote_id": str(inp.quote_id),
            "quote_item_id": str(added.quote_item_id),
            "display_order": added.display_order,
            "total_price": added.total_price,
        },
        {"quote_id": str(inp.quote_id), "quote_item_id": str(added.quote_item_id)},
    )
    return AddQuoteItemOutput(quote_item=item_summary(added), quote=detail(quote))


# -- crm.find_quotes -----------------------------------------------------------------------------------------

QUOTE_FILTER_KEYS = ("quote_id", "quote_number", "client_id", "status", "date_from", "date_to")


class FindQuotesInput(BaseModel):
    quote_id: UUID | None = None
    quote_number: str | None = Field(default=None, min_length=1, max_length=120)
    client_id: UUID | None = Field(default=None, description="Client id", json_schema_extra=picker("client"))
    status: QuoteStatus | None = None
    date_from: QuoteDay | None = Field(
        default=None, description="From this instant, or from the start of this day in the tenant's time zone"
    )
    date_to: QuoteDay | None = Field(
        default=None, description="Up to this instant, or through the end of this day in the tenant's time zone"
    )
    is_template: bool = False
    page: int = Field(default=1, gt=0, le=PAGE_MAX)
    pageSize: int = Field(default=25, gt=0, le=200)  # noqa: N815 (the reference's field name)
    sortBy: Literal["quote_date", "total_amount", "status", "created_at"] = "quote_date"  # noqa: N815
    sortOrder: Literal["asc", "desc"] = "desc"  # noqa: N815
    on_empty: Literal["return_empty", "error"] = "return_empty"

    @model_validator(mode="after")
    def _bounded(self) -> FindQuotesInput:
        if out_of_order(self.date_from, self.date_to):
            raise field_error(type(self), "date_from", "date_from must be less than or equal to date_to", None)
        unfiltered = all(getattr(self, key) is None for key in QUOTE_FILTER_KEYS)
        if unfiltered and self.pageSize > UNBOUNDED_PAGE_SIZE_MAX:
            raise field_error(
                type(self),
                "pageSize",
                f"Provide at least one filter, a bounded date range, or use pageSize <= {UNBOUNDED_PAGE_SIZE_MAX}",
                self.pageSize,
            )
        return self


class QuotePagination(BaseModel):
    page: int
    page_size: int


class FindQuotesOutput(BaseModel):
    quotes: list[QuoteDetailSummary]
    first_quote: QuoteDetailSummary | None
    count: int
    pagination: QuotePagination


@actions.define(
    "crm.find_quotes",
    "Find Quotes",
    "Find tenant quotes with safe filters and pagination",
    permissions=(READ,),
    idempotency="engine",
    side_effectful=False,
)
async def find_quotes(ctx: ActionContext, inp: FindQuotesInput) -> FindQuotesOutput:
    """Reference crm.find_quotes: the AND of the filters (``quote_date`` within the dates; templates only with
    ``is_template``), ordered by ``sortBy`` / ``sortOrder`` then quote id; one page. An empty page with
    ``on_empty='error'`` is NOT_FOUND "No quotes matched the supplied filters"."""
    filters = quotes.QuoteFilters(**inp.model_dump(include={*QUOTE_FILTER_KEYS, "is_template"}))
    found = await quotes.find_quotes(
        ctx.conn,
        ctx.tenant,
        filters,
        sort_by=inp.sortBy,
        sort_order=inp.sortOrder,
        limit=inp.pageSize,
        offset=(inp.page - 1) * inp.pageSize,
    )
    if not found and inp.on_empty == "error":
        raise NotFoundError("No quotes matched the supplied filters")
    listed = [detail(q) for q in found]
    return FindQuotesOutput(
        quotes=listed,
        first_quote=listed[0] if listed else None,
        count=len(listed),
        pagination=QuotePagination(page=inp.page, page_size=inp.pageSize),
    )


# -- crm.submit_quote_for_approval ---------------------------------------------------------------------------


class SubmitQuoteInput(BaseModel):
    quote_id: UUID
    comment: str | None = None
    reason: str | None = None
    no_op_if_already_pending: bool = True


class SubmitQuoteOutput(BaseModel):
    quote: QuoteDetailSummary
    previous_status: str | None
    new_status: str | None
    no_op: bool


@actions.define(
    "crm.submit_quote_for_approval",
    "Submit Quote for Approval",
    "Submit a draft quote to pending_approval",
    permissions=(READ, UPDATE),
    idempotency="engine",
)
async def submit_quote_for_approval(ctx: ActionContext, inp: SubmitQuoteInput) -> SubmitQuoteOutput:
    """Reference crm.submit_quote_for_approval: draft → pending_approval (a ``status_changed`` activity),
    plus an ``approval_submitted`` activity "Quote submitted for approval: {comment}" when a comment (else
    reason) is given. Already pending with ``no_op_if_already_pending`` is a no-op."""
    quote = await _quote(ctx, inp.quote_id)
    if quote.status == "pending_approval" and inp.no_op_if_already_pending and not quote.is_template:
        await ctx.audit({"quote_id": str(quote.quote_id), "no_op": True}, {"quote_id": str(quote.quote_id)})
        return SubmitQuoteOutput(quote=detail(quote), previous_status=quote.status, new_status=quote.status, no_op=True)
    quotes.check_submittable(quote)
    updated = await quotes.set_status(ctx.conn, ctx.tenant, quote, "pending_approval", updated_by=ctx.actor_user_id)
    comment = (inp.comment or "").strip() or (inp.reason or "").strip() or None
    if comment:
        await quotes.add_activity(
            ctx.conn,
            ctx.tenant,
            quote.quote_id,
            "approval_submitted",
            f"Quote submitted for approval: {comment}",
            performed_by=ctx.actor_user_id,
            metadata={"comment": comment},
        )
    await ctx.audit(
        {
            "quote_id": str(quote.quote_id),
            "previous_status": quote.status,
            "new_status": updated.status,
            "comment": comment,
        },
        {"quote_id": str(quote.quote_id)},
    )
    return SubmitQuoteOutput(
        quote=detail(updated), previous_status=quote.status, new_status=updated.status, no_op=False
    )
