"""Rendering of the tenant welcome email (no delivery)."""

from __future__ import annotations

import html
from datetime import UTC, datetime
from email import message_from_bytes, policy

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
