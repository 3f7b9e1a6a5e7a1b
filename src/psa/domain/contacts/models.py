"""Contact models and the rules that normalise their input: the pydantic inputs and outputs, and the
validation of names, phone numbers (``phonenumbers``, stored in E.164 form), additional email addresses and
custom type labels, before anything is written (reference: ContactModel; docs/architecture.md, "Data model")."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from uuid import UUID

import phonenumbers
from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError

from psa.domain.errors import ValidationError, validation_error_from_pydantic
from psa.domain.values import UtcDatetime, name_key, normalize_email

PHONE_TYPES = ("work", "mobile", "home", "fax", "other")
EMAIL_TYPES = ("work", "personal", "billing", "other")
EXTENSION_MAX = 10
CUSTOM_TYPE_MAX = 255
"""The longest custom phone / email type label (the labels' unique index cannot hold arbitrarily long text)."""
DEFAULT_PRIMARY_EMAIL_TYPE = "work"


class PhoneNumberInput(BaseModel):
    """One phone row of a contact: a number (E.164 or national in the default region), an optional
    extension (digits, at most 10) and exactly one of ``canonical_type`` (PHONE_TYPES) or ``custom_type``."""

    model_config = ConfigDict(extra="forbid")

    phone_number: str
    extension: str | None = None
    canonical_type: str | None = None
    custom_type: str | None = None
    is_default: bool = False


class AdditionalEmailInput(BaseModel):
    """One additional email address with exactly one of ``canonical_type`` (EMAIL_TYPES) or ``custom_type``."""

    model_config = ConfigDict(extra="forbid")

    email_address: str
    canonical_type: str | None = None
    custom_type: str | None = None


class ContactInput(BaseModel):
    """Input of ``create_contact`` (reference: CreateContactInput). Row order gives ``display_order``."""

    model_config = ConfigDict(extra="forbid")

    full_name: str
    email: str
    client_id: UUID | None = None
    role: str | None = None
    notes: str | None = None
    is_inactive: bool = False
    is_client_admin: bool = False
    primary_email_canonical_type: str | None = None
    primary_email_custom_type: str | None = None
    phone_numbers: list[PhoneNumberInput] = Field(default_factory=list)
    additional_email_addresses: list[AdditionalEmailInput] = Field(default_factory=list)


class ContactUpdate(BaseModel):
    """Input of ``update_contact``: only the fields actually given (``model_fields_set``) change. A given
    ``phone_numbers`` / ``additional_email_addresses`` list (None = empty) replaces the whole list."""

    model_config = ConfigDict(extra="forbid")

    full_name: str | None = None
    email: str | None = None
    client_id: UUID | None = None
    role: str | None = None
    notes: str | None = None
    is_inactive: bool = False
    is_client_admin: bool = False
    primary_email_canonical_type: str | None = None
    primary_email_custom_type: str | None = None
    phone_numbers: list[PhoneNumberInput] | None = None
    additional_email_addresses: list[AdditionalEmailInput] | None = None


class PhoneNumber(BaseModel):
    """A stored phone row. ``phone_type`` is the custom label, else the canonical type."""

    contact_phone_number_id: UUID
    phone_number: str
    extension: str | None
    canonical_type: str | None
    custom_type: str | None
    phone_type: str
    is_default: bool
    display_order: int


class AdditionalEmail(BaseModel):
    """A stored additional email row. ``email_type`` is the custom label, else the canonical type."""

    contact_additional_email_address_id: UUID
    email_address: str
    canonical_type: str | None
    custom_type: str | None
    email_type: str
    display_order: int


class Contact(BaseModel):
    """A hydrated contact (reference: getContactById): phones and additional emails ordered by
    ``display_order``, the default phone's number and type label, and the primary email's type label."""

    tenant: UUID
    contact_name_id: UUID
    full_name: str
    email: str
    client_id: UUID | None
    role: str | None
    notes: str | None
    is_inactive: bool
    is_client_admin: bool
    primary_email_type: str
    primary_email_canonical_type: str | None
    primary_email_custom_type: str | None
    primary_email_custom_type_id: UUID | None = None
    phone_numbers: list[PhoneNumber]
    default_phone_number: str | None
    default_phone_type: str | None
    additional_email_addresses: list[AdditionalEmail]
    created_at: UtcDatetime
    updated_at: UtcDatetime


class ContactBrief(BaseModel):
    """A contact as listed by search and phone lookups: its row and the number of its default phone."""

    contact_name_id: UUID
    full_name: str | None
    email: str | None
    client_id: UUID | None
    is_inactive: bool
    default_phone_number: str | None
    created_at: UtcDatetime
    updated_at: UtcDatetime


@dataclass(frozen=True)
class ValidatedRow:
    """A validated phone or additional-email row: ``value`` is the E.164 number or the normalised address."""

    value: str
    canonical_type: str | None
    custom_type: str | None
    extension: str | None = None
    is_default: bool = False


_Model = TypeVar("_Model", bound=BaseModel)


def normalize_phone(raw: str, *, region: str = "US", field: str = "phone_number") -> str:
    """``raw`` in E.164 form (``+14155550123``). Numbers without a leading ``+`` are read in ``region``
    (ISO 3166 alpha-2). Raises ValidationError (with ``field``) when ``raw`` is blank, unparsable, or not a
    valid number per ``phonenumbers.is_valid_number`` (reference: validatePhoneNumbers, stricter)."""
    return phonenumbers.format_number(_parse_phone(raw, region, field), phonenumbers.PhoneNumberFormat.E164)


def _parse_phone(raw: str, region: str, field: str) -> phonenumbers.PhoneNumber:
    candidate = (raw or "").strip()
    if not candidate:
        raise ValidationError(f"{field}: Phone number is required", field=field)
    try:
        parsed = phonenumbers.parse(candidate, region.upper())
    except phonenumbers.NumberParseException as exc:
        raise ValidationError(f"{field}: Not a phone number", field=field) from exc
    if not phonenumbers.is_valid_number(parsed):
        raise ValidationError(
            f"{field}: Not a valid phone number (numbers without + are read as {region} numbers)", field=field
        )
    return parsed


def parse_input(model: type[_Model], data: _Model | Mapping[str, Any]) -> _Model:
    """``data`` as a ``model`` (validated unless it already is one). Raises ValidationError naming the field."""
    if isinstance(data, model):
        return data
    try:
        return model.model_validate(data)
    except PydanticValidationError as exc:
        raise validation_error_from_pydantic(exc) from exc


def blank_to_none(value: str | None) -> str | None:
    """``value`` trimmed, or None when it is None or blank."""
    return (value or "").strip() or None


def _row_type(
    canonical: str | None, custom: str | None, *, kinds: Sequence[str], prefix: str, field: str, seen: set[str]
) -> tuple[str | None, str | None]:
    """(canonical, custom label) of one row: exactly one of them; a custom label is trimmed with whitespace
    collapsed, at most CUSTOM_TYPE_MAX characters, may not have the ``name_key`` of a canonical type, and may
    not repeat one in ``seen`` (the keys of the labels before it)."""
    canonical = (canonical or "").strip().lower() or None
    custom = " ".join((custom or "").split()) if name_key(custom or "") else None
    if canonical and custom:
        raise ValidationError(f"{field}: Choose either a canonical type or a custom type, not both", field=field)
    if canonical:
        if canonical not in kinds:
            where = f"{prefix}canonical_type"
            raise ValidationError(f"{where}: must be one of {', '.join(kinds)} (got {canonical!r})", field=where)
        return canonical, None
    if not custom:
        raise ValidationError(f"{field}: Choose a canonical type or provide a custom type", field=field)
    where = f"{prefix}custom_type"
    if len(custom) > CUSTOM_TYPE_MAX:
        raise ValidationError(f"{where}: must be at most {CUSTOM_TYPE_MAX} characters (got {len(custom)})", field=where)
    key = name_key(custom)
    if key in kinds:
        raise ValidationError(f'{where}: Use the canonical type picker for "{custom}"', field=where)
    if key in seen:
        raise ValidationError(f"{where}: Duplicate custom type labels are not allowed", field=where)
    seen.add(key)
    return None, custom


def clean_primary_type(canonical: str | None, custom: str | None) -> tuple[str | None, str | None]:
    """Type of the primary email: canonical or custom, not both; 'work' when neither is given."""
    if blank_to_none(canonical) is None and blank_to_none(custom) is None:
        return DEFAULT_PRIMARY_EMAIL_TYPE, None
    field = "primary_email_custom_type" if blank_to_none(custom) else "primary_email_canonical_type"
    return _row_type(canonical, custom, kinds=EMAIL_TYPES, prefix="primary_email_", field=field, seen=set())


def clean_phones(rows: Sequence[PhoneNumberInput], region: str) -> list[ValidatedRow]:
    """The phone rows validated, numbers in E.164 form (read in ``region`` without ``+``), in input order.

    Raises ValidationError (field ``phone_numbers.{i}.…``) for a bad number, extension or type, and (field
    ``phone_numbers``) unless exactly one row is the default when there are rows.
    """
    cleaned: list[ValidatedRow] = []
    seen: set[str] = set()
    for i, row in enumerate(rows):
        prefix = f"phone_numbers.{i}."
        parsed = _parse_phone(row.phone_number, region, f"{prefix}phone_number")
        extension = blank_to_none(row.extension) or parsed.extension or None
        if extension is not None and not re.fullmatch(rf"[0-9]{{1,{EXTENSION_MAX}}}", extension):
            where = f"{prefix}extension"
            raise ValidationError(f"{where}: Extension must be digits only, at most {EXTENSION_MAX}", field=where)
        types = _row_type(
            row.canonical_type, row.custom_type, kinds=PHONE_TYPES, prefix=prefix, field=prefix[:-1], seen=seen
        )
        number = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
        cleaned.append(ValidatedRow(number, *types, extension=extension, is_default=row.is_default))
    defaults = sum(row.is_default for row in cleaned)
    if cleaned and defaults == 0:
        raise ValidationError(
            "phone_numbers: Exactly one default phone number is required when phone numbers are present",
            field="phone_numbers",
        )
    if defaults > 1:
        raise ValidationError("phone_numbers: Only one phone number can be marked as default", field="phone_numbers")
    return cleaned


def clean_emails(rows: Sequence[AdditionalEmailInput], *, primary: str) -> list[ValidatedRow]:
    """The additional addresses validated and normalised, in input order. Raises ValidationError (field
    ``additional_email_addresses.{i}.…``) for a malformed, repeated or ``primary`` address, or a bad type."""
    cleaned: list[ValidatedRow] = []
    addresses: set[str] = set()
    seen: set[str] = set()
    for i, row in enumerate(rows):
        prefix = f"additional_email_addresses.{i}."
        where = f"{prefix}email_address"
        address = normalize_email(row.email_address, field=where)
        if address == primary:
            raise ValidationError(f"{where}: Additional email address cannot match primary email", field=where)
        if address in addresses:
            raise ValidationError(f"{where}: Duplicate additional email address is not allowed", field=where)
        addresses.add(address)
        types = _row_type(
            row.canonical_type, row.custom_type, kinds=EMAIL_TYPES, prefix=prefix, field=prefix[:-1], seen=seen
        )
        cleaned.append(ValidatedRow(address, *types))
    return cleaned
