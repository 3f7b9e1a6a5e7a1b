"""Starting runs of published definitions (the CLI, the API and the event trigger of psa.automation.outbox):
the run row, then ``AutomationRunWorkflow``. The actor of a run is the publisher of its definition version,
and the run row records who it was (docs/automation.md, "Runs")."""

from __future__ import annotations

import dataclasses
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from psa.automation import definitions
from psa.automation.run import records
from psa.automation.run.types import DEFAULT_ACTION_TIMEOUT_SECONDS, RunInput
from psa.automation.run.workflow import AutomationRunWorkflow
from psa.db.engine import tenant_transaction

RUN_WORKFLOW_PREFIX = "automation-run-"


def run_workflow_id(run_id: UUID | str) -> str:
    """Temporal workflow id of a run: ``automation-run-<run_id>``."""
    return f"{RUN_WORKFLOW_PREFIX}{run_id}"


@dataclasses.dataclass(frozen=True)
class LaunchedRun:
    """A started run: its id, the workflow and version it runs, and its Temporal workflow id."""

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
    action_timeout_seconds: float = DEFAULT_ACTION_TIMEOUT_SECONDS,
) -> LaunchedRun:
    """Start a run of the published ``workflow`` (id or key; latest version unless ``version``): insert the
    run row (RUNNING, actor = the version's publisher) and start ``AutomationRunWorkflow``.
    ``action_timeout_seconds`` is the start-to-close timeout of each of its action attempts (callers pass the
    setting ``automation_action_timeout_seconds``).

    Idempotent on ``run_id``: one run id is one Temporal execution, ever. An existing run row is reused, the
    Temporal start attaches to a running workflow and starts nothing when that run has already ended (event
    triggers derive the run id from the event, so a redelivered event starts nothing new, even after the run it
    started has finished; docs/automation.md, "Events").
    Raises NotFoundError when the workflow or version is not published in the tenant, ValidationError when
    the workflow is paused, and whatever the Temporal client raises when the start is refused (the run row of
    that attempt is removed first, so no RUNNING row is left without a workflow; a retry with the same
    ``run_id`` inserts it again).
    """
    run_id = run_id or uuid4()
    async with tenant_transaction(engine, tenant) as conn:
        published = await definitions.get_published(conn, tenant, workflow, version)
        await records.insert_run(conn, tenant, run_id, published, payload, trigger_type, trigger_metadata, event_type)
    temporal_id = run_workflow_id(run_id)
    try:
        started = await client.start_workflow(
            AutomationRunWorkflow.run,
            RunInput(
                tenant_id=str(tenant),
                run_id=str(run_id),
                workflow_id=str(published.workflow_id),
                workflow_version=published.version,
                definition=published.definition,
                payload=payload,
                action_timeout_seconds=action_timeout_seconds,
            ),
            id=temporal_id,
            task_queue=task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        )
        temporal_run_id = started.result_run_id
    except WorkflowAlreadyStartedError as ended:  # this run id's execution has already closed
        temporal_run_id = ended.run_id
    except Exception:
        async with tenant_transaction(engine, tenant) as conn:
            await records.delete_unstarted_run(conn, tenant, run_id)
        raise
    async with tenant_transaction(engine, tenant) as conn:
        await records.record_temporal_run(conn, tenant, run_id, temporal_id, temporal_run_id)
    return LaunchedRun(run_id, published.workflow_id, published.version, temporal_id)


def run_handle(client: Client, run_id: UUID | str) -> WorkflowHandle:
    """The Temporal handle of a run (result, cancel, ``get_steps`` query)."""
    return client.get_workflow_handle(run_workflow_id(run_id))
