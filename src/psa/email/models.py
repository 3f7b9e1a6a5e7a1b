"""Pydantic models shared by the email service and its providers."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from pydantic import BaseModel, SecretStr


class WelcomeRecipient(BaseModel):
    """Who a tenant-welcome email goes to, for which tenant, and the tenant's product (``psa`` or ``algadesk``),
    which chooses the email's copy (psa.email.service.product_name)."""

    tenant_id: str
    tenant_name: str
    user_id: str
    first_name: str
    last_name: str
    email: str
    product_code: str = "psa"


class WelcomeEmail(WelcomeRecipient):
    """Everything needed to write one tenant-welcome email.

    ``temporary_password`` is a ``SecretStr`` so it never shows up in reprs, logs or serialised
    payloads by accident; it is only unwrapped while rendering the message body.
    """

    temporary_password: SecretStr


EmailStatus = Literal["pending", "sending", "sent", "failed"]
"""The states of an email outbox row (docs/architecture.md, "Email outbox")."""


class EmailResult(BaseModel):
    """Outcome of one email: a delivery attempt, or the stored outcome of an earlier one.

    - ``email_sent``: True when the provider accepted the message (written to the outbox / accepted
      by the SMTP server).
    - ``message_id``: the RFC 5322 ``Message-ID`` header value (``<...@domain>``), when a message was built.
    - ``provider``: ``"outbox"`` or ``"smtp"``.
    - ``location``: for the outbox provider, the absolute path of the written ``.eml`` file.
    - ``error``: ``"<ExceptionClass>: <message>"`` when ``email_sent`` is False; never contains the password.
    - ``status``: the outbox row's status after this attempt (``sent``, ``failed``; ``sending`` while another
      sender holds it); ``attempts``: delivery attempts so far.
    """

    email_sent: bool
    message_id: str | None = None
    provider: str
    location: str | None = None
    error: str | None = None
    status: EmailStatus | None = None
    attempts: int = 0


class QueuedEmail(BaseModel):
    """An email written to the email outbox: its row (``tenant``, ``email_id``) and its ``Message-ID``."""

    tenant: UUID
    email_id: UUID
    message_id: str


class QuoteEmail(BaseModel):
    """One quote email (reference: crm.send_quote): who it goes to, its subject, the sender's optional
    message, the portal link, and what the body shows about the quote (``total`` already formatted)."""

    tenant_id: str
    quote_id: str
    quote_number: str
    title: str
    client_name: str
    recipients: list[str]
    subject: str
    message: str | None = None
    link: str
    total: str
    valid_until: str
