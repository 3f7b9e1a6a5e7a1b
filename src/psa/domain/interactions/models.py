"""Interaction models: interactions (CRM activities) and their types and statuses, the activity read model
with the query that reads it, the activity filters, and the small input rules the writes share.
Timestamps are UTC; durations are in minutes."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel

from psa.domain.errors import ValidationError
from psa.domain.values import DayOrInstant, UtcDatetime, zone_or_utc

Visibility = Literal["internal", "client_visible"]
DURATION_MAX = 2**31 - 1
"""The longest duration in minutes (``interactions.duration`` is a PostgreSQL ``integer``)."""
VISIBILITIES = ("internal", "client_visible")

ActivityState = Literal["overdue", "today", "planned", "done"]
TagTarget = Literal["ticket", "contact", "client"]
"""A record an activity's tags can go to (reference: crm.tag_activity)."""
ACTIVITY_PATCH_FIELDS = (
    "title",
    "notes",
    "status_id",
    "visibility",
    "category",
    "tags",
    "interaction_date",
    "start_time",
    "end_time",
    "duration",
    "type_id",
)
INVALID_STATUS = "status_id is not a valid interaction status for this tenant"
INVALID_TYPE = "type_id is not a valid interaction type id for this tenant"

# The SELECT list that reads an ``Interaction`` row.
INTERACTION_COLUMNS = """tenant, interaction_id, type_id, client_id, contact_name_id, ticket_id, project_id, user_id,
                         title, notes, interaction_date, start_time, end_time, duration, status_id, visibility,
                         category, tags, created_at, updated_at"""

# An interaction with everything its summary shows: type (tenant or system), status, client, contact, ticket and
# owner, each looked up on tenant. ``{where}`` filters ``interactions i``; the page is cut first, and the lookups
# are scalar subqueries rather than joins, which keeps planning under a millisecond (8-way joins took ~4 ms).
ACTIVITY_SELECT = """
    SELECT i.interaction_id AS activity_id, i.type_id,
           coalesce((SELECT it.type_name FROM interaction_types it
                      WHERE it.tenant = i.tenant AND it.type_id = i.type_id),
                    (SELECT st.type_name FROM system_interaction_types st WHERE st.type_id = i.type_id)) AS type_name,
           i.status_id, s.name AS status_name, coalesce(s.is_closed, false) AS status_is_closed,
           i.client_id,
           (SELECT c.client_name FROM clients c WHERE c.tenant = i.tenant AND c.client_id = i.client_id) AS client_name,
           i.contact_name_id AS contact_id,
           (SELECT ct.full_name FROM contacts ct
             WHERE ct.tenant = i.tenant AND ct.contact_name_id = i.contact_name_id) AS contact_name,
           i.ticket_id,
           (SELECT t.ticket_number FROM tickets t
             WHERE t.tenant = i.tenant AND t.ticket_id = i.ticket_id) AS ticket_number,
           i.title, i.notes, i.interaction_date, i.start_time, i.end_time, i.duration, i.user_id,
           u.user_full_name, u.user_email, u.user_timezone, i.visibility, i.category, i.tags,
           i.completed_at, i.completed_by, i.feedback, i.created_at, i.updated_at
      FROM (SELECT * FROM interactions i WHERE i.tenant = :tenant AND {where}
             ORDER BY i.interaction_date DESC, i.interaction_id DESC LIMIT :limit OFFSET :offset) i
      LEFT JOIN LATERAL (SELECT s.name, s.is_closed FROM statuses s
                          WHERE s.tenant = i.tenant AND s.status_id = i.status_id) s ON true
      LEFT JOIN LATERAL (SELECT nullif(trim(concat_ws(' ', u.first_name, u.last_name)), '') AS user_full_name,
                                u.email AS user_email, u.timezone AS user_timezone
                           FROM users u WHERE u.tenant = i.tenant AND u.user_id = i.user_id) u ON true
     ORDER BY i.interaction_date DESC, i.interaction_id DESC"""


class InteractionType(BaseModel):
    """A tenant interaction type or a global system one (``is_system``; ``system_type_id`` is then None)."""

    type_id: UUID
    type_name: str
    icon: str | None
    is_system: bool
    system_type_id: UUID | None


class InteractionStatus(BaseModel):
    """A tenant ``statuses`` row of type ``interaction``."""

    status_id: UUID
    name: str
    is_closed: bool


class TenantInteractionType(BaseModel):
    """A tenant ``interaction_types`` row (reference crm.create_interaction_type output)."""

    type_id: UUID
    type_name: str
    icon: str | None
    display_order: int | None
    created_by: UUID | None


class Interaction(BaseModel):
    """An interaction row. Timestamps are UTC; ``duration`` is in minutes."""

    tenant: UUID
    interaction_id: UUID
    type_id: UUID
    client_id: UUID | None
    contact_name_id: UUID | None
    ticket_id: UUID | None
    project_id: UUID | None
    user_id: UUID
    title: str
    notes: str | None
    interaction_date: UtcDatetime
    start_time: UtcDatetime | None
    end_time: UtcDatetime | None
    duration: int | None
    status_id: UUID | None
    visibility: str
    category: str | None
    tags: list[str] | None
    created_at: UtcDatetime
    updated_at: UtcDatetime


class Activity(BaseModel):
    """An interaction as a CRM activity, with the names of what it links to (reference ActivitySummary's
    sources). Timestamps are UTC; ``duration`` is in minutes; ``user_timezone`` is the owner's IANA zone."""

    activity_id: UUID
    type_id: UUID
    type_name: str | None
    status_id: UUID | None
    status_name: str | None
    status_is_closed: bool
    client_id: UUID | None
    client_name: str | None
    contact_id: UUID | None
    contact_name: str | None
    ticket_id: UUID | None
    ticket_number: str | None
    title: str
    notes: str | None
    interaction_date: UtcDatetime
    start_time: UtcDatetime | None
    end_time: UtcDatetime | None
    duration: int | None
    user_id: UUID
    user_full_name: str | None
    user_email: str | None
    user_timezone: str | None
    visibility: str
    category: str | None
    tags: Any
    completed_at: UtcDatetime | None
    completed_by: UUID | None
    feedback: str | None
    created_at: UtcDatetime
    updated_at: UtcDatetime

    @property
    def user_name(self) -> str | None:
        """ "first last", else the owner's email, else None (reference ActivitySummary.user_name)."""
        return self.user_full_name or self.user_email

    def state(self, now: datetime) -> ActivityState | None:
        """Odoo's activity state: ``done`` when completed or in a closed status; otherwise, comparing the
        calendar day of ``interaction_date`` with the day of ``now``, both in the owner's time zone (UTC when
        unset or unknown): ``overdue`` (before), ``today`` or ``planned`` (after). None for an activity without
        a status (a note), which is not something to do."""
        if self.completed_at is not None or self.status_is_closed:
            return "done"
        if self.status_id is None:
            return None
        zone = zone_or_utc(self.user_timezone)
        try:
            due, today = self.interaction_date.astimezone(zone).date(), now.astimezone(zone).date()
        except OverflowError:  # a date near 0001-01-01 or 9999-12-31 has no local day in this zone
            return "overdue" if self.interaction_date < now else "planned"
        return "overdue" if due < today else "today" if due == today else "planned"

    def tag_target(self) -> tuple[TagTarget, UUID]:
        """The record that tags on this activity go to: its ticket, else its contact, else its client, never the
        interaction itself (reference: crm.tag_activity). Raises ValidationError "Activity cannot be tagged
        because it is not linked to a supported tag target" ``{supported_entity_types}``."""
        links: tuple[tuple[TagTarget, UUID | None], ...] = (
            ("ticket", self.ticket_id),
            ("contact", self.contact_id),
            ("client", self.client_id),
        )
        for kind, linked in links:
            if linked is not None:
                return kind, linked
        raise ValidationError(
            "Activity cannot be tagged because it is not linked to a supported tag target",
            details={"supported_entity_types": [kind for kind, _ in links]},
        )


class ActivityFilters(BaseModel):
    """crm.find_activities filters, ANDed; ``date_from`` / ``date_to`` bound ``interaction_date`` inclusively,
    an instant as given and a calendar day as the whole of it in the tenant's time zone (InstantRange.of)."""

    client_id: UUID | None = None
    contact_id: UUID | None = None
    ticket_id: UUID | None = None
    user_id: UUID | None = None
    type_id: UUID | None = None
    status_id: UUID | None = None
    date_from: DayOrInstant | None = None
    date_to: DayOrInstant | None = None


def check_aware(value: datetime | None, field: str) -> datetime | None:
    """``value`` unchanged when it is None or carries a time zone. Raises ValidationError (with ``field``)."""
    if value is not None and value.utcoffset() is None:
        raise ValidationError(f"{field}: must include a time zone", field=field)
    return value
