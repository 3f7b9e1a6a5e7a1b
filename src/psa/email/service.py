"""Render and deliver the tenant welcome email and quote emails (crm.send_quote).

``send_welcome_email`` and ``send_quote_email`` are safe to call from a workflow activity or action: delivery
problems come back as an ``EmailResult`` with ``email_sent=False`` and a password-free ``error`` instead of
an exception.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from functools import lru_cache
from pathlib import Path
from typing import Any

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
    "product_name",
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


def product_name(settings: Settings, product_code: str) -> str:
    """The product a welcome email names, by the tenant's product code (reference: the welcome email's copy is
    chosen by product): ``settings.product_name`` (``PSA_PRODUCT_NAME``) for psa,
    ``settings.algadesk_product_name`` (``PSA_ALGADESK_PRODUCT_NAME``) for algadesk. Raises ValueError for any
    other code."""
    names = {"psa": settings.product_name, "algadesk": settings.algadesk_product_name}
    if product_code not in names:
        raise ValueError(f"product_code '{product_code}' has no welcome email copy (one of {', '.join(names)})")
    return names[product_code]


def welcome_subject(settings: Settings, product_code: str) -> str:
    """Subject line: ``Welcome to <product name> - Your Account is Ready`` (``product_name``). Raises ValueError
    for an unknown product code."""
    return f"Welcome to {product_name(settings, product_code)} - Your Account is Ready"


def _sender_domain(settings: Settings) -> str:
    _, addr = parseaddr(settings.email_from)
    domain = addr.rpartition("@")[2].strip()
    return domain or "psa.localhost"


def _compose(
    settings: Settings,
    *,
    email_type: str,
    to: str | Address,
    subject: str,
    template: str,
    context: dict[str, Any],
    headers: dict[str, str],
) -> EmailMessage:
    """One ``multipart/alternative`` message (``<template>.txt.j2``, then the autoescaped ``<template>.html.j2``)
    from ``settings.email_from`` with ``Date`` (UTC), a ``Message-ID`` on the sender's domain,
    ``X-PSA-Email-Type: email_type`` and ``headers``. Raises ``ValueError`` when an address or header value
    cannot be represented (e.g. contains CR/LF)."""
    message = EmailMessage()
    message["From"] = settings.email_from
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = make_msgid(idstring=template, domain=_sender_domain(settings))
    for name, value in headers.items():
        message[name] = value
    message["X-PSA-Email-Type"] = email_type
    message.set_content(_environment(False).get_template(f"{template}.txt.j2").render(context))
    message.add_alternative(_environment(True).get_template(f"{template}.html.j2").render(context), subtype="html")
    return message


def render_welcome(settings: Settings, msg: WelcomeEmail) -> EmailMessage:
    """Build the welcome email as a ``multipart/alternative`` message (text/plain, then text/html).

    Headers: ``From`` (``settings.email_from``), ``To`` (``"First Last" <msg.email>``), ``Subject``,
    ``Date`` (UTC), ``Message-ID`` (``make_msgid`` on the sender's domain), ``X-PSA-Tenant-Id`` and
    ``X-PSA-Email-Type: tenant_welcome``. The copy (subject, title, product name, button) names the tenant's
    product (``product_name`` of ``msg.product_code``). The login URL is ``settings.application_url``.
    The body contains the plaintext temporary password; the HTML part is autoescaped.

    Raises ``ValueError`` when an address or header value cannot be represented (e.g. contains CR/LF) or the
    product code has no copy. Does not validate the recipient; ``send_welcome_email`` does.
    """
    subject = welcome_subject(settings, msg.product_code)
    context = {
        "subject": subject,
        "product_name": product_name(settings, msg.product_code),
        "first_name": msg.first_name,
        "last_name": msg.last_name,
        "tenant_name": msg.tenant_name,
        "login_url": settings.application_url,
        "support_url": settings.support_url,
        "email": msg.email,
        "temporary_password": msg.temporary_password.get_secret_value(),
        "current_year": datetime.now(UTC).year,
    }
    local, _, domain = msg.email.rpartition("@")
    return _compose(
        settings,
        email_type=EMAIL_TYPE_WELCOME,
        to=Address(display_name=f"{msg.first_name} {msg.last_name}".strip(), username=local, domain=domain),
        subject=subject,
        template="welcome",
        context=context,
        headers={"X-PSA-Tenant-Id": msg.tenant_id},
    )


def render_quote(settings: Settings, msg: QuoteEmail) -> EmailMessage:
    """Build a quote email (``multipart/alternative``: text, then autoescaped HTML) to every address of
    ``msg.recipients`` at once, with ``X-PSA-Email-Type: quote`` and ``X-PSA-Quote-Id``. Reference:
    crm.send_quote (text = the message, else a default text, then "View quote: {link}").
    Raises ``ValueError`` when an address or header value cannot be represented."""
    return _compose(
        settings,
        email_type=EMAIL_TYPE_QUOTE,
        to=", ".join(msg.recipients),
        subject=msg.subject,
        template="quote",
        context=msg.model_dump(),
        headers={"X-PSA-Tenant-Id": msg.tenant_id, "X-PSA-Quote-Id": msg.quote_id},
    )


def _scrub(text: str, secret: str) -> str:
    return text.replace(secret, _REDACTED) if secret else text


async def _deliver(
    settings: Settings,
    *,
    kind: str,
    recipients: list[str],
    build: Callable[[list[str]], EmailMessage],
    provider: EmailProvider | None,
    secret: str = "",
    log_fields: dict[str, str],
) -> EmailResult:
    """Validate ``recipients`` (syntax only), ``build`` the message for their normalised forms and send it
    through ``provider`` (default ``build_provider(settings)``). Never raises for delivery problems: an
    invalid recipient or any exception gives ``email_sent=False`` with ``error="<ExceptionClass>: <message>"``,
    ``secret`` scrubbed out of it. Logs the outcome on ``psa.email`` as ``<kind> email sent`` / ``not sent``
    with ``log_fields`` (never ``secret``)."""
    provider_name = provider.name if provider is not None else settings.email_provider
    fields = " ".join(f"{k}={v}" for k, v in log_fields.items())
    normalized: list[str] = []
    for recipient in recipients:
        try:
            normalized.append(validate_email(recipient, check_deliverability=False).normalized)
        except EmailNotValidError as exc:
            error = _scrub(f"{type(exc).__name__}: invalid recipient address {recipient!r}: {exc}", secret)
            logger.warning("%s email not sent: invalid recipient %s: %s", kind, fields, error, extra=log_fields)
            return EmailResult(email_sent=False, provider=provider_name, error=error)
    message: EmailMessage | None = None
    try:
        message = build(normalized)
        result = await (provider or build_provider(settings)).send(message)
    except Exception as exc:  # delivery problems are reported, not raised
        error = _scrub(f"{type(exc).__name__}: {exc}", secret)
        logger.warning(
            "%s email not sent %s to=%s provider=%s: %s",
            kind,
            fields,
            ",".join(normalized),
            provider_name,
            error,
            extra=log_fields,
        )
        return EmailResult(
            email_sent=False,
            message_id=message["Message-ID"] if message is not None else None,
            provider=provider_name,
            error=error,
        )
    logger.info(
        "%s email sent %s to=%s provider=%s message_id=%s location=%s",
        kind,
        fields,
        ",".join(normalized),
        result.provider,
        result.message_id,
        result.location,
        extra=log_fields,
    )
    return result


async def send_welcome_email(
    settings: Settings, msg: WelcomeEmail, *, provider: EmailProvider | None = None
) -> EmailResult:
    """Validate the recipient, render the welcome email and deliver it (``_deliver``: never raises for
    delivery problems; the temporary password is scrubbed out of errors and never logged). ``provider``
    defaults to ``build_provider(settings)`` (outbox or SMTP per ``settings.email_provider``)."""
    return await _deliver(
        settings,
        kind="welcome",
        recipients=[msg.email],
        build=lambda to: render_welcome(settings, msg.model_copy(update={"email": to[0]})),
        provider=provider,
        secret=msg.temporary_password.get_secret_value(),
        log_fields={"tenant_id": msg.tenant_id, "user_id": msg.user_id},
    )


async def send_quote_email(
    settings: Settings, msg: QuoteEmail, *, provider: EmailProvider | None = None
) -> EmailResult:
    """Render and deliver one quote email to all of ``msg.recipients`` (``_deliver``: never raises for delivery
    problems; reference crm.send_quote: "any send failure → email_sent:false")."""
    return await _deliver(
        settings,
        kind="quote",
        recipients=list(msg.recipients),
        build=lambda to: render_quote(settings, msg.model_copy(update={"recipients": to})),
        provider=provider,
        log_fields={"tenant_id": msg.tenant_id, "quote_id": msg.quote_id},
    )
