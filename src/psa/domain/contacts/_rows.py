"""The rows a contact owns besides its own: custom type labels (get-or-created per tenant), phone rows and
additional email addresses, the check that addresses are free in the tenant, and the mapping of the database's
unique and foreign-key violations to typed errors. Used by the contact writes of ``service``."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from psa.db.constraints import violation
from psa.domain.contacts.models import ValidatedRow
from psa.domain.errors import ConflictError, EmailExistsError, NotFoundError
from psa.domain.values import name_key

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


async def check_emails_free(
    conn: AsyncConnection, tenant: UUID, primary: str, additional: Sequence[ValidatedRow], *, exclude: UUID | None
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


async def custom_type_ids(
    conn: AsyncConnection, tenant: UUID, kind: str, labels: Sequence[str | None]
) -> list[UUID | None]:
    """The custom type definition id of each label (None for None), get-or-created by the label's ``name_key``,
    stored as ``normalized_label`` (reference: ensure custom types; insert ON CONFLICT (tenant,
    normalized_label) DO NOTHING, then re-select)."""
    table, id_column = _TYPE_TABLES[kind]
    wanted = sorted({label for label in labels if label is not None}, key=name_key)  # sorted: no lock-order deadlock
    if not wanted:
        return [None] * len(labels)
    by_norm = {name_key(label): label for label in wanted}
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
    return [ids[name_key(label)] if label is not None else None for label in labels]


async def write_phones(conn: AsyncConnection, tenant: UUID, contact_id: UUID, phones: Sequence[ValidatedRow]) -> None:
    """Insert the contact's phone rows, ``display_order`` from their order, custom labels get-or-created."""
    if not phones:
        return
    type_ids = await custom_type_ids(conn, tenant, "phone", [row.custom_type for row in phones])
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


async def write_emails(conn: AsyncConnection, tenant: UUID, contact_id: UUID, emails: Sequence[ValidatedRow]) -> None:
    """Insert the contact's additional addresses in order. Raises EmailExistsError naming the row of a taken
    address (``additional_email_addresses.{i}.email_address``)."""
    type_ids = await custom_type_ids(conn, tenant, "email", [row.custom_type for row in emails])
    # One statement per row, so a unique violation names its row.
    for i, (row, type_id) in enumerate(zip(emails, type_ids, strict=True)):
        with integrity_errors(f"additional_email_addresses.{i}.email_address"):
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
def integrity_errors(email_field: str) -> Iterator[None]:
    """Map the database's verdict of a concurrent writer to typed errors: a taken email (EMAIL_CONSTRAINTS)
    to EmailExistsError(field=email_field), a taken contact id to ConflictError, a client deleted meanwhile
    to NotFoundError (reference: createContact error mapping, step 10)."""
    try:
        yield
    except IntegrityError as exc:
        found = violation(exc)
        kind, constraint = (found.kind, found.constraint) if found else (None, None)
        if kind == "unique" and constraint in EMAIL_CONSTRAINTS:
            raise EmailExistsError(
                f"{email_field}: A contact with this email address already exists in this tenant", field=email_field
            ) from exc
        if kind == "unique" and constraint == "pk_contacts":
            raise ConflictError("a contact with this id already exists", field="contact_id") from exc
        if kind == "foreign_key" and constraint == "fk_contacts_tenant_client_id_clients":
            raise NotFoundError("the selected client no longer exists", field="client_id") from exc
        raise
