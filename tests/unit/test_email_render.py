"""Rendering of the tenant welcome email (no delivery)."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime
from email import message_from_bytes, policy

import pytest
from pydantic import SecretStr

from psa.config import Settings
from psa.email import WelcomeEmail, render_welcome

PASSWORD = "Tmp-Pa55word!xyz"


def make_settings(tmp_path, **overrides) -> Settings:
    values = {
        "state_dir": tmp_path,
        "email_provider": "outbox",
        "application_url": "https://app.example.test/login",
        "product_name": "Acme PSA",
        "email_from": "Acme PSA <noreply@acme.example>",
    }
    values.update(overrides)
    return Settings(**values)


def make_welcome(**overrides) -> WelcomeEmail:
    values = {
        "tenant_id": "ten_123",
        "tenant_name": "Globex Corporation",
        "user_id": "usr_456",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "email": "ada@globex.example",
        "temporary_password": SecretStr(PASSWORD),
    }
    values.update(overrides)
    return WelcomeEmail(**values)


def parts(message):
    text = message.get_body(preferencelist=("plain",)).get_content()
    body_html = message.get_body(preferencelist=("html",)).get_content()
    return text, body_html


def test_headers(tmp_path):
    message = render_welcome(make_settings(tmp_path), make_welcome())
    assert message.get_content_type() == "multipart/alternative"
    assert message["Subject"] == "Welcome to Acme PSA - Your Account is Ready"
    assert message["From"] == "Acme PSA <noreply@acme.example>"
    assert message["To"].addresses[0].addr_spec == "ada@globex.example"
    assert message["To"].addresses[0].display_name == "Ada Lovelace"
    assert message["Message-ID"] is None  # the email outbox derives it from the row's key when queuing
    assert message["Date"]
    assert message["X-PSA-Tenant-Id"] == "ten_123"
    assert message["X-PSA-Email-Type"] == "tenant_welcome"


def test_body_content_in_both_parts(tmp_path):
    message = render_welcome(make_settings(tmp_path), make_welcome())
    text, body_html = parts(message)
    year = datetime.now(UTC).year
    for body in (text, html.unescape(body_html)):
        assert "Welcome to Acme PSA!" in body
        assert "Hello Ada Lovelace," in body
        assert "Your Acme PSA account for Globex Corporation is ready" in body.replace("<strong>", "").replace(
            "</strong>", ""
        )
        assert "Login URL:" in body
        assert "https://app.example.test/login" in body
        assert "ada@globex.example" in body
        assert PASSWORD in body
        assert "first login only" in body
        assert "must set a new password" in body
        assert "Never share your password" in body
        assert "What's Next?" in body
        assert "Sign in at" in body
        assert "Set a new, secure password" in body
        assert "Invite your team" in body
        assert "Add your first clients" in body
        assert f"© {year} Acme PSA. All rights reserved." in body
        assert "Support portal" not in body
    assert "Email: ada@globex.example" in text
    assert f"Temporary Password: {PASSWORD}" in text
    assert "1. Sign in at https://app.example.test/login" in text
    assert "4. Add your first clients" in text
    assert body_html.count("<li>") >= 7  # 3 security notes + 4 steps


def test_support_url_optional(tmp_path):
    settings = make_settings(tmp_path, support_url="https://help.example.test")
    text, body_html = parts(render_welcome(settings, make_welcome()))
    assert "Support portal: https://help.example.test" in text
    assert 'href="https://help.example.test"' in body_html


def test_html_escapes_tenant_name(tmp_path):
    message = render_welcome(make_settings(tmp_path), make_welcome(tenant_name="<b>Acme & Co</b>"))
    text, body_html = parts(message)
    assert "<b>Acme & Co</b>" not in body_html
    assert "&lt;b&gt;Acme &amp; Co&lt;/b&gt;" in body_html
    assert "account for <b>Acme & Co</b> is ready" in text  # plain text is not escaped


def test_round_trips_through_bytes(tmp_path):
    message = render_welcome(make_settings(tmp_path), make_welcome(first_name="Zoë"))
    parsed = message_from_bytes(message.as_bytes(), policy=policy.default)
    text, body_html = parts(parsed)
    assert "Hello Zoë Lovelace," in text
    assert PASSWORD in text
    assert PASSWORD in body_html
    assert parsed["Subject"] == message["Subject"]


def test_password_not_in_repr():
    welcome = make_welcome()
    assert PASSWORD not in repr(welcome)
    assert PASSWORD not in welcome.model_dump_json()


# (product_code, settings overrides, product name in the copy) -- reference: the welcome email's copy by product
PRODUCT_COPY = [
    ("psa", {}, "Acme PSA"),
    ("algadesk", {}, "AlgaDesk"),
    ("algadesk", {"algadesk_product_name": "Acme Desk"}, "Acme Desk"),
]


@pytest.mark.parametrize(("product_code", "overrides", "name"), PRODUCT_COPY)
def test_copy_follows_the_product(tmp_path, product_code, overrides, name):
    message = render_welcome(make_settings(tmp_path, **overrides), make_welcome(product_code=product_code))
    assert message["Subject"] == f"Welcome to {name} - Your Account is Ready"
    text, body_html = parts(message)
    for body in (text, html.unescape(body_html)):
        assert f"Welcome to {name}!" in body
        assert f"Your {name} account for Globex Corporation is ready" in body.replace("<strong>", "").replace(
            "</strong>", ""
        )
        assert f"Open {name} →" in body
        assert f"The {name} Team" in body
    assert f"<title>Welcome to {name} - Your Account is Ready</title>" in body_html
    assert re.search(rf'<a href="https://app.example.test/login"[^>]*>Open {re.escape(name)} →</a>', body_html)


def test_algadesk_copy_names_no_other_product(tmp_path):
    text, body_html = parts(render_welcome(make_settings(tmp_path), make_welcome(product_code="algadesk")))
    for body in (text, body_html):
        assert "PSA" not in body


def test_unknown_product_is_refused(tmp_path):
    with pytest.raises(ValueError, match="product_code"):
        render_welcome(make_settings(tmp_path), make_welcome(product_code="erp"))
