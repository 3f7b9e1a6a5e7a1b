"""Delivery back ends for rendered messages: a file outbox (development) and SMTP (production)."""

from __future__ import annotations

import asyncio
import os
import re
import tempfile
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol, runtime_checkable

import aiosmtplib

from psa.config import Settings
from psa.email.models import EmailResult

_UNSAFE_FILENAME_CHARS = re.compile(r"[^A-Za-z0-9._-]+")


@runtime_checkable
class EmailProvider(Protocol):
    """Something that delivers a fully built ``EmailMessage``.

    ``send`` returns an ``EmailResult`` with ``email_sent=True`` on success and raises (any
    ``Exception``) on failure; callers such as ``send_welcome_email`` turn exceptions into results.
    """

    name: str

    async def send(self, message: EmailMessage) -> EmailResult: ...


class OutboxProvider:
    """Writes each message as an RFC 5322 ``.eml`` file into ``directory`` instead of sending it.

    File name: ``<UTC timestamp YYYYmmddTHHMMSSffffffZ>-<sanitised Message-ID>.eml``. The write is
    atomic (temporary file in the same directory, then ``os.replace``), the file is created with mode
    0600 (it holds a temporary password), and the directory is created (mode 0700) when missing.
    """

    name = "outbox"

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory).expanduser().resolve()

    async def send(self, message: EmailMessage) -> EmailResult:
        """Write ``message`` to the outbox.

        Returns ``EmailResult(email_sent=True, location=<absolute .eml path>)``.
        Raises ``OSError`` when the directory or file cannot be written.
        """
        path = await asyncio.to_thread(self._write, message)
        return EmailResult(email_sent=True, message_id=message["Message-ID"], provider=self.name, location=str(path))

    def _write(self, message: EmailMessage) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        message_id = _UNSAFE_FILENAME_CHARS.sub("_", (message["Message-ID"] or "no-id").strip("<> "))
        target = self.directory / f"{stamp}-{message_id[:150]}.eml"
        fd, tmp_name = tempfile.mkstemp(dir=self.directory, prefix=".", suffix=".eml.tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(message.as_bytes())
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp_name, target)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
        return target


class SmtpProvider:
    """Sends messages through an SMTP server with ``aiosmtplib``.

    Uses ``settings.smtp_host``/``smtp_port``, optional ``smtp_username``/``smtp_password``,
    ``smtp_timeout_seconds`` (seconds, per network operation) and ``smtp_tls``: ``"tls"`` = implicit
    TLS (usually port 465), ``"starttls"`` = upgrade after connecting (usually 587), ``"none"`` = plain.
    Envelope sender and recipients come from the message's ``From``/``To`` headers.
    """

    name = "smtp"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def send(self, message: EmailMessage) -> EmailResult:
        """Deliver ``message``.

        Returns ``EmailResult(email_sent=True)`` when the server accepted it.
        Raises ``aiosmtplib.SMTPException`` subclasses (connection refused/timeout, rejected
        recipient, authentication failure, ...) on failure.
        """
        s = self.settings
        password = s.smtp_password.get_secret_value() if s.smtp_password is not None else None
        await aiosmtplib.send(
            message,
            hostname=s.smtp_host,
            port=s.smtp_port,
            username=s.smtp_username or None,
            password=password if s.smtp_username else None,
            use_tls=s.smtp_tls == "tls",
            start_tls=s.smtp_tls == "starttls",
            timeout=s.smtp_timeout_seconds,
        )
        return EmailResult(email_sent=True, message_id=message["Message-ID"], provider=self.name)


def build_provider(settings: Settings) -> EmailProvider:
    """The provider selected by ``settings.email_provider``: ``"outbox"`` → ``OutboxProvider``
    writing to ``settings.outbox_path``; ``"smtp"`` → ``SmtpProvider``.

    Raises ``ValueError`` for any other value.
    """
    if settings.email_provider == "outbox":
        return OutboxProvider(settings.outbox_path)
    if settings.email_provider == "smtp":
        return SmtpProvider(settings)
    raise ValueError(f"unknown email provider {settings.email_provider!r} (expected 'outbox' or 'smtp')")
