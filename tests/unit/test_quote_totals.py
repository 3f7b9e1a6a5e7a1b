"""Quote totals (psa.domain.quotes.totals) and the activity summary helpers, without a database."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from psa.automation.actions.crm.models import notes_preview, summary_tags
from psa.automation.actions.quotes import format_amount, unique_recipients
from psa.domain.quotes import QuoteItem, apportion, price_lines, totals

QUOTE = uuid.uuid4()


def item(total: int, **flags) -> QuoteItem:
    values = {
        "quote_item_id": uuid.uuid4(),
        "quote_id": QUOTE,
        "description": "x",
        "quantity": 1,
        "unit_price": total,
        "total_price": total,
        "net_amount": total,
        "tax_amount": 0,
        "unit_of_measure": None,
        "display_order": 0,
        "phase": None,
        "is_optional": False,
        "is_selected": True,
        "is_recurring": False,
        "billing_frequency": None,
        "billing_method": None,
        "is_discount": False,
        "discount_type": None,
        "discount_percentage": None,
        "applies_to_item_id": None,
        "applies_to_service_id": None,
        "is_taxable": True,
        "tax_region": None,
        "tax_rate": None,
        "location_id": None,
        "cost": None,
        "cost_currency": None,
        "created_by": None,
        "created_at": datetime(2026, 1, 1, tzinfo=UTC),
    }
    return QuoteItem(**(values | flags))


def discount(value: int, kind: str = "fixed", on: QuoteItem | None = None) -> QuoteItem:
    """A discount item: ``fixed`` of ``value`` cents or ``percentage`` of ``value`` percent, on the line ``on``
    (an item discount) or on the quote."""
    return item(
        value if kind == "fixed" else 0,
        is_discount=True,
        discount_type=kind,
        discount_percentage=value if kind == "percentage" else None,
        applies_to_item_id=on.quote_item_id if on else None,
    )


def test_tax_is_computed_on_the_discounted_amount():
    """docs/decisions.md, "Actions", quotes: the item discount comes off its line, the quote discounts (10 % of
    what the lines come to after item discounts, plus a fixed 100.00) are apportioned over both lines by
    their discounted amounts, and only the taxable line is taxed, on what is left of it."""
    laptop = item(300000, tax_rate=10)
    service = item(60000, is_taxable=False, tax_rate=20)  # not taxable: its rate is ignored
    items = [
        laptop,
        service,
        item(9999, tax_rate=10, is_optional=True, is_selected=False),
        discount(15, "percentage", on=laptop),  # 450.00 off the laptop
        discount(10000),
        discount(10, "percentage"),  # 10 % of 2550.00 + 600.00
    ]
    # quote discounts 100.00 + 315.00 = 415.00, apportioned 255000 : 60000 -> 335.95238 and 79.04762: the
    # cent left over goes to the larger fraction, the service's
    laptop_line, service_line = price_lines(items)
    assert (laptop_line.item_discount, laptop_line.quote_discount) == (45000, 33595)
    assert (service_line.item_discount, service_line.quote_discount) == (0, 7905)
    assert laptop_line.tax == 22141  # 10 % of 300000 - 45000 - 33595 = 221405, rounded half up
    assert service_line.tax == 0
    assert totals(items) == {
        "subtotal": 360000,
        "discount_total": 45000 + 41500,
        "tax": 22141,
        "total_amount": 360000 - 86500 + 22141,
    }
    assert totals([]) == {"subtotal": 0, "discount_total": 0, "tax": 0, "total_amount": 0}
    assert totals([discount(50, "percentage"), item(3)])["discount_total"] == 2  # half of 3 cents rounds half up


def test_a_quote_discount_lowers_the_tax_of_each_rate_by_its_share():
    standard, reduced = item(1000, tax_rate=20), item(3000, tax_rate=5)
    assert totals([standard, reduced])["tax"] == 200 + 150
    # 10.00 off the quote: 2.50 from the 20 % line and 7.50 from the 5 % line
    assert [(p.quote_discount, p.tax) for p in price_lines([standard, reduced, discount(1000)])] == [
        (250, 150),
        (750, 113),  # 5 % of 2250 = 112.5, rounded half up on the line
    ]
    # an item discount lowers the tax of its own line only
    assert [p.tax for p in price_lines([standard, reduced, discount(50, "percentage", on=reduced)])] == [200, 75]


def test_apportion_gives_the_cents_left_over_to_the_largest_fractions():
    assert apportion(100, [100, 100, 100]) == [34, 33, 33]  # equal fractions and lines: the earliest
    assert apportion(2, [1, 1, 1]) == [1, 1, 0]  # never more than a line comes to
    assert apportion(3, [1, 2, 6]) == [0, 1, 2]  # 1/3, 2/3, 2: the fraction 2/3 gets the cent
    assert apportion(1, [1, 3]) == [0, 1]  # fractions 1/4 and 3/4
    assert apportion(1, [2, 2, 4]) == [0, 0, 1]  # fractions 1/4, 1/4 and 1/2
    assert apportion(5, [3, 5, 2]) == [1, 3, 1]  # 1.5, 2.5, 1: the tie on .5 goes to the larger line
    assert apportion(0, [0, 0]) == [0, 0]
    assert apportion(7, [7]) == [7]


def test_a_discount_on_an_item_that_is_not_charged_takes_nothing():
    option = item(100000, is_optional=True, is_selected=False)
    fixed = discount(1000)
    half_of = [
        item(0, is_discount=True, discount_type="percentage", discount_percentage=50, applies_to_item_id=target)
        for target in (option.quote_item_id, fixed.quote_item_id)
    ]
    assert totals([item(500000), option, fixed, *half_of]) == {
        "subtotal": 500000,
        "discount_total": 1000,
        "tax": 0,
        "total_amount": 499000,
    }
    cable = item(2000)
    on_option, on_cable = discount(3000, on=option), discount(3000, on=cable)
    assert totals([item(500000), cable, option, on_option, on_cable])["discount_total"] == 2000  # at most the cable
    # the item discounts of one line together take at most that line
    assert totals([item(500000), cable, discount(1500, on=cable), discount(1500, on=cable)])["discount_total"] == 2000


def test_discounts_never_exceed_the_subtotal_and_a_line_given_away_bears_no_tax():
    assert totals([item(500, tax_rate=10), discount(1000), discount(100, "percentage")]) == {
        "subtotal": 500,
        "discount_total": 500,
        "tax": 0,
        "total_amount": 0,
    }


def round_half_up(numerator: int, denominator: int) -> int:
    return (2 * numerator + denominator) // (2 * denominator)


LINE = st.tuples(
    st.integers(0, 10**7),  # total_price
    st.one_of(st.none(), st.integers(0, 30)),  # tax_rate
    st.booleans(),  # is_taxable
    st.booleans(),  # is_optional
    st.booleans(),  # is_selected
)
DISCOUNT = st.tuples(
    st.sampled_from(["fixed", "percentage"]),
    st.integers(0, 10**6),  # cents, or a percentage (taken modulo 101)
    st.one_of(st.none(), st.integers(0, 7)),  # the line it applies to (modulo the lines), or the quote
)


@given(st.lists(LINE, max_size=8), st.lists(DISCOUNT, max_size=4))
def test_totals_tax_the_discounted_lines(lines, discounts):
    items = [
        item(total, tax_rate=rate, is_taxable=taxable, is_optional=optional, is_selected=selected)
        for total, rate, taxable, optional, selected in lines
    ]
    for kind, value, target in discounts:
        on = items[target % len(items)] if items and target is not None else None
        items.append(discount(value % 101 if kind == "percentage" else value, kind, on=on))
    result = totals(items)
    priced = price_lines(items)
    counted = [i for i in items if not i.is_optional or i.is_selected]

    assert result["total_amount"] == result["subtotal"] - result["discount_total"] + result["tax"]
    assert totals(counted) == result  # an unselected option changes nothing
    assert [p.item for p in priced] == [i for i in counted if not i.is_discount]
    assert result["subtotal"] == sum(p.item.total_price for p in priced)
    assert 0 <= result["discount_total"] <= result["subtotal"]
    assert result["discount_total"] == sum(p.item_discount + p.quote_discount for p in priced)
    undiscounted_tax = 0
    for p in priced:
        assert p.item_discount >= 0
        assert p.quote_discount >= 0
        assert p.item_discount + p.quote_discount <= p.item.total_price
        rate = (p.item.tax_rate or 0) if p.item.is_taxable else 0
        assert p.tax == round_half_up((p.item.total_price - p.item_discount - p.quote_discount) * rate, 100)
        undiscounted_tax += round_half_up(p.item.total_price * rate, 100)
    assert result["tax"] == sum(p.tax for p in priced)
    assert result["tax"] <= undiscounted_tax  # a discount never raises the tax
    if not discounts:
        assert result["tax"] == undiscounted_tax
    # the quote discounts are apportioned pro rata by the lines' amounts after item discounts, within a cent
    after = [p.item.total_price - p.item_discount for p in priced]
    quote_discount = sum(p.quote_discount for p in priced)
    for p, amount in zip(priced, after, strict=True):
        assert abs(p.quote_discount * sum(after) - quote_discount * amount) < max(sum(after), 1)


@given(st.integers(0, 10**9), st.lists(st.integers(0, 10**7), min_size=1, max_size=10))
def test_apportion_adds_up_exactly_and_stays_within_each_weight(amount, weights):
    amount = min(amount, sum(weights))
    shares = apportion(amount, weights)
    assert sum(shares) == amount
    for share, weight in zip(shares, weights, strict=True):
        assert 0 <= share <= weight
        assert abs(share * sum(weights) - amount * weight) < max(sum(weights), 1)  # less than a cent from exact


def test_notes_preview_and_tags():
    assert notes_preview("  a \n\t b  ") == "a b"
    assert notes_preview("   ") is None
    assert notes_preview(None) is None
    long = "word " * 100
    assert notes_preview(long) == long.strip()[:180] + "…"
    assert summary_tags(["  vip ", "", 3, "gold"]) == ["vip", "gold"]
    assert summary_tags('["a", " b "]') == ["a", "b"]
    assert summary_tags("solo") == ["solo"]
    assert summary_tags("") is None
    assert summary_tags(None) is None


def test_unique_recipients_keep_the_first_spelling():
    assert unique_recipients(" A@x.io ", "a@X.io", None, "", "b@x.io") == ["A@x.io", "b@x.io"]


def test_email_amounts_are_exact_to_the_cent():
    assert format_amount(123456, "USD") == "USD 1,234.56"
    assert format_amount(5, "EUR") == "EUR 0.05"
    assert format_amount(-150, "EUR") == "EUR -1.50"
    assert format_amount(9 * 10**18 + 1, "USD") == "USD 90,000,000,000,000,000.01"  # a float says .00
