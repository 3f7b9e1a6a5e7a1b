"""Delivery back ends for rendered messages: a file outbox (development) and SMTP (production). The email outbox
(psa.email.outbox) calls them after commit."""

from __future__ import annotations

import asyncio
import fcntl
import os
import re
import tempfile
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol, runtime_checkable

import aiosmtplib

from psa.config import Settings
from psa.email.models import EmailResult

_UNSAFE_FILENAME_CHARS = re.compile(r"[^A-Za-z0-9@._-]+")


@runtime_checkable
class EmailProvider(Protocol):
    """Something that delivers a fully built ``EmailMessage``.

    ``send`` returns an ``EmailResult`` with ``email_sent=True`` on success and raises (any ``Exception``) on
    failure; the email outbox records the failure on the message's row (``is_permanent`` says whether to retry).
    """

    name: str

    async def send(self, message: EmailMessage) -> EmailResult: ...


class OutboxProvider:
    """Writes each message as an RFC 5322 ``.eml`` file into ``directory`` instead of sending it.

    File name: the sanitised ``Message-ID`` (``<id@domain>`` -> ``id@domain.eml``; ``path_for``), so a re-send of
    the same message (after a crash, docs/architecture.md, "Email outbox") replaces its file: one per message. The write
    is atomic (a ``.*.eml.tmp`` file in the same directory, locked while it is written, then ``os.replace``), the
    file is created with mode 0600 (it may hold a temporary password), and the directory is created (mode 0700)
    when missing. Construction removes the temporary files a crashed writer left (those no live writer holds).
    """

    name = "outbox"

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory).expanduser().resolve()
        self.remove_stale_temporary_files()

    def remove_stale_temporary_files(self) -> list[Path]:
        """Delete every ``.*.eml.tmp`` in the directory that no writer holds locked (a writer that died mid-write
        leaves its file unlocked); returns the files removed."""
        removed: list[Path] = []
        for tmp in self.directory.glob(".*.eml.tmp") if self.directory.is_dir() else ():
            try:
                with open(tmp, "rb") as fh:
                    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released when the file is closed
                    tmp.unlink()
            except (BlockingIOError, FileNotFoundError):  # a live writer's file, or gone meanwhile
                continue
            removed.append(tmp)
        return removed

    async def send(self, message: EmailMessage) -> EmailResult:
        """Write ``message`` to the outbox.

        Returns ``EmailResult(email_sent=True, location=<absolute .eml path>)``.
        Raises ``ValueError`` when the message has no ``Message-ID`` and ``OSError`` when the directory or file
        cannot be written.
        """
        path = await asyncio.to_thread(self._write, message)
        return EmailResult(email_sent=True, message_id=message["Message-ID"], provider=self.name, location=str(path))

    def path_for(self, message_id: str) -> Path:
        """Where the message with ``message_id`` (``<...>``) is written: its characters other than letters, digits
        and ``@._-`` become ``_``, leading dots go (no hidden files), at most 200 characters, then ``.eml``."""
        name = _UNSAFE_FILENAME_CHARS.sub("_", message_id.strip("<> ")).lstrip(".")
        return self.directory / f"{name[:200]}.eml"

    def _write(self, message: EmailMessage) -> Path:
        if not message["Message-ID"]:
            raise ValueError("the message has no Message-ID")
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        target = self.path_for(message["Message-ID"])
        fd, tmp_name = tempfile.mkstemp(dir=self.directory, prefix=".", suffix=".eml.tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                fcntl.flock(fh, fcntl.LOCK_EX)
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


def is_permanent(exc: BaseException) -> bool:
    """Whether retrying a delivery that raised ``exc`` is pointless: the SMTP server refused it for good (a 5xx
    reply, or every recipient refused with one) or the message itself is unusable (``ValueError``). Connection
    failures, time-outs, 4xx replies and file-system errors are transient."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        return bool(exc.recipients) and all(r.code >= 500 for r in exc.recipients)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return exc.code >= 500
    return isinstance(exc, ValueError)
