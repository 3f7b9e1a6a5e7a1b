"""``AutomationRunWorkflow``: the Temporal workflow that walks a published definition version (reference: the
workflow runtime's control flow and run execution; docs/automation.md, "Step types", "Runs").

- The definition arrives as its stored JSON and is parsed once, at the start, into the typed step models of
  psa.automation.steps; the run walks those.
- ``action.call`` runs as the ``run_action`` activity (the action contract of psa.automation.invocation);
  every other step is evaluated in the workflow itself (expressions are pure JSONata).
- Step rows (STARTED / SUCCEEDED / FAILED, attempt, duration, error) are buffered and projected to
  PostgreSQL by the ``project_run`` local activity before each action and when the run ends.
- Per-step ``retry`` (attempts, backoff, multiplier, max delay, ``retryOn`` categories), ``onError:
  continue``, ``control.tryCatch`` with ``captureErrorAs``, ``control.forEach`` with ``onItemError``, and
  ``control.return``. Structured errors ``{category, code, message, details, node_path, at}`` cross the
  activity boundary unchanged, so ``retryOn`` and ``captureErrorAs`` see the real category
  (docs/automation.md, "Errors").
- Run status: RUNNING, then SUCCEEDED, FAILED or CANCELED (Temporal cancellation).

The workflow imports no database or network module: it calls its activities by their names in
``psa.automation.run.types.ActivityName``.
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
    from pydantic import ValidationError

    from psa.automation import expressions
    from psa.automation.errors import ActionErrorInfo, ActionFailure
    from psa.automation.paths import assign_segments
    from psa.automation.run.types import ActionCall, ActivityName, Projection, RunInput, RunResult, StepRecord
    from psa.automation.steps import (
        ActionCallStep,
        ForEachStep,
        IfStep,
        ReturnStep,
        StateSetStep,
        Step,
        TransformAssignStep,
        TryCatchStep,
        WorkflowDefinition,
        parse_definition,
    )
    from psa.automation.steps import RetryPolicy as StepRetryPolicy
    from psa.timeutil import iso_z, parse_iso

ACTION_SCHEDULE_TO_CLOSE = timedelta(minutes=10)
# Infrastructure faults (a database outage) are retried by Temporal; action failures are not: the step's own
# retry policy decides (ActionFailure is raised as a non-retryable ApplicationError).
TRANSIENT_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=30),
    non_retryable_error_types=[ActionFailure.__name__],
)
LOCAL_TIMEOUT = timedelta(seconds=30)


class StepFailed(Exception):
    """A step failed after its retries; carries the structured error."""

    def __init__(self, info: ActionErrorInfo) -> None:
        super().__init__(info.message)
        self.info = info


class _Return(Exception):
    """``control.return``: end the run successfully."""


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
        """Walk the definition's steps, then project the final status. Returns the scopes when the run
        succeeds; raises ApplicationError (type ``WorkflowRun.<category>``, the structured error as its detail)
        when a step failed, and CancelledError when the run was cancelled."""
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
            await self._run_steps(_parsed(run_input.definition).steps, "root.steps")
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
    async def _run_steps(self, steps: list[Step], prefix: str, *, continue_on_error: bool = False) -> None:
        for index, step in enumerate(steps):
            try:
                await self._run_step(step, f"{prefix}[{index}]")
            except StepFailed as failed:
                if not continue_on_error:
                    raise
                self._scopes["error"] = failed.info.model_dump()  # forEach onItemError: continue

    async def _run_step(self, step: Step, path: str) -> None:
        """Run one step and record its execution (STARTED, then SUCCEEDED, FAILED or CANCELED)."""
        record = self._start(step, path)
        try:
            match step:
                case IfStep():
                    if self._condition(step, path):
                        await self._run_steps(step.then, f"{path}.then.steps")
                    else:
                        await self._run_steps(step.else_ or [], f"{path}.else.steps")
                case ForEachStep():
                    await self._for_each(step, path)
                case TryCatchStep():
                    await self._try_catch(step, path)
                case ReturnStep():
                    self._end(record, "SUCCEEDED")
                    raise _Return()
                case TransformAssignStep():
                    for target, expr in step.config.assign.items():
                        self._assign(target, self._eval(expr.expr, path))
                case StateSetStep():
                    self._scopes["meta"]["state"] = step.config.state
                case ActionCallStep():
                    await self._action(step, path)
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

    def _condition(self, step: IfStep, path: str) -> bool:
        value = self._eval(step.condition.expr, path)
        if not isinstance(value, bool):
            raise StepFailed(_error("ValidationError", "control.if condition must evaluate to a boolean", path))
        return value

    async def _for_each(self, step: ForEachStep, path: str) -> None:
        """Run the body once per item, with the item in ``vars.<itemVar>`` (restored afterwards) and in the
        lexical scope with ``item``, ``index``, ``length``, ``isFirst`` and ``isLast``."""
        items = self._eval(step.items.expr, path)
        if not isinstance(items, list):
            raise StepFailed(_error("ValidationError", "control.forEach items did not evaluate to an array", path))
        name, variables = step.item_var, self._scopes["vars"]
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
                        step.body, f"{path}.body.steps", continue_on_error=step.on_item_error == "continue"
                    )
                finally:
                    self._lexical.pop()
        finally:
            if had:
                variables[name] = previous
            else:
                variables.pop(name, None)

    async def _try_catch(self, step: TryCatchStep, path: str) -> None:
        try:
            await self._run_steps(step.try_, f"{path}.try.steps")
        except StepFailed as failed:
            caught = failed.info.model_dump()
            self._scopes["error"] = caught
            if step.capture_error_as:
                self._assign(step.capture_error_as, caught)
            await self._run_steps(step.catch, f"{path}.catch.steps")

    async def _action(self, step: ActionCallStep, path: str) -> None:
        """Run the action through ``run_action``, retrying by the step's ``retry`` policy; on a final failure,
        record it in ``error`` (``onError: continue``) or raise StepFailed. ``saveAs`` receives the output."""
        assert self._input is not None
        config = step.config
        on_error = step.on_error or config.on_error
        attempt = 1
        while True:
            try:
                call = ActionCall(
                    tenant_id=self._input.tenant_id,
                    run_id=self._input.run_id,
                    step_path=path,
                    action_id=config.action_id,
                    version=config.version,
                    input=self._resolve(config.input_mapping, path),
                    idempotency_key=_string_or_none(self._eval(config.idempotency_key.expr, path))
                    if config.idempotency_key
                    else None,
                )
                await self._flush()
                output = await workflow.execute_activity(
                    ActivityName.RUN_ACTION,
                    call,
                    result_type=dict,
                    start_to_close_timeout=timedelta(seconds=self._input.action_timeout_seconds),
                    schedule_to_close_timeout=ACTION_SCHEDULE_TO_CLOSE,
                    retry_policy=TRANSIENT_RETRY,
                )
                break
            except (ActivityError, StepFailed) as exc:
                info = exc.info if isinstance(exc, StepFailed) else _activity_error(exc, path)
                if _should_retry(step.retry, attempt, info):
                    await workflow.sleep(_backoff_seconds(step.retry, attempt))
                    attempt += 1
                    continue
                if on_error is not None and on_error.policy == "continue":
                    self._scopes["error"] = info.model_dump()
                    return
                raise StepFailed(info) from None
        if config.save_as:
            self._assign(config.save_as, output)

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

    def _eval(self, source: str, path: str) -> Any:
        try:
            return expressions.evaluate(expressions.compile_expression(source), self._context())
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
        """Write a copy of ``value`` at the assignment target (psa.automation.paths), creating objects on the
        way."""
        segments = assign_segments(target)
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
    def _start(self, step: Step, path: str) -> StepRecord:
        self._attempts[path] = self._attempts.get(path, 0) + 1
        record = StepRecord(
            step_id=str(workflow.uuid4()),
            step_path=path,
            definition_step_id=step.id,
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
            ActivityName.PROJECT_RUN,
            projection,
            start_to_close_timeout=LOCAL_TIMEOUT,
            retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=10)),
        )


def _parsed(definition: dict[str, Any]) -> WorkflowDefinition:
    """The typed definition. A stored definition passed publish validation; one that no longer parses fails
    the run (a StepFailed at ``root``) instead of failing its workflow tasks forever."""
    try:
        return parse_definition(definition)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "root"
        message = f"Invalid workflow definition: {where}: {first['msg']}"
        raise StepFailed(_error("ValidationError", message, "root")) from None


def _now() -> str:
    return iso_z(workflow.now())


def _error(category: str, message: str, path: str, code: str | None = None) -> ActionErrorInfo:
    return ActionErrorInfo(category=category, code=code, message=message, node_path=path, at=_now())  # type: ignore[arg-type]


def _activity_error(exc: ActivityError, path: str) -> ActionErrorInfo:
    """The structured error an action raised, recovered from the activity failure's details."""
    cause = exc.cause
    if isinstance(cause, ApplicationError) and cause.type == ActionFailure.__name__ and cause.details:
        info = ActionErrorInfo.model_validate(cause.details[0])
        info.node_path = info.node_path or path
        return info
    message = getattr(cause, "message", None) or str(cause or exc)
    return _error("TransientError", message, path, code="TRANSIENT_FAILURE")


def _should_retry(retry: StepRetryPolicy | None, attempt: int, info: ActionErrorInfo) -> bool:
    """Another attempt is due: the policy allows more than ``attempt`` attempts and lists the error's category
    in ``retryOn`` (or lists none)."""
    if retry is None or attempt >= retry.max_attempts:
        return False
    return not retry.retry_on or info.category in retry.retry_on


def _backoff_seconds(retry: StepRetryPolicy, attempt: int) -> float:
    """``backoffMs * multiplier^(attempt-1)`` capped at ``maxDelayMs`` (no jitter, as the reference
    interpreter), in seconds; the multiplier defaults to 2."""
    multiplier = 2.0 if retry.backoff_multiplier is None else retry.backoff_multiplier
    delay = retry.backoff_ms * multiplier ** (attempt - 1)
    if retry.max_delay_ms:
        delay = min(delay, retry.max_delay_ms)
    return delay / 1000


def _string_or_none(value: Any) -> str | None:
    return None if value is None else str(value)
