"""Payloads that cross the boundary of ``AutomationRunWorkflow`` (its input and result, the inputs of its
activities), and the names of those activities. Types only: workflow code imports them."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field


class ActivityName(StrEnum):
    """The registered name of each activity of the run workflow: ``@activity.defn(name=...)`` takes it from
    here and the workflow calls the activity by it. The workflow cannot name the methods themselves
    (``execute_activity_method(AutomationActivities.x)``): importing the activity class would pull the
    database layer into workflow code, which the import contract ``workflows-pure`` forbids."""

    RUN_ACTION = "run_action"
    PROJECT_RUN = "project_run"


DEFAULT_ACTION_TIMEOUT_SECONDS = 60.0
"""Start-to-close timeout of one ``run_action`` attempt unless the launcher sets one (the setting
``automation_action_timeout_seconds``, docs/operations.md, "Settings")."""


class RunInput(BaseModel):
    """What a run executes: the tenant, the run row, the pinned definition version (its stored JSON, so history
    stays JSON) and the payload. ``action_timeout_seconds`` is the start-to-close timeout of each ``run_action``
    attempt: a worker that dies during an action is noticed, and the action retried on another worker, after it
    (docs/automation.md, "Idempotency")."""

    tenant_id: str
    run_id: str
    workflow_id: str
    workflow_version: int
    definition: dict[str, Any]
    payload: dict[str, Any] = Field(default_factory=dict)
    action_timeout_seconds: float = Field(default=DEFAULT_ACTION_TIMEOUT_SECONDS, gt=0)


class RunResult(BaseModel):
    """What a run that did not fail returns: ``status`` SUCCEEDED, the final ``payload`` and ``vars`` scopes."""

    status: str
    payload: dict[str, Any]
    vars: dict[str, Any]
    error: dict[str, Any] | None = None


class StepRecord(BaseModel):
    """One step execution, as projected to ``workflow_run_steps``: ``status`` STARTED, SUCCEEDED, FAILED or
    CANCELED; times ISO-8601 with ``Z`` in workflow time; ``error_json`` the structured error of a failure."""

    step_id: str
    step_path: str
    definition_step_id: str
    status: str
    attempt: int
    started_at: str
    completed_at: str | None = None
    duration_ms: int | None = None
    error_json: dict[str, Any] | None = None


class Projection(BaseModel):
    """Input of the ``project_run`` local activity: step rows to upsert and the run's current state."""

    tenant_id: str
    run_id: str
    steps: list[StepRecord] = Field(default_factory=list)
    node_path: str | None = None
    status: str = "RUNNING"
    error_json: dict[str, Any] | None = None
    final: bool = False


class ActionCall(BaseModel):
    """Input of the ``run_action`` activity: one action invocation for the step at ``step_path``."""

    tenant_id: str
    run_id: str
    step_path: str
    action_id: str
    version: int
    input: dict[str, Any]
    idempotency_key: str | None = None
