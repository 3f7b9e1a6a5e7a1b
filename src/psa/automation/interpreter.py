"""``AutomationRunWorkflow``: the Temporal workflow that walks a published definition version (reference:
spec §1.4 control flow, §1.7 run execution; DESIGN.md "Automation runtime").

- ``action.call`` runs as the ``run_action`` activity (the action contract of psa.automation.invocation);
  every other step is evaluated in the workflow itself (expressions are pure JSONata).
- Step rows (STARTED / SUCCEEDED / FAILED, attempt, duration, error) are buffered and projected to
  PostgreSQL by the ``project_run`` local activity before each action and when the run ends.
- Per-step ``retry`` (attempts, backoff, multiplier, max delay, ``retryOn`` categories), ``onError:
  continue``, ``control.tryCatch`` with ``captureErrorAs``, ``control.forEach`` with ``onItemError``, and
  ``control.return``. Structured errors ``{category, code, message, details, node_path, at}`` cross the
  activity boundary unchanged, so ``retryOn`` and ``captureErrorAs`` see the real category.
- Run status: RUNNING, then SUCCEEDED, FAILED or CANCELED (Temporal cancellation).

The workflow imports no database or network module.
"""

from __future__ import annotations

import asyncio
import copy
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from pydantic import BaseModel, Field

    from psa.automation import expressions
    from psa.automation.errors import ActionErrorInfo, ActionFailure
    from psa.timeutil import iso_z, parse_iso

RUN_WORKFLOW_PREFIX = "automation-run-"
ACTION_TIMEOUT = timedelta(seconds=60)
ACTION_SCHEDULE_TO_CLOSE = timedelta(minutes=10)
# Infrastructure faults (a database outage) are retried by Temporal; action failures are not: the step's own
# retry policy decides (ActionFailure is raised as a non-retryable ApplicationError).
TRANSIENT_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=30),
    non_retryable_error_types=["ActionFailure"],
)
LOCAL_TIMEOUT = timedelta(seconds=30)


class RunInput(BaseModel):
    """What a run executes: the tenant, the run row, the pinned definition version and the payload."""

    tenant_id: str
    run_id: str
    workflow_id: str
    workflow_version: int
    definition: dict[str, Any]
    payload: dict[str, Any] = Field(default_factory=dict)


class StepRecord(BaseModel):
    """One step execution, as projected to ``workflow_run_steps``."""

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
    """Input of the ``run_action`` activity."""

    tenant_id: str
    run_id: str
    step_path: str
    action_id: str
    version: int
    input: dict[str, Any]
    idempotency_key: str | None = None


class RunResult(BaseModel):
    status: str
    payload: dict[str, Any]
    vars: dict[str, Any]
    error: dict[str, Any] | None = None


class StepFailed(Exception):
    """A step failed after its retries; carries the structured error."""

    def __init__(self, info: ActionErrorInfo) -> None:
        super().__init__(info.message)
        self.info = info


class _Return(Exception):
    """``control.return``: end the run successfully."""


SCOPES = ("payload.", "vars.", "meta.")
FORBIDDEN_SEGMENTS = {"__proto__", "prototype", "constructor"}


def scoped_path(path: str) -> list[str]:
    """``saveAs`` / assign target as segments with its scope first: an unscoped name goes to ``vars``
    (reference assignToScopePath; the same rule as publish validation's ``normalize_assign_path``, which
    already rejected anything else). Raises ValueError for an empty segment or a forbidden one."""
    path = path.strip()
    if not path.startswith(SCOPES):
        path = "vars." + path
    segments = path.split(".")
    if any(not s or s in FORBIDDEN_SEGMENTS for s in segments):
        raise ValueError(f"Assignment path must be scoped and well-formed: {path}")
    return segments


@workflow.defn(name="AutomationRunWorkflow")
class AutomationRunWorkflow:
    """Interpret one published definition version for one run (see the module doc)."""

    def __init__(self) -> None:
        self._input: RunInput | None = None
        self._scopes: dict[str, Any] = {"payload": {}, "vars": {}, "meta": {}, "error": None}
        self._lexical: list[dict[str, Any]] = []
        self._pending: list[StepRecord] = []
        self._attempts: dict[str, int] = {}
        self._history: list[StepRecord] = []

    @workflow.query(name="get_steps")
    def get_steps(self) -> list[StepRecord]:
        """Every step execution so far, in order of start."""
        return self._history

    @workflow.run
    async def run(self, run_input: RunInput) -> RunResult:
        self._input = run_input
        self._scopes["payload"] = copy.deepcopy(run_input.payload)
        self._scopes["meta"] = {
            "runId": run_input.run_id,
            "workflowId": run_input.workflow_id,
            "workflowVersion": run_input.workflow_version,
            "tenantId": run_input.tenant_id,
        }
        status, error = "SUCCEEDED", None
        try:
            await self._run_steps(run_input.definition.get("steps", []), "root.steps")
        except _Return:
            pass
        except StepFailed as failed:
            status, error = "FAILED", failed.info.model_dump()
        except asyncio.CancelledError:
            await self._project(
                status="CANCELED", final=True, error={"category": "Cancellation", "message": "canceled"}
            )
            raise
        await self._project(status=status, final=True, error=error)
        result = RunResult(status=status, payload=self._scopes["payload"], vars=self._scopes["vars"], error=error)
        if status == "FAILED":
            info = ActionErrorInfo.model_validate(error)
            raise ApplicationError(
                info.message, info.model_dump(), type=f"WorkflowRun.{info.category}", non_retryable=True
            )
        return result

    # -- steps --------------------------------------------------------------------------------------
    async def _run_steps(self, steps: list[dict[str, Any]], prefix: str, *, continue_on_error: bool = False) -> None:
        for index, step in enumerate(steps):
            try:
                await self._run_step(step, f"{prefix}[{index}]")
            except StepFailed as failed:
                if not continue_on_error:
                    raise
                self._scopes["error"] = failed.info.model_dump()  # forEach onItemError: continue

    async def _run_step(self, step: dict[str, Any], path: str) -> None:
        record = self._start(step, path)
        kind = step["type"]
        try:
            if kind == "control.if":
                branch = self._condition(step, path)
                await self._run_steps(step.get(branch) or [], f"{path}.{branch}.steps")
            elif kind == "control.forEach":
                await self._for_each(step, path)
            elif kind == "control.tryCatch":
                await self._try_catch(step, path)
            elif kind == "control.return":
                self._end(record, "SUCCEEDED")
                raise _Return()
            elif kind == "transform.assign":
                for target, expr in (step.get("config") or {}).get("assign", {}).items():
                    self._assign(target, self._eval(expr, path))
            elif kind == "state.set":
                self._scopes["meta"]["state"] = step["config"]["state"]
            elif kind == "action.call":
                await self._action(step, path)
            else:
                raise StepFailed(_error("ValidationError", f"Unknown node type {kind}", path))
        except StepFailed as failed:
            self._end(record, "FAILED", failed.info)
            raise
        except _Return:
            if record.status == "STARTED":
                self._end(record, "SUCCEEDED")  # a container of the return step
            raise
        except asyncio.CancelledError:
            self._end(record, "CANCELED")
            raise
        self._end(record, "SUCCEEDED")

    def _condition(self, step: dict[str, Any], path: str) -> str:
        value = self._eval(step["condition"], path)
        if not isinstance(value, bool):
            raise StepFailed(_error("ValidationError", "control.if condition must evaluate to a boolean", path))
        return "then" if value else "else"

    async def _for_each(self, step: dict[str, Any], path: str) -> None:
        items = self._eval(step["items"], path)
        if not isinstance(items, list):
            raise StepFailed(_error("ValidationError", "control.forEach items did not evaluate to an array", path))
        name, variables = step["itemVar"], self._scopes["vars"]
        had, previous = name in variables, variables.get(name)
        try:
            for index, item in enumerate(items):
                variables[name] = item
                self._lexical.append(
                    {
                        name: item,
                        "item": item,
                        "index": index,
                        "length": len(items),
                        "isFirst": index == 0,
                        "isLast": index == len(items) - 1,
                    }
                )
                try:
                    await self._run_steps(
                        step.get("body") or [],
                        f"{path}.body.steps",
                        continue_on_error=step.get("onItemError") == "continue",
                    )
                finally:
                    self._lexical.pop()
        finally:
            if had:
                variables[name] = previous
            else:
                variables.pop(name, None)

    async def _try_catch(self, step: dict[str, Any], path: str) -> None:
        try:
            await self._run_steps(step.get("try") or [], f"{path}.try.steps")
        except StepFailed as failed:
            caught = failed.info.model_dump()
            self._scopes["error"] = caught
            if step.get("captureErrorAs"):
                self._assign(step["captureErrorAs"], caught)
            await self._run_steps(step.get("catch") or [], f"{path}.catch.steps")

    async def _action(self, step: dict[str, Any], path: str) -> None:
        assert self._input is not None
        config = step["config"]
        retry = step.get("retry") or {}
        on_error = (step.get("onError") or config.get("onError") or {}).get("policy", "fail")
        attempt = 1
        while True:
            try:
                call = ActionCall(
                    tenant_id=self._input.tenant_id,
                    run_id=self._input.run_id,
                    step_path=path,
                    action_id=config["actionId"],
                    version=config["version"],
                    input=self._resolve(config.get("inputMapping") or {}, path),
                    idempotency_key=_string_or_none(self._eval(config["idempotencyKey"], path))
                    if config.get("idempotencyKey")
                    else None,
                )
                await self._flush()
                output = await workflow.execute_activity(
                    "run_action",
                    call,
                    result_type=dict,
                    start_to_close_timeout=ACTION_TIMEOUT,
                    schedule_to_close_timeout=ACTION_SCHEDULE_TO_CLOSE,
                    retry_policy=TRANSIENT_RETRY,
                )
                break
            except (ActivityError, StepFailed) as exc:
                info = exc.info if isinstance(exc, StepFailed) else _activity_error(exc, path)
                if _should_retry(retry, attempt, info):
                    await workflow.sleep(_backoff_seconds(retry, attempt))
                    attempt += 1
                    continue
                if on_error == "continue":
                    self._scopes["error"] = info.model_dump()
                    return
                raise StepFailed(info) from None
        if config.get("saveAs"):
            self._assign(config["saveAs"], output)

    # -- expressions and scopes ---------------------------------------------------------------------
    def _context(self) -> dict[str, Any]:
        local = self._lexical[-1] if self._lexical else {}
        return {
            **self._scopes["vars"],
            **local,
            "payload": self._scopes["payload"],
            "vars": self._scopes["vars"],
            "local": local,
            "meta": self._scopes["meta"],
            "error": self._scopes["error"],
            "__now__": iso_z(workflow.now()),
        }

    def _eval(self, expr: Any, path: str) -> Any:
        source = expr.get("$expr") if isinstance(expr, dict) else expr
        try:
            return expressions.evaluate(expressions.compile_expression(str(source)), self._context())
        except ActionFailure as failure:
            failure.info.node_path = path
            raise StepFailed(failure.info) from None

    def _resolve(self, mapping: dict[str, Any], path: str) -> dict[str, Any]:
        try:
            return expressions.resolve_mapping(mapping, self._context())
        except ActionFailure as failure:
            failure.info.node_path = path
            raise StepFailed(failure.info) from None

    def _assign(self, target: str, value: Any) -> None:
        segments = scoped_path(target)
        scope = segments[0]
        if len(segments) == 1:
            self._scopes[scope] = copy.deepcopy(value)
            return
        node = self._scopes.get(scope)
        if not isinstance(node, dict):
            node = self._scopes[scope] = {}
        for segment in segments[1:-1]:
            if not isinstance(node.get(segment), dict):
                node[segment] = {}
            node = node[segment]
        node[segments[-1]] = copy.deepcopy(value)

    # -- projection ---------------------------------------------------------------------------------
    def _start(self, step: dict[str, Any], path: str) -> StepRecord:
        self._attempts[path] = self._attempts.get(path, 0) + 1
        record = StepRecord(
            step_id=str(workflow.uuid4()),
            step_path=path,
            definition_step_id=str(step.get("id", "")),
            status="STARTED",
            attempt=self._attempts[path],
            started_at=_now(),
        )
        self._history.append(record)
        self._pending.append(record)
        return record

    def _end(self, record: StepRecord, status: str, error: ActionErrorInfo | None = None) -> None:
        record.status, record.completed_at = status, _now()
        started, ended = parse_iso(record.started_at), workflow.now()
        record.duration_ms = max(0, int((ended - started).total_seconds() * 1000))
        record.error_json = error.model_dump() if error else None
        if record not in self._pending:
            self._pending.append(record)

    async def _flush(self) -> None:
        await self._project()

    async def _project(self, *, status: str = "RUNNING", final: bool = False, error: dict | None = None) -> None:
        assert self._input is not None
        node = next((r.step_path for r in reversed(self._history) if r.status == "STARTED"), None)
        projection = Projection(
            tenant_id=self._input.tenant_id,
            run_id=self._input.run_id,
            steps=self._pending,
            node_path=node,
            status=status,
            error_json=error,
            final=final,
        )
        self._pending = []
        await workflow.execute_local_activity(
            "project_run",
            projection,
            start_to_close_timeout=LOCAL_TIMEOUT,
            retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=10)),
        )


def _now() -> str:
    return iso_z(workflow.now())


def _error(category: str, message: str, path: str, code: str | None = None) -> ActionErrorInfo:
    return ActionErrorInfo(category=category, code=code, message=message, node_path=path, at=_now())  # type: ignore[arg-type]


def _activity_error(exc: ActivityError, path: str) -> ActionErrorInfo:
    """The structured error an action raised, recovered from the activity failure's details."""
    cause = exc.cause
    if isinstance(cause, ApplicationError) and cause.type == "ActionFailure" and cause.details:
        info = ActionErrorInfo.model_validate(cause.details[0])
        info.node_path = info.node_path or path
        return info
    message = getattr(cause, "message", None) or str(cause or exc)
    return _error("TransientError", message, path, code="TRANSIENT_FAILURE")


def _should_retry(retry: dict[str, Any], attempt: int, info: ActionErrorInfo) -> bool:
    if not retry or attempt >= int(retry.get("maxAttempts", 1)):
        return False
    retry_on = retry.get("retryOn") or []
    return not retry_on or info.category in retry_on


def _backoff_seconds(retry: dict[str, Any], attempt: int) -> float:
    """``backoffMs * multiplier^(attempt-1)`` capped at ``maxDelayMs`` (no jitter, as the reference
    interpreter), in seconds."""
    delay = float(retry.get("backoffMs", 0)) * float(retry.get("backoffMultiplier", 2)) ** (attempt - 1)
    if retry.get("maxDelayMs"):
        delay = min(delay, float(retry["maxDelayMs"]))
    return delay / 1000


def _string_or_none(value: Any) -> str | None:
    return None if value is None else str(value)
