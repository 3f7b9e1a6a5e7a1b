"""Transactional outbox of domain events and its dispatcher: events are written in the action's transaction and
delivered after commit, at least once, with deterministic idempotency keys (docs/architecture.md, "Events and the
outbox").

Actions queue events through ``ActionContext.emit`` (psa.automation.invocation). ``dispatch_pending`` claims
undelivered rows, hands each to the event handlers and marks it delivered; a crash between the two
delivers it again, so handlers must be idempotent. The built-in handler starts a run of every published
definition with ``trigger: {type: "event", eventName}`` equal to the event's type, in the event's tenant
(reference: event trigger routing; docs/automation.md, "Events"), with a run id derived from (event, workflow),
so a redelivery starts nothing new.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any
from uuid import UUID, uuid5

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from psa.automation import definitions, expressions
from psa.automation.errors import ActionFailure
from psa.automation.run.starter import launch_run
from psa.automation.run.types import DEFAULT_ACTION_TIMEOUT_SECONDS
from psa.db.engine import tenant_transaction

log = logging.getLogger(__name__)
TRIGGER_NAMESPACE = UUID("5d8e2b7a-4c1f-4e6b-9a3d-2f7c8e1b0a64")
MAX_ATTEMPTS = 10


@dataclasses.dataclass(frozen=True)
class OutboxEvent:
    tenant: UUID
    event_id: UUID
    event_type: str
    idempotency_key: str
    payload: dict[str, Any]
    occurred_at: datetime
    attempts: int


EventHandler = Callable[[OutboxEvent], Awaitable[None]]


async def claim_pending(engine: AsyncEngine, *, limit: int = 100, tenant: UUID | None = None) -> list[OutboxEvent]:
    """Undelivered events (of every tenant, or of ``tenant`` only), oldest first, with ``attempts`` incremented
    (rows another dispatcher holds are skipped; events that failed MAX_ATTEMPTS times are left for an operator)."""
    async with tenant_transaction(engine, tenant) as conn:
        result = await conn.execute(
            text(
                """UPDATE workflow_event_outbox o SET attempts = o.attempts + 1
                    WHERE (o.tenant, o.event_id) IN (
                          SELECT tenant, event_id FROM workflow_event_outbox
                           WHERE delivered_at IS NULL AND attempts < :max
                             AND (CAST(:tenant AS uuid) IS NULL OR tenant = :tenant)
                           ORDER BY created_at LIMIT :limit FOR UPDATE SKIP LOCKED)
                RETURNING o.tenant, o.event_id, o.event_type, o.idempotency_key, o.payload, o.occurred_at, o.attempts"""
            ),
            {"limit": limit, "max": MAX_ATTEMPTS, "tenant": tenant},
        )
        return sorted((OutboxEvent(**row._mapping) for row in result), key=lambda e: e.occurred_at)


async def mark(engine: AsyncEngine, event: OutboxEvent, error: str | None) -> None:
    """Record delivery (``error`` None) or the last error of a failed delivery."""
    async with tenant_transaction(engine, event.tenant) as conn:
        await conn.execute(
            text(
                """UPDATE workflow_event_outbox
                      SET delivered_at = CASE WHEN CAST(:err AS text) IS NULL THEN now() END, last_error = :err
                    WHERE tenant = :t AND event_id = :id"""
            ),
            {"t": event.tenant, "id": event.event_id, "err": error},
        )


async def dispatch_pending(
    engine: AsyncEngine, handlers: list[EventHandler], *, limit: int = 100, tenant: UUID | None = None
) -> int:
    """Deliver up to ``limit`` pending events (of every tenant, or of ``tenant`` only: one tenant's backlog) to every
    handler; returns how many were delivered."""
    delivered = 0
    for event in await claim_pending(engine, limit=limit, tenant=tenant):
        try:
            for handler in handlers:
                await handler(event)
        except Exception as exc:  # noqa: BLE001 - recorded on the row, retried on the next pass
            log.warning("event %s (%s) not delivered: %s", event.event_id, event.event_type, exc)
            await mark(engine, event, f"{type(exc).__name__}: {exc}")
            continue
        await mark(engine, event, None)
        delivered += 1
    return delivered


def event_trigger(
    engine: AsyncEngine,
    client: Client,
    *,
    task_queue: str,
    action_timeout_seconds: float = DEFAULT_ACTION_TIMEOUT_SECONDS,
) -> EventHandler:
    """The handler that starts event-triggered runs (see the module doc) on ``task_queue``, with
    ``action_timeout_seconds`` per action attempt (``launch_run``). A ``payloadMapping`` is resolved against
    ``{event: {name, payload}}`` and dotted keys expand into objects (reference: event trigger routing)."""

    async def handle(event: OutboxEvent) -> None:
        async with tenant_transaction(engine, event.tenant) as conn:
            targets = await definitions.list_event_triggered(conn, event.tenant, event.event_type)
        for published in targets:
            mapping = (published.definition.get("trigger") or {}).get("payloadMapping")
            payload = event.payload if not mapping else _mapped(mapping, event)
            await launch_run(
                engine,
                client,
                tenant=event.tenant,
                workflow=str(published.workflow_id),
                payload=payload,
                task_queue=task_queue,
                action_timeout_seconds=action_timeout_seconds,
                version=published.version,
                run_id=uuid5(TRIGGER_NAMESPACE, f"{event.event_id}/{published.workflow_id}"),
                trigger_type="event",
                event_type=event.event_type,
                trigger_metadata={
                    "eventId": str(event.event_id),
                    "eventType": event.event_type,
                    "triggerMappingApplied": bool(mapping),
                },
            )

    return handle


def _mapped(mapping: dict[str, Any], event: OutboxEvent) -> dict[str, Any]:
    context = {"event": {"name": event.event_type, "payload": event.payload}}
    try:
        resolved = expressions.resolve_mapping(mapping, context)
    except ActionFailure as failure:
        raise ValueError(f"payloadMapping: {failure.info.message}") from None
    expanded: dict[str, Any] = {}
    for key, value in resolved.items():
        node = expanded
        *parents, last = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return expanded
