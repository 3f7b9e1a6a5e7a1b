"""Test-only crash injection: freeze the worker process at one precise point of an action's life, so a test can
kill it there (``SIGKILL``) and prove that the action still takes effect once (docs/automation.md, "Idempotency",
"What is promised, and its limits"; tests/automation/test_exactly_once.py).

Enabled only by the environment variable ``PSA_TEST_CRASH_AT=<point>:<target>`` together with
``PSA_TEST_CRASH_MARKER=<file>``, read once when ``psa worker`` starts (the worker logs a warning). Unset, nothing
is installed: no listener, interceptor or handler exists, so the hot path is unchanged. A malformed value stops
the worker at start (ConfigurationError). Never set either variable in production: a worker that reaches the
point stops for good.

Points (``<target>`` is an action id such as ``clients.create``, or an event type for ``before_delivered``):

- ``before_commit:<action>``: the action's transaction has written everything (the handler's rows, the outbox,
  the audit row and the SUCCEEDED ledger row) and COMMIT has not been sent (a SQLAlchemy ``commit`` event,
  armed by the ledger statement of that action);
- ``before_completion:<action>``: the transaction has committed and ``run_action`` has not reported its result
  to Temporal (an activity interceptor);
- ``before_delivered:<event type>``: every event handler has run for such an event (its triggered runs are
  started) and the outbox row is not yet marked delivered (a last event handler).

At the point the worker writes the marker file (``<point>:<target> <pid>``), then stops itself with ``SIGSTOP``:
every thread halts where it stands, its database transaction stays open and its Temporal polls unanswered, until
the test, which waits for the marker, kills it.
"""

from __future__ import annotations

import dataclasses
import os
import signal
from pathlib import Path
from typing import Any, Literal, get_args

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor

from psa.automation.invocation import SUCCEED
from psa.automation.outbox import EventHandler, OutboxEvent
from psa.automation.run.types import ActivityName
from psa.config import ConfigurationError, Settings

Point = Literal["before_commit", "before_completion", "before_delivered"]
POINTS: tuple[str, ...] = get_args(Point)
_ARMED = "psa_test_crash_armed"


@dataclasses.dataclass(frozen=True)
class CrashPoint:
    """Where to freeze (``point``), for which action id or event type (``target``), and the marker file to
    write first."""

    point: Point
    target: str
    marker: Path

    def freeze(self) -> None:
        """Write the marker, then stop this process (``SIGSTOP``) until it is killed."""
        self.marker.write_text(f"{self.point}:{self.target} {os.getpid()}\n")
        os.kill(os.getpid(), signal.SIGSTOP)


@dataclasses.dataclass(frozen=True)
class Injection:
    """What a worker adds for a crash point: activity ``interceptors`` and trailing event ``handlers`` (both empty
    without one). Engine listeners are installed by ``from_settings`` itself."""

    interceptors: list[Interceptor] = dataclasses.field(default_factory=list)
    handlers: list[EventHandler] = dataclasses.field(default_factory=list)


def parse(settings: Settings) -> CrashPoint | None:
    """The crash point of ``PSA_TEST_CRASH_AT`` (None when unset). Raises ConfigurationError naming the variable
    when the value is not ``<point>:<target>`` with a known point, or when ``PSA_TEST_CRASH_MARKER`` is missing."""
    spec = settings.test_crash_at
    if spec is None:
        return None
    point, _, target = spec.partition(":")
    if point not in POINTS or not target.strip():
        raise ConfigurationError(f"PSA_TEST_CRASH_AT must be <point>:<target> with a point of {', '.join(POINTS)}")
    if settings.test_crash_marker is None:
        raise ConfigurationError("PSA_TEST_CRASH_AT needs PSA_TEST_CRASH_MARKER, the file to write at the point")
    return CrashPoint(point, target.strip(), settings.test_crash_marker)


def from_settings(settings: Settings, engine: AsyncEngine) -> Injection:
    """The injection of the settings' crash point for a worker on ``engine``: nothing when ``PSA_TEST_CRASH_AT``
    is unset. Raises ConfigurationError as ``parse`` does."""
    crash = parse(settings)
    if crash is None:
        return Injection()
    if crash.point == "before_commit":
        _freeze_before_commit(engine, crash)
        return Injection()
    if crash.point == "before_completion":
        return Injection(interceptors=[_FreezeAfterAction(crash)])

    async def freeze_after_handlers(outboxed: OutboxEvent) -> None:
        if outboxed.event_type == crash.target:
            crash.freeze()

    return Injection(handlers=[freeze_after_handlers])


def _freeze_before_commit(engine: AsyncEngine, crash: CrashPoint) -> None:
    """Arm the connection when it runs the action contract's final statement for ``crash.target``; freeze on
    that transaction's COMMIT, before it is sent."""
    operation = f"workflow_action:{crash.target}"

    @event.listens_for(engine.sync_engine, "after_cursor_execute")
    def arm(conn, _cursor, _statement, parameters: Any, context, _executemany) -> None:
        compiled = getattr(context, "compiled", None)
        if compiled is not None and compiled.statement is SUCCEED and parameters.get("op") == operation:
            conn.info[_ARMED] = True

    @event.listens_for(engine.sync_engine, "commit")
    def commit(conn) -> None:
        if conn.info.pop(_ARMED, False):
            crash.freeze()

    @event.listens_for(engine.sync_engine, "rollback")
    def rollback(conn) -> None:
        conn.info.pop(_ARMED, None)


class _FreezeAfterAction(Interceptor):
    def __init__(self, crash: CrashPoint) -> None:
        self.crash = crash

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _FreezeAfterRunAction(next, self.crash)


class _FreezeAfterRunAction(ActivityInboundInterceptor):
    def __init__(self, next: ActivityInboundInterceptor, crash: CrashPoint) -> None:
        super().__init__(next)
        self.crash = crash

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        result = await self.next.execute_activity(input)
        if activity.info().activity_type == ActivityName.RUN_ACTION and input.args[0].action_id == self.crash.target:
            self.crash.freeze()
        return result
