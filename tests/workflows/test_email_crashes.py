"""A real worker process killed on the email path, then replaced (docs/architecture.md, "Email outbox"): the
welcome email and an action's email are delivered once per recipient with the file outbox, and once to an SMTP
server when the crash comes after the row was marked sent; a row left ``sending`` is re-sent with the same
Message-ID. The worker is ``tests/crash_worker.py``: ``psa.worker.run_worker`` with an exit at one point."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import uuid
from collections.abc import Iterator
from email import message_from_bytes, policy
from pathlib import Path

from slugify import slugify

from psa.automation.actions import builtin_registry
from psa.automation.definitions import publish_definition
from psa.automation.run.starter import launch_run, run_handle
from psa.db.engine import tenant_transaction
from psa.provisioning.starter import start_tenant_creation
from psa.provisioning.types import ActivityName
from psa.provisioning.workflow import derived_id, workflow_id_for
from tests.crash_worker import CRASH_EXIT_CODE
from tests.factories import make_actors, make_request, new_client
from tests.helpers import ROOT, audits, cli_env, count, emls_to, ledger, outbox_rows, rows, wait_for
from tests.smtp import CollectingHandler, smtp_server

LEASE_SECONDS = "2"


def _smtp(settings, port: int):
    return settings.model_copy(
        update={"email_provider": "smtp", "smtp_host": "127.0.0.1", "smtp_port": port, "smtp_tls": "none"}
    )


@contextlib.contextmanager
def worker_process(settings, task_queue: str, log: Path, *args: str, **env: str) -> Iterator[subprocess.Popen]:
    """``python -m ARGS`` (a worker) with the test stack's servers, ``settings``' email provider and ``task_queue``;
    output to ``log``. Killed at the end of the block if it is still running."""
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", *args],
            env=cli_env(settings, task_queue, **env),
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


async def crashed(proc: subprocess.Popen, log: Path) -> None:
    """Wait until the crash worker killed itself at its crash point."""
    code = await asyncio.to_thread(proc.wait, 120)
    assert code == CRASH_EXIT_CODE, log.read_text()


def tenant_of(request) -> str:
    return derived_id(workflow_id_for(slugify(request.tenant_name)), "tenant")


async def test_welcome_email_once_when_the_worker_dies_after_writing_the_eml(
    client, start_worker, engine, base_settings, tmp_path
):
    settings = base_settings.model_copy(update={"outbox_dir": tmp_path / "outbox"})
    request = make_request()
    admin = request.admin_user.email.lower()
    task_queue, log = f"test-crash-{uuid.uuid4()}", tmp_path / "worker.log"
    with worker_process(settings, task_queue, log, "tests.crash_worker", "after-send", admin) as proc:
        handle = await start_tenant_creation(client, request, task_queue=task_queue)
        await crashed(proc, log)
    [left] = await outbox_rows(engine, tenant_of(request))
    assert (left.status, left.attempts) == ("sending", 1)  # the .eml is written, the row never marked sent
    assert len(emls_to(settings.outbox_path, admin)) == 1

    await start_worker(settings=settings, task_queue=task_queue)  # Temporal retries send_welcome_email here
    result = await asyncio.wait_for(handle.result(), timeout=120)

    assert result.email_sent
    [message] = emls_to(settings.outbox_path, admin)  # exactly one .eml: the re-send replaced it
    assert message["Message-ID"] == left.message_id
    assert result.temporary_password in message.get_body(("plain",)).get_content()
    [row] = await outbox_rows(engine, result.tenant_id)
    assert (row.status, row.attempts, row.message_id) == ("sent", 2, left.message_id)
    assert result.email_location == row.location
    assert list(settings.outbox_path.glob(".*.eml.tmp")) == []
    assert result.temporary_password not in log.read_text()


async def test_welcome_email_once_over_smtp_when_the_worker_dies_after_marking_it_sent(
    client, start_worker, engine, base_settings, tmp_path
):
    handler = CollectingHandler()
    request = make_request()
    admin = request.admin_user.email.lower()
    task_queue, log = f"test-crash-{uuid.uuid4()}", tmp_path / "worker.log"
    with smtp_server(handler) as server:
        settings = _smtp(base_settings, server.port)
        crash_after = ActivityName.SEND_WELCOME_EMAIL
        with worker_process(settings, task_queue, log, "tests.crash_worker", "after-activity", crash_after) as proc:
            handle = await start_tenant_creation(client, request, task_queue=task_queue)
            await crashed(proc, log)
        [left] = await outbox_rows(engine, tenant_of(request))
        assert (left.status, left.attempts) == ("sent", 1)  # delivered and recorded; Temporal never heard of it

        await start_worker(settings=settings, task_queue=task_queue)
        result = await asyncio.wait_for(handle.result(), timeout=120)

    assert result.email_sent
    [envelope] = [e for e in handler.envelopes if e.rcpt_tos == [admin]]  # the retry sent nothing
    assert message_from_bytes(envelope.content, policy=policy.default)["Message-ID"] == left.message_id
    [row] = await outbox_rows(engine, result.tenant_id)
    assert (row.status, row.attempts) == ("sent", 1)


async def test_a_welcome_email_left_sending_is_resent_with_the_same_message_id(
    client, start_worker, engine, base_settings, tmp_path
):
    """The SMTP server accepted the message and the worker died before marking the row sent: the retry sends it
    again (at least once), with the same Message-ID, by which the receiver de-duplicates."""
    handler = CollectingHandler()
    request = make_request()
    admin = request.admin_user.email.lower()
    task_queue, log = f"test-crash-{uuid.uuid4()}", tmp_path / "worker.log"
    with smtp_server(handler) as server:
        settings = _smtp(base_settings, server.port)
        with worker_process(settings, task_queue, log, "tests.crash_worker", "after-send", admin) as proc:
            handle = await start_tenant_creation(client, request, task_queue=task_queue)
            await crashed(proc, log)
        [left] = await outbox_rows(engine, tenant_of(request))
        assert (left.status, left.attempts) == ("sending", 1)

        await start_worker(settings=settings, task_queue=task_queue)
        result = await asyncio.wait_for(handle.result(), timeout=120)

    assert result.email_sent
    deliveries = [e for e in handler.envelopes if e.rcpt_tos == [admin]]
    assert len(deliveries) == 2
    ids = {message_from_bytes(e.content, policy=policy.default)["Message-ID"] for e in deliveries}
    assert ids == {left.message_id}
    [row] = await outbox_rows(engine, result.tenant_id)
    assert (row.status, row.attempts) == ("sent", 2)


QUOTE_AND_SEND = {
    "id": "quote-and-send",
    "name": "Quote and send",
    "steps": [
        {
            "id": "quote",
            "type": "action.call",
            "config": {
                "actionId": "crm.create_quote",
                "version": 1,
                "saveAs": "vars.quote",
                "inputMapping": {
                    "client_id": {"$expr": "payload.client_id"},
                    "title": "Managed services",
                    "quote_date": "2026-03-01",
                    "valid_until": "2026-03-31",
                },
            },
        },
        {
            "id": "send",
            "type": "action.call",
            "config": {
                "actionId": "crm.send_quote",
                "version": 1,
                "saveAs": "vars.sent",
                "inputMapping": {"quote_id": {"$expr": "vars.quote.quote.quote_id"}},
            },
        },
    ],
}


async def test_an_action_email_once_when_the_worker_dies_while_the_sender_delivers_it(
    client, engine, base_settings, tmp_path
):
    """Item 10's email case: the action committed (quote, audit, ledger, queued email), the worker's email sender
    wrote the .eml and the process died before marking the row sent. After a restart the run completes and the
    sender re-sends the row: one .eml per recipient, and the action's rows exist once."""
    settings = base_settings.model_copy(update={"outbox_dir": tmp_path / "outbox"})
    actors = await make_actors(engine)
    billing = f"billing.{uuid.uuid4().hex[:10]}@acme.example"
    acme = await new_client(engine, actors.tenant, billing_email=billing)
    async with tenant_transaction(engine, actors.tenant) as conn:
        await publish_definition(
            conn, actors.tenant, QUOTE_AND_SEND, registry=builtin_registry(), published_by=actors.admin
        )
    task_queue, log = f"test-crash-{uuid.uuid4()}", tmp_path / "worker.log"
    lease = {"PSA_EMAIL_LEASE_SECONDS": LEASE_SECONDS}
    with worker_process(settings, task_queue, log, "tests.crash_worker", "after-send", billing, **lease) as proc:
        launched = await launch_run(
            engine,
            client,
            tenant=actors.tenant,
            workflow="quote-and-send",
            payload={"client_id": str(acme.client_id)},
            task_queue=task_queue,
        )
        await crashed(proc, log)
    [left] = await outbox_rows(engine, actors.tenant)
    assert (left.status, left.attempts) == ("sending", 1)
    assert len(emls_to(settings.outbox_path, billing)) == 1

    stale = settings.outbox_path / ".q1w2e3.eml.tmp"  # what a writer killed before its rename leaves
    stale.write_bytes(left.message)
    with worker_process(settings, task_queue, log, "psa.cli", "worker", **lease):  # a plain `psa worker`
        result = await asyncio.wait_for(run_handle(client, launched.run_id).result(), timeout=120)

        async def resent() -> bool:
            [row] = await outbox_rows(engine, actors.tenant)
            return row.status == "sent"

        await wait_for(resent, timeout=60)

    assert result["status"] == "SUCCEEDED"
    sent = result["vars"]["sent"]
    [message] = emls_to(settings.outbox_path, billing)  # one delivery per recipient
    assert message["Message-ID"] == sent["message_id"] == left.message_id
    [row] = await outbox_rows(engine, actors.tenant)
    assert (row.status, row.attempts) == ("sent", 2)
    assert list(settings.outbox_path.glob(".*.eml.tmp")) == []  # removed when the worker started
    # the action's business row, audit row and ledger row, once each
    [quote] = await rows(engine, "SELECT status FROM quotes WHERE tenant = :t", t=actors.tenant)
    assert quote.status == "sent"
    assert await count(engine, "quote_activities WHERE tenant = :t AND activity_type = 'sent'", t=actors.tenant) == 1
    assert len(await audits(engine, actors.tenant, "crm.send_quote")) == 1
    [entry] = await ledger(engine, actors.tenant, "crm.send_quote")
    assert (entry.status, entry.output_json["message_id"]) == ("SUCCEEDED", sent["message_id"])
