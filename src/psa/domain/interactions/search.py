"""Interaction lookups and queries: a page of CRM activities by filters, the counts that guard deleting a
client or contact, a global interaction type by name, and the user guard of the crm.* actions
(reference: crm.find_activities)."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from psa.domain import tenants
from psa.domain.errors import NotFoundError
from psa.domain.interactions.models import ACTIVITY_SELECT, Activity, ActivityFilters, InteractionType
from psa.domain.values import InstantRange


async def find_system_interaction_type(conn: AsyncConnection, type_name: str) -> InteractionType | None:
    """The global interaction type named exactly ``type_name`` (``Call``, ``Email``, ``Meeting``, ``Note``;
    seeded by migration 0003), or None. Reference: crm.create_activity_note needs ``Note``."""
    row = (
        await conn.execute(
            text(
                """SELECT type_id, type_name, icon, true AS is_system, NULL AS system_type_id
                     FROM system_interaction_types WHERE type_name = :name"""
            ),
            {"name": type_name},
        )
    ).first()
    return InteractionType(**row._mapping) if row else None


async def require_user(conn: AsyncConnection, tenant: UUID, user_id: UUID, message: str = "User not found") -> None:
    """Raises NotFoundError(message, field="user_id") unless ``user_id`` is a user of the tenant."""
    row = (
        await conn.execute(
            text("SELECT 1 FROM users WHERE tenant = :tenant AND user_id = :id FOR KEY SHARE"),
            {"tenant": tenant, "id": user_id},
        )
    ).first()
    if row is None:
        raise NotFoundError(message, field="user_id")


async def count_interactions_for_client(conn: AsyncConnection, tenant: UUID, client_id: UUID) -> int:
    """Interactions of the client (reference: the clients.delete dependency count)."""
    result = await conn.execute(
        text("SELECT count(*) FROM interactions WHERE tenant = :tenant AND client_id = :client_id"),
        {"tenant": tenant, "client_id": client_id},
    )
    return result.scalar_one()


async def count_interactions_for_contact(conn: AsyncConnection, tenant: UUID, contact_id: UUID) -> int:
    """Interactions of the contact (reference: the contacts.delete dependency count)."""
    result = await conn.execute(
        text("SELECT count(*) FROM interactions WHERE tenant = :tenant AND contact_name_id = :contact_id"),
        {"tenant": tenant, "contact_id": contact_id},
    )
    return result.scalar_one()


_FILTER_SQL = {
    "client_id": "i.client_id = :client_id",
    "contact_id": "i.contact_name_id = :contact_id",
    "ticket_id": "i.ticket_id = :ticket_id",
    "user_id": "i.user_id = :user_id",
    "type_id": "i.type_id = :type_id",
    "status_id": "i.status_id = :status_id",
}


async def find_activities(
    conn: AsyncConnection, tenant: UUID, filters: ActivityFilters, *, limit: int, offset: int = 0
) -> list[Activity]:
    """One page of the tenant's activities matching ``filters`` (a calendar day in the tenant's time zone,
    tenants.tenant_zone), newest ``interaction_date`` first, ties by
    ``interaction_id`` descending (a stable order for paging). ``limit`` ≥ 1, ``offset`` ≥ 0 rows.
    Reference: crm.find_activities. Indexes: (tenant, client_id, interaction_date),
    (tenant, type_id, status_id, interaction_date), (tenant, user_id, interaction_date),
    (tenant, interaction_date)."""
    given = {k: v for k, v in filters.model_dump(exclude={"date_from", "date_to"}).items() if v is not None}
    zone = await tenants.tenant_zone(conn, tenant)
    dates, bounds = InstantRange.of(filters.date_from, filters.date_to, zone).conditions("i.interaction_date")
    where = " AND ".join([*(_FILTER_SQL[k] for k in given), *dates]) or "true"
    result = await conn.execute(
        text(ACTIVITY_SELECT.format(where=where)),
        {"tenant": tenant, "limit": limit, "offset": offset, **given, **bounds},
    )
    return [Activity(**row._mapping) for row in result]
