"""Transactional email: the tenant welcome email, quote emails (crm.send_quote), the email outbox every email goes
through, and the delivery providers (docs/architecture.md, "Email outbox").

Public API::

    WelcomeEmail, QuoteEmail, EmailResult, QueuedEmail     # pydantic models (input / outcome / queued row)
    render_welcome(settings, msg), render_quote(settings, msg) -> EmailMessage   # multipart/alternative
    await queue_email(conn, tenant=, source_key=, kind=, message=, seal_key=)    # in the causing transaction
    EmailSender(engine, provider, settings)                # queue_and_claim(conn, ...), then after commit send();
                                                           # deliver_due(): claim, send, mark
    EmailProvider, OutboxProvider, SmtpProvider, build_provider
"""

from psa.email.models import EmailResult, QueuedEmail, QuoteEmail, WelcomeEmail
from psa.email.outbox import EmailSender, InvalidEmail, queue_email
from psa.email.providers import EmailProvider, OutboxProvider, SmtpProvider, build_provider
from psa.email.service import (
    EMAIL_TYPE_QUOTE,
    EMAIL_TYPE_WELCOME,
    product_name,
    render_quote,
    render_welcome,
    welcome_subject,
)

__all__ = [
    "EMAIL_TYPE_QUOTE",
    "EMAIL_TYPE_WELCOME",
    "EmailProvider",
    "EmailResult",
    "EmailSender",
    "InvalidEmail",
    "OutboxProvider",
    "QueuedEmail",
    "QuoteEmail",
    "SmtpProvider",
    "WelcomeEmail",
    "build_provider",
    "product_name",
    "queue_email",
    "render_quote",
    "render_welcome",
    "welcome_subject",
]
