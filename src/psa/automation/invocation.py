"""The action contract: one invocation of a registered action (reference: the action step execution, its
idempotency, handler context, permissions, audit and events; docs/automation.md, "Action contract",
"Idempotency" and "Events"; docs/decisions.md, "Automation runtime").

In ONE transaction on the tenant (``app.current_tenant`` set), in as few round trips as the handler allows:

1. the input is validated against the action's model, and text holding NUL (which PostgreSQL cannot store)
   is refused (VALIDATION_ERROR naming every field path; nothing written);
2. the actor is resolved (the run's actor: the publisher of its definition version) and every permission
   the action needs is checked through the actor's roles: PERMISSION_DENIED before any write, even the
   ledger's;
3. the idempotency ledger row ``(tenant, action, version, key)`` is claimed and locked: a SUCCEEDED row is a
   replay and returns its stored output with no side effects; otherwise ``attempt`` is incremented;
4. the handler runs; its writes, its audit row, its domain events (the transactional outbox) and its emails (the
   email outbox, keyed ``<action>@<version>/<idempotency key>/<n>``) commit together with the ledger row marked
   SUCCEEDED; the worker's email sender delivers the emails after commit. On failure the transaction is rolled
   back and the ledger row is then marked FAILED with the structured error and the attempt number, so a retry
   runs under the same key and ``attempt`` counts for real.

Errors (docs/architecture.md, "Error contract"): handlers, the domain and the permission check raise domain
errors; this module converts them to ``ActionFailure`` with ``from_domain``, the one place that does, and a
database error with ``from_database`` (a unique violation is CONFLICT naming its field, a foreign-key violation
NOT_FOUND; never INTERNAL_ERROR). An ``ActionFailure`` raised by the runtime passes unchanged; every failure
gets the step path as ``node_path``.

Keys: in a run, the engine key is the SHA-256 of the canonical JSON of ``{run_id, step_path, action_id,
version, input}``; an explicit key (a step's ``idempotencyKey``, the caller's key, or the input's
``idempotency_key`` for actions in ``action`` mode) is used as given. A direct call without a key is a new
call each time.
"""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any
from uuid import UUID, uuid4

import psycopg
from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from psa.automation import permissions
from psa.automation.errors import ActionFailure, from_domain, validation_failure
from psa.automation.events import Event
from psa.automation.registry import ActionContext, ActionDef, ActionRegistry
from psa.db.constraints import violation
from psa.db.engine import tenant_transaction
from psa.db.storable import unstorable
from psa.domain.errors import DomainError, ValidationError, violation_error
from psa.email import InvalidEmail, QueuedEmail, queue_email
from psa.jsonutil import canonical_hash, canonical_json
from psa.timeutil import iso_z

DIRECT_STEP_PATH = "direct"


LEDGER_KEY_MAX = 255
"""Longer idempotency keys (a definition step's explicit ``idempotencyKey``) are stored as ``sha256:<hex>`` of
the key: the same key still maps to the same ledger row."""


def engine_key(run_id: UUID | None, step_path: str, action_id: str, version: int, parsed_input: dict) -> str:
    """The runtime's idempotency key: SHA-256 hex of the canonical JSON of the call (the reference used a
    32-bit rolling hash; docs/automation.md, "Idempotency")."""
    call = {
        "run_id": str(run_id) if run_id else None,
        "step_path": step_path,
        "action_id": action_id,
        "version": version,
        "input": parsed_input,
    }
    return canonical_hash(call)


@dataclasses.dataclass(frozen=True)
class Invocation:
    """Outcome of ``invoke_action``: the output (JSON-ready dict), whether it was a ledger replay, the ledger
    row id, the attempt number that produced the output, and the idempotency key."""

    output: dict[str, Any]
    replayed: bool
    invocation_id: UUID
    attempt: int
    idempotency_key: str


async def invoke_action(
    engine: AsyncEngine,
    registry: ActionRegistry,
    *,
    tenant: UUID,
    action_id: str,
    version: int,
    raw_input: dict[str, Any],
    run_id: UUID | None = None,
    step_path: str = DIRECT_STEP_PATH,
    idempotency_key: str | None = None,
    actor_user_id: UUID | None = None,
) -> Invocation:
    """Run one action under the contract of the module doc and return its Invocation.

    ``actor_user_id`` is required without a run (direct invocation); with a run the actor is the run's.
    Raises ActionFailure (structured, ``node_path`` = ``step_path``) for unknown actions, invalid input,
    a missing actor, PERMISSION_DENIED and every handler failure. Database outages propagate as DBAPIError
    (transient: the caller retries, the ledger keeps the attempt count).
    """
    action = registry.get(action_id, version)
    if action is None:
        raise _at(ActionFailure.of("ActionError", "NOT_FOUND", f"Unknown action {action_id}@{version}"), step_path)
    try:
        parsed = action.input_model.model_validate(raw_input)
    except PydanticValidationError as exc:
        raise _at(validation_failure(exc, prefix="input."), step_path) from None
    input_json = parsed.model_dump(mode="json")
    problem = unstorable(input_json, "input")
    if problem:  # PostgreSQL text and jsonb cannot store it: refuse it here, before the ledger row
        message, paths = problem
        fields = [{"path": path, "message": message} for path in paths]
        summary = "; ".join(f"{path}: {message}" for path in paths)
        raise _at(ActionFailure.of("ValidationError", "VALIDATION_ERROR", summary, {"fields": fields}), step_path)
    key = idempotency_key or _action_key(action, input_json)
    if key is None:
        # In a run the engine key makes a step's re-execution a replay. A direct call has no step to re-run:
        # without a key it is a new call every time (else repeating an update weeks later would replay).
        key = engine_key(run_id, step_path, action_id, version, input_json) if run_id else f"direct:{uuid4()}"
    elif len(key) > LEDGER_KEY_MAX:  # a step's explicit key can be any length; the ledger's unique index cannot
        key = "sha256:" + hashlib.sha256(key.encode()).hexdigest()
    failed: ActionFailure | None = None
    # Scoped before the first read: under row-level security (the API role) only the tenant's rows are visible.
    async with tenant_transaction(engine, tenant) as conn:
        try:  # reads only: a denied actor writes nothing, not even a ledger row
            actor = await permissions.authorize(
                conn, tenant, action.permissions_for(parsed), run_id=run_id, actor_user_id=actor_user_id
            )
        except DomainError as exc:
            raise _at(from_domain(exc), step_path) from None
        ledger = await _claim(conn, tenant, action, key, run_id, step_path, input_json)
        if ledger.status == "SUCCEEDED":
            return Invocation(ledger.output_json, True, ledger.invocation_id, ledger.attempt, key)
        attempt = ledger.attempt + 1
        try:
            output, effects = await _execute(conn, action, parsed, tenant, run_id, step_path, key, attempt, actor)
        except ActionFailure as failure:
            failed = _at(failure, step_path)
            await conn.rollback()  # every write of the attempt goes, the ledger claim included
        else:
            await _succeed(
                conn,
                tenant,
                action,
                ledger,
                attempt,
                output,
                effects,
                actor=actor,
                run_id=run_id,
                step_path=step_path,
                key=key,
            )
            return Invocation(output, False, ledger.invocation_id, attempt, key)
    await _record_failure(engine, tenant, action, key, run_id, step_path, input_json, attempt, failed)
    raise failed


def from_database(exc: DBAPIError) -> ActionFailure:
    """A database error that reached the action contract (or the API) as a structured action error: a
    constraint violation (SQLSTATE class 23) as the domain error it stands for (psa.domain.errors.violation_error,
    its field from the schema: psa.db.constraints), converted by ``from_domain``, so a duplicate is CONFLICT naming
    the field and a missing reference NOT_FOUND; a value the column cannot hold (class 22) VALIDATION_ERROR "a
    value cannot be stored: ..."; anything else INTERNAL_ERROR with the driver's message (never the SQL
    parameters). A lost connection is the caller's to treat as transient."""
    found = violation(exc)
    if found is not None:
        error = violation_error(found.kind, found.field, constraint=found.constraint, table=found.table)
        return from_domain(error)
    if isinstance(exc.orig, psycopg.errors.DataError):
        message = exc.orig.diag.message_primary
        return ActionFailure.of("ValidationError", "VALIDATION_ERROR", f"a value cannot be stored: {message}")
    return ActionFailure.of(
        "ActionError", "INTERNAL_ERROR", f"database error: {type(exc.orig or exc).__name__}: {exc.orig or exc}"
    )


def _action_key(action: ActionDef, input_json: dict[str, Any]) -> str | None:
    """``action`` mode: the input's trimmed ``idempotency_key`` when given (reference actionProvidedKey)."""
    if action.idempotency != "action":
        return None
    given = input_json.get("idempotency_key")
    return given.strip() if isinstance(given, str) and given.strip() else None


@dataclasses.dataclass
class _Ledger:
    invocation_id: UUID
    status: str
    attempt: int
    output_json: dict[str, Any] | None


CLAIM = text(
    """INSERT INTO workflow_action_invocations (tenant, invocation_id, run_id, step_path, action_id, action_version,
                                             idempotency_key, status, attempt, input_json, started_at)
       VALUES (:t, :id, :run, :path, :a, :v, :k, 'STARTED', 0, CAST(:input AS jsonb), now())
       ON CONFLICT (tenant, action_id, action_version, idempotency_key) DO NOTHING
       RETURNING invocation_id, status, attempt, output_json"""
)
LOCK = text(
    """SELECT invocation_id, status, attempt, output_json FROM workflow_action_invocations
        WHERE tenant = :t AND action_id = :a AND action_version = :v AND idempotency_key = :k FOR UPDATE"""
)
RECORD_FAILURE = text(
    """INSERT INTO workflow_action_invocations AS w (tenant, invocation_id, run_id, step_path, action_id,
              action_version, idempotency_key, status, attempt, input_json, error_json, started_at, completed_at)
       VALUES (:t, :id, :run, :path, :a, :v, :k, 'FAILED', :n, CAST(:input AS jsonb), CAST(:err AS jsonb), now(), now())
       ON CONFLICT (tenant, action_id, action_version, idempotency_key) DO UPDATE
          SET status = 'FAILED', attempt = greatest(w.attempt + 1, EXCLUDED.attempt), error_json = EXCLUDED.error_json,
              completed_at = now()
        WHERE w.status <> 'SUCCEEDED'"""
)


async def _claim(
    conn: AsyncConnection, tenant: UUID, action: ActionDef, key: str, run_id: UUID | None, step_path: str, input_json
) -> _Ledger:
    """Insert the ledger row of this key, or lock the existing one (a concurrent twin waits on the lock
    until we commit or roll back)."""
    params = {"t": tenant, "a": action.id, "v": action.version, "k": key}
    claimed = await conn.execute(
        CLAIM, {**params, "id": uuid4(), "run": run_id, "path": step_path, "input": canonical_json(input_json)}
    )
    row = claimed.first() or (await conn.execute(LOCK, params)).one()
    return _Ledger(row.invocation_id, row.status, row.attempt, row.output_json)


async def _record_failure(
    engine: AsyncEngine,
    tenant,
    action: ActionDef,
    key: str,
    run_id,
    step_path: str,
    input_json,
    attempt: int,
    failure: ActionFailure,
) -> None:
    """After the attempt rolled back: mark the ledger row FAILED with the structured error and the attempt
    count (never overwriting a SUCCEEDED row a concurrent twin committed meanwhile)."""
    async with tenant_transaction(engine, tenant) as conn:
        await conn.execute(
            RECORD_FAILURE,
            {
                "t": tenant,
                "id": uuid4(),
                "run": run_id,
                "path": step_path,
                "a": action.id,
                "v": action.version,
                "k": key,
                "n": attempt,
                "input": canonical_json(input_json),
                "err": canonical_json(failure.info.model_dump()),
            },
        )


@dataclasses.dataclass
class _Effects:
    """What a handler asked to record: its audit data and its domain events, written with the ledger row."""

    audit: dict[str, Any] = dataclasses.field(default_factory=dict)
    events: list[dict[str, Any]] = dataclasses.field(default_factory=list)


async def _execute(
    conn: AsyncConnection,
    action: ActionDef,
    parsed: BaseModel,
    tenant: UUID,
    run_id: UUID | None,
    step_path: str,
    key: str,
    attempt: int,
    actor: UUID,
) -> tuple[dict[str, Any], _Effects]:
    """Run the handler in the invocation's transaction; returns its validated output and recorded effects."""
    effects = _Effects()
    queued: list[QueuedEmail] = []

    async def record_audit(changed_data: dict[str, Any] | None = None, details: dict[str, Any] | None = None) -> None:
        effects.audit = {"changed_data": changed_data or {}, "details": details or {}}

    async def emit(event: Event) -> None:
        at = iso_z(event.occurred_at() or datetime.now(UTC))
        body = {
            **event.payload(),
            "tenantId": str(tenant),
            "occurredAt": at,
            "actorType": "USER",
            "actorUserId": str(actor),
        }
        effects.events.append(
            {
                "event_id": str(uuid4()),
                "event_type": event.event_type,
                "idempotency_key": event.key(),
                "payload": body,
                "occurred_at": at,
            }
        )

    async def queue(kind: str, message: EmailMessage) -> QueuedEmail:
        # The n-th email of this key: a retry of the attempt (after a rollback) queues the same rows again.
        try:
            email = await queue_email(
                conn, tenant=tenant, source_key=f"{action.key}/{key}/{len(queued) + 1}", kind=kind, message=message
            )
        except InvalidEmail as exc:
            raise ValidationError(str(exc), details={"address": exc.address} if exc.address else None) from None
        queued.append(email)
        return email

    ctx = ActionContext(
        conn=conn,
        tenant=tenant,
        actor_user_id=actor,
        action_id=action.id,
        action_version=action.version,
        run_id=run_id,
        step_path=step_path,
        idempotency_key=key,
        attempt=attempt,
        now=datetime.now(UTC),
        audit=record_audit,
        emit=emit,
        queue_email=queue,
    )
    try:
        result = await action.handler(ctx, parsed)
        output = action.output_model.model_validate(
            result.model_dump() if isinstance(result, BaseModel) else result
        ).model_dump(mode="json")
    except ActionFailure:
        raise
    except DomainError as exc:
        raise from_domain(exc) from None
    except PydanticValidationError as exc:
        raise validation_failure(exc) from None
    except DBAPIError as exc:
        if exc.connection_invalidated:
            raise  # an outage: transient, retried by the caller
        raise from_database(exc) from None
    return output, effects


# One round trip after the handler: the outbox rows (a key already queued is not queued twice), the audit row
# of a side-effectful action (reference writeRunAudit; docs/automation.md, "Action contract"), and the ledger row
# marked SUCCEEDED.
SUCCEED = text(
    """WITH events AS (
         INSERT INTO workflow_event_outbox (tenant, event_id, event_type, idempotency_key, payload, occurred_at,
                                           actor_user_id, run_id)
         SELECT :t, e.event_id, e.event_type, e.idempotency_key, e.payload, e.occurred_at, :actor, :run
           FROM jsonb_to_recordset(CAST(:events AS jsonb))
             AS e(event_id uuid, event_type text, idempotency_key text, payload jsonb, occurred_at timestamptz)
         ON CONFLICT (tenant, idempotency_key) DO NOTHING),
       audit AS (
         INSERT INTO audit_logs (tenant, user_id, operation, table_name, record_id, changed_data, details)
         SELECT :t, :actor, :op, :table, :record, CAST(:changed AS jsonb), CAST(:details AS jsonb) WHERE :audited)
       UPDATE workflow_action_invocations
          SET status = 'SUCCEEDED', attempt = :n, output_json = CAST(:out AS jsonb), error_json = NULL,
              completed_at = now()
        WHERE tenant = :t AND invocation_id = :id"""
)


async def _succeed(
    conn: AsyncConnection,
    tenant: UUID,
    action: ActionDef,
    ledger: _Ledger,
    attempt: int,
    output: dict[str, Any],
    effects: _Effects,
    *,
    actor: UUID,
    run_id: UUID | None,
    step_path: str,
    key: str,
) -> None:
    details = {
        "action_id": action.id,
        "action_version": action.version,
        "step_path": step_path,
        "idempotency_key": key,
        **effects.audit.get("details", {}),
    }
    await conn.execute(
        SUCCEED,
        {
            "t": tenant,
            "actor": actor,
            "run": run_id,
            "events": canonical_json(effects.events),
            "audited": action.side_effectful,
            "op": f"workflow_action:{action.id}",
            "table": "workflow_runs" if run_id else "workflow_action_invocations",
            "record": str(run_id or key),
            "changed": canonical_json(effects.audit.get("changed_data", {})),
            "details": canonical_json(details),
            "n": attempt,
            "out": canonical_json(output),
            "id": ledger.invocation_id,
        },
    )


def _at(failure: ActionFailure, step_path: str) -> ActionFailure:
    """Fill the node path of a failure that has none (structured errors otherwise pass through unchanged)."""
    if failure.info.node_path is None:
        failure.info.node_path = step_path
    return failure
