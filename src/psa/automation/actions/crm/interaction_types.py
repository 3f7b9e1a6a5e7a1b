"""crm.create_interaction_type: a tenant interaction type, found first by its name."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, BeforeValidator, Field

from psa.automation.actions.common import (
    INT4_MAX,
    idempotency_key_field,
)
from psa.automation.actions.crm.models import (
    trimmed,
)
from psa.automation.registry import ActionContext, ActionSet
from psa.domain import interactions

actions = ActionSet()
"""crm.create_interaction_type."""


class CreateInteractionTypeInput(BaseModel):
    type_name: Annotated[str, BeforeValidator(trimmed), Field(min_length=1, max_length=120)]
    icon: Annotated[str, BeforeValidator(trimmed), Field(max_length=120)] | None = None
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
    """Reference crm.create_interaction_type: names compare by ``name_key`` (the reference: trimmed, whitespace
    collapsed, lower-cased); an existing one is returned (``created: false``) or, with ``if_exists='error'``,
    CONFLICT naming ``type_name``."""
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
