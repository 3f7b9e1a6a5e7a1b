"""The crm.* actions on activities: find, update, schedule, change the status of and complete an activity
(completing is beyond the reference: Odoo's "Mark as done", optionally scheduling the next follow-up)."""

from __future__ import annotations

from uuid import UUID

from pydantic import BaseModel, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from psa.automation.actions.common import (
    INT4_MAX,
    PAGE_MAX,
    DayOrIsoDateTime,
    DayOrIsoDateTimeIn,
    IsoDateTimeIn,
    TagText,
    field_error,
    idempotency_key_field,
    out_of_order,
    require_permission,
)
from psa.automation.actions.crm.models import (
    CLIENT_READ,
    CLIENT_UPDATE,
    ON_EMPTY,
    ActivitySummary,
    RequiredText,
    picked,
    require_activity,
    str_or_none,
    summary,
)
from psa.automation.events import InteractionLogged
from psa.automation.registry import ActionContext, ActionSet, picker
from psa.domain import interactions
from psa.domain.errors import NotFoundError, ValidationError
from psa.domain.interactions import Activity, ActivityFilters, FollowUp, Visibility
from psa.timeutil import iso_z

actions = ActionSet()
"""crm.find_activities, crm.update_activity, crm.schedule_activity, crm.update_activity_status and
crm.complete_activity, in the order they are defined below."""


FILTER_KEYS = ("client_id", "contact_id", "ticket_id", "user_id", "type_id", "status_id", "date_from", "date_to")


class FindActivitiesInput(BaseModel):
    client_id: UUID | None = picked("client", "Client id")
    contact_id: UUID | None = picked("contact", "Contact id", ["client_id"])
    ticket_id: UUID | None = picked("ticket", "Ticket id")
    user_id: UUID | None = picked("user", "Owner user id")
    type_id: UUID | None = None
    status_id: UUID | None = None
    date_from: DayOrIsoDateTimeIn | None = Field(
        default=None, description="From this instant, or from the start of this day in the tenant's time zone"
    )
    date_to: DayOrIsoDateTimeIn | None = Field(
        default=None, description="Up to this instant, or through the end of this day in the tenant's time zone"
    )
    limit: int = Field(default=25, gt=0, le=200, description="Page size")
    page: int = Field(default=1, gt=0, le=PAGE_MAX, description="Page number (beyond the reference), in a stable order")
    on_empty: ON_EMPTY = "return_empty"

    @model_validator(mode="after")
    def _filters(self) -> FindActivitiesInput:
        if all(getattr(self, key) is None for key in FILTER_KEYS):
            raise PydanticCustomError("filter_required", "At least one filter or date range is required")
        if out_of_order(self.date_from, self.date_to):
            raise field_error(type(self), "date_from", "date_from must be less than or equal to date_to", None)
        return self


class MatchedFilters(BaseModel):
    client_id: UUID | None
    contact_id: UUID | None
    ticket_id: UUID | None
    user_id: UUID | None
    type_id: UUID | None
    status_id: UUID | None
    date_from: DayOrIsoDateTime | None
    date_to: DayOrIsoDateTime | None
    limit: int


class Pagination(BaseModel):
    page: int
    limit: int
    has_more: bool


class FindActivitiesOutput(BaseModel):
    activities: list[ActivitySummary]
    count: int
    matched_filters: MatchedFilters
    pagination: Pagination


def _find_permissions(inp: FindActivitiesInput) -> tuple[tuple[str, str], ...]:
    """``contact:read`` when filtering by contact, ``ticket:read`` when filtering by ticket (reference)."""
    implied = []
    if inp.contact_id is not None:
        implied.append(("contact", "read"))
    if inp.ticket_id is not None:
        implied.append(("ticket", "read"))
    return tuple(implied)


@actions.define(
    "crm.find_activities",
    "Find CRM Activities",
    "Find CRM activities by client/contact/ticket/user/type/status and date filters",
    permissions=(CLIENT_READ,),
    idempotency="engine",
    side_effectful=False,
    input_permissions=_find_permissions,
)
async def find_activities(ctx: ActionContext, inp: FindActivitiesInput) -> FindActivitiesOutput:
    """Reference crm.find_activities: the AND of the given filters, newest first (ties by id), one page of
    ``limit``; an empty page with ``on_empty='error'`` is NOT_FOUND."""
    filters = ActivityFilters(**inp.model_dump(include=set(FILTER_KEYS)))
    found = await interactions.find_activities(
        ctx.conn, ctx.tenant, filters, limit=inp.limit + 1, offset=(inp.page - 1) * inp.limit
    )
    page = found[: inp.limit]
    if not page and inp.on_empty == "error":
        raise NotFoundError("No CRM activities matched the supplied filters")
    return FindActivitiesOutput(
        activities=[summary(a, ctx.now) for a in page],
        count=len(page),
        matched_filters=MatchedFilters(**filters.model_dump(), limit=inp.limit),
        pagination=Pagination(page=inp.page, limit=inp.limit, has_more=len(found) > inp.limit),
    )


class ActivityPatch(BaseModel):
    title: str | None = Field(default=None, min_length=1)
    notes: str | None = None
    status_id: UUID | None = None
    visibility: Visibility | None = None
    category: str | None = None
    tags: list[TagText] | None = None
    interaction_date: IsoDateTimeIn | None = None
    start_time: IsoDateTimeIn | None = None
    end_time: IsoDateTimeIn | None = None
    duration: int | None = Field(default=None, ge=0, le=INT4_MAX)
    type_id: UUID | None = None

    @model_validator(mode="after")
    def _not_empty(self) -> ActivityPatch:
        if not self.model_fields_set:
            raise PydanticCustomError("patch_empty", "patch must contain at least one field")
        for key in ("title", "visibility", "interaction_date", "type_id"):
            if key in self.model_fields_set and getattr(self, key) is None:
                raise field_error(type(self), key, f"{key} cannot be null", None)
        return self


class UpdateActivityInput(BaseModel):
    activity_id: UUID
    patch: ActivityPatch
    reason: str | None = None


class UpdateActivityOutput(BaseModel):
    activity_before: ActivitySummary
    activity_after: ActivitySummary
    changed_fields: list[str]


# patch key -> the summary field compared to decide whether it changed
_SUMMARY_FIELD = {"notes": "notes_preview"}
_AUDITED = ("status_id", "type_id", "title", "visibility", "category")


@actions.define(
    "crm.update_activity",
    "Update CRM Activity",
    "Patch an existing CRM activity and return before/after differences",
    permissions=(CLIENT_UPDATE,),
    idempotency="engine",
)
async def update_activity(ctx: ActionContext, inp: UpdateActivityInput) -> UpdateActivityOutput:
    """Reference crm.update_activity: write only the patched keys; ``changed_fields`` are the patched keys
    whose summary field differs, sorted; the audit keeps before/after of status, type, title, visibility and
    category; no event."""
    await require_activity(ctx, inp.activity_id)
    patch = {key: getattr(inp.patch, key) for key in inp.patch.model_fields_set}
    before, after = await interactions.update_activity(ctx.conn, ctx.tenant, inp.activity_id, patch)
    old, new = summary(before, ctx.now), summary(after, ctx.now)
    changed = sorted(
        key for key in patch if getattr(old, _SUMMARY_FIELD.get(key, key)) != getattr(new, _SUMMARY_FIELD.get(key, key))
    )
    await ctx.audit(
        {
            "activity_id": str(inp.activity_id),
            "changed_fields": changed,
            "reason": inp.reason,
            "before": old.model_dump(mode="json", include=set(_AUDITED)),
            "after": new.model_dump(mode="json", include=set(_AUDITED)),
        },
        {"activity_id": str(inp.activity_id)},
    )
    return UpdateActivityOutput(activity_before=old, activity_after=new, changed_fields=changed)


class ScheduleActivityInput(BaseModel):
    client_id: UUID | None = picked("client", "Required when contact_id is omitted.")
    contact_id: UUID | None = picked("contact", "Contact id", ["client_id"])
    ticket_id: UUID | None = picked("ticket", "Ticket id")
    type_id: UUID = Field(description="Interaction type id (system or tenant type)")
    title: RequiredText
    notes: str | None = None
    status_id: UUID | None = None
    start_time: IsoDateTimeIn = Field(description="When the follow-up is due (UTC)")
    end_time: IsoDateTimeIn | None = None
    duration: int | None = Field(default=None, ge=0, le=INT4_MAX, description="Minutes")
    visibility: Visibility | None = None
    category: str | None = None
    tags: list[TagText] | None = None
    assigned_user_id: UUID | None = picked("user", "Defaults to workflow actor.")
    owner_user_id: UUID | None = picked("user", "Defaults to workflow actor.")
    idempotency_key: str | None = idempotency_key_field()

    @model_validator(mode="after")
    def _refs(self) -> ScheduleActivityInput:
        if self.client_id is None and self.contact_id is None:
            raise PydanticCustomError("client_required", "client_id or contact_id is required")
        if self.end_time is not None and self.start_time > self.end_time:
            raise field_error(type(self), "start_time", "start_time must be less than or equal to end_time", None)
        return self


class ScheduleActivityOutput(BaseModel):
    activity: ActivitySummary


async def schedule(ctx: ActionContext, follow_up: FollowUp) -> Activity:
    """Schedule the follow-up (``interactions.schedule_activity``: the reference crm.schedule_activity's checks,
    in order, then the insert) and queue INTERACTION_LOGGED with the scheduled date as
    ``interactionOccurredAt`` and the status as ``outcome``. Shared with crm.complete_activity's next
    follow-up."""
    created, activity = await interactions.schedule_activity(ctx.conn, ctx.tenant, follow_up)
    type_name = activity.type_name or str(activity.type_id)
    await ctx.emit(InteractionLogged.of(created, type_name, follow_up.owner, outcome=activity.status_name))
    return activity


def _schedule_permissions(inp: ScheduleActivityInput) -> tuple[tuple[str, str], ...]:
    """``ticket:read`` when the follow-up is linked to a ticket (reference)."""
    return (("ticket", "read"),) if inp.ticket_id is not None else ()


@actions.define(
    "crm.schedule_activity",
    "Schedule CRM Activity",
    "Schedule a follow-up CRM activity linked to client/contact/ticket context",
    permissions=(CLIENT_UPDATE,),
    idempotency="action",
    input_permissions=_schedule_permissions,
)
async def schedule_activity(ctx: ActionContext, inp: ScheduleActivityInput) -> ScheduleActivityOutput:
    """Reference crm.schedule_activity: a future-dated follow-up for a client (or the contact's client),
    optionally a ticket, owned by ``assigned_user_id`` ?? ``owner_user_id`` ?? the actor; status defaults to
    the tenant's default interaction status; end defaults to start; duration to the minutes between them."""
    follow_up = FollowUp(
        **inp.model_dump(
            include={
                "client_id",
                "contact_id",
                "ticket_id",
                "type_id",
                "title",
                "notes",
                "status_id",
                "start_time",
                "end_time",
                "duration",
                "visibility",
                "category",
                "tags",
            }
        ),
        owner=inp.assigned_user_id or inp.owner_user_id or ctx.actor_user_id,
    )
    activity = await schedule(ctx, follow_up)
    await ctx.audit(
        {
            "activity_id": str(activity.activity_id),
            "client_id": str_or_none(activity.client_id),
            "contact_id": str_or_none(activity.contact_id),
            "ticket_id": str_or_none(activity.ticket_id),
            "status_id": str_or_none(activity.status_id),
            "type_id": str(activity.type_id),
            "start_time": iso_z(activity.start_time or activity.interaction_date),
            "end_time": iso_z(activity.end_time or activity.interaction_date),
            "duration": activity.duration,
            "assigned_user_id": str(activity.user_id),
        },
        {"activity_id": str(activity.activity_id)},
    )
    return ScheduleActivityOutput(activity=summary(activity, ctx.now))


class UpdateActivityStatusInput(BaseModel):
    activity_id: UUID
    status_id: UUID | None = None
    status_name: str | None = Field(default=None, min_length=1, max_length=255)
    reason: str | None = None
    no_op_if_already_status: bool = True

    @field_validator("status_name")
    @classmethod
    def trimmed(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise PydanticCustomError("status_name", "status_name must not be blank")
        return value.strip() if value is not None else None

    @model_validator(mode="after")
    def _one_of(self) -> UpdateActivityStatusInput:
        if self.status_id is None and self.status_name is None:
            raise PydanticCustomError("status_required", "Either status_id or status_name is required")
        if self.status_id is not None and self.status_name is not None:
            raise field_error(
                type(self), "status_name", "Provide either status_id or status_name, not both", self.status_name
            )
        return self


class UpdateActivityStatusOutput(BaseModel):
    activity_id: UUID
    previous_status_id: UUID | None
    previous_status_name: str | None
    current_status_id: UUID | None
    current_status_name: str | None
    no_op: bool
    activity: ActivitySummary


@actions.define(
    "crm.update_activity_status",
    "Update Activity Status",
    "Update only the status for an existing CRM activity",
    permissions=(CLIENT_UPDATE,),
    idempotency="engine",
)
async def update_activity_status(ctx: ActionContext, inp: UpdateActivityStatusInput) -> UpdateActivityStatusOutput:
    """Reference crm.update_activity_status: the target status by id or by name (by ``name_key``);
    unknown → VALIDATION_ERROR "Target interaction status was not found"; the same status with
    ``no_op_if_already_status`` writes nothing."""
    before = await require_activity(ctx, inp.activity_id)
    target = await interactions.find_interaction_status(
        ctx.conn, ctx.tenant, status_id=inp.status_id, name=inp.status_name
    )
    if target is None:
        raise ValidationError(
            "Target interaction status was not found",
            details={"status_id": str_or_none(inp.status_id), "status_name": inp.status_name},
        )
    no_op = before.status_id == target.status_id and inp.no_op_if_already_status
    after = before
    if not no_op:
        _, after = await interactions.update_activity(
            ctx.conn, ctx.tenant, inp.activity_id, {"status_id": target.status_id}
        )
    await ctx.audit(
        {
            "activity_id": str(inp.activity_id),
            "previous_status_id": str_or_none(before.status_id),
            "current_status_id": str_or_none(after.status_id),
            "reason": inp.reason,
            "no_op": no_op,
        },
        {"activity_id": str(inp.activity_id)},
    )
    return UpdateActivityStatusOutput(
        activity_id=inp.activity_id,
        previous_status_id=before.status_id,
        previous_status_name=before.status_name,
        current_status_id=after.status_id,
        current_status_name=after.status_name,
        no_op=no_op,
        activity=summary(after, ctx.now),
    )


class NextActivity(BaseModel):
    """The follow-up to schedule on the completed activity's client, contact and ticket."""

    type_id: UUID | None = Field(default=None, description="Defaults to the completed activity's type")
    title: RequiredText
    notes: str | None = None
    start_time: IsoDateTimeIn
    end_time: IsoDateTimeIn | None = None
    assigned_user_id: UUID | None = Field(
        default=None, description="Defaults to the completed activity's owner", json_schema_extra=picker("user")
    )

    @model_validator(mode="after")
    def _range(self) -> NextActivity:
        if self.end_time is not None and self.start_time > self.end_time:
            raise field_error(type(self), "start_time", "start_time must be less than or equal to end_time", None)
        return self


class CompleteActivityInput(BaseModel):
    activity_id: UUID
    feedback: str | None = Field(default=None, description="What happened; kept on the activity for reporting")
    next_activity: NextActivity | None = None
    no_op_if_already_completed: bool = True


class CompleteActivityOutput(BaseModel):
    activity: ActivitySummary
    next_activity: ActivitySummary | None
    no_op: bool


@actions.define(
    "crm.complete_activity",
    "Complete CRM Activity",
    "Mark a CRM activity done with feedback and optionally schedule the next follow-up",
    permissions=(CLIENT_UPDATE,),
    idempotency="engine",
)
async def complete_activity(ctx: ActionContext, inp: CompleteActivityInput) -> CompleteActivityOutput:
    """Mark an activity done: the tenant's closed interaction status ("Completed"), ``completed_at``,
    ``completed_by`` and ``feedback``; the activity stays for reporting (state ``done``). ``next_activity``
    schedules the follow-up on the same client, contact and ticket in the same transaction, like
    crm.schedule_activity (INTERACTION_LOGGED; ``ticket:read`` when it is linked to a ticket, checked before
    any write). An already completed activity is a no-op
    (``no_op_if_already_completed``, the default) or VALIDATION_ERROR "Activity is already completed"."""
    current = await require_activity(ctx, inp.activity_id, lock=True)  # a concurrent completion waits, then no-ops
    if current.completed_at is not None:
        if not inp.no_op_if_already_completed:
            raise ValidationError("Activity is already completed", details={"activity_id": str(inp.activity_id)})
        await ctx.audit({"activity_id": str(inp.activity_id), "no_op": True}, {"activity_id": str(inp.activity_id)})
        return CompleteActivityOutput(activity=summary(current, ctx.now), next_activity=None, no_op=True)
    if inp.next_activity is not None and current.ticket_id is not None:
        await require_permission(ctx, "ticket", "read")  # as crm.schedule_activity linked to a ticket
    _, done = await interactions.complete_activity(
        ctx.conn, ctx.tenant, inp.activity_id, completed_by=ctx.actor_user_id, feedback=inp.feedback
    )
    follow_up = None
    if inp.next_activity is not None:
        nxt = inp.next_activity
        follow_up = await schedule(
            ctx,
            FollowUp(
                client_id=done.client_id,
                contact_id=done.contact_id,
                ticket_id=done.ticket_id,
                type_id=nxt.type_id or done.type_id,
                title=nxt.title,
                notes=nxt.notes,
                start_time=nxt.start_time,
                end_time=nxt.end_time,
                owner=nxt.assigned_user_id or done.user_id,
            ),
        )
    await ctx.audit(
        {
            "activity_id": str(inp.activity_id),
            "previous_status_id": str_or_none(current.status_id),
            "current_status_id": str_or_none(done.status_id),
            "feedback": done.feedback,
            "next_activity_id": str_or_none(follow_up.activity_id if follow_up else None),
            "no_op": False,
        },
        {"activity_id": str(inp.activity_id)},
    )
    return CompleteActivityOutput(
        activity=summary(done, ctx.now), next_activity=summary(follow_up, ctx.now) if follow_up else None, no_op=False
    )
