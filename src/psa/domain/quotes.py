"""Quotes: a numbered header for a client (and contact), its line items with totals in integer minor units
(cents), its activity log, status transitions and the tenant's approval setting (reference: the quote model
and crm.*quote* actions; docs/actions.md).

Every function takes an explicit connection and tenant and filters every query by tenant, so another
tenant's ids are not found. Error messages are the reference's; the error class says what kind of failure it
is. Totals (docs/decisions.md, "Actions", quotes), all in minor units, over the *counted* items (an optional
item counts only when selected):

1. ``subtotal`` = Σ ``total_price`` of the counted non-discount items (the *lines*).
2. Item discounts (a discount item with ``applies_to_item_id``): ``fixed`` takes its own ``total_price``,
   ``percentage`` that share of the line's ``total_price`` (rounded half up); the item discounts of one line
   together take at most that line; one whose line is not counted (or is a discount) takes nothing.
3. Quote discounts (no ``applies_to_item_id``): ``fixed`` takes its ``total_price``, ``percentage`` that share
   of what the lines come to after their item discounts; together they take at most that amount. Their sum
   is apportioned over the lines pro rata by each line's amount after item discounts, taxable or not: each
   line gets the whole cents of its share, and the cents left over go one each to the lines with the
   largest fractions (ties: the larger line, then the earlier one), so the shares add up exactly and no line
   gets more than it comes to (``apportion``).
4. ``tax`` = Σ over taxable lines of (``total_price`` − the line's discounts) × ``tax_rate`` / 100, rounded
   half up per line (``tax_rate`` a whole percent; none is 0). Each item's ``tax_amount`` is its part of it
   (0 for discount items and items not counted).
5. ``discount_total`` = item discounts + quote discounts; ``total_amount = subtotal − discount_total + tax``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from uuid import UUID
from zoneinfo import ZoneInfo

import pydantic_core
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from psa.db.schema import QUOTE_STATUSES
from psa.domain import tenants
from psa.domain.errors import NotFoundError, ValidationError
from psa.domain.lookups import contact_client, next_number, require_client
from psa.domain.values import DayOrInstant, InstantRange, UtcDatetime, start_of

QuoteStatus = Literal[
    "draft",
    "pending_approval",
    "approved",
    "sent",
    "accepted",
    "rejected",
    "expired",
    "converted",
    "cancelled",
    "superseded",
    "archived",
]
QUOTE_SERIES = "QUOTE"
QUOTE_PREFIX = "Q-"
QUOTE_PADDING = 5
QUOTE_INITIAL_NUMBER = 1
# Reference DAL transitions (the quote model); a status may always be set to itself.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "draft": ("pending_approval", "sent", "cancelled"),
    "pending_approval": ("approved", "draft", "cancelled"),
    "approved": ("sent", "cancelled"),
    "sent": ("accepted", "rejected", "expired", "cancelled"),
    "accepted": ("converted", "cancelled"),
    "rejected": ("cancelled",),
    "expired": ("cancelled",),
}
SORT_COLUMNS = ("quote_date", "total_amount", "status", "created_at")
AMOUNT_MAX = 2**63 - 1
"""The largest amount in minor units (the ``bigint`` money columns)."""
DISPLAY_ORDER_MAX = 2**31 - 1

_COLUMNS = """quote_id, quote_number, status, client_id, contact_id, title, description, quote_date, valid_until,
              po_number, internal_notes, client_notes, terms_and_conditions, currency_code, tax_source, is_template,
              subtotal, discount_total, tax, total_amount, sent_at, converted_contract_id, converted_invoice_id,
              version, created_by, updated_by, created_at, updated_at"""
_ITEM_COLUMNS = """quote_item_id, quote_id, description, quantity, unit_price, total_price, net_amount, tax_amount,
                   unit_of_measure, display_order, phase, is_optional, is_selected, is_recurring, billing_frequency,
                   billing_method, is_discount, discount_type, discount_percentage, applies_to_item_id,
                   applies_to_service_id, is_taxable, tax_region, tax_rate, location_id, cost, cost_currency,
                   created_by, created_at"""


class Quote(BaseModel):
    """A quote header. Amounts are integer minor units of ``currency_code``; timestamps are UTC."""

    quote_id: UUID
    quote_number: str
    status: str
    client_id: UUID
    contact_id: UUID | None
    title: str
    description: str | None
    quote_date: UtcDatetime
    valid_until: UtcDatetime
    po_number: str | None
    internal_notes: str | None
    client_notes: str | None
    terms_and_conditions: str | None
    currency_code: str
    tax_source: str
    is_template: bool
    subtotal: int
    discount_total: int
    tax: int
    total_amount: int
    sent_at: UtcDatetime | None
    converted_contract_id: UUID | None
    converted_invoice_id: UUID | None
    version: int
    created_by: UUID | None
    updated_by: UUID | None
    created_at: UtcDatetime
    updated_at: UtcDatetime


class QuoteItem(BaseModel):
    """A quote line. ``quantity`` is a whole number; prices, totals and ``cost`` are integer minor units;
    ``discount_percentage`` and ``tax_rate`` are whole percents."""

    quote_item_id: UUID
    quote_id: UUID
    description: str
    quantity: int
    unit_price: int
    total_price: int
    net_amount: int
    tax_amount: int
    unit_of_measure: str | None
    display_order: int
    phase: str | None
    is_optional: bool
    is_selected: bool
    is_recurring: bool
    billing_frequency: str | None
    billing_method: str | None
    is_discount: bool
    discount_type: str | None
    discount_percentage: int | None
    applies_to_item_id: UUID | None
    applies_to_service_id: UUID | None
    is_taxable: bool
    tax_region: str | None
    tax_rate: int | None
    location_id: UUID | None
    cost: int | None
    cost_currency: str | None
    created_by: UUID | None
    created_at: UtcDatetime


class NewQuoteItem(BaseModel):
    """What ``add_quote_item`` takes (reference crm.add_quote_item input, without the quote id)."""

    description: str
    quantity: int
    unit_price: int = 0
    unit_of_measure: str | None = None
    display_order: int | None = None
    phase: str | None = None
    is_optional: bool = False
    is_selected: bool = True
    is_recurring: bool = False
    billing_frequency: str | None = None
    billing_method: Literal["fixed", "hourly", "usage"] | None = None
    is_discount: bool = False
    discount_type: Literal["percentage", "fixed"] | None = None
    discount_percentage: int | None = None
    applies_to_item_id: UUID | None = None
    applies_to_service_id: UUID | None = None
    is_taxable: bool = True
    tax_region: str | None = None
    tax_rate: int | None = None
    location_id: UUID | None = None
    cost: int | None = None
    cost_currency: str | None = None


# -- settings ----------------------------------------------------------------------------------------------


async def approval_required(conn: AsyncConnection, tenant: UUID) -> bool:
    """``tenant_settings.settings.billing.quotes.approvalRequired`` is ``true`` (anything else, or no row, is
    False; tenants.tenant_setting). Reference: crm.send_quote."""
    return await tenants.tenant_setting(conn, tenant, "billing", "quotes", "approvalRequired") is True


async def set_approval_required(conn: AsyncConnection, tenant: UUID, required: bool) -> None:
    """Set ``settings.billing.quotes.approvalRequired`` (creating the tenant_settings row when missing),
    keeping every other setting."""
    await conn.execute(
        text(
            """INSERT INTO tenant_settings (tenant, settings)
               VALUES (:tenant, jsonb_build_object('billing', jsonb_build_object('quotes',
                       jsonb_build_object('approvalRequired', CAST(:required AS boolean)))))
               ON CONFLICT (tenant) DO UPDATE
                  SET settings = jsonb_set(
                        jsonb_set(
                          jsonb_set(coalesce(CASE jsonb_typeof(tenant_settings.settings) WHEN 'object'
                                                  THEN tenant_settings.settings END, '{}'::jsonb),
                                    '{billing}', coalesce(tenant_settings.settings -> 'billing', '{}'::jsonb)),
                          '{billing,quotes}', coalesce(tenant_settings.settings #> '{billing,quotes}', '{}'::jsonb)),
                        '{billing,quotes,approvalRequired}', to_jsonb(CAST(:required AS boolean))),
                      updated_at = now()"""
        ),
        {"tenant": tenant, "required": required},
    )


# -- reads -------------------------------------------------------------------------------------------------


async def find_quote(conn: AsyncConnection, tenant: UUID, quote_id: UUID, *, lock: bool = False) -> Quote | None:
    """The quote, or None (also for another tenant's id); ``lock`` takes it FOR UPDATE."""
    row = (
        await conn.execute(
            text(
                f"""SELECT {_COLUMNS} FROM quotes WHERE tenant = :tenant AND quote_id = :id
                    {"FOR UPDATE" if lock else ""}"""
            ),
            {"tenant": tenant, "id": quote_id},
        )
    ).first()
    return Quote(**row._mapping) if row else None


async def get_quote(conn: AsyncConnection, tenant: UUID, quote_id: UUID, *, lock: bool = False) -> Quote:
    """The quote; raises NotFoundError("Quote not found", field="quote_id")."""
    found = await find_quote(conn, tenant, quote_id, lock=lock)
    if found is None:
        raise NotFoundError("Quote not found", field="quote_id")
    return found


async def quote_items(conn: AsyncConnection, tenant: UUID, quote_id: UUID) -> list[QuoteItem]:
    """The quote's items by display order, then creation."""
    result = await conn.execute(
        text(
            f"""SELECT {_ITEM_COLUMNS} FROM quote_items WHERE tenant = :tenant AND quote_id = :id
                 ORDER BY display_order, created_at, quote_item_id"""
        ),
        {"tenant": tenant, "id": quote_id},
    )
    return [QuoteItem(**row._mapping) for row in result]


class QuoteFilters(BaseModel):
    """crm.find_quotes filters, ANDed; ``date_from`` / ``date_to`` bound ``quote_date`` inclusively, an
    instant as given and a calendar day as the whole of it in the tenant's time zone (InstantRange.of)."""

    quote_id: UUID | None = None
    quote_number: str | None = None
    client_id: UUID | None = None
    status: QuoteStatus | None = None
    date_from: DayOrInstant | None = None
    date_to: DayOrInstant | None = None
    is_template: bool = False


_QUOTE_FILTER_SQL = {
    "quote_id": "quote_id = :quote_id",
    "quote_number": "quote_number = :quote_number",
    "client_id": "client_id = :client_id",
    "status": "status = :status",
    "is_template": "is_template = :is_template",
}


async def find_quotes(
    conn: AsyncConnection,
    tenant: UUID,
    filters: QuoteFilters,
    *,
    sort_by: str = "quote_date",
    sort_order: Literal["asc", "desc"] = "desc",
    limit: int = 25,
    offset: int = 0,
) -> list[Quote]:
    """One page of the tenant's quotes matching ``filters``, ordered by ``sort_by`` (SORT_COLUMNS) in
    ``sort_order``, ties by ``quote_id`` ascending. Raises ValidationError(field="sort_by") for another column.
    Reference: crm.find_quotes."""
    if sort_by not in SORT_COLUMNS:
        raise ValidationError(f"sort_by must be one of {', '.join(SORT_COLUMNS)}", field="sort_by")
    given = {k: v for k, v in filters.model_dump(exclude={"date_from", "date_to"}).items() if v is not None}
    dates, bounds = InstantRange.of(
        filters.date_from, filters.date_to, await tenants.tenant_zone(conn, tenant)
    ).conditions("quote_date")
    where = " AND ".join([*(_QUOTE_FILTER_SQL[k] for k in given), *dates])
    direction = "DESC" if sort_order == "desc" else "ASC"
    result = await conn.execute(
        text(
            f"""SELECT {_COLUMNS} FROM quotes WHERE tenant = :tenant AND {where}
                 ORDER BY {sort_by} {direction}, quote_id LIMIT :limit OFFSET :offset"""
        ),
        {"tenant": tenant, "limit": limit, "offset": offset, **given, **bounds},
    )
    return [Quote(**row._mapping) for row in result]


# -- writes ------------------------------------------------------------------------------------------------


async def add_activity(
    conn: AsyncConnection,
    tenant: UUID,
    quote_id: UUID,
    activity_type: str,
    description: str,
    *,
    performed_by: UUID | None,
    metadata: dict[str, Any] | None = None,
) -> UUID:
    """Append to the quote's activity log (``created``, ``status_changed``, ``approval_submitted``, ``sent``);
    returns the activity id. ``created_at`` is the wall clock, so entries of one transaction keep their order."""
    return (
        await conn.execute(
            text(
                """INSERT INTO quote_activities (tenant, quote_id, activity_type, description, performed_by, metadata,
                                                created_at)
                   VALUES (:tenant, :quote_id, :type, :description, :by, CAST(:metadata AS jsonb), clock_timestamp())
                   RETURNING activity_id"""
            ),
            {
                "tenant": tenant,
                "quote_id": quote_id,
                "type": activity_type,
                "description": description,
                "by": performed_by,
                "metadata": pydantic_core.to_json(metadata).decode() if metadata else None,
            },
        )
    ).scalar_one()


async def create_quote(
    conn: AsyncConnection,
    tenant: UUID,
    *,
    client_id: UUID,
    title: str,
    quote_date: DayOrInstant,
    valid_until: DayOrInstant,
    created_by: UUID,
    contact_id: UUID | None = None,
    description: str | None = None,
    po_number: str | None = None,
    internal_notes: str | None = None,
    client_notes: str | None = None,
    terms_and_conditions: str | None = None,
    currency_code: str = "USD",
) -> Quote:
    """A draft quote numbered from the tenant's ``QUOTE`` series (``Q-00001``, ``Q-00002`` ...; next_number),
    version 1, tax source ``internal``, totals 0, with a ``created`` activity. A calendar day as ``quote_date``
    or ``valid_until`` is stored as its first instant in the tenant's time zone (tenants.tenant_zone).

    Raises NotFoundError "Client not found" (client_id) / "Contact not found" (contact_id); ValidationError
    "title is required" (title), "contact_id must belong to client_id" (contact_id), "valid_until must be on
    or after quote_date" (valid_until), "currency_code must be 3 letters" (currency_code), "... must fall
    between 0001-01-01 and 9999-12-31 in UTC" (a day whose start lies outside).
    Reference: crm.create_quote."""
    cleaned = (title or "").strip()
    if not cleaned:
        raise ValidationError("title is required", field="title")
    currency = (currency_code or "").strip().upper()
    if len(currency) != 3 or not currency.isalpha():
        raise ValidationError("currency_code must be 3 letters", field="currency_code")
    zone = await tenants.tenant_zone(conn, tenant)
    quote_date, valid_until = (
        _instant(value, zone, field) for value, field in ((quote_date, "quote_date"), (valid_until, "valid_until"))
    )
    if valid_until < quote_date:
        raise ValidationError("valid_until must be on or after quote_date", field="valid_until")
    await require_client(conn, tenant, client_id)
    if contact_id is not None and await contact_client(conn, tenant, contact_id) != client_id:
        raise ValidationError("contact_id must belong to client_id", field="contact_id")
    number = await next_number(
        conn, tenant, QUOTE_SERIES, prefix=QUOTE_PREFIX, padding=QUOTE_PADDING, initial=QUOTE_INITIAL_NUMBER
    )
    row = (
        await conn.execute(
            text(
                f"""INSERT INTO quotes (tenant, quote_number, client_id, contact_id, title, description, quote_date,
                                        valid_until, po_number, internal_notes, client_notes, terms_and_conditions,
                                        currency_code, created_by, updated_by)
                    VALUES (:tenant, :number, :client_id, :contact_id, :title, :description, :quote_date,
                            :valid_until, :po_number, :internal_notes, :client_notes, :terms, :currency, :by, :by)
                    RETURNING {_COLUMNS}"""
            ),
            {
                "tenant": tenant,
                "number": number,
                "client_id": client_id,
                "contact_id": contact_id,
                "title": cleaned,
                "description": description,
                "quote_date": quote_date,
                "valid_until": valid_until,
                "po_number": po_number,
                "internal_notes": internal_notes,
                "client_notes": client_notes,
                "terms": terms_and_conditions,
                "currency": currency,
                "by": created_by,
            },
        )
    ).one()
    quote = Quote(**row._mapping)
    await add_activity(conn, tenant, quote.quote_id, "created", "Quote created", performed_by=created_by)
    return quote


def _instant(value: DayOrInstant, zone: ZoneInfo, field: str) -> datetime:
    """``value`` as an instant (values.start_of); raises ValidationError(field) when a day starts out of range."""
    instant = start_of(value, zone)
    if instant is None:
        raise ValidationError(f"{field} must fall between 0001-01-01 and 9999-12-31 in UTC", field=field)
    return instant


def _check_item(item: NewQuoteItem) -> None:
    if not item.description.strip():
        raise ValidationError("description is required", field="description")
    if item.quantity <= 0:
        raise ValidationError("quantity must be greater than 0", field="quantity")
    if item.unit_price < 0:
        raise ValidationError("unit_price must be greater than or equal to 0", field="unit_price")
    if item.is_recurring and not item.billing_frequency:
        raise ValidationError("billing_frequency is required for recurring items", field="billing_frequency")
    if item.is_discount and not item.discount_type:
        raise ValidationError("discount_type is required for discount items", field="discount_type")
    if item.discount_type == "percentage" and item.discount_percentage is None:
        raise ValidationError("discount_percentage is required for percentage discounts", field="discount_percentage")
    if item.discount_percentage is not None and not 0 <= item.discount_percentage <= 100:
        raise ValidationError("discount_percentage must be between 0 and 100", field="discount_percentage")


def require_editable(quote: Quote, template_message: str) -> None:
    """Raises ValidationError(template_message, field="quote_id") for a template, and "Only draft quotes are
    editable" (field status) unless the quote is a draft (reference crm.add_quote_item)."""
    if quote.is_template:
        raise ValidationError(template_message, field="quote_id")
    if (quote.status or "draft") != "draft":
        raise ValidationError("Only draft quotes are editable", field="status")


async def check_sendable(conn: AsyncConnection, tenant: UUID, quote: Quote) -> None:
    """The rules for sending a quote (reference crm.send_quote): a template is never sent, a sent one not
    again, and with the tenant's ``approvalRequired`` only an approved quote is sent, otherwise a draft or an
    approved one. Raises ValidationError "Quote templates cannot be sent to clients" ``{quote_id}``, "Quote is
    already sent; resend behavior is not supported by crm.send_quote v1" ``{quote_id}``, "Only approved quotes
    can be sent when quote approval is required" / "Only draft or approved quotes can be sent"
    ``{quote_id, status}``."""
    if quote.is_template:
        raise ValidationError("Quote templates cannot be sent to clients", details=_cited(quote))
    if quote.status == "sent":
        raise ValidationError(
            "Quote is already sent; resend behavior is not supported by crm.send_quote v1", details=_cited(quote)
        )
    if await approval_required(conn, tenant):
        if quote.status != "approved":
            raise ValidationError(
                "Only approved quotes can be sent when quote approval is required", details=_cited(quote, status=True)
            )
    elif quote.status not in ("draft", "approved"):
        raise ValidationError("Only draft or approved quotes can be sent", details=_cited(quote, status=True))


def check_submittable(quote: Quote) -> None:
    """The rules for submitting a quote for approval (reference crm.submit_quote_for_approval): not a
    template, and a draft. Raises ValidationError "Quote templates cannot be submitted for approval"
    ``{quote_id}``, "Only draft quotes can be submitted for approval" ``{quote_id, status}``."""
    if quote.is_template:
        raise ValidationError("Quote templates cannot be submitted for approval", details=_cited(quote))
    if quote.status != "draft":
        raise ValidationError("Only draft quotes can be submitted for approval", details=_cited(quote, status=True))


def _cited(quote: Quote, *, status: bool = False) -> dict[str, str]:
    """The details of a refused status change: the quote id, and its status when that is the reason."""
    return {"quote_id": str(quote.quote_id), **({"status": quote.status} if status else {})}


async def add_quote_item(
    conn: AsyncConnection, tenant: UUID, quote_id: UUID, item: NewQuoteItem, *, created_by: UUID
) -> tuple[QuoteItem, Quote]:
    """Add a line to a draft quote and return it with the quote's recalculated totals. ``total_price`` =
    ``net_amount`` = quantity × unit_price; ``tax_amount`` its part of the quote's tax (module doc); ``display_order``
    defaults to the next one. ``applies_to_item_id`` must name an item of the same quote.

    Raises NotFoundError "Quote not found" (quote_id), "applies_to_item_id not found on this quote";
    ValidationError "Cannot add items to quote templates", "Only draft quotes are editable", the item rules
    (recurring needs billing_frequency, a discount needs discount_type, a percentage needs
    discount_percentage 0..100), and amounts past AMOUNT_MAX (tax_rate, unit_price) or no next display_order.
    Reference: crm.add_quote_item."""
    quote = await get_quote(conn, tenant, quote_id, lock=True)
    require_editable(quote, "Cannot add items to quote templates")
    _check_item(item)
    items = await quote_items(conn, tenant, quote_id)
    if item.applies_to_item_id is not None and item.applies_to_item_id not in {i.quote_item_id for i in items}:
        raise NotFoundError("applies_to_item_id not found on this quote", field="applies_to_item_id")
    net = item.quantity * item.unit_price
    tax_amount = _line_tax(item, net)  # before discounts: recalculate stores the line's part of the quote's tax
    if tax_amount > AMOUNT_MAX:
        raise ValidationError("tax_rate gives a tax larger than the largest storable amount", field="tax_rate")
    # subtotal + tax before discounts bound every total (discounts only lower the amount taxed)
    charged = sum(i.total_price + _line_tax(i, i.total_price) for i in items if not i.is_discount)
    if net > AMOUNT_MAX or (not item.is_discount and charged + net + tax_amount > AMOUNT_MAX):
        raise ValidationError(
            "quantity × unit_price would take the quote past the largest storable amount", field="unit_price"
        )
    next_order = max((i.display_order for i in items), default=-1) + 1
    if item.display_order is None and next_order > DISPLAY_ORDER_MAX:
        raise ValidationError("the last item holds the largest display_order: give one", field="display_order")
    order = item.display_order if item.display_order is not None else next_order
    values = item.model_dump() | {
        "description": item.description.strip(),
        "display_order": order,
        "total_price": net,
        "net_amount": net,
        "tax_amount": tax_amount,
        "tenant": tenant,
        "quote_id": quote_id,
        "created_by": created_by,
    }
    columns = ", ".join(values)
    row = (
        await conn.execute(
            text(
                f"""INSERT INTO quote_items ({columns}) VALUES ({", ".join(":" + k for k in values)})
                    RETURNING {_ITEM_COLUMNS}"""
            ),
            values,
        )
    ).one()
    quote, stored = await recalculate(
        conn, tenant, quote_id, [*items, QuoteItem(**row._mapping)], updated_by=created_by
    )
    return stored[-1], quote


def _percent(amount: int, percent: int | None) -> int:
    """``amount × percent / 100`` rounded half up, in minor units."""
    return (amount * (percent or 0) + 50) // 100


def _line_tax(item: QuoteItem | NewQuoteItem, amount: int) -> int:
    """The tax on ``amount`` at the item's ``tax_rate`` when it is taxable (a discount item never is), else 0."""
    return _percent(amount, item.tax_rate) if item.is_taxable and not item.is_discount else 0


def apportion(amount: int, weights: list[int]) -> list[int]:
    """``amount`` (minor units, 0 ≤ amount ≤ Σ weights) split over ``weights`` (≥ 0) pro rata: the whole units
    of each share, then the units left over one each to the largest fractions (ties: the larger weight, then
    the earlier position). The shares add up to ``amount`` and none exceeds its weight. All zero when the
    weights are. Rule: docs/decisions.md, "Actions", quotes (the largest-remainder method)."""
    whole = sum(weights)
    if whole == 0:
        return [0] * len(weights)
    shares = [amount * w // whole for w in weights]
    fractions = [amount * w % whole for w in weights]
    left = amount - sum(shares)
    for i in sorted(range(len(weights)), key=lambda i: (-fractions[i], -weights[i], i))[:left]:
        shares[i] += 1
    return shares


@dataclass(frozen=True)
class PricedLine:
    """A counted non-discount item with its part of the quote's discounts and its tax, in minor units."""

    item: QuoteItem
    item_discount: int
    quote_discount: int
    tax: int


def price_lines(items: list[QuoteItem]) -> list[PricedLine]:
    """The counted non-discount items, in the order given, priced by the rules of the module doc."""
    counted = [i for i in items if not i.is_optional or i.is_selected]
    lines = [i for i in counted if not i.is_discount]
    item_discount = {i.quote_item_id: 0 for i in lines}
    by_id = {i.quote_item_id: i for i in lines}
    quote_level = []
    for d in (i for i in counted if i.is_discount):
        if d.applies_to_item_id is None:
            quote_level.append(d)
            continue
        target = by_id.get(d.applies_to_item_id)  # an unselected option or a discount is not charged
        if target is None:
            continue
        share = (
            _percent(target.total_price, d.discount_percentage) if d.discount_type == "percentage" else d.total_price
        )
        item_discount[target.quote_item_id] += min(share, target.total_price - item_discount[target.quote_item_id])
    after = [i.total_price - item_discount[i.quote_item_id] for i in lines]
    remaining = sum(after)
    asked = sum(
        _percent(remaining, d.discount_percentage) if d.discount_type == "percentage" else d.total_price
        for d in quote_level
    )
    shares = apportion(min(asked, remaining), after)  # discounts never make the quote negative
    return [
        PricedLine(item=i, item_discount=item_discount[i.quote_item_id], quote_discount=q, tax=_line_tax(i, a - q))
        for i, a, q in zip(lines, after, shares, strict=True)
    ]


def totals(items: list[QuoteItem]) -> dict[str, int]:
    """``{subtotal, discount_total, tax, total_amount}`` of the items, by the rules of the module doc."""
    priced = price_lines(items)
    subtotal = sum(p.item.total_price for p in priced)
    discount = sum(p.item_discount + p.quote_discount for p in priced)
    tax = sum(p.tax for p in priced)
    return {"subtotal": subtotal, "discount_total": discount, "tax": tax, "total_amount": subtotal - discount + tax}


async def recalculate(
    conn: AsyncConnection, tenant: UUID, quote_id: UUID, items: list[QuoteItem], *, updated_by: UUID
) -> tuple[Quote, list[QuoteItem]]:
    """Store ``totals(items)`` on the quote and each item's part of the tax as its ``tax_amount`` (0 for
    discount items and items not counted); return the quote and the items as stored now."""
    tax_of = {p.item.quote_item_id: p.tax for p in price_lines(items)}
    changed = [
        {"tenant": tenant, "id": i.quote_item_id, "tax": tax_of.get(i.quote_item_id, 0)}
        for i in items
        if i.tax_amount != tax_of.get(i.quote_item_id, 0)
    ]
    if changed:
        await conn.execute(
            text("UPDATE quote_items SET tax_amount = :tax WHERE tenant = :tenant AND quote_item_id = :id"), changed
        )
    row = (
        await conn.execute(
            text(
                f"""UPDATE quotes SET subtotal = :subtotal, discount_total = :discount_total, tax = :tax,
                           total_amount = :total_amount, updated_by = :by, updated_at = now()
                     WHERE tenant = :tenant AND quote_id = :id RETURNING {_COLUMNS}"""
            ),
            {"tenant": tenant, "id": quote_id, "by": updated_by, **totals(items)},
        )
    ).one()
    return Quote(**row._mapping), [i.model_copy(update={"tax_amount": tax_of.get(i.quote_item_id, 0)}) for i in items]


async def set_status(
    conn: AsyncConnection, tenant: UUID, quote: Quote, status: QuoteStatus, *, updated_by: UUID
) -> Quote:
    """Move the quote to ``status`` along TRANSITIONS (setting ``sent_at`` when it becomes ``sent``) and log a
    ``status_changed`` activity "Quote status changed from {old} to {new}". Raises ValidationError
    "Invalid quote status transition from {old} to {new}" (field status)."""
    if status not in QUOTE_STATUSES:
        raise ValidationError(f"status must be one of {', '.join(QUOTE_STATUSES)}", field="status")
    if status != quote.status and status not in TRANSITIONS.get(quote.status, ()):
        raise ValidationError(f"Invalid quote status transition from {quote.status} to {status}", field="status")
    row = (
        await conn.execute(
            text(
                f"""UPDATE quotes SET status = :status, updated_by = :by, updated_at = now(),
                           sent_at = CASE WHEN :status = 'sent' THEN now() ELSE sent_at END
                     WHERE tenant = :tenant AND quote_id = :id RETURNING {_COLUMNS}"""
            ),
            {"tenant": tenant, "id": quote.quote_id, "status": status, "by": updated_by},
        )
    ).one()
    if status != quote.status:
        await add_activity(
            conn,
            tenant,
            quote.quote_id,
            "status_changed",
            f"Quote status changed from {quote.status} to {status}",
            performed_by=updated_by,
            metadata={"previous_status": quote.status, "new_status": status},
        )
    return Quote(**row._mapping)
