"""The run tables (``workflow_runs``, ``workflow_run_steps``, ``workflow_run_logs``): the run row and its log
lines that the starter writes, the step rows and status that ``project_run`` writes, and the run read back
(``get_run``, for the CLI and the API). One module, because the starter and the activities share the row
shapes and the log statement, and the read model reads exactly those rows. Every function runs in the
caller's transaction."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from psa.automation.definitions import PublishedVersion
from psa.automation.run.types import Projection
from psa.domain.errors import NotFoundError
from psa.jsonutil import canonical_json
from psa.timeutil import parse_iso

RUN_LOG = text(
    """INSERT INTO workflow_run_logs (tenant, log_id, run_id, step_path, level, message, context_json)
       VALUES (:t, gen_random_uuid(), :run, :path, :level, :message, CAST(:context AS jsonb))"""
)


async def insert_run(
    conn: AsyncConnection,
    tenant: UUID,
    run_id: UUID,
    published: PublishedVersion,
    payload: dict[str, Any],
    trigger_type: str | None,
    trigger_metadata: dict[str, Any] | None,
    event_type: str | None,
) -> None:
    """The run row (RUNNING, actor = the version's publisher) and its "Run started" log line; nothing when the
    run id already exists."""
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


async def delete_unstarted_run(conn: AsyncConnection, tenant: UUID, run_id: UUID) -> None:
    """Remove the run row no Temporal run was recorded for (its log lines go with it: ON DELETE CASCADE)."""
    await conn.execute(
        text("DELETE FROM workflow_runs WHERE tenant = :t AND run_id = :id AND temporal_run_id IS NULL"),
        {"t": tenant, "id": run_id},
    )


async def record_temporal_run(
    conn: AsyncConnection, tenant: UUID, run_id: UUID, temporal_workflow_id: str, temporal_run_id: str | None
) -> None:
    """Record the Temporal workflow and run ids of a run row that has none yet."""
    await conn.execute(
        text(
            """UPDATE workflow_runs SET temporal_workflow_id = :w, temporal_run_id = :r, updated_at = now()
                WHERE tenant = :t AND run_id = :id AND temporal_run_id IS NULL"""
        ),
        {"t": tenant, "id": run_id, "w": temporal_workflow_id, "r": temporal_run_id},
    )


async def project(conn: AsyncConnection, projection: Projection) -> None:
    """Upsert the projection's step rows and update the run's status, node path and error; a final projection
    also sets ``completed_at`` and writes the "Run <status>" log line. Idempotent."""
    tenant, run_id = UUID(projection.tenant_id), UUID(projection.run_id)
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


def _ts(value: str | None) -> datetime | None:
    return parse_iso(value) if value else None
