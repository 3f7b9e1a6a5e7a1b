"""Shapes and helpers shared by the action modules (reference: the actions' shared schemas; docs/automation.md,
"Action contract"): ISO-8601 UTC date-times, tag texts, field-located validation errors, tag application, the
permission checks a handler makes itself, and entity notes. The event types are psa.automation.events."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import pydantic_core
from pydantic import AfterValidator, BaseModel, BeforeValidator, Field, PlainSerializer, PlainValidator, TypeAdapter
from pydantic_core import InitErrorDetails, PydanticCustomError

from psa.automation import permissions
from psa.automation.events import NoteCreated
from psa.automation.registry import ActionContext
from psa.domain import documents, tags
from psa.domain.errors import ValidationError
from psa.domain.values import name_key
from psa.timeutil import iso_z

INT4_MAX = 2**31 - 1
"""The largest value of a PostgreSQL ``integer`` column (display orders, durations, percentages)."""
PAGE_MAX = 1_000_000
"""The largest page number a search accepts (so ``OFFSET`` stays far inside ``bigint``)."""
_ISO_UTC = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?Z")

# -- shared field types ------------------------------------------------------------------------------------


def _utc_string(value: Any) -> Any:
    if isinstance(value, str) and not _ISO_UTC.fullmatch(value):
        raise PydanticCustomError("iso_datetime", "must be an ISO-8601 date-time in UTC ending in Z")
    if isinstance(value, datetime) and value.utcoffset() is None:
        raise PydanticCustomError("iso_datetime", "must be an ISO-8601 date-time in UTC ending in Z")
    return value


IsoDateTimeIn = Annotated[datetime, BeforeValidator(_utc_string)]
"""Input date-time: an ISO-8601 string in UTC ending in ``Z`` (reference isoDateTimeSchema)."""
IsoDateTime = Annotated[datetime, PlainSerializer(iso_z, return_type=str)]
"""Output date-time, serialised by ``iso_z``."""
_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def _day_or_iso_z(value: date | datetime) -> str:
    return iso_z(value) if isinstance(value, datetime) else value.isoformat()


def day_or(instant: Any) -> Any:
    """The type of an input that takes a calendar day ``YYYY-MM-DD`` (a ``date``, which the domain reads in the
    tenant's time zone: docs/automation.md, "Dates") or anything else ``instant`` takes (an instant, with
    ``instant``'s own errors). Its JSON Schema is ``anyOf`` a date and ``instant``'s schema."""
    adapter = TypeAdapter(instant)

    def validate(value: Any) -> date | datetime:
        if type(value) is date:
            return value
        if isinstance(value, str) and _ISO_DAY.fullmatch(value):
            try:
                return date.fromisoformat(value)
            except ValueError:
                raise PydanticCustomError("date", "must be a calendar date YYYY-MM-DD") from None
        try:
            return adapter.validate_python(value)
        except pydantic_core.ValidationError as exc:
            first = exc.errors()[0]
            raise PydanticCustomError(first["type"], first["msg"]) from None

    return Annotated[
        date | datetime,
        PlainValidator(validate, json_schema_input_type=date | instant),
        PlainSerializer(_day_or_iso_z, return_type=str, when_used="json"),
    ]


DayOrIsoDateTimeIn = day_or(IsoDateTimeIn)
"""Input bound of a date filter: a calendar day ``YYYY-MM-DD`` or an ISO-8601 date-time in UTC ending in ``Z``."""
DayOrIsoDateTime = Annotated[date | datetime, PlainSerializer(_day_or_iso_z, return_type=str, when_used="json")]
"""Output echo of a DayOrIsoDateTimeIn: ``YYYY-MM-DD`` or an ISO-8601 UTC date-time (``iso_z``)."""


def out_of_order(first: date | datetime | None, last: date | datetime | None) -> bool:
    """Whether ``first`` comes after ``last`` when both are calendar days or both instants. A day and an
    instant compare only in the tenant's time zone, so the domain does it (an empty range matches nothing:
    psa.domain.values.InstantRange)."""
    if first is None or last is None or isinstance(first, datetime) != isinstance(last, datetime):
        return False
    return first > last


def _tag_text(value: str) -> str:
    """A tag as given; blank ones are dropped later (reference tag ensure), others must be valid tag texts."""
    if value.strip():
        try:
            tags.validate_tag_text(value)
        except ValidationError as exc:
            raise PydanticCustomError("tag_text", exc.message) from None
    return value


TagText = Annotated[str, Field(min_length=1), AfterValidator(_tag_text)]


def field_error(model: type[BaseModel], field: str, message: str, value: Any) -> pydantic_core.ValidationError:
    """A validation error located at ``field`` for a rule checked across fields (a model validator's own
    errors have no location); pydantic prefixes the path of an enclosing model."""
    error = InitErrorDetails(type=PydanticCustomError(field, message), loc=(field,), input=value)
    return pydantic_core.ValidationError.from_exception_data(model.__name__, [error])


IDEMPOTENCY_KEY_MAX = 255
"""The longest ``idempotency_key`` input (the ledger's unique index cannot hold arbitrarily long text)."""


def idempotency_key_field() -> Any:
    return Field(
        default=None,
        max_length=IDEMPOTENCY_KEY_MAX,
        description="Optional idempotency key (defaults to the engine key)",
    )


def confirm_flag(entity: str) -> Any:
    """The type of a destructive action's ``confirm`` input: required, and true, else "confirm must be true to
    delete a {entity}" (reference: clients.delete / contacts.delete)."""

    def confirmed(value: bool) -> bool:
        if value is not True:
            raise PydanticCustomError("confirm", f"confirm must be true to delete a {entity}")
        return value

    return Annotated[
        bool,
        AfterValidator(confirmed),
        Field(description="Must be true to confirm the hard delete", json_schema_extra={"const": True}),
    ]


def _note_body(value: str) -> str:
    if not value.strip():
        raise PydanticCustomError("body", "body is required")
    return value


NoteBody = Annotated[str, Field(min_length=1, description="Note text"), AfterValidator(_note_body)]
"""A note's text: not blank (reference: clients.add_note / contacts.add_note ``body``)."""


class TagResult(BaseModel):
    tag_id: UUID
    tag_text: str
    mapping_id: UUID | None = None


# -- helpers ----------------------------------------------------------------------------------------------


def normalize_tags(texts: Iterable[str] | None) -> list[str]:
    """Trimmed, blanks dropped, one per ``name_key`` keeping the first spelling: the texts that name distinct tag
    definitions (reference tag ensure, which deduplicated ignoring case)."""
    seen: set[str] = set()
    result = []
    for raw in texts or ():
        cleaned, key = raw.strip(), name_key(raw)
        if cleaned and key not in seen:
            seen.add(key)
            result.append(cleaned)
    return result


async def ensure_tags(
    ctx: ActionContext, tagged_id: UUID, tagged_type: str, texts: Iterable[str] | None
) -> tuple[list[TagResult], list[TagResult]]:
    """Apply tags to an entity (``tagged_type`` ``client`` / ``contact`` / ``ticket`` ...) and return
    ``(added, existing)`` (reference ensureClientTagMappings). Definitions and mappings are looked
    up first and created when missing, never through a unique violation (which would abort the transaction);
    a tag the entity already has is reported as existing."""
    wanted = normalize_tags(texts)
    if not wanted:
        return [], []
    current = {m.tag_id for m in await tags.tags_for(ctx.conn, ctx.tenant, tagged_id, tagged_type)}
    added: list[TagResult] = []
    existing: list[TagResult] = []
    for tag_text in wanted:
        mapping = await tags.apply_tag(
            ctx.conn,
            ctx.tenant,
            tag_text=tag_text,
            tagged_id=tagged_id,
            tagged_type=tagged_type,
            created_by=ctx.actor_user_id,
        )
        result = TagResult(tag_id=mapping.tag_id, tag_text=mapping.tag_text, mapping_id=mapping.mapping_id)
        (existing if mapping.tag_id in current else added).append(result)
        current.add(mapping.tag_id)
    return added, existing


async def require_permission(ctx: ActionContext, resource: str, action: str) -> None:
    """Check one more permission of the actor inside a handler, for a permission that depends on what the
    database holds (reference crm.tag_activity: ``{target}:update``, ``tag:create`` per new definition).
    Raises PermissionDenied "Permission denied: resource:action" (docs/automation.md, "Errors")."""
    await permissions.authorize(
        ctx.conn, ctx.tenant, [(resource, action)], run_id=None, actor_user_id=ctx.actor_user_id
    )


async def append_entity_note(
    ctx: ActionContext, entity_type: Literal["client", "contact"], entity_id: UUID, body: str
) -> documents.NoteAppendResult:
    """Append ``body`` to the entity's notes document (``documents.append_note_block``), record the audit row
    ``{<type>_id, document_id, created_document}`` and, when the document was created, queue NOTE_CREATED with
    the key ``note_created:<type>:<id>:<document_id>`` (reference: clients.add_note and contacts.add_note)."""
    note = await documents.append_note_block(
        ctx.conn,
        ctx.tenant,
        entity_type=entity_type,
        entity_id=entity_id,
        body=body,
        actor_user_id=ctx.actor_user_id,
    )
    id_key = f"{entity_type}_id"
    await ctx.audit(
        {id_key: str(entity_id), "document_id": str(note.document_id), "created_document": note.created_document},
        {id_key: str(entity_id)},
    )
    if note.created_document:
        await ctx.emit(
            NoteCreated.of(note.document_id, entity_type, entity_id, ctx.actor_user_id, note.updated_at, body)
        )
    return note
