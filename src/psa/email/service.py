"""Render and deliver the tenant welcome email and quote emails (crm.send_quote).

``send_welcome_email`` and ``send_quote_email`` are safe to call from a workflow activity or action: delivery
problems come back as an ``EmailResult`` with ``email_sent=False`` and a password-free ``error`` instead of
an exception.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from functools import lru_cache
from pathlib import Path

from email_validator import EmailNotValidError, validate_email
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from psa.config import Settings
from psa.email.models import EmailResult, QuoteEmail, WelcomeEmail
from psa.email.providers import EmailProvider, build_provider

__all__ = [
    "EMAIL_TYPE_QUOTE",
    "EMAIL_TYPE_WELCOME",
    "EmailResult",
    "QuoteEmail",
    "WelcomeEmail",
    "render_quote",
    "render_welcome",
    "send_quote_email",
    "send_welcome_email",
    "welcome_subject",
]

logger = logging.getLogger("psa.email")

EMAIL_TYPE_WELCOME = "tenant_welcome"
EMAIL_TYPE_QUOTE = "quote"
_TEMPLATES = Path(__file__).parent / "templates"
_REDACTED = "[REDACTED]"


@lru_cache(maxsize=2)
def _environment(html: bool) -> Environment:
    return Environment(
        loader=FileSystemLoader(_TEMPLATES),
        autoescape=html,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def welcome_subject(settings: Settings) -> str:
    """Subject line: ``Welcome to <product_name> - Your Account is Ready``."""
    return f"Welcome to {settings.product_name} - Your Account is Ready"


def _sender_domain(settings: Settings) -> str:
    _, addr = parseaddr(settings.email_from)
    domain = addr.rpartition("@")[2].strip()
    return domain or "psa.localhost"


def render_welcome(settings: Settings, msg: WelcomeEmail) -> EmailMessage:
    """Build the welcome email as a ``multipart/alternative`` message (text/plain, then text/html).

    Headers: ``From`` (``settings.email_from``), ``To`` (``"First Last" <msg.email>``), ``Subject``,
    ``Date`` (UTC), ``Message-ID`` (``make_msgid`` on the sender's domain), ``X-PSA-Tenant-Id`` and
    ``X-PSA-Email-Type: tenant_welcome``. The login URL is ``settings.application_url``.
    The body contains the plaintext temporary password; the HTML part is autoescaped.

    Raises ``ValueError`` when an address or header value cannot be represented (e.g. contains CR/LF).
    Does not validate the recipient; ``send_welcome_email`` does.
    """
    context = {
        "product_name": settings.product_name,
        "first_name": msg.first_name,
        "last_name": msg.last_name,
        "tenant_name": msg.tenant_name,
        "login_url": settings.application_url,
        "support_url": settings.support_url,
        "email": msg.email,
        "temporary_password": msg.temporary_password.get_secret_value(),
        "current_year": datetime.now(UTC).year,
    }
    text = _environment(False).get_template("welcome.txt.j2").render(context)
    html = _environment(True).get_template("welcome.html.j2").render(context)

    message = EmailMessage()
    message["From"] = settings.email_from
    display_name = f"{msg.first_name} {msg.last_name}".strip()
    local, _, domain = msg.email.rpartition("@")
    message["To"] = Address(display_name=display_name, username=local, domain=domain)
    message["Subject"] = welcome_subject(settings)
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = make_msgid(idstring="welcome", domain=_sender_domain(settings))
    message["X-PSA-Tenant-Id"] = msg.tenant_id
    message["X-PSA-Email-Type"] = EMAIL_TYPE_WELCOME
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return message


def _scrub(text: str, secret: str) -> str:
    return text.replace(secret, _REDACTED) if secret else text


def _describe(exc: BaseException, secret: str) -> str:
    return _scrub(f"{type(exc).__name__}: {exc}", secret)


async def send_welcome_email(
    settings: Settings, msg: WelcomeEmail, *, provider: EmailProvider | None = None
) -> EmailResult:
    """Validate the recipient, render the welcome email and deliver it.

    ``provider`` defaults to ``build_provider(settings)`` (outbox or SMTP per ``settings.email_provider``).
    Returns an ``EmailResult``; never raises for delivery problems: an invalid recipient or any
    provider exception gives ``email_sent=False`` with ``error="<ExceptionClass>: <message>"``,
    with the temporary password scrubbed out. The outcome is logged on logger ``psa.email``
    (tenant id, user id, recipient, provider, message id; never the password).
    """
    secret = msg.temporary_password.get_secret_value()
    provider_name = provider.name if provider is not None else settings.email_provider
    log_ctx = {"tenant_id": msg.tenant_id, "user_id": msg.user_id, "provider": provider_name}

    try:
        validated = validate_email(msg.email, check_deliverability=False)
    except EmailNotValidError as exc:
        error = _scrub(f"{type(exc).__name__}: invalid recipient address {msg.email!r}: {exc}", secret)
        logger.warning(
            "welcome email not sent: invalid recipient tenant_id=%s user_id=%s: %s",
            msg.tenant_id,
            msg.user_id,
            error,
            extra=log_ctx,
        )
        return EmailResult(email_sent=False, provider=provider_name, error=error)

    message: EmailMessage | None = None
    try:
        message = render_welcome(settings, msg.model_copy(update={"email": validated.normalized}))
        if provider is None:
            provider = build_provider(settings)
        result = await provider.send(message)
    except Exception as exc:  # delivery problems are reported, not raised
        error = _describe(exc, secret)
        logger.warning(
            "welcome email not sent tenant_id=%s user_id=%s to=%s provider=%s: %s",
            msg.tenant_id,
            msg.user_id,
            validated.normalized,
            provider_name,
            error,
            extra=log_ctx,
        )
        return EmailResult(
            email_sent=False,
            message_id=message["Message-ID"] if message is not None else None,
            provider=provider_name,
            error=error,
        )

    logger.info(
        "welcome email sent tenant_id=%s user_id=%s to=%s provider=%s message_id=%s location=%s",
        msg.tenant_id,
        msg.user_id,
        validated.normalized,
        result.provider,
        result.message_id,
        result.location,
        extra=log_ctx,
    )
    return result


def render_quote(settings: Settings, msg: QuoteEmail) -> EmailMessage:
    """Build a quote email (``multipart/alternative``: text, then autoescaped HTML) to every address of
    ``msg.recipients`` at once, with ``X-PSA-Email-Type: quote`` and ``X-PSA-Quote-Id``. Reference:
    crm.send_quote (text = the message, else a default text, then "View quote: {link}").
    Raises ``ValueError`` when an address or header value cannot be represented."""
    context = msg.model_dump()
    text = _environment(False).get_template("quote.txt.j2").render(context)
    html = _environment(True).get_template("quote.html.j2").render(context)
    message = EmailMessage()
    message["From"] = settings.email_from
    message["To"] = ", ".join(msg.recipients)
    message["Subject"] = msg.subject
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = make_msgid(idstring="quote", domain=_sender_domain(settings))
    message["X-PSA-Tenant-Id"] = msg.tenant_id
    message["X-PSA-Email-Type"] = EMAIL_TYPE_QUOTE
    message["X-PSA-Quote-Id"] = msg.quote_id
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return message


async def send_quote_email(
    settings: Settings, msg: QuoteEmail, *, provider: EmailProvider | None = None
) -> EmailResult:
    """Render and deliver one quote email through ``provider`` (default ``build_provider(settings)``).
    Never raises for delivery problems: an invalid recipient or any provider exception gives
    ``email_sent=False`` with ``error`` (reference crm.send_quote: "any send failure → email_sent:false")."""
    provider_name = provider.name if provider is not None else settings.email_provider
    message: EmailMessage | None = None
    try:
        recipients = [validate_email(r, check_deliverability=False).normalized for r in msg.recipients]
        message = render_quote(settings, msg.model_copy(update={"recipients": recipients}))
        result = await (provider or build_provider(settings)).send(message)
    except Exception as exc:  # an invalid address or any delivery problem is reported, not raised
        error = f"{type(exc).__name__}: {exc}"
        logger.warning(
            "quote email not sent tenant_id=%s quote_id=%s provider=%s: %s",
            msg.tenant_id,
            msg.quote_id,
            provider_name,
            error,
        )
        return EmailResult(
            email_sent=False,
            provider=provider_name,
            error=error,
            message_id=message["Message-ID"] if message is not None else None,
        )
    logger.info(
        "quote email sent tenant_id=%s quote_id=%s provider=%s message_id=%s",
        msg.tenant_id,
        msg.quote_id,
        result.provider,
        result.message_id,
    )
    return result
