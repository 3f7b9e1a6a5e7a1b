"""crm.tag_activity: tags on an activity's target (its ticket, contact or client), creating tag definitions
the actor may create."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from pydantic import AfterValidator, BaseModel, Field
from pydantic_core import PydanticCustomError

from psa.automation.actions.common import (
    TagResult,
    TagText,
    idempotency_key_field,
    normalize_tags,
    require_permission,
)
from psa.automation.actions.crm.models import (
    require_activity,
)
from psa.automation.events import TagApplied, TagDefinitionCreated
from psa.automation.registry import ActionContext, ActionSet
from psa.domain import tags
from psa.domain.errors import ConflictError

actions = ActionSet()
"""crm.tag_activity."""


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
    Texts are trimmed and deduplicated by ``name_key`` (the reference: exactly). TAG_DEFINITION_CREATED per new
    definition, TAG_APPLIED per new mapping; an existing mapping is listed, or with ``if_exists='error'`` a
    CONFLICT."""
    activity = await require_activity(ctx, inp.activity_id)
    entity_type, entity_id = activity.tag_target()
    await require_permission(ctx, entity_type, "update")
    texts = normalize_tags(inp.tags)
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
