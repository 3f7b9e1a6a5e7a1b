"""Action registry (reference: ActionRegistry and ActionDef; docs/automation.md, "Action contract").

An action is ``id@version`` with pydantic input and output models, ``side_effectful``, an idempotency mode
(``engine``: the runtime's key; ``action``: the input's ``idempotency_key`` when given), the permissions it
needs as ``(resource, action)`` pairs, and an async handler ``handler(ctx, input) -> output``. JSON Schema
comes from pydantic (``model_json_schema()``), with the designer's picker metadata attached through
:func:`picker`.

An action module declares its actions with an :class:`ActionSet`: ``@actions.define(...)`` next to each
handler carries the metadata, and the input and output models are read from the handler's annotations. The
registry knows no action module: ``psa.automation.actions.builtin_registry`` builds the built-in one.
"""

from __future__ import annotations

import dataclasses
import inspect
import typing
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime
from email.message import EmailMessage
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncConnection

from psa.automation.events import Event
from psa.email import QueuedEmail

IdempotencyMode = Literal["engine", "action"]
Permission = tuple[str, str]
"""A ``(resource, action)`` pair, shown as ``resource:action``."""
DEFAULT_CATEGORY = "Business Operations"
FIXED_VALUE_HINTS = {
    "client": "Search clients",
    "contact": "Search contacts",
    "ticket": "Search tickets",
    "user": "Search users",
    "client-location": "Search locations",
}


def picker(kind: str, dependencies: list[str] | None = None) -> dict[str, Any]:
    """``json_schema_extra`` for a field the designer fills with a picker: ``x-workflow-picker-kind``,
    ``-dependencies`` (when given), ``-fixed-value-hint`` and ``-allow-dynamic-reference`` (reference: the
    designer's picker metadata; docs/automation.md, "Action contract").
    Use as ``Field(json_schema_extra=picker("client"))``."""
    extra: dict[str, Any] = {"x-workflow-picker-kind": kind}
    if dependencies:
        extra["x-workflow-picker-dependencies"] = dependencies
    if kind in FIXED_VALUE_HINTS:
        extra["x-workflow-picker-fixed-value-hint"] = FIXED_VALUE_HINTS[kind]
    extra["x-workflow-picker-allow-dynamic-reference"] = True
    return extra


@dataclasses.dataclass
class ActionContext:
    """What a handler gets: an open tenant-scoped transaction (``app.current_tenant`` set), the tenant, the
    resolved actor, the run and step, the idempotency key and attempt, and helpers that write the audit row
    (``audit(changed_data, details)``), queue a domain event (``emit(event)``, a psa.automation.events type) and
    queue an email (``queue_email(kind, message)`` -> ``QueuedEmail`` with its ``Message-ID``; a rendered
    ``EmailMessage``, delivered after commit by the email outbox) in the same transaction."""

    conn: AsyncConnection
    tenant: UUID
    actor_user_id: UUID
    action_id: str
    action_version: int
    run_id: UUID | None
    step_path: str
    idempotency_key: str
    attempt: int
    now: datetime
    audit: Callable[..., Awaitable[None]]
    emit: Callable[[Event], Awaitable[None]]
    queue_email: Callable[[str, EmailMessage], Awaitable[QueuedEmail]]


Handler = Callable[[ActionContext, Any], Awaitable[BaseModel | dict[str, Any]]]


@dataclasses.dataclass(frozen=True)
class ActionDef:
    """One registered action. ``permissions`` are checked in order before the handler runs (the first
    missing one is reported)."""

    id: str
    version: int
    label: str
    description: str
    input_model: type[BaseModel]
    output_model: type[BaseModel]
    side_effectful: bool
    idempotency: IdempotencyMode | None
    permissions: tuple[Permission, ...]
    handler: Handler
    category: str = DEFAULT_CATEGORY
    icon: str | None = None
    input_permissions: Callable[[Any], tuple[Permission, ...]] | None = None
    """Permissions the parsed input implies, checked after ``permissions`` (reference crm.find_activities:
    ``contact:read`` only when filtering by contact)."""

    @property
    def key(self) -> str:
        return f"{self.id}@{self.version}"

    def permissions_for(self, parsed_input: Any) -> tuple[Permission, ...]:
        """``permissions``, then those ``input_permissions`` derives from the parsed input (without repeats)."""
        implied = self.input_permissions(parsed_input) if self.input_permissions else ()
        return self.permissions + tuple(dict.fromkeys(p for p in implied if p not in self.permissions))

    def input_schema(self) -> dict[str, Any]:
        """JSON Schema of the input (fields with defaults are optional)."""
        return self.input_model.model_json_schema()

    def output_schema(self) -> dict[str, Any]:
        return self.output_model.model_json_schema()

    def meta(self) -> dict[str, Any]:
        """What ``list()`` exposes (reference ActionMeta): everything but the handler."""
        return {
            "id": self.id,
            "version": self.version,
            "side_effectful": self.side_effectful,
            "idempotency": {"mode": self.idempotency},
            "permissions": [f"{r}:{a}" for r, a in self.permissions],
            "ui": {"label": self.label, "description": self.description, "category": self.category, "icon": self.icon},
            "input_schema": self.input_schema(),
            "output_schema": self.output_schema(),
        }


def resolve_schema(root: dict[str, Any], schema: Any, depth: int = 0) -> dict[str, Any]:
    """The object schema behind ``schema``: follow ``$ref`` (into ``$defs`` / ``definitions`` of ``root``), take
    the first non-null ``anyOf`` / ``oneOf`` variant and a single ``allOf`` (reference jsonSchema resolution).
    Returns ``{}`` for anything unresolvable."""
    if not isinstance(schema, dict) or depth > 20:
        return {}
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        node: Any = root
        for part in ref[2:].split("/"):
            node = node.get(part, {}) if isinstance(node, dict) else {}
        return resolve_schema(root, node, depth + 1)
    for key in ("anyOf", "oneOf"):
        variants = schema.get(key)
        if isinstance(variants, list) and variants:
            chosen = next((v for v in variants if not (isinstance(v, dict) and v.get("type") == "null")), variants[0])
            return resolve_schema(root, chosen, depth + 1)
    all_of = schema.get("allOf")
    if isinstance(all_of, list) and len(all_of) == 1:
        return resolve_schema(root, all_of[0], depth + 1)
    return schema


class RegistrationError(ValueError):
    """An action definition breaks a registration rule (reference: ActionRegistry.register)."""


class ActionRegistry:
    """Actions by ``id@version``, in registration order."""

    def __init__(self) -> None:
        self._actions: dict[str, ActionDef] = {}

    def register(self, action: ActionDef) -> ActionDef:
        """Add ``action``. Raises RegistrationError when id or version is missing, a model is missing, a
        side-effectful action has no idempotency strategy, or ``id@version`` is already registered."""
        if not action.id or not action.version or action.version < 1:
            raise RegistrationError("ActionRegistry.register requires id and version")
        if action.input_model is None or action.output_model is None:
            raise RegistrationError(f"Action {action.key} must include inputSchema and outputSchema")
        if action.side_effectful and action.idempotency is None:
            raise RegistrationError(f"Action {action.key} must define idempotency strategy")
        if action.key in self._actions:
            raise RegistrationError(f"ActionRegistry already has {action.key}")
        self._actions[action.key] = action
        return action

    def get(self, action_id: str, version: int) -> ActionDef | None:
        return self._actions.get(f"{action_id}@{version}")

    def versions(self, action_id: str) -> list[ActionDef]:
        """Every registered version of ``action_id``."""
        return [a for a in self._actions.values() if a.id == action_id]

    def list(self) -> list[ActionDef]:
        return list(self._actions.values())


def handler_models(handler: Handler) -> tuple[type[BaseModel], type[BaseModel]]:
    """The input and output models of ``async def handler(ctx, inp: Input) -> Output``, read from its
    annotations (``typing.get_type_hints``). Raises RegistrationError unless both are pydantic models."""
    hints = typing.get_type_hints(handler)
    parameters = list(inspect.signature(handler).parameters)
    input_model = hints.get(parameters[1]) if len(parameters) == 2 else None
    output_model = hints.get("return")
    for model in (input_model, output_model):
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            raise RegistrationError(
                f"handler {handler.__qualname__} must be (ctx, inp: InputModel) -> OutputModel with pydantic models"
            )
    return input_model, output_model  # type: ignore[return-value]


class ActionSet:
    """The actions one module declares, in definition order: ``actions = ActionSet()`` at the top of the
    module, then :meth:`define` on each handler. Iterating yields the ActionDefs."""

    def __init__(self) -> None:
        self._actions: list[ActionDef] = []

    def define(
        self,
        action_id: str,
        label: str,
        description: str,
        *,
        permissions: tuple[Permission, ...],
        idempotency: IdempotencyMode | None,
        side_effectful: bool = True,
        version: int = 1,
        category: str = DEFAULT_CATEGORY,
        icon: str | None = None,
        input_permissions: Callable[[Any], tuple[Permission, ...]] | None = None,
    ) -> Callable[[Handler], ActionDef]:
        """Decorator declaring the handler below as action ``action_id@version``, with its models read by
        :func:`handler_models`; it returns the ActionDef (the function is its ``handler``) and adds it to
        this set. The registration rules are checked when a registry registers it."""

        def declare(handler: Handler) -> ActionDef:
            input_model, output_model = handler_models(handler)
            action = ActionDef(
                id=action_id,
                version=version,
                label=label,
                description=description,
                input_model=input_model,
                output_model=output_model,
                side_effectful=side_effectful,
                idempotency=idempotency,
                permissions=permissions,
                handler=handler,
                category=category,
                icon=icon,
                input_permissions=input_permissions,
            )
            self._actions.append(action)
            return action

        return declare

    def __iter__(self) -> Iterator[ActionDef]:
        return iter(self._actions)
