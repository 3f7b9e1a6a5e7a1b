"""Shapes and lookups every crm.* activity action shares: the ActivitySummary of an activity (reference
ActivitySummary plus ``state``, ``completed_at`` and ``feedback``), its notes preview and tags, and the field
helpers of the inputs."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AfterValidator, BaseModel, Field
from pydantic_core import PydanticCustomError

from psa.automation.actions.common import (
    IsoDateTime,
)
from psa.automation.registry import ActionContext, picker
from psa.domain import interactions
from psa.domain.errors import NotFoundError
from psa.domain.interactions import Activity, ActivityState

NOTES_PREVIEW_MAX = 180
ON_EMPTY = Literal["return_empty", "error"]
CLIENT_READ, CLIENT_UPDATE = ("client", "read"), ("client", "update")


def picked(kind: str, description: str, deps: list[str] | None = None) -> Any:
    """An optional id field the designer fills with a ``kind`` picker (depending on ``deps``)."""
    return Field(default=None, description=description, json_schema_extra=picker(kind, deps))


def _required_text(value: str) -> str:
    if not value.strip():
        raise PydanticCustomError("required", "must not be blank")
    return value


def trimmed(value: Any) -> Any:
    """A string trimmed; anything else as given (a ``BeforeValidator``)."""
    return value.strip() if isinstance(value, str) else value


RequiredText = Annotated[str, Field(min_length=1), AfterValidator(_required_text)]
"""A string with at least one non-blank character."""


class ActivitySummary(BaseModel):
    """Reference ActivitySummary plus ``state``, ``completed_at`` and ``feedback``."""

    activity_id: UUID
    type_id: UUID
    type_name: str | None
    status_id: UUID | None
    status_name: str | None
    client_id: UUID | None
    client_name: str | None
    contact_id: UUID | None
    contact_name: str | None
    ticket_id: UUID | None
    ticket_number: str | None
    title: str | None
    notes_preview: str | None
    interaction_date: IsoDateTime
    start_time: IsoDateTime | None
    end_time: IsoDateTime | None
    duration: int | None
    user_id: UUID | None
    user_name: str | None
    visibility: str | None
    category: str | None
    tags: list[str] | None
    state: ActivityState | None
    completed_at: IsoDateTime | None
    feedback: str | None


def notes_preview(notes: str | None) -> str | None:
    """Whitespace runs collapsed, trimmed; empty → None; longer than 180 characters → the first 180 + ``…``."""
    collapsed = " ".join((notes or "").split())
    if not collapsed:
        return None
    return collapsed if len(collapsed) <= NOTES_PREVIEW_MAX else collapsed[:NOTES_PREVIEW_MAX] + "…"


def summary_tags(value: Any) -> list[str] | None:
    """A list → its trimmed non-empty strings; a JSON array string → parsed; another non-empty string →
    ``[string]``; falsy → None (reference ActivitySummary.tags)."""
    if not value:
        return None
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except ValueError:
            return [value.strip()] if value.strip() else None
        value = parsed if isinstance(parsed, list) else [value]
    if isinstance(value, list):
        return [v.strip() for v in value if isinstance(v, str) and v.strip()]
    return None


def summary(activity: Activity, now: datetime) -> ActivitySummary:
    """The ActivitySummary of a domain activity; ``state`` is computed for ``now``."""
    return ActivitySummary(
        activity_id=activity.activity_id,
        type_id=activity.type_id,
        type_name=activity.type_name,
        status_id=activity.status_id,
        status_name=activity.status_name,
        client_id=activity.client_id,
        client_name=activity.client_name,
        contact_id=activity.contact_id,
        contact_name=activity.contact_name,
        ticket_id=activity.ticket_id,
        ticket_number=activity.ticket_number,
        title=activity.title,
        notes_preview=notes_preview(activity.notes),
        interaction_date=activity.interaction_date,
        start_time=activity.start_time,
        end_time=activity.end_time,
        duration=activity.duration,
        user_id=activity.user_id,
        user_name=activity.user_name,
        visibility=activity.visibility,
        category=activity.category,
        tags=summary_tags(activity.tags),
        state=activity.state(now),
        completed_at=activity.completed_at,
        feedback=activity.feedback,
    )


async def require_activity(ctx: ActionContext, activity_id: UUID, *, lock: bool = False) -> Activity:
    """The activity (``lock``: locked for the transaction), or NotFoundError "Activity not found"
    ``{activity_id}`` (another tenant's id too)."""
    found = await interactions.find_activity(ctx.conn, ctx.tenant, activity_id, lock=lock)
    if found is None:
        raise NotFoundError("Activity not found", details={"activity_id": str(activity_id)})
    return found


def str_or_none(value: UUID | None) -> str | None:
    """An id as text, None as None (audit and output values)."""
    return str(value) if value is not None else None
