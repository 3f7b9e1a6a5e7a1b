"""Each action takes effect once, even when the worker dies: a crash-injection matrix on the real worker process
(docs/automation.md, "Idempotency"; docs/architecture.md, "Events and the outbox").

For one action of each family (clients, contacts, crm, quotes) and each kill point, a real ``psa worker``
process runs a published one-step definition until it freezes at the point (``PSA_TEST_CRASH_AT``,
psa.automation.crash_injection); the test checks that it stands exactly there, kills it with SIGKILL, starts a
fresh worker and lets the run (and the run its event triggers) complete. Then: one business row, one audit row,
one SUCCEEDED ledger row for the step, one outbox event, one triggered run with one Temporal execution, and every
table of the tenant changed exactly as one uncrashed invocation changes a control tenant.

The matrix runs on a database of its own, so the workers' outbox dispatcher delivers only the matrix's events
(other tests leave theirs pending), and with short timeouts (the settings ``automation_action_timeout_seconds``
and ``worker_sticky_timeout_seconds``), so the killed attempt is retried, and the killed worker's workflows move
on, within seconds.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.api.enums.v1 import EventType

from psa.automation.actions import builtin_registry
from psa.automation.definitions import publish_definition
from psa.automation.invocation import invoke_action
from psa.automation.outbox import dispatch_pending
from psa.automation.run.starter import launch_run, run_handle
from psa.config import Settings
from psa.db.engine import make_engine, tenant_transaction
from psa.db.migrate import upgrade
from psa.provisioning.activities import ProvisioningActivities
from psa.timeutil import iso_z
from psa.worker import build_worker
from tests.factories import Actors, make_actors, new_client
from tests.helpers import cli_env, count, rows, scalar, tenant_row_counts, wait_for

ACTION_TIMEOUT_SECONDS = 3.0
"""The matrix's ``automation_action_timeout_seconds``: a killed attempt is retried about a second after it."""
STICKY_TIMEOUT_SECONDS = 1.0
"""The matrix's ``worker_sticky_timeout_seconds``: the killed worker's workflows move to the fresh one after it."""


@dataclasses.dataclass(frozen=True)
class Family:
    """One action of a family: what it is, the event it emits (None: none), and how to find its business row
    (``table`` where ``column`` is the case's unique marker); ``prepare`` makes the records its input needs and
    returns that input."""

    action: str
    event: str | None
    table: str
    column: str
    prepare: Callable[[AsyncEngine, uuid.UUID, str], Awaitable[dict]]


async def _client_input(engine: AsyncEngine, tenant: uuid.UUID, marker: str) -> dict:
    return {"client_name": marker, "tags": ["crash-test"]}


async def _contact_input(engine: AsyncEngine, tenant: uuid.UUID, marker: str) -> dict:
    return {"full_name": marker, "email": f"{uuid.uuid4().hex[:12]}@example.com"}


async def _activity_input(engine: AsyncEngine, tenant: uuid.UUID, marker: str) -> dict:
    client = await new_client(engine, tenant)
    call = await scalar(engine, "SELECT type_id FROM system_interaction_types WHERE type_name = 'Call'")
    start = iso_z(datetime.now(UTC) + timedelta(days=2))
    return {"client_id": str(client.client_id), "type_id": str(call), "title": marker, "start_time": start}


async def _quote_input(engine: AsyncEngine, tenant: uuid.UUID, marker: str) -> dict:
    client = await new_client(engine, tenant)
    return {
        "client_id": str(client.client_id),
        "title": marker,
        "quote_date": "2026-03-01",
        "valid_until": "2026-03-31",
    }


FAMILIES = {
    "clients": Family("clients.create", "CLIENT_CREATED", "clients", "client_name", _client_input),
    "contacts": Family("contacts.create", "CONTACT_CREATED", "contacts", "full_name", _contact_input),
    "crm": Family("crm.schedule_activity", "INTERACTION_LOGGED", "interactions", "title", _activity_input),
    "quotes": Family("crm.create_quote", None, "quotes", "title", _quote_input),
}
POINTS = ("before_commit", "before_completion", "before_delivered")
# The quote actions emit no event (docs/automation.md, "Events"): there is no delivery to kill.
CASES = [(family, point) for family in FAMILIES for point in POINTS if FAMILIES[family].event or point != POINTS[2]]


@pytest.fixture(scope="module")
def matrix_settings(stack, base_settings: Settings) -> Iterator[Settings]:
    """Settings on a fresh, migrated database of the embedded server, with the matrix's action timeout."""
    if os.environ.get("DATABASE_URL"):
        pytest.skip("needs a database of its own on the embedded PostgreSQL")
    name = f"psa_crash_{uuid.uuid4().hex[:8]}"
    url = stack.create_database(name)
    upgrade(url)
    yield base_settings.model_copy(
        update={
            "database_url": url,
            "automation_action_timeout_seconds": ACTION_TIMEOUT_SECONDS,
            "worker_sticky_timeout_seconds": STICKY_TIMEOUT_SECONDS,
        }
    )
    stack.drop_database(name)


@pytest.fixture(scope="module")
async def matrix_engine(matrix_settings: Settings):
    engine = make_engine(matrix_settings)
    yield engine
    await engine.dispose()


@contextmanager
def worker_process(settings: Settings, task_queue: str, log: Path, **env: str) -> Iterator[subprocess.Popen]:
    """A real ``psa worker`` process on ``settings``' servers and ``task_queue``, with ``env`` added; on exit it is
    stopped (SIGTERM, SIGKILL after 30 s) unless it has ended."""
    env = cli_env(
        settings,
        task_queue,
        PSA_AUTOMATION_ACTION_TIMEOUT_SECONDS=str(settings.automation_action_timeout_seconds),
        PSA_WORKER_STICKY_TIMEOUT_SECONDS=str(settings.worker_sticky_timeout_seconds),
        **env,
    )
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "psa.cli", "worker"], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


async def _publish(engine: AsyncEngine, actors: Actors, definition: dict) -> None:
    async with tenant_transaction(engine, actors.tenant) as conn:
        await publish_definition(
            conn, actors.tenant, definition, registry=builtin_registry(), published_by=actors.admin
        )


def _domain_changes(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """Rows added per table, outside the run bookkeeping (``workflow_*``), which a direct call does not write."""
    return {
        table: after[table] - before[table]
        for table in after
        if after[table] != before[table] and not table.startswith("workflow_")
    }


async def _control_changes(engine: AsyncEngine, family: Family) -> dict[str, int]:
    """What one uncrashed, direct invocation of the family's action changes in a fresh tenant; its events are
    then marked delivered (a dispatch without handlers), so the matrix's workers only see their own."""
    control = await make_actors(engine)
    raw = await family.prepare(engine, control.tenant, f"Control {uuid.uuid4().hex[:8]}")
    before = await tenant_row_counts(engine, control.tenant)
    await invoke_action(
        engine,
        builtin_registry(),
        tenant=control.tenant,
        action_id=family.action,
        version=1,
        raw_input=raw,
        actor_user_id=control.admin,
        idempotency_key="control",
    )
    changes = _domain_changes(before, await tenant_row_counts(engine, control.tenant))
    while await dispatch_pending(engine, []):
        pass
    return changes


async def _wait_for_file(path: Path, proc: subprocess.Popen, log: Path) -> None:
    async def appeared() -> bool:
        assert proc.poll() is None, f"the worker exited ({proc.returncode}):\n{log.read_text()}"
        return path.exists()

    await wait_for(appeared, timeout=90, interval=0.05)


async def _business_rows(engine: AsyncEngine, family: Family, tenant: uuid.UUID, marker: str) -> int:
    """Rows of the family's business table holding the case's marker."""
    return await count(engine, f"{family.table} WHERE tenant = :t AND {family.column} = :m", t=tenant, m=marker)


async def _assert_frozen_at(point: str, engine: AsyncEngine, client, family: Family, tenant: uuid.UUID, marker, run_id):
    """The frozen worker stands exactly at ``point``. Returns, for ``before_delivered``, the run the event
    triggered (``run_id``, ``temporal_run_id``: its Temporal execution)."""
    ledger = "workflow_action_invocations WHERE tenant = :t AND run_id = :r"
    if point == "before_commit":  # everything written, nothing visible: the transaction is open
        assert await _business_rows(engine, family, tenant, marker) == 0
        assert await count(engine, ledger, t=tenant, r=run_id) == 0
        open_transactions = "pg_stat_activity WHERE datname = current_database() AND state = 'idle in transaction'"
        assert await count(engine, open_transactions) >= 1
        return None
    if point == "before_completion":  # committed, and Temporal has not heard of it
        assert await _business_rows(engine, family, tenant, marker) == 1
        (entry,) = await rows(engine, f"SELECT status FROM {ledger}", t=tenant, r=run_id)
        assert entry.status == "SUCCEEDED"
        history = await run_handle(client, run_id).fetch_history()
        completed = [e for e in history.events if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED]
        assert completed == []
        return None
    # before_delivered: the triggered run is started, the event not marked delivered
    (started,) = await rows(
        engine,
        "SELECT run_id, temporal_run_id FROM workflow_runs WHERE tenant = :t AND trigger_type = 'event'",
        t=tenant,
    )
    assert started.temporal_run_id is not None
    (event,) = await rows(engine, "SELECT delivered_at FROM workflow_event_outbox WHERE tenant = :t", t=tenant)
    assert event.delivered_at is None
    return started


async def _triggered_run(engine: AsyncEngine, tenant: uuid.UUID):
    """The tenant's event-triggered run once it has ended and no event of the database is undelivered."""

    async def ended_and_delivered():
        found = await rows(
            engine,
            "SELECT run_id, status, temporal_run_id FROM workflow_runs WHERE tenant = :t AND trigger_type = 'event'",
            t=tenant,
        )
        undelivered = await count(engine, "workflow_event_outbox WHERE delivered_at IS NULL")
        return found if found and found[0].status != "RUNNING" and undelivered == 0 else None

    (run,) = await wait_for(ended_and_delivered, timeout=120)
    return run


@pytest.mark.parametrize(("family_name", "point"), CASES)
async def test_the_action_takes_effect_once_when_the_worker_is_killed(
    family_name: str, point: str, matrix_settings: Settings, matrix_engine: AsyncEngine, client, tmp_path: Path
):
    family, engine = FAMILIES[family_name], matrix_engine
    expected = await _control_changes(engine, family)
    assert expected[family.table] == 1
    assert expected["audit_logs"] == 1

    actors = await make_actors(engine)
    tenant, marker = actors.tenant, f"Crash {uuid.uuid4().hex[:8]}"
    raw = await family.prepare(engine, tenant, marker)
    config = {"actionId": family.action, "version": 1, "inputMapping": raw}
    await _publish(engine, actors, {"id": "act-once", "name": "Act once", "steps": [_step("act", config)]})
    if family.event:
        trigger = {"type": "event", "eventName": family.event}
        state = [_step("seen", {"state": "SEEN"}, "state.set")]
        await _publish(engine, actors, {"id": "on-event", "name": "On event", "trigger": trigger, "steps": state})
    before = await tenant_row_counts(engine, tenant)

    task_queue, crashed, log = f"test-crash-{uuid.uuid4()}", tmp_path / "crashed", tmp_path / "worker.log"
    crash_at = f"{point}:{family.event if point == 'before_delivered' else family.action}"
    with worker_process(
        matrix_settings, task_queue, log, PSA_TEST_CRASH_AT=crash_at, PSA_TEST_CRASH_MARKER=str(crashed)
    ) as proc:
        launched = await launch_run(
            engine,
            client,
            tenant=tenant,
            workflow="act-once",
            payload={},
            task_queue=task_queue,
            action_timeout_seconds=matrix_settings.automation_action_timeout_seconds,
        )
        await _wait_for_file(crashed, proc, log)
        started_at_kill = await _assert_frozen_at(point, engine, client, family, tenant, marker, launched.run_id)
        proc.kill()
        proc.wait()

    if started_at_kill is not None:
        # The harder order: the triggered run ends before its event is delivered again (a worker without the
        # dispatcher runs it), then the fresh worker process redelivers the event and must start nothing.
        async with build_worker(client, ProvisioningActivities(engine, matrix_settings), task_queue=task_queue):
            await asyncio.wait_for(run_handle(client, started_at_kill.run_id).result(), timeout=120)
    with worker_process(matrix_settings, task_queue, log):
        await asyncio.wait_for(run_handle(client, launched.run_id).result(), timeout=120)
        triggered = await _triggered_run(engine, tenant) if family.event else None

    assert await _business_rows(engine, family, tenant, marker) == 1
    audited = f"audit_logs WHERE tenant = :t AND operation = 'workflow_action:{family.action}' AND record_id = :r"
    assert await count(engine, audited, t=tenant, r=str(launched.run_id)) == 1
    ledger = await rows(
        engine,
        "SELECT step_path, status, attempt FROM workflow_action_invocations WHERE tenant = :t AND run_id = :r",
        t=tenant,
        r=launched.run_id,
    )
    # One row for the one step, by the attempt that committed: a killed uncommitted attempt left nothing.
    assert [(e.step_path, e.status, e.attempt) for e in ledger] == [("root.steps[0]", "SUCCEEDED", 1)]
    run = await scalar(
        engine, "SELECT status FROM workflow_runs WHERE tenant = :t AND run_id = :r", t=tenant, r=launched.run_id
    )
    assert run == "SUCCEEDED"
    assert _domain_changes(before, await tenant_row_counts(engine, tenant)) == expected
    outboxed = await rows(engine, "SELECT event_type FROM workflow_event_outbox WHERE tenant = :t", t=tenant)
    assert [e.event_type for e in outboxed] == ([family.event] if family.event else [])
    if triggered is not None:
        assert triggered.status == "SUCCEEDED"
        # Started once: its Temporal workflow has had one execution, the one recorded when it was started.
        latest = await run_handle(client, triggered.run_id).describe()
        assert latest.run_id == triggered.temporal_run_id
        if started_at_kill is not None:
            assert latest.run_id == started_at_kill.temporal_run_id
        steps = "workflow_run_steps WHERE tenant = :t AND run_id = :r"
        assert await count(engine, steps, t=tenant, r=triggered.run_id) == 1


def _step(step_id: str, config: dict, step_type: str = "action.call") -> dict:
    return {"id": step_id, "type": step_type, "config": config}
