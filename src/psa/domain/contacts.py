"""Contacts: the shared contact model with phone numbers, additional email addresses and custom type labels.

Reference: ContactModel (``shared/models/contactModel.ts``, spec §3.2); tables in spec §4. Every function takes an
explicit connection and tenant id, never a session user, and filters every query by tenant. Writes run in a
SAVEPOINT, so a failure leaves no partial rows and the caller's transaction stays usable.

Emails are stored normalised (email-validator, lower case). Phone numbers are stored in E.164 form after
``phonenumbers`` validation. A contact's email addresses, primary and additional, are unique in the tenant: a
query checks first, and the database's unique constraints and triggers (migration 0002) catch concurrent writers;
both give EmailExistsError.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar
from uuid import UUID, uuid4

import phonenumbers
from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from psa.domain.documents import delete_entity_documents
from psa.domain.errors import (
    ConflictError,
    EmailExistsError,
    NotFoundError,
    ValidationError,
    validation_error_from_pydantic,
)
from psa.domain.values import PhoneMatch, UtcDatetime, clean_name, normalize_email, phone_digits

PHONE_TYPES = ("work", "mobile", "home", "fax", "other")
EMAIL_TYPES = ("work", "personal", "billing", "other")
EXTENSION_MAX = 10
CUSTOM_TYPE_MAX = 255
"""The longest custom phone / email type label (the labels' unique index cannot hold arbitrarily long text)."""
DEFAULT_PRIMARY_EMAIL_TYPE = "work"

# Unique violations (sqlstate 23505) that mean "this email address is taken in the tenant": the contacts
# UNIQUE(tenant, email), the additional-address unique index, and the two cross-table triggers of migration 0002.
EMAIL_CONSTRAINTS = frozenset(
    {
        "uq_contacts_tenant_email",
        "contact_email_is_additional_email",
        "ux_contact_additional_email_addresses_tenant_normalized_email",
        "additional_email_is_contact_email",
    }
)
_TYPE_TABLES = {
    "phone": ("contact_phone_type_definitions", "contact_phone_type_id"),
    "email": ("contact_email_type_definitions", "contact_email_type_id"),
}


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


@dataclass(frozen=True)
class _Row:
    """A validated phone or additional-email row: ``value`` is the E.164 number or the normalised address."""

    value: str
    canonical_type: str | None
    custom_type: str | None
    extension: str | None = None
    is_default: bool = False


M = TypeVar("M", bound=BaseModel)


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


def _parse(model: type[M], data: M | Mapping[str, Any]) -> M:
    if isinstance(data, model):
        return data
    try:
        return model.model_validate(data)
    except PydanticValidationError as exc:
        raise validation_error_from_pydantic(exc) from exc


def _blank_to_none(value: str | None) -> str | None:
    return (value or "").strip() or None


def _row_type(
    canonical: str | None, custom: str | None, *, kinds: Sequence[str], prefix: str, field: str, seen: set[str]
) -> tuple[str | None, str | None]:
    """(canonical, custom label) of one row: exactly one of them; a custom label is trimmed with whitespace
    collapsed, at most CUSTOM_TYPE_MAX characters, may not normalise to a canonical type, and may not repeat
    one in ``seen``."""
    canonical = (canonical or "").strip().lower() or None
    custom = " ".join((custom or "").split()) or None
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
    if custom.lower() in kinds:
        raise ValidationError(f'{where}: Use the canonical type picker for "{custom}"', field=where)
    if custom.lower() in seen:
        raise ValidationError(f"{where}: Duplicate custom type labels are not allowed", field=where)
    seen.add(custom.lower())
    return None, custom


def _primary_type(canonical: str | None, custom: str | None) -> tuple[str | None, str | None]:
    """Type of the primary email: canonical or custom, not both; 'work' when neither is given."""
    if _blank_to_none(canonical) is None and _blank_to_none(custom) is None:
        return DEFAULT_PRIMARY_EMAIL_TYPE, None
    field = "primary_email_custom_type" if _blank_to_none(custom) else "primary_email_canonical_type"
    return _row_type(canonical, custom, kinds=EMAIL_TYPES, prefix="primary_email_", field=field, seen=set())


def _clean_phones(rows: Sequence[PhoneNumberInput], region: str) -> list[_Row]:
    cleaned: list[_Row] = []
    seen: set[str] = set()
    for i, row in enumerate(rows):
        prefix = f"phone_numbers.{i}."
        parsed = _parse_phone(row.phone_number, region, f"{prefix}phone_number")
        extension = _blank_to_none(row.extension) or parsed.extension or None
        if extension is not None and not re.fullmatch(rf"[0-9]{{1,{EXTENSION_MAX}}}", extension):
            where = f"{prefix}extension"
            raise ValidationError(f"{where}: Extension must be digits only, at most {EXTENSION_MAX}", field=where)
        types = _row_type(
            row.canonical_type, row.custom_type, kinds=PHONE_TYPES, prefix=prefix, field=prefix[:-1], seen=seen
        )
        number = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
        cleaned.append(_Row(number, *types, extension=extension, is_default=row.is_default))
    defaults = sum(row.is_default for row in cleaned)
    if cleaned and defaults == 0:
        raise ValidationError(
            "phone_numbers: Exactly one default phone number is required when phone numbers are present",
            field="phone_numbers",
        )
    if defaults > 1:
        raise ValidationError("phone_numbers: Only one phone number can be marked as default", field="phone_numbers")
    return cleaned


def _clean_emails(rows: Sequence[AdditionalEmailInput], *, primary: str) -> list[_Row]:
    cleaned: list[_Row] = []
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
        cleaned.append(_Row(address, *types))
    return cleaned


async def create_contact(
    conn: AsyncConnection,
    tenant: UUID,
    data: ContactInput | Mapping[str, Any],
    *,
    contact_id: UUID | None = None,
    default_region: str = "US",
) -> Contact:
    """Create a contact with its phone rows and additional email addresses; returns it hydrated.

    Reference: ContactModel.createContact, spec §3.2. ``contact_id`` (default: a new uuid4) makes the call
    idempotent: when the tenant already has that contact with the same normalised email, it is returned
    unchanged (a retried activity). Custom type labels are get-or-created per tenant.

    Raises ValidationError (field path such as ``full_name`` or ``phone_numbers.0.phone_number``),
    NotFoundError(field="client_id") when the client is not in the tenant, EmailExistsError (field ``email`` or
    ``additional_email_addresses.{i}.email_address``) when an address is used by another contact of the tenant,
    ConflictError(field="contact_id") when ``contact_id`` exists with another email.
    """
    data = _parse(ContactInput, data)
    full_name = clean_name(data.full_name, field="full_name")
    email = normalize_email(data.email, field="email")
    primary = _primary_type(data.primary_email_canonical_type, data.primary_email_custom_type)
    phones = _clean_phones(data.phone_numbers, default_region)
    emails = _clean_emails(data.additional_email_addresses, primary=email)
    await _check_client(conn, tenant, data.client_id)
    values = {
        "tenant": tenant,
        "id": contact_id or uuid4(),
        "full_name": full_name,
        "email": email,
        "client_id": data.client_id,
        "role": _blank_to_none(data.role),
        "notes": _blank_to_none(data.notes),
        "is_inactive": data.is_inactive,
        "is_client_admin": data.is_client_admin,
    }
    try:
        await _check_emails_free(conn, tenant, email, emails, exclude=None)
        await _save(conn, values, primary, phones, emails, new=True)
    except ConflictError:
        # A retry, or a concurrent twin of this call (same id and email) that committed first: its contact.
        existing = await _email_of(conn, tenant, contact_id) if contact_id is not None else None
        if existing is None:
            raise
        if existing != email:
            raise ConflictError(f"contact {contact_id} already exists with another email", field="contact_id") from None
    return await get_contact(conn, tenant, values["id"])


async def update_contact(
    conn: AsyncConnection,
    tenant: UUID,
    contact_id: UUID,
    changes: ContactUpdate | Mapping[str, Any],
    *,
    default_region: str = "US",
) -> Contact:
    """Apply the given fields of ``changes`` to a contact and return it hydrated; ``updated_at`` is set.

    Reference: ContactModel.updateContact, spec §3.2. A new primary ``email`` must be one of the contact's
    additional addresses: it is promoted (taking its type unless a primary type is given) and the old primary
    is demoted into the additional list with its type. A given ``phone_numbers`` or
    ``additional_email_addresses`` list replaces the stored one, validated as on create.

    Raises NotFoundError(field="contact_id") for an unknown contact, NotFoundError(field="client_id"),
    ValidationError ("Primary email cannot be removed" for ``email=None``; field ``email`` for a primary not
    promoted from an additional address; the create rules otherwise), EmailExistsError when an address belongs
    to another contact of the tenant.
    """
    changes = _parse(ContactUpdate, changes)
    given = changes.model_fields_set
    locked = await conn.execute(
        text("SELECT 1 FROM contacts WHERE tenant = :t AND contact_name_id = :id FOR UPDATE"),
        {"t": tenant, "id": contact_id},
    )
    if locked.first() is None:
        raise NotFoundError(f"contact {contact_id} not found", field="contact_id")
    current = await get_contact(conn, tenant, contact_id)
    values: dict[str, Any] = current.model_dump(
        include={"full_name", "email", "client_id", "role", "notes", "is_inactive", "is_client_admin"}
    )
    if "full_name" in given:
        values["full_name"] = clean_name(changes.full_name, field="full_name")
    values.update({name: _blank_to_none(getattr(changes, name)) for name in ("role", "notes") if name in given})
    values.update({name: getattr(changes, name) for name in ("is_inactive", "is_client_admin") if name in given})
    if "client_id" in given:
        await _check_client(conn, tenant, changes.client_id)
        values["client_id"] = changes.client_id
    primary = (current.primary_email_canonical_type, current.primary_email_custom_type)
    additional = (changes.additional_email_addresses or []) if "additional_email_addresses" in given else None
    if "email" in given:
        if changes.email is None:
            raise ValidationError("email: Primary email cannot be removed", field="email")
        values["email"] = normalize_email(changes.email, field="email")
        typed = bool(given & {"primary_email_canonical_type", "primary_email_custom_type"})
        if values["email"] != current.email:
            additional, primary = _promote(current, values["email"], additional, typed=typed)
    if given & {"primary_email_canonical_type", "primary_email_custom_type"}:
        primary = _primary_type(changes.primary_email_canonical_type, changes.primary_email_custom_type)
    emails = _clean_emails(additional, primary=values["email"]) if additional is not None else None
    phones = _clean_phones(changes.phone_numbers or [], default_region) if "phone_numbers" in given else None
    await _check_emails_free(conn, tenant, values["email"], emails or [], exclude=contact_id)
    await _save(conn, {"tenant": tenant, "id": contact_id, **values}, primary, phones, emails, new=False)
    return await get_contact(conn, tenant, contact_id)


_INSERT_CONTACT = """
    INSERT INTO contacts (tenant, contact_name_id, full_name, email, client_id, role, notes, is_inactive,
                          is_client_admin, primary_email_canonical_type, primary_email_custom_type_id)
    VALUES (:tenant, :id, :full_name, :email, :client_id, :role, :notes, :is_inactive, :is_client_admin,
            :primary_canonical, :primary_custom_id)"""
_UPDATE_CONTACT = """
    UPDATE contacts SET full_name = :full_name, email = :email, client_id = :client_id, role = :role, notes = :notes,
           is_inactive = :is_inactive, is_client_admin = :is_client_admin,
           primary_email_canonical_type = :primary_canonical, primary_email_custom_type_id = :primary_custom_id,
           updated_at = now()
     WHERE tenant = :tenant AND contact_name_id = :id"""


async def _save(
    conn: AsyncConnection,
    values: dict[str, Any],
    primary: tuple[str | None, str | None],
    phones: list[_Row] | None,
    emails: list[_Row] | None,
    *,
    new: bool,
) -> None:
    """In one savepoint: insert (``new``) or update the contact row with its primary email type, and replace
    the phone and additional-email rows unless None. Old addresses go before the row is written, so a promoted
    address never meets itself in the uniqueness triggers."""
    tenant, contact_id = values["tenant"], values["id"]
    async with conn.begin_nested():
        [custom_id] = await _type_ids(conn, tenant, "email", [primary[1]])
        for table, replaced in (("contact_additional_email_addresses", emails), ("contact_phone_numbers", phones)):
            if replaced is not None and not new:
                await conn.execute(
                    text(f"DELETE FROM {table} WHERE tenant = :t AND contact_name_id = :id"),
                    {"t": tenant, "id": contact_id},
                )
        with _integrity_errors("email"):
            await conn.execute(
                text(_INSERT_CONTACT if new else _UPDATE_CONTACT),
                {**values, "primary_canonical": primary[0], "primary_custom_id": custom_id},
            )
        if emails is not None:
            await _write_emails(conn, tenant, contact_id, emails)
        if phones is not None:
            await _write_phones(conn, tenant, contact_id, phones)


def _promote(
    current: Contact, new_email: str, additional: list[AdditionalEmailInput] | None, *, typed: bool = False
) -> tuple[list[AdditionalEmailInput], tuple[str | None, str | None]]:
    """(additional rows, primary type) after promoting ``new_email`` from ``current``'s additional addresses
    and demoting the old primary (reference: updateContact). ``additional`` replaces the stored rows if given.

    A new address that is not yet an additional one is accepted only when the change spells out the whole
    swap (reference rule, spec runtime §3.1): ``additional`` is given and holds the demoted old primary, and a
    primary type is given (``typed``); the caller then sets the primary type.
    Raises ValidationError(field="email") otherwise."""
    promoted = next((a for a in current.additional_email_addresses if a.email_address == new_email), None)
    demoted = additional is not None and any(a.email_address.strip().lower() == current.email for a in additional)
    if promoted is None and typed and demoted:
        rows = [a for a in additional or () if a.email_address.strip().lower() != new_email]
        return rows, (current.primary_email_canonical_type, current.primary_email_custom_type)
    if promoted is None:
        raise ValidationError(
            "email: Changing the primary email requires promoting one of the contact's additional addresses",
            field="email",
        )
    if additional is None:
        additional = [
            AdditionalEmailInput(**a.model_dump(include=set(AdditionalEmailInput.model_fields)))
            for a in current.additional_email_addresses
        ]
    rows = [a for a in additional if a.email_address.strip().lower() != new_email]
    if all(a.email_address.strip().lower() != current.email for a in rows):
        demoted = AdditionalEmailInput(
            email_address=current.email,
            canonical_type=current.primary_email_canonical_type,
            custom_type=current.primary_email_custom_type,
        )
        rows.append(demoted)
    return rows, (promoted.canonical_type, promoted.custom_type)


async def get_contact(conn: AsyncConnection, tenant: UUID, contact_id: UUID) -> Contact:
    """The hydrated contact (reference: getContactById). Raises NotFoundError(field="contact_id")."""
    contact = await find_contact(conn, tenant, contact_id)
    if contact is None:
        raise NotFoundError(f"contact {contact_id} not found", field="contact_id")
    return contact


async def find_contact(conn: AsyncConnection, tenant: UUID, contact_id: UUID, *, lock: bool = False) -> Contact | None:
    """The hydrated contact, or None when the tenant has no contact with this id. ``lock``: the contact row is
    locked (``FOR UPDATE``) until commit, so a decision taken on what is read here (a guard, a no-op) cannot
    be overtaken by a concurrent writer; a writer that commits first is seen (the lock is taken by a statement
    of its own, so the read after it sees that writer's phones and emails too)."""
    if lock:
        locked = await conn.execute(
            text("SELECT 1 FROM contacts WHERE tenant = :t AND contact_name_id = :id FOR UPDATE"),
            {"t": tenant, "id": contact_id},
        )
        if locked.first() is None:
            return None
    row = (
        await conn.execute(
            text(
                """SELECT c.tenant, c.contact_name_id, c.full_name, c.email, c.client_id, c.role, c.notes,
                          c.is_inactive, c.is_client_admin, c.primary_email_canonical_type,
                          d.label AS primary_email_custom_type, c.primary_email_custom_type_id, c.created_at,
                          c.updated_at,
                          (SELECT coalesce(jsonb_agg(jsonb_build_object(
                                    'contact_phone_number_id', p.contact_phone_number_id,
                                    'phone_number', p.phone_number, 'extension', p.extension,
                                    'canonical_type', p.canonical_type, 'custom_type', pd.label,
                                    'is_default', p.is_default, 'display_order', p.display_order)
                                  ORDER BY p.display_order), '[]'::jsonb)
                             FROM contact_phone_numbers p
                             LEFT JOIN contact_phone_type_definitions pd
                               ON pd.tenant = p.tenant AND pd.contact_phone_type_id = p.custom_phone_type_id
                            WHERE p.tenant = c.tenant AND p.contact_name_id = c.contact_name_id) AS phones,
                          (SELECT coalesce(jsonb_agg(jsonb_build_object(
                                    'contact_additional_email_address_id', a.contact_additional_email_address_id,
                                    'email_address', a.email_address, 'canonical_type', a.canonical_type,
                                    'custom_type', ad.label, 'display_order', a.display_order)
                                  ORDER BY a.display_order), '[]'::jsonb)
                             FROM contact_additional_email_addresses a
                             LEFT JOIN contact_email_type_definitions ad
                               ON ad.tenant = a.tenant AND ad.contact_email_type_id = a.custom_email_type_id
                            WHERE a.tenant = c.tenant AND a.contact_name_id = c.contact_name_id) AS emails
                     FROM contacts c
                     LEFT JOIN contact_email_type_definitions d
                       ON d.tenant = c.tenant AND d.contact_email_type_id = c.primary_email_custom_type_id
                    WHERE c.tenant = :t AND c.contact_name_id = :id"""
            ),
            {"t": tenant, "id": contact_id},
        )
    ).first()
    if row is None:
        return None
    fields = {key: value for key, value in row._mapping.items() if key not in ("phones", "emails")}
    phone_rows = [PhoneNumber(**p, phone_type=p["custom_type"] or p["canonical_type"]) for p in row.phones]
    default = next((p for p in phone_rows if p.is_default), None)
    return Contact(
        **fields,
        primary_email_type=row.primary_email_custom_type
        or row.primary_email_canonical_type
        or DEFAULT_PRIMARY_EMAIL_TYPE,
        phone_numbers=phone_rows,
        default_phone_number=default.phone_number if default else None,
        default_phone_type=default.phone_type if default else None,
        additional_email_addresses=[
            AdditionalEmail(**e, email_type=e["custom_type"] or e["canonical_type"]) for e in row.emails
        ],
    )


async def get_contact_by_email(conn: AsyncConnection, tenant: UUID, email: str) -> Contact | None:
    """The contact whose primary or additional address equals ``email`` after normalisation, or None (also
    for a malformed address, which no contact can have). Reference: ContactModel.getContactByEmail."""
    try:
        address = normalize_email(email)
    except ValidationError:
        return None
    found = await conn.execute(
        text(
            """SELECT contact_name_id FROM contacts WHERE tenant = :t AND email = :e
               UNION ALL
               SELECT contact_name_id FROM contact_additional_email_addresses
                WHERE tenant = :t AND normalized_email_address = :e
               LIMIT 1"""
        ),
        {"t": tenant, "e": address},
    )
    contact_id = found.scalar_one_or_none()
    return await find_contact(conn, tenant, contact_id) if contact_id is not None else None


async def delete_contact(conn: AsyncConnection, tenant: UUID, contact_id: UUID) -> int:
    """Delete a contact with what only it owns: its tag mappings, ticket comments it wrote, portal invitations
    and documents (its notes document, unless shared) go first; its phone rows, additional addresses and
    portal user cascade. Custom type labels and tag definitions stay. Returns the number of contacts deleted
    (0 or 1). Reference: the contacts.delete cleanup (spec runtime §3.1)."""

    await delete_entity_documents(conn, tenant, "contact", contact_id)
    result = await conn.execute(
        text(
            """WITH tags AS (DELETE FROM tag_mappings
                              WHERE tenant = :t AND tagged_type = 'contact' AND tagged_id = :id),
                    comments AS (DELETE FROM comments WHERE tenant = :t AND contact_id = :id),
                    invitations AS (DELETE FROM portal_invitations WHERE tenant = :t AND contact_id = :id)
               DELETE FROM contacts WHERE tenant = :t AND contact_name_id = :id"""
        ),
        {"t": tenant, "id": contact_id},
    )
    return result.rowcount


async def detach_from_client(conn: AsyncConnection, tenant: UUID, client_id: UUID) -> int:
    """Unlink every contact of ``client_id`` (``client_id`` set to NULL) so deleting the client, which cascades
    to its contacts, keeps them. Returns the contacts unlinked."""
    result = await conn.execute(
        text("UPDATE contacts SET client_id = NULL, updated_at = now() WHERE tenant = :t AND client_id = :c"),
        {"t": tenant, "c": client_id},
    )
    return result.rowcount


async def _email_of(conn: AsyncConnection, tenant: UUID, contact_id: UUID) -> str | None:
    result = await conn.execute(
        text("SELECT email FROM contacts WHERE tenant = :t AND contact_name_id = :id"), {"t": tenant, "id": contact_id}
    )
    return result.scalar_one_or_none()


async def _check_client(conn: AsyncConnection, tenant: UUID, client_id: UUID | None) -> None:
    if client_id is None:
        return
    found = await conn.execute(
        text("SELECT 1 FROM clients WHERE tenant = :t AND client_id = :c"), {"t": tenant, "c": client_id}
    )
    if found.first() is None:
        raise NotFoundError(f"client {client_id} not found", field="client_id")


async def _check_emails_free(
    conn: AsyncConnection, tenant: UUID, primary: str, additional: Sequence[_Row], *, exclude: UUID | None
) -> None:
    """EmailExistsError when the primary or an additional address belongs to a contact other than ``exclude``."""
    fields = {primary: "email"} | {
        row.value: f"additional_email_addresses.{i}.email_address" for i, row in enumerate(additional)
    }
    taken = await conn.execute(
        text(
            """SELECT email FROM contacts
                WHERE tenant = :t AND email = ANY(CAST(:emails AS text[]))
                  AND contact_name_id IS DISTINCT FROM CAST(:exclude AS uuid)
               UNION ALL
               SELECT normalized_email_address FROM contact_additional_email_addresses
                WHERE tenant = :t AND normalized_email_address = ANY(CAST(:emails AS text[]))
                  AND contact_name_id IS DISTINCT FROM CAST(:exclude AS uuid)"""
        ),
        {"t": tenant, "emails": list(fields), "exclude": exclude},
    )
    used = set(taken.scalars())
    for address, field in fields.items():
        if address in used:
            raise EmailExistsError(f"{field}: A contact with email {address} already exists in the tenant", field=field)


async def _type_ids(conn: AsyncConnection, tenant: UUID, kind: str, labels: Sequence[str | None]) -> list[UUID | None]:
    """The custom type definition id of each label (None for None), get-or-created (reference: ensure custom
    types; insert ON CONFLICT (tenant, normalized_label) DO NOTHING, then re-select)."""
    table, id_column = _TYPE_TABLES[kind]
    wanted = sorted({label for label in labels if label is not None}, key=str.lower)  # sorted: no lock-order deadlock
    if not wanted:
        return [None] * len(labels)
    by_norm = {label.lower(): label for label in wanted}
    await conn.execute(
        text(
            f"""INSERT INTO {table} (tenant, label, normalized_label) VALUES (:t, :label, :norm)
                ON CONFLICT (tenant, normalized_label) DO NOTHING"""
        ),
        [{"t": tenant, "label": label, "norm": norm} for norm, label in by_norm.items()],
    )
    result = await conn.execute(
        text(
            f"""SELECT normalized_label, {id_column} FROM {table}
                 WHERE tenant = :t AND normalized_label = ANY(CAST(:norms AS text[]))"""
        ),
        {"t": tenant, "norms": list(by_norm)},
    )
    ids = dict(result.all())
    return [ids[label.lower()] if label is not None else None for label in labels]


async def _write_phones(conn: AsyncConnection, tenant: UUID, contact_id: UUID, phones: Sequence[_Row]) -> None:
    if not phones:
        return
    type_ids = await _type_ids(conn, tenant, "phone", [row.custom_type for row in phones])
    await conn.execute(
        text(
            """INSERT INTO contact_phone_numbers (tenant, contact_name_id, phone_number, extension, canonical_type,
                                                  custom_phone_type_id, is_default, display_order)
               VALUES (:t, :id, :number, :extension, :canonical, :custom_id, :is_default, :order)"""
        ),
        [
            {
                "t": tenant,
                "id": contact_id,
                "number": row.value,
                "extension": row.extension,
                "canonical": row.canonical_type,
                "custom_id": type_id,
                "is_default": row.is_default,
                "order": i,
            }
            for i, (row, type_id) in enumerate(zip(phones, type_ids, strict=True))
        ],
    )


async def _write_emails(conn: AsyncConnection, tenant: UUID, contact_id: UUID, emails: Sequence[_Row]) -> None:
    type_ids = await _type_ids(conn, tenant, "email", [row.custom_type for row in emails])
    # One statement per row, so a unique violation names its row.
    for i, (row, type_id) in enumerate(zip(emails, type_ids, strict=True)):
        with _integrity_errors(f"additional_email_addresses.{i}.email_address"):
            await conn.execute(
                text(
                    """INSERT INTO contact_additional_email_addresses (tenant, contact_name_id, email_address,
                                      canonical_type, custom_email_type_id, display_order)
                       VALUES (:t, :id, :address, :canonical, :custom_id, :order)"""
                ),
                {
                    "t": tenant,
                    "id": contact_id,
                    "address": row.value,
                    "canonical": row.canonical_type,
                    "custom_id": type_id,
                    "order": i,
                },
            )


@contextmanager
def _integrity_errors(email_field: str) -> Iterator[None]:
    """Map the database's verdict of a concurrent writer to typed errors: a taken email (EMAIL_CONSTRAINTS)
    to EmailExistsError(field=email_field), a taken contact id to ConflictError, a client deleted meanwhile
    to NotFoundError (reference: createContact error mapping, step 10)."""
    try:
        yield
    except IntegrityError as exc:
        sqlstate = getattr(exc.orig, "sqlstate", None)
        diag = getattr(exc.orig, "diag", None)
        constraint = diag.constraint_name if diag is not None else None
        if sqlstate == "23505" and constraint in EMAIL_CONSTRAINTS:
            raise EmailExistsError(
                f"{email_field}: A contact with this email address already exists in this tenant", field=email_field
            ) from exc
        if sqlstate == "23505" and constraint == "pk_contacts":
            raise ConflictError("a contact with this id already exists", field="contact_id") from exc
        if sqlstate == "23503" and constraint == "fk_contacts_tenant_client_id_clients":
            raise NotFoundError("the selected client no longer exists", field="client_id") from exc
        raise


async def primary_contact_of_client(conn: AsyncConnection, tenant: UUID, client_id: UUID) -> Contact | None:
    """The client's primary contact: its first active contact by creation, else its first inactive one;
    None when it has none (reference: clients.find ``include_primary_contact``, ordered
    ``is_inactive ASC, created_at ASC``)."""
    contact_id = await conn.scalar(
        text(
            """SELECT contact_name_id FROM contacts WHERE tenant = :t AND client_id = :c
                ORDER BY is_inactive, created_at, contact_name_id LIMIT 1"""
        ),
        {"t": tenant, "c": client_id},
    )
    return await find_contact(conn, tenant, contact_id) if contact_id is not None else None


async def count_contacts_for_client(conn: AsyncConnection, tenant: UUID, client_id: UUID) -> int:
    """Contacts of the client, active or not (reference: the clients.delete dependency count)."""
    result = await conn.execute(
        text("SELECT count(*) FROM contacts WHERE tenant = :t AND client_id = :c"), {"t": tenant, "c": client_id}
    )
    return result.scalar_one()


# -- lookups and search (reference: contacts.find, contacts.search; spec runtime §3.1, §6-5) ---------------------

PHONE_MATCH_MIN_DIGITS: dict[str, int] = {"exact": 7, "last7": 7, "last10": 10}
SEARCH_SORT_COLUMNS = {"name": "full_name", "updated_at": "updated_at"}
# A search query made of these characters, with at least this many digits, also matches phone numbers.
_PHONE_QUERY = re.compile(r"[0-9 +().\-]+")
SEARCH_PHONE_MIN_DIGITS = 3


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


_BRIEF_COLUMNS = """c.contact_name_id, c.full_name, c.email, c.client_id, c.is_inactive, p.phone_number AS
                    default_phone_number, c.created_at, c.updated_at"""
_DEFAULT_PHONE_JOIN = """LEFT JOIN contact_phone_numbers p
                           ON p.tenant = c.tenant AND p.contact_name_id = c.contact_name_id AND p.is_default"""


def _like_pattern(query: str) -> str:
    """``%query%`` with ``%``, ``_`` and ``\\`` escaped (reference: contacts.search)."""
    escaped = query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def search_contacts(
    conn: AsyncConnection,
    tenant: UUID,
    query: str,
    *,
    client_id: UUID | None = None,
    is_inactive: bool | None = None,
    tags: Sequence[str] | None = None,
    sort_by: str = "name",
    sort_order: str = "asc",
    limit: int = 25,
    offset: int = 0,
) -> tuple[list[ContactBrief], int]:
    """``(page, total)`` of the contacts whose name, primary email or any additional email contains ``query``
    (trimmed, case-insensitive); a query of phone characters (digits, spaces, ``+-().``) with at least 3
    digits also matches phone numbers containing those digits.

    Filters: ``client_id``; ``is_inactive`` (None: both, the reference's default); ``tags`` (any of these exact
    tag texts). Order: ``sort_by`` ``name`` (full_name) or ``updated_at``, ``sort_order`` ``asc``/``desc``, then
    contact_name_id ascending, so pages are stable. ``total`` counts distinct contacts. Served by the trigram
    indexes of migration 0004. Reference: contacts.search (spec runtime §3.1), which matched a phone column
    that no longer exists (§6-5). Raises ValidationError for an unknown ``sort_by`` / ``sort_order``.
    """
    if sort_by not in SEARCH_SORT_COLUMNS:
        raise ValidationError(f"sort_by must be one of {', '.join(SEARCH_SORT_COLUMNS)}", field="sort_by")
    if sort_order not in ("asc", "desc"):
        raise ValidationError("sort_order must be one of asc, desc", field="sort_order")
    cleaned = query.strip()
    digits = phone_digits(cleaned)
    # Filters, applied in every branch: client, active state, any of the tag texts.
    where = """(CAST(:client AS uuid) IS NULL OR c.client_id = :client)
               AND (CAST(:inactive AS boolean) IS NULL OR c.is_inactive = :inactive)
               AND (CAST(:tags AS text[]) IS NULL OR EXISTS (
                    SELECT 1 FROM tag_mappings m JOIN tag_definitions d ON d.tenant = m.tenant AND d.tag_id = m.tag_id
                     WHERE m.tenant = c.tenant AND m.tagged_id = c.contact_name_id AND m.tagged_type = 'contact'
                       AND d.tagged_type = 'contact' AND d.tag_text = ANY(CAST(:tags AS text[]))))"""
    columns = "c.contact_name_id, c.full_name, c.email, c.client_id, c.is_inactive, c.created_at, c.updated_at"
    # Contacts whose name or primary email matches (one bitmap heap scan over both trigram indexes; emails are
    # stored in lower case and match a lower-cased pattern), then, without a dedup pass, those matched only by an
    # additional email or a phone number.
    matched = "(c.full_name ILIKE :p OR c.email LIKE :lp)"  # bare, or the planner cannot use the two indexes
    others = """SELECT a.contact_name_id FROM contact_additional_email_addresses a
                 WHERE a.tenant = :t AND a.normalized_email_address LIKE :lp"""
    if _PHONE_QUERY.fullmatch(cleaned) and len(digits) >= SEARCH_PHONE_MIN_DIGITS:
        others += """
                UNION ALL SELECT n.contact_name_id FROM contact_phone_numbers n
                 WHERE n.tenant = :t AND n.normalized_phone_number LIKE :digits"""
    hits = f"""SELECT {columns} FROM contacts c WHERE c.tenant = :t AND {matched} AND {where}
               UNION ALL
               SELECT {columns} FROM (SELECT DISTINCT contact_name_id FROM ({others}) u) o
                 JOIN contacts c ON c.tenant = :t AND c.contact_name_id = o.contact_name_id
                WHERE NOT COALESCE({matched}, false) AND {where}"""
    params = {
        "t": tenant,
        "p": _like_pattern(cleaned),
        "lp": _like_pattern(cleaned.lower()),
        "digits": f"%{digits}%",
        "client": client_id,
        "inactive": is_inactive,
        "tags": list(tags) if tags else None,
        "limit": limit,
        "offset": offset,
    }
    order = f"{SEARCH_SORT_COLUMNS[sort_by]} {'DESC' if sort_order == 'desc' else 'ASC'}, contact_name_id"
    # The page first (counted over every hit), then the default phone of its rows only.
    result = await conn.execute(
        text(
            f"""WITH hits AS ({hits}),
                     page AS (SELECT h.*, count(*) OVER () AS total FROM hits h ORDER BY {order}
                              LIMIT :limit OFFSET :offset)
                SELECT page.*, p.phone_number AS default_phone_number
                  FROM page LEFT JOIN contact_phone_numbers p
                    ON p.tenant = :t AND p.contact_name_id = page.contact_name_id AND p.is_default
                 ORDER BY {order}"""
        ),
        params,
    )
    page = result.all()
    if page:
        total = page[0].total
    elif offset == 0:
        total = 0
    else:  # past the last page: count on its own
        total = await conn.scalar(text(f"WITH hits AS ({hits}) SELECT count(*) FROM hits"), params)
    return [ContactBrief(**{k: v for k, v in row._mapping.items() if k != "total"}) for row in page], total


def phone_candidates(phone: str, *, default_region: str = "US") -> list[str]:
    """The digit strings an exact phone lookup compares with stored numbers (which are E.164, so their digits
    include the country code): the digits as given, and the E.164 digits when ``phone`` parses as a valid
    number (numbers without ``+`` are read in ``default_region``)."""
    digits = phone_digits(phone)
    candidates = [digits]
    try:
        e164 = normalize_phone(phone, region=default_region, field="phone")
    except ValidationError:
        return candidates
    if e164[1:] != digits:
        candidates.append(e164[1:])
    return candidates


async def find_contacts_by_phone(
    conn: AsyncConnection,
    tenant: UUID,
    phone: str,
    match: PhoneMatch = "exact",
    *,
    client_id: UUID | None = None,
    most_recent: bool = False,
    limit: int = 5,
) -> list[ContactBrief]:
    """Contacts with a phone number matching ``phone``, active ones first, then by creation (oldest first, or
    newest with ``most_recent``), at most ``limit``; only the client's when ``client_id`` is given.

    Numbers compare as digits: ``exact`` whole numbers (``phone_candidates``), ``last7`` / ``last10`` the
    last 7 / 10 digits (indexed expressions of migration 0004). ``phone`` needs at least 10 digits for
    ``last10`` and 7 otherwise, else ValidationError("phone is invalid", field="phone").
    Reference: contacts.find by phone (spec runtime §3.1), on ``contact_phone_numbers`` (§6-5).
    """
    digits = phone_digits(phone)
    if len(digits) < PHONE_MATCH_MIN_DIGITS[match]:
        raise ValidationError("phone is invalid", field="phone")
    if match == "exact":
        condition, value = "p.normalized_phone_number = ANY(CAST(:v AS text[]))", phone_candidates(phone)
    else:
        n = PHONE_MATCH_MIN_DIGITS[match]  # 7 or 10, a literal so the expression index applies
        condition, value = f"right(p.normalized_phone_number, {n}) = :v", digits[-n:]
    direction = "DESC" if most_recent else "ASC"
    result = await conn.execute(
        text(
            f"""SELECT {_BRIEF_COLUMNS}
                  FROM contacts c {_DEFAULT_PHONE_JOIN}
                 WHERE c.tenant = :t AND (CAST(:client AS uuid) IS NULL OR c.client_id = :client)
                   AND EXISTS (SELECT 1 FROM contact_phone_numbers p
                                WHERE p.tenant = c.tenant AND p.contact_name_id = c.contact_name_id AND {condition})
                 ORDER BY c.is_inactive, c.created_at {direction}, c.contact_name_id {direction}
                 LIMIT :limit"""
        ),
        {"t": tenant, "v": value, "client": client_id, "limit": limit},
    )
    return [ContactBrief(**row._mapping) for row in result]


async def count_contact_dependencies(conn: AsyncConnection, tenant: UUID, contact_id: UUID) -> dict[str, int]:
    """Counts of the records (other than tickets and interactions) that keep a contact from being deleted:
    ``document`` (associations as 'contact', the contact's own notes document excepted), ``portal_user``
    (client users), ``survey_invitation``, ``survey_response``, ``asset_association``, and ``quote`` (quotes
    naming the contact, whose foreign key would otherwise refuse the delete). Reference: the contacts.delete
    dependency validation (spec runtime §3.1), without its notes-document quirk (§6-13)."""
    row = (
        await conn.execute(
            text(
                """SELECT
                     (SELECT count(*) FROM document_associations a
                       WHERE a.tenant = :t AND a.entity_type = 'contact' AND a.entity_id = :id
                         AND a.document_id IS DISTINCT FROM (SELECT notes_document_id FROM contacts
                                                              WHERE tenant = :t AND contact_name_id = :id))
                       AS document,
                     (SELECT count(*) FROM users WHERE tenant = :t AND contact_id = :id AND user_type = 'client')
                       AS portal_user,
                     (SELECT count(*) FROM survey_invitations WHERE tenant = :t AND contact_id = :id)
                       AS survey_invitation,
                     (SELECT count(*) FROM survey_responses WHERE tenant = :t AND contact_id = :id)
                       AS survey_response,
                     (SELECT count(*) FROM asset_associations
                       WHERE tenant = :t AND entity_type = 'contact' AND entity_id = :id) AS asset_association,
                     (SELECT count(*) FROM quotes WHERE tenant = :t AND contact_id = :id) AS quote"""
            ),
            {"t": tenant, "id": contact_id},
        )
    ).one()
    return dict(row._mapping)


async def upsert_contact(
    conn: AsyncConnection, tenant: UUID, data: Mapping[str, Any], *, default_region: str = "US"
) -> tuple[bool, Contact]:
    """``(created, contact)`` for the contact whose primary or additional address is ``data["email"]``:
    created from ``data`` (``ContactInput``) when there is none, else updated with the other keys of ``data``
    only (``ContactUpdate``; keys not given stay as they are, the primary email is never changed). A concurrent
    upsert of the same address that commits first turns the create into an update.

    Raises ValidationError (``email`` missing or malformed, ``full_name`` missing on create, the create / update
    rules), NotFoundError(field="client_id"), EmailExistsError for an additional address of another contact.
    Beyond the reference: the upsert that CRM automation tools offer (issue 5).
    """
    email = normalize_email(data.get("email") or "", field="email")
    existing = await get_contact_by_email(conn, tenant, email)
    if existing is None:
        try:
            return True, await create_contact(conn, tenant, data, default_region=default_region)
        except EmailExistsError as exc:
            existing = await get_contact_by_email(conn, tenant, email) if exc.field == "email" else None
            if existing is None:
                raise
    changes = {key: value for key, value in data.items() if key != "email"}
    if not changes:
        return False, existing
    return False, await update_contact(conn, tenant, existing.contact_name_id, changes, default_region=default_region)


async def email_type_label(conn: AsyncConnection, tenant: UUID, type_id: UUID) -> str:
    """The label of the tenant's custom email type ``type_id``.
    Raises NotFoundError("Email type not found", field="primary_email_custom_type_id")."""
    label = await conn.scalar(
        text("SELECT label FROM contact_email_type_definitions WHERE tenant = :t AND contact_email_type_id = :id"),
        {"t": tenant, "id": type_id},
    )
    if label is None:
        raise NotFoundError("Email type not found", field="primary_email_custom_type_id")
    return label
