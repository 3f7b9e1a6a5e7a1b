"""Interaction writes and reads: log an interaction against a client, contact and ticket, update and complete
a CRM activity, create a tenant interaction type, and read interactions, activities, interaction types (the
global catalogue and a tenant's own) and interaction statuses by id (reference: contacts.add_interaction,
clients.add_interaction and the crm.* actions; docs/automation.md, "Errors").

Every function takes an explicit connection and tenant and filters every query by tenant (the global
``system_interaction_types`` catalogue excepted), so another tenant's ids are not found. Error messages are the
reference's, so actions can pass them through; the error class says what kind of failure it is.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal
from uuid import UUID, uuid4

import pydantic_core
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from psa.domain.errors import ConflictError, NotFoundError, ValidationError
from psa.domain.interactions.models import (
    ACTIVITY_PATCH_FIELDS,
    ACTIVITY_SELECT,
    DURATION_MAX,
    INTERACTION_COLUMNS,
    INVALID_STATUS,
    INVALID_TYPE,
    VISIBILITIES,
    Activity,
    Interaction,
    InteractionStatus,
    InteractionType,
    TenantInteractionType,
    Visibility,
    check_aware,
)
from psa.domain.lookups import contact_client, require_client
from psa.domain.values import name_key


async def find_interaction_type(conn: AsyncConnection, tenant: UUID, type_id: UUID) -> InteractionType | None:
    """The tenant's interaction type ``type_id``, else the global system type with that id, else None."""
    row = (
        await conn.execute(
            text(
                """SELECT type_id, type_name, icon, false AS is_system, system_type_id
                     FROM interaction_types WHERE tenant = :tenant AND type_id = :type_id
                   UNION ALL
                   SELECT type_id, type_name, icon, true, NULL
                     FROM system_interaction_types WHERE type_id = :type_id
                   LIMIT 1"""
            ),
            {"tenant": tenant, "type_id": type_id},
        )
    ).first()
    return InteractionType(**row._mapping) if row else None


async def resolve_interaction_type(conn: AsyncConnection, tenant: UUID, type_id: UUID) -> InteractionType:
    """The tenant or system interaction type ``type_id``.
    Raises NotFoundError("Interaction type not found", field="type_id") (also for another tenant's type).
    Reference: "interaction types = tenant interaction_types ∪ global system_interaction_types"."""
    found = await find_interaction_type(conn, tenant, type_id)
    if found is None:
        raise NotFoundError("Interaction type not found", field="type_id")
    return found


async def default_interaction_status(conn: AsyncConnection, tenant: UUID) -> UUID:
    """The tenant's default interaction status (``statuses`` with status_type 'interaction' and is_default;
    seeded as 'Planned'). Raises NotFoundError("No default interaction status found", field="status_id")
    (the reference reports it as INTERNAL_ERROR; docs/automation.md, "Errors")."""
    row = (
        await conn.execute(
            text(
                """SELECT status_id FROM statuses
                    WHERE tenant = :tenant AND status_type = 'interaction' AND is_default FOR KEY SHARE"""
            ),
            {"tenant": tenant},
        )
    ).first()
    if row is None:
        raise NotFoundError("No default interaction status found", field="status_id")
    return row.status_id


async def require_interaction_status(conn: AsyncConnection, tenant: UUID, status_id: UUID) -> None:
    """Raises NotFoundError("Interaction status not found", field="status_id") unless ``status_id`` is an
    interaction status of the tenant (reference: contacts.add_interaction)."""
    row = (
        await conn.execute(
            text(
                """SELECT 1 FROM statuses
                    WHERE tenant = :tenant AND status_id = :id AND status_type = 'interaction' FOR KEY SHARE"""
            ),
            {"tenant": tenant, "id": status_id},
        )
    ).first()
    if row is None:
        raise NotFoundError("Interaction status not found", field="status_id")


async def find_interaction_status(
    conn: AsyncConnection, tenant: UUID, *, status_id: UUID | None = None, name: str | None = None
) -> InteractionStatus | None:
    """The tenant's interaction status by id, or by name (the same name: an equal ``name_key``; reference
    crm.update_activity_status compares trimmed and case-insensitively), or None."""
    row = (
        await conn.execute(
            text(
                """SELECT status_id, name, is_closed FROM statuses
                    WHERE tenant = :tenant AND status_type = 'interaction'
                      AND (status_id = CAST(:id AS uuid) OR name_key = CAST(:key AS text))
                    ORDER BY order_number LIMIT 1"""
            ),
            {"tenant": tenant, "id": status_id, "key": None if name is None else name_key(name)},
        )
    ).first()
    return InteractionStatus(**row._mapping) if row else None


async def closed_interaction_status(conn: AsyncConnection, tenant: UUID) -> InteractionStatus:
    """The tenant's first closed interaction status by order (seeded: "Completed").
    Raises NotFoundError("No closed interaction status found", field="status_id")."""
    row = (
        await conn.execute(
            text(
                """SELECT status_id, name, is_closed FROM statuses
                    WHERE tenant = :tenant AND status_type = 'interaction' AND is_closed
                    ORDER BY order_number, name LIMIT 1"""
            ),
            {"tenant": tenant},
        )
    ).first()
    if row is None:
        raise NotFoundError("No closed interaction status found", field="status_id")
    return InteractionStatus(**row._mapping)


async def check_activity_type_and_status(
    conn: AsyncConnection, tenant: UUID, *, type_id: UUID | None, status_id: UUID | None
) -> None:
    """Raises ValidationError ``INVALID_TYPE`` (type_id) unless ``type_id`` is a tenant or system type, and
    ``INVALID_STATUS`` (status_id) unless ``status_id`` is a tenant interaction status; None skips a check.
    Reference: crm.update_activity / crm.schedule_activity."""
    if type_id is not None and await find_interaction_type(conn, tenant, type_id) is None:
        raise ValidationError(INVALID_TYPE, field="type_id")
    if status_id is not None and await find_interaction_status(conn, tenant, status_id=status_id) is None:
        raise ValidationError(INVALID_STATUS, field="status_id")


_INTERACTION_TYPE_COLUMNS = "type_id, type_name, icon, display_order, created_by"


async def create_interaction_type(
    conn: AsyncConnection,
    tenant: UUID,
    *,
    type_name: str,
    created_by: UUID,
    icon: str | None = None,
    display_order: int | None = None,
    if_exists: Literal["return_existing", "error"] = "return_existing",
) -> tuple[TenantInteractionType, bool]:
    """A tenant interaction type and whether it was created. Names are the same name when their ``name_key``
    is (psa.domain.values; docs/decisions.md, "One key per unique name"); an existing one is returned
    (``if_exists='return_existing'``) or raises ConflictError("Interaction type already exists",
    field="type_name") ``{type_name}`` (the name as given). A new type is stored trimmed and gets
    ``display_order`` or the tenant's max + 1 (0 for the first). ``INSERT ... ON CONFLICT DO NOTHING`` and a
    re-read, so retried and concurrent creates of one name converge on one row. Reference:
    crm.create_interaction_type. Raises ValidationError "type_name is required" / "type_name must be at most
    120 characters"."""
    cleaned = (type_name or "").strip()
    key = name_key(cleaned)
    if not key:
        raise ValidationError("type_name is required", field="type_name")
    if len(cleaned) > 120:
        raise ValidationError("type_name must be at most 120 characters", field="type_name")
    inserted = (
        await conn.execute(
            text(
                f"""INSERT INTO interaction_types (tenant, type_name, name_key, icon, display_order, created_by)
                    VALUES (:tenant, :name, :key, :icon,
                            coalesce(CAST(:order AS integer),
                                     (SELECT coalesce(max(display_order) + 1, 0) FROM interaction_types
                                       WHERE tenant = :tenant)),
                            :by)
                    ON CONFLICT (tenant, name_key) DO NOTHING
                    RETURNING {_INTERACTION_TYPE_COLUMNS}"""
            ),
            {
                "tenant": tenant,
                "name": cleaned,
                "key": key,
                "icon": (icon or "").strip() or None,
                "order": display_order,
                "by": created_by,
            },
        )
    ).first()
    if inserted is not None:
        return TenantInteractionType(**inserted._mapping), True
    if if_exists == "error":
        raise ConflictError("Interaction type already exists", field="type_name", details={"type_name": type_name})
    # A separate statement: its snapshot sees the row a concurrent transaction committed meanwhile.
    existing = (
        await conn.execute(
            text(
                f"""SELECT {_INTERACTION_TYPE_COLUMNS} FROM interaction_types
                     WHERE tenant = :tenant AND name_key = :key"""
            ),
            {"tenant": tenant, "key": key},
        )
    ).one()
    return TenantInteractionType(**existing._mapping), False


async def _ticket_links(conn: AsyncConnection, tenant: UUID, ticket_id: UUID) -> UUID | None:
    """The ticket's client. Raises NotFoundError("Ticket not found", field="ticket_id")."""
    row = (
        await conn.execute(
            text("SELECT client_id FROM tickets WHERE tenant = :tenant AND ticket_id = :id FOR KEY SHARE"),
            {"tenant": tenant, "id": ticket_id},
        )
    ).first()
    if row is None:
        raise NotFoundError("Ticket not found", field="ticket_id")
    return row.client_id


async def create_interaction(
    conn: AsyncConnection,
    tenant: UUID,
    *,
    type_id: UUID,
    title: str,
    user_id: UUID,
    client_id: UUID | None = None,
    contact_id: UUID | None = None,
    ticket_id: UUID | None = None,
    notes: str | None = None,
    interaction_date: datetime | None = None,
    start_time: datetime | None = None,
    end_time: datetime | None = None,
    duration: int | None = None,
    status_id: UUID | None = None,
    interaction_id: UUID | None = None,
    visibility: Visibility = "internal",
    category: str | None = None,
    tags: list[str] | None = None,
    project_id: UUID | None = None,
    default_status: bool = True,
) -> Interaction:
    """Log an interaction and return it.

    Checks, in order (reference: clients.add_interaction / contacts.add_interaction / crm.schedule_activity):
    ``title`` trimmed and required; ``duration`` ≥ 0; datetimes carry a time zone; ``visibility`` known;
    the client exists; the contact exists and, when ``client_id`` is given, belongs to it (without
    ``client_id`` the contact's client is used, and a contact without a client is refused); the ticket
    exists and, when it has a client, that is the interaction's client (without any client the ticket's is
    used); the type is a tenant or system type; ``status_id`` is an interaction status of the tenant, None
    takes the default interaction status (or stays None with ``default_status=False``: a note has no status,
    reference crm.create_activity_note).

    Times (UTC-aware datetimes): ``interaction_date`` defaults to ``start_time``, else now;
    ``start_time`` to ``interaction_date``; ``end_time`` to ``start_time``; ``duration`` (minutes) to the
    rounded minutes between start and end (0 by default). ``user_id`` is the owner (the workflow actor),
    recorded as given. ``project_id`` is stored without a check (there are no projects yet).
    ``interaction_id`` (default: new) makes a retried call safe: an existing interaction with that id,
    type, title and owner is returned unchanged, any other raises ConflictError(field="interaction_id").

    Raises ValidationError: "title is required" (title), "duration must be greater than or equal to 0"
    (duration), "start_time must be less than or equal to end_time" (start_time), "end_time must be at most
    2147483647 minutes after start_time" (end_time, when the duration is derived), "contact_id must belong to
    the selected client" (contact_id), "Contact must be assigned to a client before logging interactions"
    (contact_id), "ticket_id must belong to the selected client" (ticket_id); NotFoundError: "Client not
    found" (client_id), "Contact not found" (contact_id), "Ticket not found" (ticket_id), "Interaction type
    not found" (type_id), "Interaction status not found" / "No default interaction status found"
    (status_id); ConflictError(field="interaction_id").
    """
    cleaned = (title or "").strip()
    if not cleaned:
        raise ValidationError("title is required", field="title")
    if duration is not None and duration < 0:
        raise ValidationError("duration must be greater than or equal to 0", field="duration")
    if visibility not in VISIBILITIES:
        raise ValidationError(f"visibility must be one of {', '.join(VISIBILITIES)}", field="visibility")
    interaction_date = check_aware(interaction_date, "interaction_date")
    start_time = check_aware(start_time, "start_time")
    end_time = check_aware(end_time, "end_time")

    if client_id is not None:
        await require_client(conn, tenant, client_id)
    if contact_id is not None:
        client_of_contact = await contact_client(conn, tenant, contact_id)
        if client_id is not None and client_of_contact != client_id:
            raise ValidationError("contact_id must belong to the selected client", field="contact_id")
        if client_of_contact is None:
            raise ValidationError(
                "Contact must be assigned to a client before logging interactions", field="contact_id"
            )
        client_id = client_of_contact
    if ticket_id is not None:
        client_of_ticket = await _ticket_links(conn, tenant, ticket_id)
        if client_of_ticket is not None and client_id is not None and client_of_ticket != client_id:
            raise ValidationError("ticket_id must belong to the selected client", field="ticket_id")
        client_id = client_id or client_of_ticket
    await resolve_interaction_type(conn, tenant, type_id)
    if status_id is None:
        status_id = await default_interaction_status(conn, tenant) if default_status else None
    else:
        await require_interaction_status(conn, tenant, status_id)

    occurred = interaction_date or start_time or datetime.now(UTC)
    start = start_time or occurred
    end = end_time or start
    if start > end:
        raise ValidationError("start_time must be less than or equal to end_time", field="start_time")
    if duration is None:
        duration = max(0, round((end - start).total_seconds() / 60))
        if duration > DURATION_MAX:
            raise ValidationError(f"end_time must be at most {DURATION_MAX} minutes after start_time", field="end_time")

    new_id = interaction_id or uuid4()
    result = await conn.execute(
        text(
            f"""INSERT INTO interactions (tenant, interaction_id, type_id, client_id, contact_name_id, ticket_id,
                                          project_id, user_id, title, notes, interaction_date, start_time, end_time,
                                          duration, status_id, visibility, category, tags)
                VALUES (:tenant, :interaction_id, :type_id, :client_id, :contact_id, :ticket_id, :project_id,
                        :user_id, :title, :notes, :interaction_date, :start_time, :end_time, :duration, :status_id,
                        :visibility, :category, CAST(:tags AS jsonb))
                ON CONFLICT (tenant, interaction_id) DO NOTHING
                RETURNING {INTERACTION_COLUMNS}"""
        ),
        {
            "tenant": tenant,
            "interaction_id": new_id,
            "type_id": type_id,
            "client_id": client_id,
            "contact_id": contact_id,
            "ticket_id": ticket_id,
            "project_id": project_id,
            "user_id": user_id,
            "title": cleaned,
            "notes": notes,
            "interaction_date": occurred,
            "start_time": start,
            "end_time": end,
            "duration": duration,
            "status_id": status_id,
            "visibility": visibility,
            "category": category,
            "tags": None if tags is None else pydantic_core.to_json(tags).decode(),
        },
    )
    row = result.first()
    if row is not None:
        return Interaction(**row._mapping)
    existing = await get_interaction(conn, tenant, new_id)
    if (existing.type_id, existing.title, existing.user_id) != (type_id, cleaned, user_id):
        raise ConflictError(f"interaction {new_id} already exists", field="interaction_id")
    return existing


async def find_interaction(conn: AsyncConnection, tenant: UUID, interaction_id: UUID) -> Interaction | None:
    """The interaction with ``interaction_id`` in ``tenant``, or None (also for another tenant's id)."""
    row = (
        await conn.execute(
            text(f"SELECT {INTERACTION_COLUMNS} FROM interactions WHERE tenant = :tenant AND interaction_id = :id"),
            {"tenant": tenant, "id": interaction_id},
        )
    ).first()
    return Interaction(**row._mapping) if row else None


async def get_interaction(conn: AsyncConnection, tenant: UUID, interaction_id: UUID) -> Interaction:
    """The interaction with ``interaction_id`` in ``tenant``.
    Raises NotFoundError("Interaction not found", field="interaction_id")."""
    found = await find_interaction(conn, tenant, interaction_id)
    if found is None:
        raise NotFoundError("Interaction not found", field="interaction_id")
    return found


async def find_activity(
    conn: AsyncConnection, tenant: UUID, activity_id: UUID, *, lock: bool = False
) -> Activity | None:
    """The activity ``activity_id`` of the tenant, or None (also for another tenant's id); ``lock`` first takes
    its row FOR UPDATE (a concurrent writer waits, and what is read is what the writer committed)."""
    if lock:
        await conn.execute(
            text("SELECT 1 FROM interactions WHERE tenant = :tenant AND interaction_id = :id FOR UPDATE"),
            {"tenant": tenant, "id": activity_id},
        )
    result = await conn.execute(
        text(ACTIVITY_SELECT.format(where="i.interaction_id = :id")),
        {"tenant": tenant, "id": activity_id, "limit": 1, "offset": 0},
    )
    row = result.first()
    return Activity(**row._mapping) if row else None


async def get_activity(conn: AsyncConnection, tenant: UUID, activity_id: UUID) -> Activity:
    """The activity; raises NotFoundError("Activity not found", field="activity_id")."""
    found = await find_activity(conn, tenant, activity_id)
    if found is None:
        raise NotFoundError("Activity not found", field="activity_id")
    return found


async def update_activity(
    conn: AsyncConnection, tenant: UUID, activity_id: UUID, patch: dict[str, Any]
) -> tuple[Activity, Activity]:
    """Write the keys of ``patch`` (a subset of ACTIVITY_PATCH_FIELDS; None clears a nullable one) and
    return ``(before, after)``. Reference: crm.update_activity.

    Raises NotFoundError("Activity not found", field="activity_id"); ValidationError for an unknown key,
    ``INVALID_STATUS`` (status_id), ``INVALID_TYPE`` (type_id), "title is required" (title), a visibility
    outside VISIBILITIES, a negative duration, a time without zone, and "start_time must be less than or
    equal to end_time" (start_time) on the effective (patched, else stored) times."""
    unknown = set(patch) - set(ACTIVITY_PATCH_FIELDS)
    if unknown:
        raise ValidationError(f"cannot update {', '.join(sorted(unknown))}", field=sorted(unknown)[0])
    before = await get_activity(conn, tenant, activity_id)
    values = dict(patch)
    if "title" in values:
        values["title"] = (values["title"] or "").strip()
        if not values["title"]:
            raise ValidationError("title is required", field="title")
    if "visibility" in values and values["visibility"] not in VISIBILITIES:
        raise ValidationError(f"visibility must be one of {', '.join(VISIBILITIES)}", field="visibility")
    if values.get("duration") is not None and values["duration"] < 0:
        raise ValidationError("duration must be greater than or equal to 0", field="duration")
    if "interaction_date" in values and values["interaction_date"] is None:
        raise ValidationError("interaction_date cannot be null", field="interaction_date")
    for key in ("interaction_date", "start_time", "end_time"):
        if key in values:
            check_aware(values[key], key)
    await check_activity_type_and_status(conn, tenant, type_id=values.get("type_id"), status_id=values.get("status_id"))
    if "type_id" in values and values["type_id"] is None:
        raise ValidationError(INVALID_TYPE, field="type_id")
    start = values.get("start_time", before.start_time)
    end = values.get("end_time", before.end_time)
    if start is not None and end is not None and start > end:
        raise ValidationError("start_time must be less than or equal to end_time", field="start_time")
    if values:
        if "tags" in values and values["tags"] is not None:
            values["tags"] = pydantic_core.to_json(values["tags"]).decode()
        assignments = ", ".join(
            f"{key} = CAST(:{key} AS jsonb)" if key == "tags" else f"{key} = :{key}" for key in values
        )
        await conn.execute(
            text(
                f"""UPDATE interactions SET {assignments}, updated_at = now()
                     WHERE tenant = :tenant AND interaction_id = :activity_id"""
            ),
            {"tenant": tenant, "activity_id": activity_id, **values},
        )
    return before, await get_activity(conn, tenant, activity_id)


async def complete_activity(
    conn: AsyncConnection, tenant: UUID, activity_id: UUID, *, completed_by: UUID, feedback: str | None
) -> tuple[Activity, Activity]:
    """Mark the activity done (Odoo "Mark as done"): the closed interaction status, ``completed_at`` = now,
    ``completed_by`` and the ``feedback`` (trimmed, blank → None). The row is kept for reporting. Returns
    ``(before, after)``. Raises NotFoundError("Activity not found" / "No closed interaction status found")."""
    before = await get_activity(conn, tenant, activity_id)
    closed = await closed_interaction_status(conn, tenant)
    await conn.execute(
        text(
            """UPDATE interactions SET status_id = :status_id, completed_at = now(), completed_by = :by,
                      feedback = :feedback, updated_at = now()
                WHERE tenant = :tenant AND interaction_id = :id"""
        ),
        {
            "tenant": tenant,
            "id": activity_id,
            "status_id": closed.status_id,
            "by": completed_by,
            "feedback": (feedback or "").strip() or None,
        },
    )
    return before, await get_activity(conn, tenant, activity_id)
