"""Contact writes and reads: create, update, upsert and delete a contact with its phone rows and additional
email addresses, and read it back hydrated (by id or by email address).

Every function takes an explicit connection and tenant id, never a session user, and filters every query by
tenant. Writes run in a SAVEPOINT, so a failure leaves no partial rows and the caller's transaction stays usable.
A contact's email addresses, primary and additional, are unique in the tenant: a query checks first, and the
database's unique constraints and triggers (migration 0002) catch concurrent writers; both give EmailExistsError
(reference: ContactModel; docs/architecture.md, "Tenant isolation").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from psa.domain.contacts._rows import check_emails_free, custom_type_ids, integrity_errors, write_emails, write_phones
from psa.domain.contacts.models import (
    DEFAULT_PRIMARY_EMAIL_TYPE,
    AdditionalEmail,
    AdditionalEmailInput,
    Contact,
    ContactInput,
    ContactUpdate,
    PhoneNumber,
    ValidatedRow,
    blank_to_none,
    clean_emails,
    clean_phones,
    clean_primary_type,
    parse_input,
)
from psa.domain.documents import delete_entity_documents
from psa.domain.errors import ConflictError, EmailExistsError, NotFoundError, ValidationError
from psa.domain.lookups import require_client
from psa.domain.values import clean_name, normalize_email


async def create_contact(
    conn: AsyncConnection,
    tenant: UUID,
    data: ContactInput | Mapping[str, Any],
    *,
    contact_id: UUID | None = None,
    default_region: str = "US",
) -> Contact:
    """Create a contact with its phone rows and additional email addresses; returns it hydrated.

    Reference: ContactModel.createContact. ``contact_id`` (default: a new uuid4) makes the call
    idempotent: when the tenant already has that contact with the same normalised email, it is returned
    unchanged (a retried activity). Custom type labels are get-or-created per tenant.

    Raises ValidationError (field path such as ``full_name`` or ``phone_numbers.0.phone_number``),
    NotFoundError(field="client_id") when the client is not in the tenant, EmailExistsError (field ``email`` or
    ``additional_email_addresses.{i}.email_address``) when an address is used by another contact of the tenant,
    ConflictError(field="contact_id") when ``contact_id`` exists with another email.
    """
    data = parse_input(ContactInput, data)
    full_name = clean_name(data.full_name, field="full_name")
    email = normalize_email(data.email, field="email")
    primary = clean_primary_type(data.primary_email_canonical_type, data.primary_email_custom_type)
    phones = clean_phones(data.phone_numbers, default_region)
    emails = clean_emails(data.additional_email_addresses, primary=email)
    if data.client_id is not None:
        await require_client(conn, tenant, data.client_id)
    values = {
        "tenant": tenant,
        "id": contact_id or uuid4(),
        "full_name": full_name,
        "email": email,
        "client_id": data.client_id,
        "role": blank_to_none(data.role),
        "notes": blank_to_none(data.notes),
        "is_inactive": data.is_inactive,
        "is_client_admin": data.is_client_admin,
    }
    try:
        await check_emails_free(conn, tenant, email, emails, exclude=None)
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

    Reference: ContactModel.updateContact. A new primary ``email`` must be one of the contact's
    additional addresses: it is promoted (taking its type unless a primary type is given) and the old primary
    is demoted into the additional list with its type. A given ``phone_numbers`` or
    ``additional_email_addresses`` list replaces the stored one, validated as on create.

    Raises NotFoundError(field="contact_id") for an unknown contact, NotFoundError(field="client_id"),
    ValidationError ("Primary email cannot be removed" for ``email=None``; field ``email`` for a primary not
    promoted from an additional address; the create rules otherwise), EmailExistsError when an address belongs
    to another contact of the tenant.
    """
    changes = parse_input(ContactUpdate, changes)
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
    values.update({name: blank_to_none(getattr(changes, name)) for name in ("role", "notes") if name in given})
    values.update({name: getattr(changes, name) for name in ("is_inactive", "is_client_admin") if name in given})
    if "client_id" in given:
        if changes.client_id is not None:
            await require_client(conn, tenant, changes.client_id)
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
        primary = clean_primary_type(changes.primary_email_canonical_type, changes.primary_email_custom_type)
    emails = clean_emails(additional, primary=values["email"]) if additional is not None else None
    phones = clean_phones(changes.phone_numbers or [], default_region) if "phone_numbers" in given else None
    await check_emails_free(conn, tenant, values["email"], emails or [], exclude=contact_id)
    await _save(conn, {"tenant": tenant, "id": contact_id, **values}, primary, phones, emails, new=False)
    return await get_contact(conn, tenant, contact_id)


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
    phones: list[ValidatedRow] | None,
    emails: list[ValidatedRow] | None,
    *,
    new: bool,
) -> None:
    """In one savepoint: insert (``new``) or update the contact row with its primary email type, and replace
    the phone and additional-email rows unless None. Old addresses go before the row is written, so a promoted
    address never meets itself in the uniqueness triggers."""
    tenant, contact_id = values["tenant"], values["id"]
    async with conn.begin_nested():
        [custom_id] = await custom_type_ids(conn, tenant, "email", [primary[1]])
        for table, replaced in (("contact_additional_email_addresses", emails), ("contact_phone_numbers", phones)):
            if replaced is not None and not new:
                await conn.execute(
                    text(f"DELETE FROM {table} WHERE tenant = :t AND contact_name_id = :id"),
                    {"t": tenant, "id": contact_id},
                )
        with integrity_errors("email"):
            await conn.execute(
                text(_INSERT_CONTACT if new else _UPDATE_CONTACT),
                {**values, "primary_canonical": primary[0], "primary_custom_id": custom_id},
            )
        if emails is not None:
            await write_emails(conn, tenant, contact_id, emails)
        if phones is not None:
            await write_phones(conn, tenant, contact_id, phones)


def _promote(
    current: Contact, new_email: str, additional: list[AdditionalEmailInput] | None, *, typed: bool = False
) -> tuple[list[AdditionalEmailInput], tuple[str | None, str | None]]:
    """(additional rows, primary type) after promoting ``new_email`` from ``current``'s additional addresses
    and demoting the old primary (reference: updateContact). ``additional`` replaces the stored rows if given.

    A new address that is not yet an additional one is accepted only when the change spells out the whole
    swap (reference: contacts.update): ``additional`` is given and holds the demoted old primary, and a
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
    (0 or 1). Reference: the contacts.delete cleanup."""
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
