"""Lookups that several domain modules and the actions share: does this client, contact or location exist in
the tenant (and whose is it), and the next number of a numbered series. Each takes the caller's connection and
tenant, reads under ``FOR KEY SHARE`` so the row cannot be deleted before the caller commits, and raises
NotFoundError naming the field. ``require_client`` is the one "does this client exist?" check."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from psa.domain.clients.models import CLIENT_COLUMNS, Client
from psa.domain.errors import NotFoundError


async def require_client(
    conn: AsyncConnection,
    tenant: UUID,
    client_id: UUID,
    *,
    field: str = "client_id",
    message: str = "Client not found",
    cite: Literal["field", "id"] = "field",
) -> Client:
    """The client ``client_id`` of the tenant, locked against deletion until commit: the one check that a
    client exists (another tenant's id is not found).

    Raises NotFoundError(``message``) naming ``field``: as its ``field`` (``cite="field"``: the action error's
    ``details {field, fields}``), or with ``cite="id"`` as ``details {<field>: <client id>}`` (the shape of the
    clients.* actions, e.g. "Parent client not found" ``{parent_client_id}``)."""
    row = (
        await conn.execute(
            text(f"SELECT {CLIENT_COLUMNS} FROM clients WHERE tenant = :tenant AND client_id = :id FOR KEY SHARE"),
            {"tenant": tenant, "id": client_id},
        )
    ).first()
    if row is None:
        if cite == "id":
            raise NotFoundError(message, details={field: str(client_id)})
        raise NotFoundError(message, field=field)
    return Client(**row._mapping)


async def contact_client(conn: AsyncConnection, tenant: UUID, contact_id: UUID) -> UUID | None:
    """The client of the contact (None when unassigned). Raises NotFoundError("Contact not found",
    field="contact_id"). Locks the contact against deletion until commit."""
    row = (
        await conn.execute(
            text(
                """SELECT client_id FROM contacts WHERE tenant = :tenant AND contact_name_id = :id
                   FOR KEY SHARE"""
            ),
            {"tenant": tenant, "id": contact_id},
        )
    ).first()
    if row is None:
        raise NotFoundError("Contact not found", field="contact_id")
    return row.client_id


async def location_client(conn: AsyncConnection, tenant: UUID, location_id: UUID) -> UUID:
    """The client owning the location. Raises NotFoundError("Location not found", field="location_id")."""
    row = (
        await conn.execute(
            text(
                """SELECT client_id FROM client_locations WHERE tenant = :tenant AND location_id = :id
                   FOR KEY SHARE"""
            ),
            {"tenant": tenant, "id": location_id},
        )
    ).first()
    if row is None:
        raise NotFoundError("Location not found", field="location_id")
    return row.client_id


async def next_number(
    conn: AsyncConnection,
    tenant: UUID,
    entity_type: str,
    *,
    prefix: str = "",
    padding: int = 0,
    initial: int = 1,
) -> str:
    """The next number of the tenant's ``entity_type`` series (tickets: ``TIC001000``, ``TIC001001``, ...;
    quotes: ``Q-00001``, ...).

    One ``INSERT ... ON CONFLICT DO UPDATE ... RETURNING``: the first call creates the series row at
    ``initial`` (with ``prefix`` and ``padding``), later calls take ``max(last + 1, initial_value)`` under the
    row lock, so concurrent transactions never get the same number (the second waits for the first to end).
    A rolled-back transaction leaves a gap. An existing series keeps its stored prefix and padding. Numbers
    longer than the padding are not truncated (the reference's ``lpad`` cut them).
    Reference: SQL function generate_next_number.
    """
    row = (
        await conn.execute(
            text(
                """INSERT INTO next_number (tenant, entity_type, last_number, initial_value, prefix, padding_length)
                   VALUES (:tenant, :entity_type, :initial, :initial, :prefix, :padding)
                   ON CONFLICT (tenant, entity_type) DO UPDATE
                      SET last_number = GREATEST(next_number.last_number + 1, next_number.initial_value)
                   RETURNING last_number, prefix, padding_length"""
            ),
            {"tenant": tenant, "entity_type": entity_type, "initial": initial, "prefix": prefix, "padding": padding},
        )
    ).one()
    return f"{row.prefix or ''}{str(row.last_number).zfill(row.padding_length or 0)}"
