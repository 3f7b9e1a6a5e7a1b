"""The one spelling of a UTC timestamp in JSON: ISO-8601 with ``Z`` and microseconds
(``2026-01-05T09:30:00.123456Z``), as docs/architecture.md ("Data model") fixes.

Pure functions of their argument, so workflow code may call them with ``workflow.now()``.
"""

from __future__ import annotations

from datetime import UTC, datetime


def iso_z(value: datetime) -> str:
    """``value`` (aware) in UTC, ISO-8601 with microseconds and ``Z``. A naive ``value`` is taken as local time
    (``datetime.astimezone``), so callers pass aware values."""
    return value.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def utc_now_iso() -> str:
    """The current time as ``iso_z`` gives it (outside workflows: workflow code uses ``iso_z(workflow.now())``)."""
    return iso_z(datetime.now(UTC))


def parse_iso(value: str) -> datetime:
    """An ISO-8601 date-time (``Z`` or an offset) as an aware datetime. Raises ValueError when it is not one or
    carries no offset."""
    parsed = datetime.fromisoformat(value)
    if parsed.utcoffset() is None:
        raise ValueError(f"date-time {value!r} has no time zone")
    return parsed
