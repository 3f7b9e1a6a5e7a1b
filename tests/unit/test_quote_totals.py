"""Quote totals (psa.domain.quotes.totals) and the activity summary helpers, without a database."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from psa.automation.actions.crm.models import notes_preview, summary_tags
from psa.automation.actions.quotes import format_amount, unique_recipients
from psa.domain.quotes import QuoteItem, totals

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


def test_discounts_tax_and_unselected_options():
    laptop = item(300000, tax_amount=30000)
    items = [
        laptop,
        item(60000, is_taxable=False, tax_amount=999),  # not taxable: its tax amount is ignored
        item(9999, is_optional=True, is_selected=False),
        item(
            0,
            is_discount=True,
            discount_type="percentage",
            discount_percentage=15,
            applies_to_item_id=laptop.quote_item_id,
        ),
        item(10000, is_discount=True, discount_type="fixed"),
        item(0, is_discount=True, discount_type="percentage", discount_percentage=10),  # 10 % of the subtotal
    ]
    assert totals(items) == {
        "subtotal": 360000,
        "discount_total": 45000 + 10000 + 36000,
        "tax": 30000,
        "total_amount": 360000 - 91000 + 30000,
    }
    assert totals([]) == {"subtotal": 0, "discount_total": 0, "tax": 0, "total_amount": 0}
    assert (
        totals([item(3, is_discount=True, discount_type="percentage", discount_percentage=50), item(3)])[
            "discount_total"
        ]
        == 2
    )  # half of 3 cents rounds half up


def test_a_discount_on_an_item_that_is_not_charged_takes_nothing():
    option = item(100000, is_optional=True, is_selected=False)
    fixed = item(1000, is_discount=True, discount_type="fixed")
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
    on_option = item(3000, is_discount=True, discount_type="fixed", applies_to_item_id=option.quote_item_id)
    on_cable = item(3000, is_discount=True, discount_type="fixed", applies_to_item_id=cable.quote_item_id)
    assert totals([item(500000), cable, option, on_option, on_cable])["discount_total"] == 2000  # at most the cable


def test_discounts_never_exceed_the_subtotal():
    assert totals(
        [
            item(500, tax_amount=50),
            item(1000, is_discount=True, discount_type="fixed"),
            item(0, is_discount=True, discount_type="percentage", discount_percentage=100),
        ]
    ) == {"subtotal": 500, "discount_total": 500, "tax": 50, "total_amount": 50}


@given(st.lists(st.tuples(st.integers(0, 10**7), st.integers(0, 10**6), st.booleans(), st.booleans()), max_size=8))
def test_total_is_subtotal_minus_discounts_plus_tax_and_ignores_unselected_options(lines):
    items = [
        item(total, tax_amount=tax, is_optional=optional, is_selected=selected)
        for total, tax, optional, selected in lines
    ]
    result = totals(items)
    assert result["total_amount"] == result["subtotal"] - result["discount_total"] + result["tax"]
    counted = [i for i in items if not i.is_optional or i.is_selected]
    assert totals(counted) == result
    assert result["subtotal"] == sum(i.total_price for i in counted)


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
