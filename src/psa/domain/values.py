"""Value types and normalisations shared by every domain module: UTC timestamps, time zones and the bounds of
date filters, display names and their comparison key, email addresses and phone digits. A leaf: it imports
nothing from ``psa.domain`` but the errors, so any domain module may use it (docs/architecture.md, "Layers")."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator
from slugify import slugify

from psa.domain.errors import ValidationError

NAME_MAX = 255
EMAIL_MAX = 254
SLUG_MAX = 63
PRODUCT_CODES = ("psa", "algadesk")
"""The products a tenant can be provisioned for."""
TENANT_EMAIL_PROVIDERS = ("smtp", "resend", "hybrid", "microsoft")
"""The email providers a tenant can be configured with (``tenant_email_settings``)."""

UtcDatetime = Annotated[datetime, AfterValidator(lambda value: value.astimezone(UTC))]
"""A timestamp reported in UTC (ISO-8601 with ``Z`` in JSON), whatever the database session's time zone."""

PhoneMatch = Literal["exact", "last7", "last10"]
"""How a phone lookup compares digits: all of them, or the last 7 or 10 (reference: client/contact phone search)."""
PHONE_MATCH_MIN_DIGITS: dict[str, int] = {"exact": 1, "last7": 7, "last10": 10}
"""The fewest digits a phone lookup needs under each PhoneMatch."""


def clean_name(value: str | None, *, field: str, required: bool = True) -> str | None:
    """Trim a display name. Raises ValidationError (with ``field``) when blank but required, or longer
    than 255 characters (reference column limits)."""
    cleaned = (value or "").strip()
    if not cleaned:
        if required:
            raise ValidationError(f"{field} is required", field=field)
        return None
    if len(cleaned) > NAME_MAX:
        raise ValidationError(f"{field} must be at most {NAME_MAX} characters (got {len(cleaned)})", field=field)
    return cleaned


def name_key(name: str) -> str:
    """The comparison key of a name that is unique or looked up by name: two names are the same name exactly when
    their keys are equal. Format characters (Unicode category Cf: zero-width spaces and joiners, soft hyphens,
    byte-order marks, direction marks) are dropped; the rest is NFKC-normalised, case-folded and normalised again
    (full Unicode case folding: "ΣΑΣ", "σας" and "σασ" -> "σασ", "Straße" -> "strasse", "İ" -> "i̇"); runs of
    whitespace (every character ``str.isspace`` accepts, such as the separators U+001C..U+001F, NEL U+0085 and
    NO-BREAK SPACE U+00A0) become one space, and leading and trailing whitespace goes.
    "  ACME\u00a0 Corp " -> "acme corp". A name with no visible character has the key "".

    The one normalisation of unique names (docs/decisions.md, "One key per unique name"): computed here, stored in
    each table's ``name_key`` column (``normalized_label`` for custom contact type labels), which the unique
    index covers and every lookup by name compares with. A change to this function needs a migration that
    recomputes the stored keys (as migration 0009 did).
    """
    visible = "".join(char for char in name if unicodedata.category(char) != "Cf")
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", visible).casefold())
    return " ".join(folded.split())


def normalize_email(email: str | None, *, field: str = "email") -> str:
    """Syntax-check ``email`` with email-validator (no DNS) and return it lower-cased.

    Raises ValidationError (with ``field``) for blank or invalid addresses.
    """
    candidate = (email or "").strip()
    if not candidate:
        raise ValidationError(f"{field} is required", field=field)
    if len(candidate) > EMAIL_MAX:
        raise ValidationError(f"{field} must be at most {EMAIL_MAX} characters", field=field)
    try:
        info = validate_email(candidate, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValidationError(f"{field} is not a valid email address: {exc}", field=field) from exc
    return info.normalized.lower()


def phone_digits(phone: str) -> str:
    """Digits only: "+1 (555) 010-0000" -> "15550100000" (reference: the actions' phone normalisation)."""
    return re.sub(r"\D", "", phone or "")


def tenant_slug(tenant_name: str) -> str:
    """URL-safe business key of a tenant ("Acme Corp" -> "acme-corp"), at most 63 characters.

    Raises ValidationError when the name has no letter or digit to build a slug from.
    """
    slug = slugify(tenant_name, max_length=SLUG_MAX, word_boundary=True)
    if not slug:
        raise ValidationError("tenant_name must contain at least one letter or digit", field="tenant_name")
    return slug


def zone_or_utc(name: str | None) -> ZoneInfo:
    """The IANA zone ``name`` (e.g. ``Europe/Berlin``), UTC when None, blank or unknown."""
    try:
        return ZoneInfo(name.strip()) if name and name.strip() else ZoneInfo("UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


DayOrInstant = date | datetime
"""A date given by a caller: a calendar day (a ``date`` that is not a ``datetime``) or an aware instant."""


def is_day(value: DayOrInstant) -> bool:
    """Whether ``value`` is a calendar day rather than an instant."""
    return not isinstance(value, datetime)


def day_start(day: date, zone: ZoneInfo) -> datetime | None:
    """The first instant of ``day`` in ``zone``, in UTC: local midnight, or the first local time of the day
    where a clock change skips midnight. None when that instant lies outside 0001-01-01 .. 9999-12-31 UTC."""
    try:
        return datetime.combine(day, time(), zone).astimezone(UTC)
    except OverflowError:
        return None


def start_of(value: DayOrInstant, zone: ZoneInfo) -> datetime | None:
    """An instant as it is; a day as its first instant in ``zone`` (day_start, so None out of range)."""
    return day_start(value, zone) if is_day(value) else value


def local_day(instant: datetime, zone: ZoneInfo) -> date:
    """The calendar day of ``instant`` in ``zone`` (its UTC day where that local day is out of range)."""
    try:
        return instant.astimezone(zone).date()
    except OverflowError:
        return instant.astimezone(UTC).date()


@dataclass(frozen=True)
class InstantRange:
    """The instants ``t`` with ``start <= t`` and ``t <= end`` (``t < end`` when ``end_exclusive``); a None
    bound is open. Built by ``of`` from the bounds of a date filter (docs/automation.md, "Dates")."""

    start: datetime | None
    end: datetime | None
    end_exclusive: bool

    @classmethod
    def of(cls, date_from: DayOrInstant | None, date_to: DayOrInstant | None, zone: ZoneInfo) -> InstantRange:
        """``date_from`` .. ``date_to`` inclusive. A day as ``date_from`` starts at its first instant in
        ``zone``; a day as ``date_to`` includes the whole of it, up to the next day's first instant excluded.
        An instant keeps its meaning. A range whose start comes after its end matches nothing."""
        start = start_of(date_from, zone) if date_from is not None else None
        if date_to is None or not is_day(date_to):
            return cls(start=start, end=date_to, end_exclusive=False)
        next_day = date_to + timedelta(days=1) if date_to < date.max else None
        return cls(start=start, end=day_start(next_day, zone) if next_day else None, end_exclusive=True)

    def conditions(self, column: str) -> tuple[list[str], dict[str, datetime]]:
        """SQL conditions on the ``timestamptz`` expression ``column`` keeping it in the range, and their
        parameters (``range_start``, ``range_end``)."""
        clauses: list[str] = []
        params: dict[str, datetime] = {}
        if self.start is not None:
            clauses.append(f"{column} >= :range_start")
            params["range_start"] = self.start
        if self.end is not None:
            clauses.append(f"{column} {'<' if self.end_exclusive else '<='} :range_end")
            params["range_end"] = self.end
        return clauses, params
