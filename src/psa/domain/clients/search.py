"""Client search and lookups: name search with tag filters, the lookup by a location's phone number, and the
small guard queries of the clients.* actions (the tenant's default client, a client's notes document). Clients
found are read through ``service``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from psa.domain.clients.models import CLIENT_COLUMNS, Client, LocationPhoneMatch
from psa.domain.clients.service import find_client
from psa.domain.errors import ValidationError
from psa.domain.values import PHONE_MATCH_MIN_DIGITS, PhoneMatch, name_key, phone_digits

SEARCH_SORT_COLUMNS = {"name": "client_name", "updated_at": "updated_at"}


def _like_pattern(query: str) -> str:
    escaped = query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def search_clients(
    conn: AsyncConnection,
    tenant: UUID,
    query: str,
    *,
    include_inactive: bool = False,
    tags: Sequence[str] | None = None,
    sort_by: Literal["name", "updated_at"] = "name",
    sort_order: Literal["asc", "desc"] = "asc",
    limit: int = 25,
    offset: int = 0,
) -> tuple[list[Client], int]:
    """``(page of clients, total)`` whose name contains ``query`` (trimmed; case-insensitive; ``%``, ``_``
    and ``\\`` match literally). Inactive clients only with ``include_inactive``; ``tags``: clients with
    any of these client tags (by ``name_key``). Ordered by name or ``updated_at`` in ``sort_order``, then
    ``client_id`` ascending, so pages are stable; each client appears once whatever tags match
    (the reference could repeat a client). Reference: clients.search.
    """
    where = ["c.tenant = :tenant", "c.client_name ILIKE :pattern ESCAPE '\\'"]
    params: dict[str, Any] = {"tenant": tenant, "pattern": _like_pattern(query.strip())}
    if not include_inactive:
        where.append("NOT c.is_inactive")
    if tags:
        where.append(
            """EXISTS (SELECT 1 FROM tag_mappings m
                         JOIN tag_definitions d ON d.tenant = m.tenant AND d.tag_id = m.tag_id
                        WHERE m.tenant = c.tenant AND m.tagged_id = c.client_id AND m.tagged_type = 'client'
                          AND d.tagged_type = 'client' AND d.name_key = ANY(:tags))"""
        )
        params["tags"] = [name_key(tag) for tag in tags]
    condition = " AND ".join(where)
    total = await conn.scalar(text(f"SELECT count(*) FROM clients c WHERE {condition}"), params)
    direction = "DESC" if sort_order == "desc" else "ASC"
    result = await conn.execute(
        text(
            f"""SELECT {CLIENT_COLUMNS} FROM clients c WHERE {condition}
                 ORDER BY c.{SEARCH_SORT_COLUMNS[sort_by]} {direction}, c.client_id ASC
                 LIMIT :limit OFFSET :offset"""
        ),
        {**params, "limit": limit, "offset": offset},
    )
    return [Client(**row._mapping) for row in result], int(total or 0)


async def find_client_by_location_phone(
    conn: AsyncConnection, tenant: UUID, phone: str, match: PhoneMatch = "exact"
) -> LocationPhoneMatch | None:
    """The client of the best **active** location whose phone matches ``phone``, or None.

    Phones compare as digits only; ``exact`` compares whole numbers, ``last7`` / ``last10`` the last 7 / 10
    digits. The best location is the default one, then the lowest ``location_id``; ``matched_count`` is the
    number of distinct clients among all matching locations. Reference: clients.find by phone.
    Raises ValidationError(field="phone") "phone is invalid" when ``phone`` has fewer digits than the mode
    needs (1, 7, 10).
    """
    digits = phone_digits(phone)
    if len(digits) < PHONE_MATCH_MIN_DIGITS[match]:
        raise ValidationError("phone is invalid", field="phone")
    normalized = r"regexp_replace(coalesce(l.phone, ''), '\D', '', 'g')"
    condition = f"{normalized} = :digits" if match == "exact" else f"right({normalized}, :n) = right(:digits, :n)"
    result = await conn.execute(
        text(
            f"""WITH matched AS (
                  SELECT l.location_id, l.location_name, l.phone, l.client_id, coalesce(l.is_default, false) AS dflt
                    FROM client_locations l
                   WHERE l.tenant = :tenant AND l.is_active AND {condition})
                SELECT location_id, location_name, phone, client_id,
                       (SELECT count(DISTINCT client_id) FROM matched) AS matched_count
                  FROM matched ORDER BY dflt DESC, location_id LIMIT 1"""
        ),
        {"tenant": tenant, "digits": digits, "n": PHONE_MATCH_MIN_DIGITS[match]},
    )
    row = result.first()
    client = await find_client(conn, tenant, row.client_id) if row is not None else None
    if row is None or client is None:  # no location matched, or its client was deleted since
        return None
    return LocationPhoneMatch(
        client=client,
        location_id=row.location_id,
        location_name=row.location_name,
        phone=row.phone,
        matched_count=row.matched_count,
    )


async def is_default_client(conn: AsyncConnection, tenant: UUID, client_id: UUID) -> bool:
    """Whether the client is the tenant's own default client (``tenant_companies.is_default``)."""
    found = await conn.scalar(
        text("SELECT 1 FROM tenant_companies WHERE tenant = :tenant AND client_id = :client_id AND is_default"),
        {"tenant": tenant, "client_id": client_id},
    )
    return found is not None


async def notes_document_id(conn: AsyncConnection, tenant: UUID, client_id: UUID) -> UUID | None:
    """The client's notes document id, or None (also for a missing client)."""
    return await conn.scalar(
        text("SELECT notes_document_id FROM clients WHERE tenant = :tenant AND client_id = :client_id"),
        {"tenant": tenant, "client_id": client_id},
    )
