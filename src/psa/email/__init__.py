"""Transactional email: the tenant welcome email, quote emails (crm.send_quote) and their delivery providers.

Public API::

    WelcomeEmail, QuoteEmail, EmailResult         # pydantic models (input / outcome)
    render_welcome(settings, msg) -> EmailMessage # build the multipart/alternative message
    await send_welcome_email(settings, msg)       # render + deliver; never raises for delivery problems
    render_quote(settings, msg), await send_quote_email(settings, msg)   # the same for a quote
    EmailProvider, OutboxProvider, SmtpProvider, build_provider
"""

from psa.email.providers import EmailProvider, OutboxProvider, SmtpProvider, build_provider
from psa.email.service import (
    EMAIL_TYPE_QUOTE,
    EMAIL_TYPE_WELCOME,
    EmailResult,
    QuoteEmail,
    WelcomeEmail,
    product_name,
    render_quote,
    render_welcome,
    send_quote_email,
    send_welcome_email,
    welcome_subject,
)

__all__ = [
    "EMAIL_TYPE_QUOTE",
    "EMAIL_TYPE_WELCOME",
    "EmailProvider",
    "EmailResult",
    "OutboxProvider",
    "QuoteEmail",
    "SmtpProvider",
    "WelcomeEmail",
    "build_provider",
    "product_name",
    "render_quote",
    "render_welcome",
    "send_quote_email",
    "send_welcome_email",
    "welcome_subject",
]
