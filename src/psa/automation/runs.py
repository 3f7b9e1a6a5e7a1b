"""Runs of published definitions: launching (run row + Temporal workflow), the interpreter's activities
(``run_action``, ``project_run``), and reading a run back (reference: spec §1.7; DESIGN.md: the actor is
the publisher of the run's definition version, and the run records who it was)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from temporalio import activity
from temporalio.client import Client, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import ApplicationError

from psa.automation import definitions
from psa.automation.errors import ActionFailure
from psa.automation.interpreter import RUN_WORKFLOW_PREFIX, ActionCall, AutomationRunWorkflow, Projection, RunInput
from psa.automation.invocation import invoke_action
from psa.automation.registry import ActionRegistry
from psa.db.engine import tenant_transaction
from psa.domain.errors import NotFoundError
from psa.jsonutil import canonical_json
from psa.timeutil import parse_iso


def run_workflow_id(run_id: UUID | str) -> str:
    """Temporal workflow id of a run: ``automation-run-<run_id>``."""
    return f"{RUN_WORKFLOW_PREFIX}{run_id}"


@dataclasses.dataclass(frozen=True)
class LaunchedRun:
    run_id: UUID
    workflow_id: UUID
    workflow_version: int
    temporal_workflow_id: str


async def launch_run(
    engine: AsyncEngine,
    client: Client,
    *,
    tenant: UUID,
    workflow: str,
    payload: dict[str, Any],
    task_queue: str,
    version: int | None = None,
    run_id: UUID | None = None,
    trigger_type: str | None = None,
    trigger_metadata: dict[str, Any] | None = None,
    event_type: str | None = None,
) -> LaunchedRun:
    """Start a run of the published ``workflow`` (id or key; latest version unless ``version``): insert the
    run row (RUNNING, actor = the version's publisher) and start ``AutomationRunWorkflow``.

    Idempotent on ``run_id``: an existing run row is reused and the Temporal start attaches to a running
    workflow (event triggers derive the run id from the event, so a redelivered event starts nothing new).
    Raises NotFoundError when the workflow or version is not published in the tenant, ValidationError when
    the workflow is paused, and whatever the Temporal client raises when the start is refused (the run row of
    that attempt is removed first, so no RUNNING row is left without a workflow; a retry with the same
    ``run_id`` inserts it again).
    """
    run_id = run_id or uuid4()
    async with tenant_transaction(engine, tenant) as conn:
        published = await definitions.get_published(conn, tenant, workflow, version)
        await _insert_run(conn, tenant, run_id, published, payload, trigger_type, trigger_metadata, event_type)
    temporal_id = run_workflow_id(run_id)
    try:
        handle = await client.start_workflow(
            AutomationRunWorkflow.run,
            RunInput(
                tenant_id=str(tenant),
                run_id=str(run_id),
                workflow_id=str(published.workflow_id),
                workflow_version=published.version,
                definition=published.definition,
                payload=payload,
            ),
            id=temporal_id,
            task_queue=task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )
    except Exception:
        async with tenant_transaction(engine, tenant) as conn:  # its log lines go with it (ON DELETE CASCADE)
            await conn.execute(
                text("DELETE FROM workflow_runs WHERE tenant = :t AND run_id = :id AND temporal_run_id IS NULL"),
                {"t": tenant, "id": run_id},
            )
        raise
    async with tenant_transaction(engine, tenant) as conn:
        await conn.execute(
            text(
                """UPDATE workflow_runs SET temporal_workflow_id = :w, temporal_run_id = :r, updated_at = now()
                    WHERE tenant = :t AND run_id = :id AND temporal_run_id IS NULL"""
            ),
            {"t": tenant, "id": run_id, "w": temporal_id, "r": handle.result_run_id},
        )
    return LaunchedRun(run_id, published.workflow_id, published.version, temporal_id)


RUN_LOG = text(
    """INSERT INTO workflow_run_logs (tenant, log_id, run_id, step_path, level, message, context_json)
       VALUES (:t, gen_random_uuid(), :run, :path, :level, :message, CAST(:context AS jsonb))"""
)


async def _insert_run(conn, tenant, run_id, published, payload, trigger_type, trigger_metadata, event_type) -> None:
    """The run row (RUNNING) and its "Run started" log line; nothing when the run id already exists."""
    result = await conn.execute(
        text(
            """INSERT INTO workflow_runs (tenant, run_id, workflow_id, workflow_version, status, node_path, input_json,
                                          trigger_type, trigger_metadata_json, event_type, actor_user_id,
                                          definition_hash)
               VALUES (:t, :id, :wf, :v, 'RUNNING', 'root.steps[0]', CAST(:input AS jsonb), :tt,
                       CAST(:tm AS jsonb), :et, :actor, :hash)
               ON CONFLICT DO NOTHING"""
        ),
        {
            "t": tenant,
            "id": run_id,
            "wf": published.workflow_id,
            "v": published.version,
            "input": canonical_json(payload),
            "tt": trigger_type,
            "tm": canonical_json(trigger_metadata) if trigger_metadata else None,
            "et": event_type,
            "actor": published.published_by,
            "hash": published.definition_hash,
        },
    )
    if result.rowcount:
        context = {
            "workflowId": str(published.workflow_id),
            "workflowVersion": published.version,
            "triggerType": trigger_type,
            "eventType": event_type,
            "payloadSizeBytes": len(canonical_json(payload).encode()),
        }
        await conn.execute(
            RUN_LOG,
            {
                "t": tenant,
                "run": run_id,
                "path": None,
                "level": "INFO",
                "message": "Run started",
                "context": canonical_json(context),
            },
        )


def run_handle(client: Client, run_id: UUID | str) -> WorkflowHandle:
    return client.get_workflow_handle(run_workflow_id(run_id))


@dataclasses.dataclass(frozen=True)
class RunView:
    """A run and its step rows, as ``psa automation runs show`` prints them."""

    run_id: UUID
    workflow_id: UUID
    workflow_version: int
    status: str
    actor_user_id: UUID | None
    error_json: dict[str, Any] | None
    started_at: datetime
    completed_at: datetime | None
    steps: list[dict[str, Any]]


async def get_run(conn: AsyncConnection, tenant: UUID, run_id: UUID) -> RunView:
    """The run with its steps in start order. Raises NotFoundError for a run of another tenant or none."""
    run = (
        await conn.execute(
            text(
                """SELECT run_id, workflow_id, workflow_version, status, actor_user_id, error_json, started_at,
                          completed_at FROM workflow_runs WHERE tenant = :t AND run_id = :r"""
            ),
            {"t": tenant, "r": run_id},
        )
    ).first()
    if run is None:
        raise NotFoundError(f"run {run_id} not found", field="run_id")
    steps = await conn.execute(
        text(
            """SELECT step_path, definition_step_id, status, attempt, duration_ms, error_json, started_at
                 FROM workflow_run_steps WHERE tenant = :t AND run_id = :r ORDER BY started_at, step_path, attempt"""
        ),
        {"t": tenant, "r": run_id},
    )
    return RunView(**run._mapping, steps=[dict(s._mapping) for s in steps])


class AutomationActivities:
    """The interpreter's activities: ``run_action`` (the action contract) and ``project_run`` (step rows and
    run status, as a local activity)."""

    def __init__(self, engine: AsyncEngine, registry: ActionRegistry) -> None:
        self.engine = engine
        self.registry = registry

    def all(self) -> list[Callable]:
        return [self.run_action, self.project_run]

    @activity.defn(name="run_action")
    async def run_action(self, call: ActionCall) -> dict[str, Any]:
        """Invoke one action for a run step. An ActionFailure becomes a non-retryable ApplicationError of type
        ``ActionFailure`` whose first detail is the structured error; database outages propagate (retried)."""
        try:
            invocation = await invoke_action(
                self.engine,
                self.registry,
                tenant=UUID(call.tenant_id),
                action_id=call.action_id,
                version=call.version,
                raw_input=call.input,
                run_id=UUID(call.run_id),
                step_path=call.step_path,
                idempotency_key=call.idempotency_key,
            )
        except ActionFailure as failure:
            raise ApplicationError(
                failure.info.message, failure.info.model_dump(), type="ActionFailure", non_retryable=True
            ) from None
        return invocation.output

    @activity.defn(name="project_run")
    async def project_run(self, projection: Projection) -> None:
        """Upsert step rows and update the run's status, node path and error (idempotent)."""
        tenant, run_id = UUID(projection.tenant_id), UUID(projection.run_id)
        async with tenant_transaction(self.engine, tenant) as conn:
            for step in projection.steps:
                await conn.execute(
                    text(
                        """INSERT INTO workflow_run_steps (tenant, step_id, run_id, step_path, definition_step_id,
                                   status, attempt, duration_ms, error_json, started_at, completed_at)
                           VALUES (:t, :id, :run, :path, :def, :status, :attempt, :ms, CAST(:err AS jsonb),
                                   :started, :completed)
                           ON CONFLICT (tenant, step_id) DO UPDATE SET status = EXCLUDED.status,
                                   duration_ms = EXCLUDED.duration_ms, error_json = EXCLUDED.error_json,
                                   completed_at = EXCLUDED.completed_at"""
                    ),
                    {
                        "t": tenant,
                        "id": UUID(step.step_id),
                        "run": run_id,
                        "path": step.step_path,
                        "def": step.definition_step_id,
                        "status": step.status,
                        "attempt": step.attempt,
                        "ms": step.duration_ms,
                        "err": json.dumps(step.error_json) if step.error_json else None,
                        "started": _ts(step.started_at),
                        "completed": _ts(step.completed_at),
                    },
                )
            await conn.execute(
                text(
                    """UPDATE workflow_runs SET status = :s, node_path = :node, error_json = CAST(:err AS jsonb),
                              completed_at = CASE WHEN :final THEN now() ELSE completed_at END, updated_at = now()
                        WHERE tenant = :t AND run_id = :run"""
                ),
                {
                    "t": tenant,
                    "run": run_id,
                    "s": projection.status,
                    "node": None if projection.final else projection.node_path,
                    "err": json.dumps(projection.error_json) if projection.error_json else None,
                    "final": projection.final,
                },
            )
            if projection.final:
                level = {"SUCCEEDED": "INFO", "FAILED": "ERROR"}.get(projection.status, "WARN")
                await conn.execute(
                    RUN_LOG,
                    {
                        "t": tenant,
                        "run": run_id,
                        "path": (projection.error_json or {}).get("node_path"),
                        "level": level,
                        "message": f"Run {projection.status.lower()}",
                        "context": json.dumps(projection.error_json or {}),
                    },
                )


def _ts(value: str | None) -> datetime | None:
    return parse_iso(value) if value else None
