"""Assertion, query and process helpers shared by the tests: names, SQL reads, the action runtime's audit, ledger
and outbox rows, polling, HTTP problems, the CLI as a subprocess, and activity hooks. Records are made by
tests/factories.py."""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.message
import email.policy
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import settings
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor

from psa.config import Settings
from psa.db.engine import tenant_transaction
from psa.db.schema import TENANT_TABLES
from psa.domain import clients, contacts

ROOT = Path(__file__).resolve().parents[1]
# The test stack's state (its PostgreSQL, codec key): .psa/test-stack, or PSA_TEST_STATE_DIR (a stack of its own, as
# tests/integration/test_suite_lifetime.py gives the sessions it runs).
TEST_STATE = Path(os.environ.get("PSA_TEST_STATE_DIR") or ROOT / ".psa" / "test-stack")
BASE_URL = "http://psa.test"  # the in-process app's base URL (httpx ASGI transport)
FUZZ_PROFILE = "fuzz"  # the hypothesis profile of `make fuzz` (registered in tests/conftest.py)


def examples(ci: int) -> int:
    """Cases for a property test's ``max_examples``: ``ci`` under `make test` (hypothesis's derandomised "ci"
    profile), and at least the fuzz profile's count (500) under `make fuzz` (docs/operations.md, "Tests"). Read when
    the test module is imported, after the profile is loaded."""
    if settings.get_current_profile_name() == FUZZ_PROFILE:
        return max(ci, settings.default.max_examples)
    return ci


def unique_name(prefix: str = "Tenant") -> str:
    """``prefix`` and a random suffix: a tenant or client name no other test uses."""
    return f"{prefix} {uuid.uuid4().hex[:10]}"


def unique_email(prefix: str = "admin") -> str:
    """An address at example.com that no other test uses."""
    return f"{prefix}.{uuid.uuid4().hex[:12]}@example.com"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def rows(engine: AsyncEngine, sql: str, **params: Any) -> list:
    """Rows of one SQL query, read in its own connection."""
    async with engine.connect() as conn:
        return list(await conn.execute(text(sql), params))


async def scalar(engine: AsyncEngine, sql: str, **params: Any) -> Any:
    """The single value of a one-row, one-column query."""
    async with engine.connect() as conn:
        return (await conn.execute(text(sql), params)).scalar_one()


async def count(engine: AsyncEngine, sql: str, **params: Any) -> int:
    """``SELECT count(*) FROM <sql>``: ``sql`` is a table and its conditions."""
    return await scalar(engine, f"SELECT count(*) FROM {sql}", **params)


async def table_count(engine: AsyncEngine, table: str, tenant: uuid.UUID) -> int:
    """Rows of ``table`` belonging to ``tenant``."""
    return await count(engine, f"{table} WHERE tenant = :t", t=tenant)


async def tenant_row_counts(engine: AsyncEngine, tenant: str | uuid.UUID) -> dict[str, int]:
    """Rows per table for ``tenant``, over every table with a tenant column."""
    counts: dict[str, int] = {}
    async with engine.connect() as conn:
        for table in TENANT_TABLES:
            result = await conn.execute(
                text(f"SELECT count(*) FROM {table.name} WHERE tenant = :t"), {"t": str(tenant)}
            )
            counts[table.name] = result.scalar_one()
    return counts


async def execute(engine: AsyncEngine, tenant: uuid.UUID | None, sql: str, **params: Any) -> Any:
    """Run one statement in a tenant transaction (``:t`` is the tenant); returns the first column of the first
    row, if any."""
    async with tenant_transaction(engine, tenant) as conn:
        result = await conn.execute(text(sql), {"t": tenant, **params})
        return result.scalar() if result.returns_rows else None


async def get_client(engine: AsyncEngine, tenant: uuid.UUID, client_id: uuid.UUID) -> clients.Client | None:
    """The client as the domain reads it, or None."""
    async with engine.connect() as conn:
        return await clients.find_client(conn, tenant, client_id)


async def get_contact(engine: AsyncEngine, tenant: uuid.UUID, contact_id: uuid.UUID) -> contacts.Contact | None:
    """The contact as the domain reads it, or None."""
    async with engine.connect() as conn:
        return await contacts.find_contact(conn, tenant, contact_id)


async def audits(engine: AsyncEngine, tenant: uuid.UUID, action_id: str) -> list:
    """The audit rows an action wrote: (user_id, changed_data, details), oldest first."""
    return await rows(
        engine,
        "SELECT user_id, changed_data, details FROM audit_logs WHERE tenant = :t AND operation = :op "
        "ORDER BY timestamp, audit_id",
        t=tenant,
        op=f"workflow_action:{action_id}",
    )


async def ledger(engine: AsyncEngine, tenant: uuid.UUID, action_id: str) -> list:
    """The action's idempotency ledger rows: (status, attempt, idempotency_key, error_json, output_json)."""
    return await rows(
        engine,
        "SELECT status, attempt, idempotency_key, error_json, output_json FROM workflow_action_invocations "
        "WHERE tenant = :t AND action_id = :a ORDER BY created_at",
        t=tenant,
        a=action_id,
    )


async def events(engine: AsyncEngine, tenant: uuid.UUID, event_type: str | None = None) -> list:
    """The tenant's outbox events (of ``event_type``, or all): (event_type, idempotency_key, payload)."""
    return await rows(
        engine,
        "SELECT event_type, idempotency_key, payload FROM workflow_event_outbox WHERE tenant = :t "
        "AND (CAST(:e AS text) IS NULL OR event_type = :e) ORDER BY created_at, idempotency_key",
        t=tenant,
        e=event_type,
    )


async def nothing_written(engine: AsyncEngine, tenant: uuid.UUID, action_id: str) -> None:
    """No ledger row, no audit row, no event and no queued email for the tenant and action."""
    assert await ledger(engine, tenant, action_id) == []
    assert await audits(engine, tenant, action_id) == []
    assert await events(engine, tenant) == []
    assert (
        await count(
            engine, "email_outbox WHERE tenant = :t AND starts_with(source_key, :a)", t=tenant, a=f"{action_id}@"
        )
        == 0
    )


async def outbox_rows(engine: AsyncEngine, tenant: uuid.UUID | str) -> list:
    """The tenant's email outbox rows, oldest first (every column)."""
    return await rows(engine, "SELECT * FROM email_outbox WHERE tenant = :t ORDER BY created_at, email_id", t=tenant)


def emls_to(directory: Path, address: str) -> list[email.message.EmailMessage]:
    """The ``.eml`` files in ``directory`` addressed (To) to ``address`` (ignoring case), parsed."""
    found = []
    for path in sorted(directory.glob("*.eml")) if directory.is_dir() else ():
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if address.lower() in (a.addr_spec.lower() for a in message["To"].addresses):
            found.append(message)
    return found


def field_paths(info) -> list[str]:
    """The field paths an ActionErrorInfo names in ``details.fields``."""
    return [f["path"] for f in (info.details or {}).get("fields", [])]


async def wait_for(predicate, timeout: float = 30.0, interval: float = 0.05):
    """Poll an async predicate until it returns a truthy value; returns it. Fails the test on timeout."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"condition not met within {timeout} s")
        await asyncio.sleep(interval)


async def wait_until_blocked_on_a_lock(engine: AsyncEngine) -> None:
    """Until some session of this database waits for a lock (row or advisory: a second writer queued behind the
    first). Fails the test after 10 s."""

    async def blocked() -> bool:
        sql = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        return await scalar(engine, sql) > 0

    await wait_for(blocked, timeout=10)


async def wait_for_activity_cancel_request(client: Client, info: activity.Info) -> None:
    """Until the workflow of the running activity ``info`` has asked Temporal to cancel that activity (its history
    holds ActivityTaskCancelRequested for it): the workflow has acted on a cancel while the activity still runs.
    Fails the test after 30 s."""
    handle = client.get_workflow_handle(info.workflow_id, run_id=info.workflow_run_id)

    async def requested() -> bool:
        events = [event async for event in handle.fetch_history_events()]
        scheduled = {
            event.event_id
            for event in events
            if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
            and event.activity_task_scheduled_event_attributes.activity_id == info.activity_id
        }
        return any(
            event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_CANCEL_REQUESTED
            and event.activity_task_cancel_requested_event_attributes.scheduled_event_id in scheduled
            for event in events
        )

    await wait_for(requested)


async def assert_no_workflow(client: Client, workflow_id: str) -> None:
    """Temporal has no workflow ``workflow_id``: describing it by id answers NOT_FOUND (read from the workflow's own
    record, not from the visibility list, which lags)."""
    with pytest.raises(RPCError) as missing:
        await client.get_workflow_handle(workflow_id).describe()
    assert missing.value.status == RPCStatusCode.NOT_FOUND, missing.value


def assert_problem(response: httpx.Response, status: int, code: str) -> dict:
    """The response is an RFC 7807 problem with ``status`` and ``code``; returns its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json"), response.headers
    body = response.json()
    assert body["status"] == status, body
    assert body["code"] == code, body
    assert body["title"], body
    return body


def cli_env(settings: Settings, task_queue: str, **extra: str) -> dict[str, str]:
    """Environment for a `python -m psa.cli ...` subprocess that uses ``settings``' servers and outbox,
    the test stack's codec key, and ``task_queue``; ``extra`` adds or overrides variables."""
    return dict(
        os.environ,
        PSA_STATE_DIR=str(TEST_STATE),
        DATABASE_URL=settings.database_url,
        TEMPORAL_ADDRESS=settings.temporal_address,
        PSA_TASK_QUEUE=task_queue,
        PSA_OUTBOX_DIR=str(settings.outbox_path),
        PSA_EMAIL_PROVIDER=settings.email_provider,
        PSA_SMTP_HOST=settings.smtp_host,
        PSA_SMTP_PORT=str(settings.smtp_port),
        PSA_SMTP_TLS=settings.smtp_tls,
        PSA_BCRYPT_ROUNDS=str(settings.bcrypt_rounds),
        **extra,
    )


async def psa(base_settings, task_queue: str, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    """Run ``python -m psa.cli ARGS`` with the test database, Temporal and task queue, plus ``env``;
    returns (exit code, output)."""
    env = cli_env(base_settings, task_queue, COLUMNS="200", **(env or {}))
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "psa.cli",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=120)
    return proc.returncode, out.decode()


@contextlib.contextmanager
def serve_api(settings: Settings, log: Path) -> Iterator[str]:
    """A real ``psa api`` process (uvicorn) on a free loopback port with ``settings`` (its management tenant, task
    queue and servers), up once ``/healthz`` answers 200 (the test fails after 60 s); yields its base URL and
    terminates the process on exit. Its output goes to the file ``log`` (a pipe nobody reads would fill up with the
    tracebacks of server errors and block the server)."""
    port = free_port()
    extra = {"PSA_API_SSE_POLL_SECONDS": str(settings.api_sse_poll_seconds)}
    if settings.management_tenant_id is not None:
        extra["PSA_MANAGEMENT_TENANT_ID"] = str(settings.management_tenant_id)
    with log.open("wb") as output:
        proc = subprocess.Popen(
            [sys.executable, "-m", "psa.cli", "api", "--port", str(port)],
            env=cli_env(settings, settings.task_queue, **extra),
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"psa api did not come up (log {log}): {log.read_text(errors='replace')}")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


Hook = Callable[[activity.Info], Awaitable[None]]


class ActivityHooks(Interceptor):
    """A worker interceptor that calls ``hooks[activity_type](info)`` before that activity runs (every attempt).
    Hooks inject real faults (stop PostgreSQL, send a signal, hold the activity); they never fake results.

    A hook that raises (a failed assert or ``wait_for``) would only fail that activity attempt, which Temporal
    retries: the error is kept in ``errors``, and the ``start_worker`` fixture fails the test with it."""

    def __init__(self, hooks: dict[str, Hook]) -> None:
        self.hooks = hooks
        self.errors: list[BaseException] = []

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _HookedActivity(next, self)

    def check(self) -> None:
        """Fail the test if a hook raised."""
        if self.errors:
            pytest.fail(f"an activity hook raised: {self.errors[0]!r}")


class _HookedActivity(ActivityInboundInterceptor):
    def __init__(self, next: ActivityInboundInterceptor, owner: ActivityHooks) -> None:
        super().__init__(next)
        self.owner = owner

    async def execute_activity(self, input: ExecuteActivityInput):
        info = activity.info()
        hook = self.owner.hooks.get(info.activity_type)
        if hook is not None:
            try:
                await hook(info)
            except BaseException as exc:
                self.owner.errors.append(exc)
                raise
        return await self.next.execute_activity(input)
