"""The email outbox on the real database with real providers: the file outbox and SMTP servers on loopback
(aiosmtpd). Deterministic rows and Message-IDs, delivery once, a sending row re-sent after its sender died,
retries with backoff, permanent refusals, sealed messages (docs/architecture.md, "Email outbox")."""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import uuid
from email import message_from_bytes, policy

import pytest
from prometheus_client import REGISTRY
from pydantic import SecretStr
from sqlalchemy import text

from psa.config import Settings
from psa.db.engine import tenant_transaction
from psa.email import (
    EMAIL_TYPE_WELCOME,
    EmailSender,
    InvalidEmail,
    OutboxProvider,
    SmtpProvider,
    queue_email,
    render_welcome,
)
from psa.email.outbox import email_id_for, message_id_for
from tests.factories import make_tenant, make_welcome
from tests.helpers import count, free_port, outbox_rows, scalar, wait_for
from tests.smtp import CollectingHandler, RejectingHandler, smtp_server

PASSWORD = "Sealed-Secret-7$kq"


@pytest.fixture
def settings(base_settings, tmp_path) -> Settings:
    """The test stack's settings with a fresh file outbox, a codec key and quick retries."""
    return base_settings.model_copy(
        update={
            "outbox_dir": tmp_path / "outbox",
            "email_from": "Acme PSA <noreply@acme.example>",
            "codec_key": SecretStr(base64.b64encode(os.urandom(32)).decode()),
            "email_retry_seconds": 0.2,
            "smtp_host": "127.0.0.1",
            "smtp_tls": "none",
            "smtp_timeout_seconds": 2.0,
        }
    )


@pytest.fixture
async def tenant(engine) -> uuid.UUID:
    return (await make_tenant(engine)).tenant


def welcome(settings: Settings, email: str = "peter@initech.example", **overrides):
    return render_welcome(settings, make_welcome(PASSWORD, email=email, **overrides))


async def queue(engine, tenant, message, *, key: str = "wf-1/tenant_welcome", seal_key: bytes | None = None):
    async with tenant_transaction(engine, tenant) as conn:
        return await queue_email(
            conn, tenant=tenant, source_key=key, kind=EMAIL_TYPE_WELCOME, message=message, seal_key=seal_key
        )


def sent_count(kind: str, outcome: str) -> float:
    return REGISTRY.get_sample_value("psa_emails_total", {"kind": kind, "outcome": outcome}) or 0.0


async def test_queue_keys_the_row_and_its_message_id_by_the_business_key(engine, tenant, settings):
    first = await queue(engine, tenant, welcome(settings, "Peter@Initech.example"))
    again = await queue(engine, tenant, welcome(settings, tenant_name="Initech (retried)"))  # a retry: same key
    other_key = await queue(engine, tenant, welcome(settings), key="wf-2/tenant_welcome")
    other_tenant = await queue(engine, (await make_tenant(engine)).tenant, welcome(settings))

    assert first.email_id == email_id_for(tenant, "wf-1/tenant_welcome")
    assert first.message_id == message_id_for(first.email_id, settings.email_from)
    assert first.message_id == f"<{first.email_id}@acme.example>"
    assert again == first
    assert other_key.message_id != first.message_id
    assert other_tenant.message_id != first.message_id
    [row, second] = await outbox_rows(engine, tenant)
    assert (row.email_id, row.source_key, row.kind, row.status, row.attempts) == (
        first.email_id,
        "wf-1/tenant_welcome",
        "tenant_welcome",
        "pending",
        0,
    )
    assert row.recipients == ["Peter@initech.example"]  # normalised: the domain lower-cased
    assert row.subject == "Welcome to PSA - Your Account is Ready"
    assert row.sealed is False
    stored = message_from_bytes(row.message, policy=policy.default)
    assert stored["Message-ID"] == first.message_id
    assert "Initech (retried)" not in stored.get_body(("plain",)).get_content()  # the first queued message stays
    assert second.email_id == other_key.email_id


async def test_a_queued_email_is_delivered_once_and_never_again(engine, tenant, settings):
    sender = EmailSender(engine, OutboxProvider(settings.outbox_path), settings)
    queued = await queue(engine, tenant, welcome(settings))
    before = sent_count("tenant_welcome", "sent")

    assert await sender.deliver_due(tenant=tenant) == 1
    assert await sender.deliver_due(tenant=tenant) == 0
    async with tenant_transaction(engine, tenant) as conn:  # a retry of a sent row returns its outcome
        stored = await sender.queue_and_claim(
            conn,
            tenant=tenant,
            source_key="wf-1/tenant_welcome",
            kind=EMAIL_TYPE_WELCOME,
            message=welcome(settings),
            take_over=True,
        )
    [eml] = list(settings.outbox_path.glob("*.eml"))
    assert eml == sender.provider.path_for(queued.message_id)
    assert message_from_bytes(eml.read_bytes(), policy=policy.default)["Message-ID"] == queued.message_id
    [row] = await outbox_rows(engine, tenant)
    assert (row.status, row.attempts, row.provider, row.location, row.last_error) == (
        "sent",
        1,
        "outbox",
        str(eml),
        None,
    )
    assert row.sent_at is not None
    assert row.next_attempt_at is None
    assert stored.email_sent is True
    assert (stored.status, stored.attempts, stored.location, stored.message_id) == (
        "sent",
        1,
        str(eml),
        queued.message_id,
    )
    assert sent_count("tenant_welcome", "sent") == before + 1


async def test_deliver_due_for_a_tenant_leaves_other_tenants_rows(engine, tenant, settings):
    sender = EmailSender(engine, OutboxProvider(settings.outbox_path), settings)
    other = (await make_tenant(engine)).tenant
    await queue(engine, other, welcome(settings))
    await queue(engine, tenant, welcome(settings))
    assert await sender.deliver_due(tenant=tenant) == 1
    assert [r.status for r in await outbox_rows(engine, other)] == ["pending"]
    assert await sender.deliver_due(tenant=other) == 1


async def test_a_sealed_message_is_stored_without_its_secret(engine, tenant, settings):
    sender = EmailSender(engine, OutboxProvider(settings.outbox_path), settings)
    queued = await queue(engine, tenant, welcome(settings), seal_key=settings.resolved_codec_key())

    [row] = await outbox_rows(engine, tenant)
    assert row.sealed is True
    assert PASSWORD.encode() not in row.message
    assert b"Temporary Password" not in row.message
    whole_row = "SELECT count(*) FROM email_outbox o WHERE tenant = :t AND strpos(o::text, :pw) > 0"
    assert await scalar(engine, whole_row, t=tenant, pw=PASSWORD) == 0
    assert await scalar(engine, whole_row, t=tenant, pw=PASSWORD.encode().hex()) == 0  # nor in the bytea's hex
    assert await sender.deliver_due(tenant=tenant) == 1
    [eml] = list(settings.outbox_path.glob("*.eml"))
    message = message_from_bytes(eml.read_bytes(), policy=policy.default)
    assert message["Message-ID"] == queued.message_id
    assert PASSWORD in message.get_body(("plain",)).get_content()


async def test_a_sealed_message_opens_only_with_its_key_and_on_its_row(engine, tenant, settings):
    await queue(engine, tenant, welcome(settings), key="wf-1/tenant_welcome", seal_key=os.urandom(32))  # other key
    await queue(engine, tenant, welcome(settings), key="wf-2/tenant_welcome", seal_key=settings.resolved_codec_key())
    await queue(engine, tenant, welcome(settings), key="wf-3/tenant_welcome", seal_key=settings.resolved_codec_key())
    async with tenant_transaction(engine, tenant) as conn:  # wf-2's ciphertext copied onto wf-3's row
        await conn.execute(
            text(
                "UPDATE email_outbox SET message = (SELECT message FROM email_outbox WHERE tenant = :t "
                "AND source_key = 'wf-2/tenant_welcome') WHERE tenant = :t AND source_key = 'wf-3/tenant_welcome'"
            ),
            {"t": tenant},
        )
    sender = EmailSender(engine, OutboxProvider(settings.outbox_path), settings)

    assert await sender.deliver_due(tenant=tenant) == 1  # wf-2 only
    by_key = {row.source_key: row for row in await outbox_rows(engine, tenant)}
    assert by_key["wf-2/tenant_welcome"].status == "sent"
    for key in ("wf-1/tenant_welcome", "wf-3/tenant_welcome"):
        assert by_key[key].status == "failed", key
        assert by_key[key].last_error.startswith("InvalidTag"), key
        assert by_key[key].next_attempt_at is None, key  # permanent: never retried
    assert len(list(settings.outbox_path.glob("*.eml"))) == 1


async def test_a_row_whose_sender_died_mid_delivery_is_resent_with_the_same_message_id(engine, tenant, settings):
    lease = settings.model_copy(update={"email_lease_seconds": 3})
    dying = EmailSender(engine, OutboxProvider(settings.outbox_path), lease)
    async with tenant_transaction(engine, tenant) as conn:  # committed `sending`, then the process died unsent
        claim = await dying.queue_and_claim(
            conn, tenant=tenant, source_key="wf-1/tenant_welcome", kind=EMAIL_TYPE_WELCOME, message=welcome(settings)
        )
    queued = await queue(engine, tenant, welcome(settings))  # the same key: the row the claim is of
    assert claim.attempts == 1
    sender = EmailSender(engine, OutboxProvider(settings.outbox_path), settings)

    assert await sender.deliver_due(tenant=tenant) == 0  # its lease still runs: nobody else sends it yet
    assert [r.status for r in await outbox_rows(engine, tenant)] == ["sending"]
    await wait_for(lambda: sender.deliver_due(tenant=tenant), timeout=30)
    [row] = await outbox_rows(engine, tenant)
    assert (row.status, row.attempts, row.message_id) == ("sent", 2, queued.message_id)
    [eml] = list(settings.outbox_path.glob("*.eml"))
    assert message_from_bytes(eml.read_bytes(), policy=policy.default)["Message-ID"] == queued.message_id


async def test_an_smtp_server_that_is_down_then_back_gets_the_email_once(engine, tenant, settings):
    port = free_port()  # nothing listens there yet
    smtp = settings.model_copy(update={"smtp_port": port})
    sender = EmailSender(engine, SmtpProvider(smtp), smtp)
    queued = await queue(engine, tenant, welcome(settings))

    assert await sender.deliver_due(tenant=tenant) == 0
    [row] = await outbox_rows(engine, tenant)
    assert (row.status, row.attempts) == ("failed", 1)
    assert row.last_error.startswith("SMTPConnect")
    assert row.next_attempt_at is not None  # transient: due again after the backoff
    handler = CollectingHandler()
    with smtp_server(handler, port):
        await wait_for(lambda: sender.deliver_due(tenant=tenant), timeout=30)
        assert await sender.deliver_due(tenant=tenant) == 0
    [envelope] = handler.envelopes
    assert envelope.rcpt_tos == ["peter@initech.example"]
    assert message_from_bytes(envelope.content, policy=policy.default)["Message-ID"] == queued.message_id
    [row] = await outbox_rows(engine, tenant)
    assert (row.status, row.attempts, row.last_error) == ("sent", 2, None)


async def test_a_permanent_refusal_is_not_retried(engine, tenant, settings):
    with smtp_server(RejectingHandler()) as server:
        smtp = settings.model_copy(update={"smtp_port": server.port})
        sender = EmailSender(engine, SmtpProvider(smtp), smtp)
        await queue(engine, tenant, welcome(settings))
        before = sent_count("tenant_welcome", "failed")
        assert await sender.deliver_due(tenant=tenant) == 0
        await asyncio.sleep(0.5)  # longer than the retry delay: a transient failure would be due again
        assert await sender.deliver_due(tenant=tenant) == 0
    [row] = await outbox_rows(engine, tenant)
    assert (row.status, row.attempts, row.next_attempt_at) == ("failed", 1, None)
    assert "550" in row.last_error
    assert sent_count("tenant_welcome", "failed") == before + 1


async def test_attempts_are_bounded(engine, tenant, settings):
    smtp = settings.model_copy(update={"smtp_port": free_port(), "email_max_attempts": 3, "email_retry_seconds": 0.05})
    sender = EmailSender(engine, SmtpProvider(smtp), smtp)
    await queue(engine, tenant, welcome(settings))

    async def given_up() -> bool:
        await sender.deliver_due(tenant=tenant)
        [row] = await outbox_rows(engine, tenant)
        return row.next_attempt_at is None

    await wait_for(given_up, timeout=30)
    [row] = await outbox_rows(engine, tenant)
    assert (row.status, row.attempts) == ("failed", 3)


async def test_errors_of_a_sealed_message_never_quote_it(engine, tenant, settings, caplog):
    class EchoingProvider:
        """A provider whose server echoes the whole message back in its error (some do quote the DATA)."""

        name = "echo"

        async def send(self, message):
            raise RuntimeError(f"rejected: {message.get_body(('plain',)).get_content()}")

    sender = EmailSender(engine, EchoingProvider(), settings)
    await queue(engine, tenant, welcome(settings), seal_key=settings.resolved_codec_key())
    with caplog.at_level(logging.DEBUG):
        assert await sender.deliver_due(tenant=tenant) == 0
    [row] = await outbox_rows(engine, tenant)
    assert row.last_error.startswith("RuntimeError: rejected:")
    assert "[REDACTED]" in row.last_error
    assert PASSWORD not in row.last_error
    assert "welcome email not sent" in caplog.text
    assert PASSWORD not in caplog.text


async def test_an_invalid_or_missing_recipient_queues_nothing(engine, tenant, settings):
    message = welcome(settings)
    message.replace_header("To", "not-an-email")
    with pytest.raises(InvalidEmail, match="invalid recipient address 'not-an-email'") as invalid:
        await queue(engine, tenant, message)
    assert invalid.value.address == "not-an-email"
    del message["To"]
    with pytest.raises(InvalidEmail, match="no recipient"):
        await queue(engine, tenant, message)
    assert await count(engine, "email_outbox WHERE tenant = :t", t=tenant) == 0
