"""Faults: SMTP refusing, PostgreSQL stopped mid-workflow, the worker killed mid-workflow, and an outage
that outlives the activity timeout (time-skipping test server)."""

from __future__ import annotations

import asyncio
import email
import email.policy
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ActivityError, RetryState
from temporalio.testing import WorkflowEnvironment

from psa.email import EmailSender, SmtpProvider
from psa.provisioning.activities import ProvisioningActivities
from psa.provisioning.starter import start_tenant_creation
from psa.provisioning.workflow import TenantCreationWorkflow, derived_id, workflow_id_for
from psa.temporal import data_converter
from psa.worker import build_worker
from tests.factories import make_request
from tests.helpers import ActivityHooks, cli_env, free_port, outbox_rows, tenant_row_counts, wait_for
from tests.smtp import CollectingHandler, GatedHandler, RejectingHandler, smtp_server

needs_embedded_db = pytest.mark.skipif(
    bool(os.environ.get("DATABASE_URL")), reason="stops and restarts the embedded PostgreSQL"
)


def _smtp(settings, port: int):
    return settings.model_copy(
        update={
            "email_provider": "smtp",
            "smtp_host": "127.0.0.1",
            "smtp_port": port,
            "smtp_tls": "none",
            "smtp_timeout_seconds": 5.0,
        }
    )


def _assert_one_of_each(counts: dict[str, int]) -> None:
    for table in (
        "tenants",
        "clients",
        "client_locations",
        "tenant_companies",
        "users",
        "user_roles",
        "tenant_settings",
        "tenant_email_settings",
        "tax_regions",
        "tax_rates",
    ):
        assert counts[table] == 1, (table, counts[table])
    assert counts["roles"] == 8


async def test_smtp_delivery(client, start_worker, engine, base_settings):
    handler = CollectingHandler()
    with smtp_server(handler) as server:
        task_queue = await start_worker(settings=_smtp(base_settings, server.port))
        request = make_request()
        result = await (await start_tenant_creation(client, request, task_queue=task_queue)).result()
    assert result.email_sent
    assert result.email_error is None
    assert [e.rcpt_tos for e in handler.envelopes] == [[request.admin_user.email.lower()]]
    message = email.message_from_bytes(handler.envelopes[0].content, policy=email.policy.default)
    assert result.temporary_password in message.get_body(("plain",)).get_content()


async def test_smtp_refusal_keeps_provisioning_successful(client, start_worker, engine, base_settings):
    with smtp_server(RejectingHandler()) as server:
        task_queue = await start_worker(settings=_smtp(base_settings, server.port))
        handle = await start_tenant_creation(client, make_request(), task_queue=task_queue)
        result = await handle.result()
    assert result.success
    assert result.email_sent is False
    assert "550" in result.email_error
    assert result.temporary_password not in result.email_error
    state = await handle.query(TenantCreationWorkflow.get_state)
    assert state.step == "completed"
    assert state.email_sent is False
    assert "550" in state.email_error
    _assert_one_of_each(await tenant_row_counts(engine, result.tenant_id))


async def test_welcome_email_while_smtp_is_down_is_delivered_once_it_is_back(
    client, start_worker, engine, base_settings
):
    port = free_port()  # nothing listens there yet
    settings = _smtp(base_settings, port).model_copy(update={"email_retry_seconds": 0.2})
    task_queue = await start_worker(settings=settings)
    result = await (await start_tenant_creation(client, make_request(), task_queue=task_queue)).result()
    assert result.success
    assert result.email_sent is False
    assert result.email_error.startswith("SMTPConnect")
    [row] = await outbox_rows(engine, result.tenant_id)
    assert (row.status, row.attempts) == ("failed", 1)
    assert row.next_attempt_at is not None  # transient: the worker's email sender retries it

    handler = CollectingHandler()
    sender = EmailSender(engine, SmtpProvider(settings), settings)
    with smtp_server(handler, port):
        await wait_for(lambda: sender.deliver_due(tenant=uuid.UUID(result.tenant_id)), timeout=30)
        assert await sender.deliver_due(tenant=uuid.UUID(result.tenant_id)) == 0
    [envelope] = handler.envelopes  # delivered once
    message = email.message_from_bytes(envelope.content, policy=email.policy.default)
    assert message["Message-ID"] == row.message_id
    assert result.temporary_password in message.get_body(("plain",)).get_content()
    [row] = await outbox_rows(engine, result.tenant_id)
    assert (row.status, row.attempts) == ("sent", 2)


@needs_embedded_db
async def test_postgres_stopped_mid_workflow_waits_then_completes(client, start_worker, engine, stack):
    attempts: list[int] = []
    restart: list[asyncio.Task] = []

    async def outage(info) -> None:
        attempts.append(info.attempt)
        if info.attempt == 1:
            await asyncio.to_thread(stack.stop_postgres)

            async def back_in_20s() -> None:
                await asyncio.sleep(20)
                await asyncio.to_thread(stack.start_postgres)

            restart.append(asyncio.create_task(back_in_20s()))

    task_queue = await start_worker(interceptors=[ActivityHooks({"create_admin_user": outage})])
    try:
        handle = await start_tenant_creation(client, make_request(), task_queue=task_queue)
        result = await asyncio.wait_for(handle.result(), timeout=180)
    finally:
        if restart:
            await restart[0]
    assert max(attempts) > 1, "the activity was retried while PostgreSQL was down"
    state = await handle.query(TenantCreationWorkflow.get_state)
    assert state.compensation.status == "not_needed"
    _assert_one_of_each(await tenant_row_counts(engine, result.tenant_id))


async def test_worker_killed_mid_workflow_then_restarted(client, start_worker, engine, base_settings, tmp_path):
    request = make_request()
    handler = GatedHandler(request.admin_user.email)
    task_queue = f"test-kill-{uuid.uuid4()}"
    with smtp_server(handler) as server:
        settings = _smtp(base_settings, server.port)
        env = cli_env(settings, task_queue)
        log = open(tmp_path / "worker.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            [sys.executable, "-m", "psa.cli", "worker"], env=env, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            handle = await start_tenant_creation(client, request, task_queue=task_queue)
            # The worker process is inside send_welcome_email, holding an SMTP DATA command open.
            assert await asyncio.to_thread(handler.entered.wait, 60), (tmp_path / "worker.log").read_text()
            state = await handle.query(TenantCreationWorkflow.get_state)
            assert state.step == "sending_welcome_email"
        finally:
            proc.kill()
            proc.wait()
            log.close()
        handler.gate.set()
        await start_worker(settings=settings, task_queue=task_queue)
        result = await asyncio.wait_for(handle.result(), timeout=120)
    assert result.email_sent
    _assert_one_of_each(await tenant_row_counts(engine, result.tenant_id))


@needs_embedded_db
async def test_outage_outliving_the_timeout_fails_without_destroying_then_rerun_resumes(
    client, start_worker, engine, stack, base_settings
):
    """Reference bug: a transient error triggered rollback and deleted a paying customer's tenant."""
    request = make_request()
    workflow_id = workflow_id_for(request.tenant_name.lower().replace(" ", "-"))
    tenant_id = derived_id(workflow_id, "tenant")
    stopped: list[bool] = []

    async def outage(info) -> None:
        if not stopped:
            stopped.append(True)
            await asyncio.to_thread(stack.stop_postgres)

    test_server = Path(sys.executable).parent / "temporal-test-server"
    try:
        async with await WorkflowEnvironment.start_time_skipping(
            data_converter=data_converter(base_settings), test_server_existing_path=str(test_server)
        ) as env:
            task_queue = f"test-skip-{uuid.uuid4()}"
            activities = ProvisioningActivities(engine, base_settings)
            async with build_worker(
                env.client, activities, task_queue=task_queue, interceptors=[ActivityHooks({"seed_tenant": outage})]
            ):
                handle = await env.client.start_workflow(
                    TenantCreationWorkflow.run, request, id=workflow_id, task_queue=task_queue
                )
                with pytest.raises(WorkflowFailureError) as info:
                    await handle.result()
                failure = info.value.cause
                assert isinstance(failure, ActivityError)
                # Retried until the schedule-to-close timeout; the last attempt's error is the cause.
                assert failure.retry_state == RetryState.TIMEOUT
                assert "OperationalError" in str(failure.cause)
                state = await handle.query(TenantCreationWorkflow.get_state)
                assert state.step == "failed"
                assert state.error_type == "OperationalError"
                assert "[SQL" not in state.error, "no SQL or its parameters"
                assert "parameters" not in state.error, "no SQL or its parameters"
                assert state.compensation.status == "not_needed"
    finally:
        await asyncio.to_thread(stack.start_postgres)

    counts = await tenant_row_counts(engine, tenant_id)
    assert counts["tenants"] == 1, "a transient fault must never delete the tenant"
    assert counts["roles"] == 0

    # Re-running the same business key on the dev server resumes on the same rows.
    task_queue = await start_worker()
    result = await (await start_tenant_creation(client, request, task_queue=task_queue)).result()
    assert result.tenant_id == tenant_id
    _assert_one_of_each(await tenant_row_counts(engine, tenant_id))
