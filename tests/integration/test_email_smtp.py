"""Welcome email delivered through the email outbox to a real in-process SMTP server (aiosmtpd)."""

from __future__ import annotations

from email import message_from_bytes, policy

import pytest
from aiosmtpd.controller import Controller
from pydantic import SecretStr

from psa.config import Settings
from psa.db.engine import tenant_transaction
from psa.email import (
    EMAIL_TYPE_WELCOME,
    EmailResult,
    EmailSender,
    SmtpProvider,
    WelcomeEmail,
    render_welcome,
)
from tests.factories import make_tenant
from tests.helpers import free_port
from tests.smtp import CollectingHandler, RejectingHandler

PASSWORD = "Smtp-Secret-42#"


def start_server(handler):
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    return controller


@pytest.fixture
def collecting_server():
    handler = CollectingHandler()
    controller = start_server(handler)
    yield controller, handler
    controller.stop()


@pytest.fixture
def rejecting_server():
    controller = start_server(RejectingHandler())
    yield controller
    controller.stop()


def smtp_settings(tmp_path, port: int, **overrides) -> Settings:
    values = {
        "state_dir": tmp_path,
        "email_provider": "smtp",
        "smtp_host": "127.0.0.1",
        "smtp_port": port,
        "smtp_tls": "none",
        "smtp_timeout_seconds": 2,
        "email_from": "Acme PSA <noreply@acme.example>",
        "product_name": "Acme PSA",
    }
    values.update(overrides)
    return Settings(**values)


async def send_welcome_email(engine, settings: Settings, msg: WelcomeEmail) -> EmailResult:
    """Queue the welcome email in a new tenant's outbox, claim it and send it, as the provisioning activity does."""
    tenant = (await make_tenant(engine)).tenant
    sender = EmailSender(engine, SmtpProvider(settings), settings)
    async with tenant_transaction(engine, tenant) as conn:
        claim = await sender.queue_and_claim(
            conn,
            tenant=tenant,
            source_key="smtp/tenant_welcome",
            kind=EMAIL_TYPE_WELCOME,
            message=render_welcome(settings, msg),
        )
    return await sender.send(claim)


def welcome(**overrides) -> WelcomeEmail:
    values = {
        "tenant_id": "ten_smtp",
        "tenant_name": "Umbrella Ltd",
        "user_id": "usr_smtp",
        "first_name": "Alice",
        "last_name": "Abernathy",
        "email": "alice@umbrella.example",
        "temporary_password": SecretStr(PASSWORD),
    }
    values.update(overrides)
    return WelcomeEmail(**values)


async def test_delivers_to_smtp_server(engine, tmp_path, collecting_server):
    controller, handler = collecting_server
    result = await send_welcome_email(engine, smtp_settings(tmp_path, controller.port), welcome())

    assert result.email_sent is True, result.error
    assert result.provider == "smtp"
    assert result.error is None
    assert len(handler.envelopes) == 1
    envelope = handler.envelopes[0]
    assert envelope.mail_from == "noreply@acme.example"
    assert envelope.rcpt_tos == ["alice@umbrella.example"]
    parsed = message_from_bytes(envelope.original_content, policy=policy.default)
    assert parsed["Subject"] == "Welcome to Acme PSA - Your Account is Ready"
    assert parsed["Message-ID"] == result.message_id
    assert parsed["X-PSA-Tenant-Id"] == "ten_smtp"
    assert PASSWORD in parsed.get_body(preferencelist=("plain",)).get_content()
    assert PASSWORD in parsed.get_body(preferencelist=("html",)).get_content()
    assert not (tmp_path / "outbox").exists()


async def test_rejected_recipient_is_reported(engine, tmp_path, rejecting_server):
    result = await send_welcome_email(engine, smtp_settings(tmp_path, rejecting_server.port), welcome())
    assert result.email_sent is False
    assert result.provider == "smtp"
    assert result.error is not None
    assert "550" in result.error
    assert PASSWORD not in result.error


async def test_closed_port_fails_fast(engine, tmp_path):
    port = free_port()  # bound then released: nothing listens there
    # A timeout far beyond the test's: the failure must be the refused connection itself, not a timeout.
    result = await send_welcome_email(engine, smtp_settings(tmp_path, port, smtp_timeout_seconds=600), welcome())
    assert result.email_sent is False
    assert result.provider == "smtp"
    assert result.error is not None
    assert result.error.startswith("SMTPConnectError: "), result.error
    assert "Connect call failed" in result.error
    assert PASSWORD not in result.error
