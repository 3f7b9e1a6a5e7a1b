"""Activities of ``AutomationRunWorkflow``, bound to one engine and action registry: ``run_action`` (one
action through the action contract of psa.automation.invocation) and ``project_run`` (step rows and run
status, run as a local activity)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity
from temporalio.exceptions import ApplicationError

from psa.automation.errors import ActionFailure
from psa.automation.invocation import invoke_action
from psa.automation.registry import ActionRegistry
from psa.automation.run import records
from psa.automation.run.types import ActionCall, ActivityName, Projection
from psa.db.engine import tenant_transaction


class AutomationActivities:
    """The run workflow's activities. ``all()`` lists them for a worker."""

    def __init__(self, engine: AsyncEngine, registry: ActionRegistry) -> None:
        self.engine = engine
        self.registry = registry

    def all(self) -> list[Callable]:
        """Every activity of the run workflow, the ``project_run`` local activity included."""
        return [self.run_action, self.project_run]

    @activity.defn(name=ActivityName.RUN_ACTION)
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
                failure.info.message, failure.info.model_dump(), type=ActionFailure.__name__, non_retryable=True
            ) from None
        return invocation.output

    @activity.defn(name=ActivityName.PROJECT_RUN)
    async def project_run(self, projection: Projection) -> None:
        """Upsert step rows and update the run's status, node path and error (idempotent)."""
        async with tenant_transaction(self.engine, UUID(projection.tenant_id)) as conn:
            await records.project(conn, projection)
