"""Render the tenant welcome email and quote emails (crm.send_quote). Rendered messages go to the email outbox
(psa.email.outbox), which gives each its ``Message-ID`` and delivers it after commit."""

from __future__ import annotations

from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from psa.config import Settings
from psa.email.models import QuoteEmail, WelcomeEmail

__all__ = [
    "EMAIL_TYPE_QUOTE",
    "EMAIL_TYPE_WELCOME",
    "render_quote",
    "product_name",
    "render_welcome",
    "welcome_subject",
]

EMAIL_TYPE_WELCOME = "tenant_welcome"
EMAIL_TYPE_QUOTE = "quote"
_TEMPLATES = Path(__file__).parent / "templates"


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
    from ``settings.email_from`` with ``Date`` (UTC), ``X-PSA-Email-Type: email_type`` and ``headers``, and no
    ``Message-ID`` yet (the email outbox derives it from the row's key). Raises ``ValueError`` when an address or
    header value cannot be represented (e.g. contains CR/LF)."""
    message = EmailMessage()
    message["From"] = settings.email_from
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(usegmt=True)
    for name, value in headers.items():
        message[name] = value
    message["X-PSA-Email-Type"] = email_type
    message.set_content(_environment(False).get_template(f"{template}.txt.j2").render(context))
    message.add_alternative(_environment(True).get_template(f"{template}.html.j2").render(context), subtype="html")
    return message


def render_welcome(settings: Settings, msg: WelcomeEmail) -> EmailMessage:
    """Build the welcome email as a ``multipart/alternative`` message (text/plain, then text/html).

    Headers: ``From`` (``settings.email_from``), ``To`` (``"First Last" <msg.email>``), ``Subject``,
    ``Date`` (UTC), ``X-PSA-Tenant-Id`` and ``X-PSA-Email-Type: tenant_welcome``; the email outbox adds the
    ``Message-ID``. The copy (subject, title, product name, button) names the tenant's product (``product_name``
    of ``msg.product_code``). The login URL is ``settings.application_url``. The body contains the plaintext
    temporary password (queue it sealed); the HTML part is autoescaped.

    Raises ``ValueError`` when an address or header value cannot be represented (e.g. contains CR/LF) or the
    product code has no copy. Does not validate the recipient; the email outbox does when the message is queued.
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
