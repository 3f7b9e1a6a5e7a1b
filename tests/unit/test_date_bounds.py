"""The bounds of date filters (psa.domain.values.InstantRange; docs/automation.md, "Dates"), without a database."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from psa.domain.values import InstantRange, day_start, local_day

BERLIN = ZoneInfo("Europe/Berlin")


def test_a_day_runs_from_local_midnight_to_the_next_excluded():
    span = InstantRange.of(date(2026, 7, 1), date(2026, 7, 1), BERLIN)  # UTC+2 in summer
    assert span == InstantRange(
        start=datetime(2026, 6, 30, 22, tzinfo=UTC), end=datetime(2026, 7, 1, 22, tzinfo=UTC), end_exclusive=True
    )
    assert span.conditions("quote_date") == (
        ["quote_date >= :range_start", "quote_date < :range_end"],
        {"range_start": span.start, "range_end": span.end},
    )


def test_an_instant_keeps_its_meaning_and_is_included():
    instant = datetime(2026, 7, 1, 12, tzinfo=UTC)
    span = InstantRange.of(None, instant, BERLIN)
    assert span == InstantRange(start=None, end=instant, end_exclusive=False)
    assert span.conditions("c") == (["c <= :range_end"], {"range_end": instant})
    assert InstantRange.of(None, None, BERLIN).conditions("c") == ([], {})


def test_a_day_that_skips_midnight_starts_at_its_first_local_time():
    santiago = ZoneInfo("America/Santiago")  # 2022-09-11 00:00 became 01:00 (UTC-4 -> UTC-3)
    assert day_start(date(2022, 9, 11), santiago) == datetime(2022, 9, 11, 4, tzinfo=UTC)
    assert day_start(date(2022, 9, 12), santiago) == datetime(2022, 9, 12, 3, tzinfo=UTC)


def test_days_at_the_ends_of_the_calendar_leave_the_range_open():
    kolkata = ZoneInfo("Asia/Kolkata")  # 0001-01-01 00:00 local is before 0001-01-01 UTC
    assert InstantRange.of(date(1, 1, 1), date.max, kolkata) == InstantRange(start=None, end=None, end_exclusive=True)
    assert local_day(datetime(9999, 12, 31, 23, tzinfo=UTC), kolkata) == date(9999, 12, 31)  # no local day: UTC's
    assert local_day(datetime(2026, 7, 1, 23, tzinfo=UTC), BERLIN) == date(2026, 7, 2)
