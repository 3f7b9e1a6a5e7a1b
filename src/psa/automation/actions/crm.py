"""The ``crm.*`` activity actions (reference: the crm actions; docs/automation.md, "Action contract"; the
catalog is docs/actions.md): notes, finding, updating, scheduling, status changes, interaction types, tagging,
and (beyond the reference, Odoo's "mark as done") completing an activity with an optional next follow-up. The
quote actions are in ``actions/quotes.py``.

Conventions are those of ``actions/clients``: version 1, category "Business Operations", pydantic input and
output models, permissions checked by the runtime before the handler (``input_permissions`` adds the ones a
given input implies: ``contact:read`` when finding by contact, ``{target}:update`` for a note), domain models
in the runtime's tenant transaction, audit data through ``ctx.audit`` and events through the outbox
(``ctx.emit``) with deterministic keys.

Every activity in an output is an ActivitySummary, plus (beyond the reference) ``state`` (overdue / today /
planned / done in the owner's time zone, None for a note), ``completed_at`` and ``feedback``.

Deliberate deviations:
- Structured errors are never re-mapped; crm.tag_activity's tag text rules fail with VALIDATION_ERROR naming
  the field, not INTERNAL_ERROR.
- ``project`` note targets are accepted by the schema but always NOT_FOUND "Project not found": this back end
  has no projects yet.
- A no-op (crm.update_activity_status, crm.complete_activity) still leaves an audit row saying ``no_op``:
  the runtime audits every side-effectful invocation.
- crm.tag_activity's ``{target}:update`` and ``tag:create`` depend on what the database holds, so the
  handler checks them: a denial there writes nothing but the FAILED ledger row of the attempt.
- A note on a contact without a client is refused ("Contact must be assigned to a client before logging
  interactions"), like every interaction this back end logs.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AfterValidator, BaseModel, BeforeValidator, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from psa.automation.actions.common import (
    INT4_MAX,
    PAGE_MAX,
    IsoDateTime,
    IsoDateTimeIn,
    TagResult,
    TagText,
    field_error,
    idempotency_key_field,
    require_permission,
)
from psa.automation.events import InteractionLogged, TagApplied, TagDefinitionCreated
from psa.automation.registry import ActionContext, ActionSet, picker
from psa.domain import clients, contacts, interactions, tags, tickets
from psa.domain.errors import ConflictError, InternalError, NotFoundError, ValidationError
from psa.domain.interactions import Activity, ActivityFilters, ActivityState, FollowUp, Visibility
from psa.timeutil import iso_z

NOTES_PREVIEW_MAX = 180
ON_EMPTY = Literal["return_empty", "error"]
CLIENT_READ, CLIENT_UPDATE = ("client", "read"), ("client", "update")

actions = ActionSet()
"""The crm.* activity actions, in catalog order (the order they are defined in below)."""


def _picked(kind: str, description: str, deps: list[str] | None = None) -> Any:
    return Field(default=None, description=description, json_schema_extra=picker(kind, deps))


def _required_text(value: str) -> str:
    if not value.strip():
        raise PydanticCustomError("required", "must not be blank")
    return value


def _trimmed(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


RequiredText = Annotated[str, Field(min_length=1), AfterValidator(_required_text)]
"""A string with at least one non-blank character."""


# -- ActivitySummary -----------------------------------------------------------------------------------------


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


async def _activity(ctx: ActionContext, activity_id: UUID, *, lock: bool = False) -> Activity:
    """The activity (``lock``: locked for the transaction), or NotFoundError "Activity not found"
    ``{activity_id}`` (another tenant's id too)."""
    found = await interactions.find_activity(ctx.conn, ctx.tenant, activity_id, lock=lock)
    if found is None:
        raise NotFoundError("Activity not found", details={"activity_id": str(activity_id)})
    return found


def _str(value: UUID | None) -> str | None:
    return str(value) if value is not None else None


# -- crm.create_activity_note --------------------------------------------------------------------------------


class NoteTarget(BaseModel):
    type: Literal["client", "contact", "ticket", "project"]
    id: UUID


class CreateActivityNoteInput(BaseModel):
    target: NoteTarget
    body: RequiredText = Field(description="Note text")
    visibility: Visibility = "internal"
    tags: list[str] | None = None
    category: str | None = None

    @model_validator(mode="after")
    def _project_visibility(self) -> CreateActivityNoteInput:
        if self.visibility == "client_visible" and self.target.type == "project":
            raise field_error(
                type(self), "visibility", "client_visible notes are not supported for project targets", self.visibility
            )
        return self


class CreateActivityNoteOutput(BaseModel):
    note_id: UUID
    created_at: IsoDateTime
    target_type: str
    target_id: UUID
    target_summary: dict[str, Any] | None


async def _note_links(ctx: ActionContext, target: NoteTarget) -> tuple[dict[str, UUID | None], dict[str, Any]]:
    """The interaction links of a note target and its target_summary; NotFoundError "{Type} not found"."""
    missing = NotFoundError(f"{target.type.capitalize()} not found")
    if target.type == "client":
        client = await clients.find_client(ctx.conn, ctx.tenant, target.id)
        if client is None:
            raise missing
        return {"client_id": client.client_id}, {"client_id": str(client.client_id), "client_name": client.client_name}
    if target.type == "contact":
        contact = await contacts.find_contact(ctx.conn, ctx.tenant, target.id)
        if contact is None:
            raise missing
        return (
            {"contact_id": contact.contact_name_id, "client_id": contact.client_id},
            {
                "contact_id": str(contact.contact_name_id),
                "full_name": contact.full_name,
                "email": contact.email,
                "client_id": _str(contact.client_id),
            },
        )
    if target.type == "ticket":
        ticket = await tickets.find_ticket(ctx.conn, ctx.tenant, target.id)
        if ticket is None:
            raise missing
        return (
            {"ticket_id": ticket.ticket_id, "client_id": ticket.client_id, "contact_id": ticket.contact_name_id},
            {
                "ticket_id": str(ticket.ticket_id),
                "ticket_number": ticket.ticket_number,
                "title": ticket.title,
                "client_id": _str(ticket.client_id),
            },
        )
    raise missing  # no projects in this back end yet


def _note_permissions(inp: CreateActivityNoteInput) -> tuple[tuple[str, str], ...]:
    """``{client|contact|ticket|project}:update`` by target type (reference)."""
    return ((inp.target.type, "update"),)


@actions.define(
    "crm.create_activity_note",
    "Create Activity Note",
    "Create a CRM activity note (interaction)",
    permissions=(),
    idempotency="engine",
    input_permissions=_note_permissions,
)
async def create_activity_note(ctx: ActionContext, inp: CreateActivityNoteInput) -> CreateActivityNoteOutput:
    """Reference crm.create_activity_note: an interaction of the system type ``Note`` (no status), owned by
    the actor, titled ``category`` else "Note", linked to the target and what it belongs to; no event."""
    note_type = await interactions.find_system_interaction_type(ctx.conn, "Note")
    if note_type is None:
        raise InternalError("System interaction type Note missing")
    links, target_summary = await _note_links(ctx, inp.target)
    note = await interactions.create_interaction(
        ctx.conn,
        ctx.tenant,
        type_id=note_type.type_id,
        title=(inp.category or "").strip() or "Note",
        user_id=ctx.actor_user_id,
        notes=inp.body,
        interaction_date=ctx.now,
        duration=0,
        visibility=inp.visibility,
        category=inp.category,
        tags=inp.tags,
        default_status=False,
        **links,
    )
    await ctx.audit(
        {"interaction_id": str(note.interaction_id), "target": inp.target.model_dump(mode="json")},
        {"note_id": str(note.interaction_id)},
    )
    return CreateActivityNoteOutput(
        note_id=note.interaction_id,
        created_at=note.created_at,
        target_type=inp.target.type,
        target_id=inp.target.id,
        target_summary=target_summary,
    )


# -- crm.find_activities -------------------------------------------------------------------------------------

FILTER_KEYS = ("client_id", "contact_id", "ticket_id", "user_id", "type_id", "status_id", "date_from", "date_to")


class FindActivitiesInput(BaseModel):
    client_id: UUID | None = _picked("client", "Client id")
    contact_id: UUID | None = _picked("contact", "Contact id", ["client_id"])
    ticket_id: UUID | None = _picked("ticket", "Ticket id")
    user_id: UUID | None = _picked("user", "Owner user id")
    type_id: UUID | None = None
    status_id: UUID | None = None
    date_from: IsoDateTimeIn | None = None
    date_to: IsoDateTimeIn | None = None
    limit: int = Field(default=25, gt=0, le=200, description="Page size")
    page: int = Field(default=1, gt=0, le=PAGE_MAX, description="Page number (beyond the reference), in a stable order")
    on_empty: ON_EMPTY = "return_empty"

    @model_validator(mode="after")
    def _filters(self) -> FindActivitiesInput:
        if all(getattr(self, key) is None for key in FILTER_KEYS):
            raise PydanticCustomError("filter_required", "At least one filter or date range is required")
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise field_error(type(self), "date_from", "date_from must be less than or equal to date_to", None)
        return self


class MatchedFilters(BaseModel):
    client_id: UUID | None
    contact_id: UUID | None
    ticket_id: UUID | None
    user_id: UUID | None
    type_id: UUID | None
    status_id: UUID | None
    date_from: IsoDateTime | None
    date_to: IsoDateTime | None
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


# -- crm.update_activity -------------------------------------------------------------------------------------


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
    await _activity(ctx, inp.activity_id)
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


# -- crm.schedule_activity -----------------------------------------------------------------------------------


class ScheduleActivityInput(BaseModel):
    client_id: UUID | None = _picked("client", "Required when contact_id is omitted.")
    contact_id: UUID | None = _picked("contact", "Contact id", ["client_id"])
    ticket_id: UUID | None = _picked("ticket", "Ticket id")
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
    assigned_user_id: UUID | None = _picked("user", "Defaults to workflow actor.")
    owner_user_id: UUID | None = _picked("user", "Defaults to workflow actor.")
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
            "client_id": _str(activity.client_id),
            "contact_id": _str(activity.contact_id),
            "ticket_id": _str(activity.ticket_id),
            "status_id": _str(activity.status_id),
            "type_id": str(activity.type_id),
            "start_time": iso_z(activity.start_time or activity.interaction_date),
            "end_time": iso_z(activity.end_time or activity.interaction_date),
            "duration": activity.duration,
            "assigned_user_id": str(activity.user_id),
        },
        {"activity_id": str(activity.activity_id)},
    )
    return ScheduleActivityOutput(activity=summary(activity, ctx.now))


# -- crm.create_interaction_type -----------------------------------------------------------------------------


class CreateInteractionTypeInput(BaseModel):
    type_name: Annotated[str, BeforeValidator(_trimmed), Field(min_length=1, max_length=120)]
    icon: Annotated[str, BeforeValidator(_trimmed), Field(max_length=120)] | None = None
    display_order: int | None = Field(default=None, ge=0, le=INT4_MAX)
    if_exists: Literal["return_existing", "error"] = "return_existing"
    idempotency_key: str | None = idempotency_key_field()


class InteractionTypeResult(BaseModel):
    type_id: UUID
    type_name: str
    icon: str | None
    display_order: int | None
    created_by: UUID | None
    created: bool


class CreateInteractionTypeOutput(BaseModel):
    interaction_type: InteractionTypeResult


@actions.define(
    "crm.create_interaction_type",
    "Create Activity Type",
    "Create a tenant CRM interaction type with idempotent duplicate handling",
    permissions=(("settings", "update"),),
    idempotency="action",
)
async def create_interaction_type(ctx: ActionContext, inp: CreateInteractionTypeInput) -> CreateInteractionTypeOutput:
    """Reference crm.create_interaction_type: names compare trimmed, whitespace-collapsed, case-insensitively;
    an existing one is returned (``created: false``) or, with ``if_exists='error'``, CONFLICT."""
    found, created = await interactions.create_interaction_type(
        ctx.conn,
        ctx.tenant,
        type_name=inp.type_name,
        icon=inp.icon,
        display_order=inp.display_order,
        created_by=ctx.actor_user_id,
        if_exists=inp.if_exists,
    )
    await ctx.audit(
        {
            "type_id": str(found.type_id),
            "type_name": found.type_name,
            "display_order": found.display_order,
            "created": created,
        },
        {"type_id": str(found.type_id)},
    )
    return CreateInteractionTypeOutput(interaction_type=InteractionTypeResult(**found.model_dump(), created=created))


# -- crm.update_activity_status ------------------------------------------------------------------------------


class UpdateActivityStatusInput(BaseModel):
    activity_id: UUID
    status_id: UUID | None = None
    status_name: str | None = Field(default=None, min_length=1, max_length=255)
    reason: str | None = None
    no_op_if_already_status: bool = True

    @field_validator("status_name")
    @classmethod
    def _trimmed(cls, value: str | None) -> str | None:
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
    """Reference crm.update_activity_status: the target status by id or by name (trimmed, case-insensitive);
    unknown → VALIDATION_ERROR "Target interaction status was not found"; the same status with
    ``no_op_if_already_status`` writes nothing."""
    before = await _activity(ctx, inp.activity_id)
    target = await interactions.find_interaction_status(
        ctx.conn, ctx.tenant, status_id=inp.status_id, name=inp.status_name
    )
    if target is None:
        raise ValidationError(
            "Target interaction status was not found",
            details={"status_id": _str(inp.status_id), "status_name": inp.status_name},
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
            "previous_status_id": _str(before.status_id),
            "current_status_id": _str(after.status_id),
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


# -- crm.tag_activity ----------------------------------------------------------------------------------------


def _required_tag(value: str) -> str:
    """crm.tag_activity takes no blank tag (reference: trimmed, min 1), unlike the clients/contacts tag inputs."""
    if not value.strip():
        raise PydanticCustomError("tag_text", "Tag text is required")
    return value


class TagActivityInput(BaseModel):
    activity_id: UUID
    tags: list[Annotated[TagText, AfterValidator(_required_tag)]] = Field(min_length=1)
    if_exists: Literal["no_op", "error"] = "no_op"
    idempotency_key: str | None = idempotency_key_field()


class TaggedEntity(BaseModel):
    type: Literal["ticket", "contact", "client"]
    id: UUID


class TagActivityOutput(BaseModel):
    activity_id: UUID
    tagged_entity: TaggedEntity
    added_tags: list[TagResult]
    existing_tags: list[TagResult]
    added_count: int
    existing_count: int


@actions.define(
    "crm.tag_activity",
    "Tag CRM Activity",
    "Apply existing/new tags to a CRM interaction activity",
    permissions=(("interaction", "update"),),
    idempotency="action",
)
async def tag_activity(ctx: ActionContext, inp: TagActivityInput) -> TagActivityOutput:
    """Reference crm.tag_activity: tags go to the activity's ticket, else contact, else client (never the
    interaction itself), after ``{target}:update`` and, per text without a definition, ``tag:create``.
    Texts are trimmed and deduplicated exactly. TAG_DEFINITION_CREATED per new definition, TAG_APPLIED per new
    mapping; an existing mapping is listed, or with ``if_exists='error'`` a CONFLICT."""
    activity = await _activity(ctx, inp.activity_id)
    entity_type, entity_id = activity.tag_target()
    await require_permission(ctx, entity_type, "update")
    texts = list(dict.fromkeys(t.strip() for t in inp.tags))
    new_definitions = [t for t in texts if await tags.find_tag_definition(ctx.conn, ctx.tenant, t, entity_type) is None]
    if new_definitions:
        await require_permission(ctx, "tag", "create")
    current = {m.tag_id for m in await tags.tags_for(ctx.conn, ctx.tenant, entity_id, entity_type)}
    tagged = {"type": entity_type, "id": str(entity_id)}
    added: list[TagResult] = []
    existing: list[TagResult] = []
    for tag_text in texts:
        mapping = await tags.apply_tag(
            ctx.conn,
            ctx.tenant,
            tag_text=tag_text,
            tagged_id=entity_id,
            tagged_type=entity_type,
            created_by=ctx.actor_user_id,
        )
        result = TagResult(tag_id=mapping.tag_id, tag_text=mapping.tag_text, mapping_id=mapping.mapping_id)
        if mapping.tag_id in current:
            if inp.if_exists == "error":
                details = {"activity_id": str(inp.activity_id), "tagged_entity": tagged, "tag_text": tag_text}
                raise ConflictError("Tag is already applied to this activity target", details=details)
            existing.append(result)
            continue
        current.add(mapping.tag_id)
        added.append(result)
        if tag_text in new_definitions:
            await ctx.emit(TagDefinitionCreated.of(mapping, ctx.actor_user_id))
        await ctx.emit(TagApplied.of(mapping, ctx.actor_user_id))
    await ctx.audit(
        {
            "activity_id": str(inp.activity_id),
            "tagged_entity_type": entity_type,
            "tagged_entity_id": str(entity_id),
            "tags": texts,
            "added_count": len(added),
            "existing_count": len(existing),
        },
        {"activity_id": str(inp.activity_id), "tagged_entity_type": entity_type, "tagged_entity_id": str(entity_id)},
    )
    return TagActivityOutput(
        activity_id=inp.activity_id,
        tagged_entity=TaggedEntity(type=entity_type, id=entity_id),
        added_tags=added,
        existing_tags=existing,
        added_count=len(added),
        existing_count=len(existing),
    )


# -- crm.complete_activity (beyond the reference: Odoo's "Mark as done") -------------------------------------


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
    current = await _activity(ctx, inp.activity_id, lock=True)  # a concurrent completion waits, then no-ops
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
            "previous_status_id": _str(current.status_id),
            "current_status_id": _str(done.status_id),
            "feedback": done.feedback,
            "next_activity_id": _str(follow_up.activity_id if follow_up else None),
            "no_op": False,
        },
        {"activity_id": str(inp.activity_id)},
    )
    return CompleteActivityOutput(
        activity=summary(done, ctx.now), next_activity=summary(follow_up, ctx.now) if follow_up else None, no_op=False
    )
