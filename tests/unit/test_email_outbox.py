"""Welcome email delivered through the file outbox provider."""

from __future__ import annotations

import logging
from email import message_from_bytes, policy
from pathlib import Path

from pydantic import SecretStr

from psa.config import Settings
from psa.email import OutboxProvider, SmtpProvider, WelcomeEmail, build_provider, send_welcome_email

PASSWORD = "Outbox-Secret-9!"


def make_settings(tmp_path, **overrides) -> Settings:
    values = {"state_dir": tmp_path, "email_provider": "outbox", "product_name": "Acme PSA"}
    values.update(overrides)
    return Settings(**values)


def make_welcome(**overrides) -> WelcomeEmail:
    values = {
        "tenant_id": "ten_1",
        "tenant_name": "Initech",
        "user_id": "usr_1",
        "first_name": "Peter",
        "last_name": "Gibbons",
        "email": "peter@initech.example",
        "temporary_password": SecretStr(PASSWORD),
    }
    values.update(overrides)
    return WelcomeEmail(**values)


def test_build_provider_selects_by_setting(tmp_path):
    outbox = build_provider(make_settings(tmp_path))
    assert isinstance(outbox, OutboxProvider)
    assert outbox.directory == (tmp_path / "outbox").resolve()
    assert isinstance(build_provider(make_settings(tmp_path, email_provider="smtp")), SmtpProvider)


async def test_outbox_writes_one_parseable_eml(tmp_path, caplog):
    settings = make_settings(tmp_path)
    with caplog.at_level(logging.INFO, logger="psa.email"):
        result = await send_welcome_email(settings, make_welcome())

    assert result.email_sent is True
    assert result.provider == "outbox"
    assert result.error is None
    files = list(settings.outbox_path.iterdir())
    assert len(files) == 1
    assert files[0].suffix == ".eml"
    assert result.location == str(files[0])
    assert Path(result.location).is_absolute()

    parsed = message_from_bytes(files[0].read_bytes(), policy=policy.default)
    assert parsed["Subject"] == "Welcome to Acme PSA - Your Account is Ready"
    assert parsed["To"].addresses[0].addr_spec == "peter@initech.example"
    assert parsed["Message-ID"] == result.message_id
    assert parsed["X-PSA-Email-Type"] == "tenant_welcome"
    assert PASSWORD in parsed.get_body(preferencelist=("plain",)).get_content()
    assert (files[0].stat().st_mode & 0o777) == 0o600

    assert "welcome email sent" in caplog.text
    assert PASSWORD not in caplog.text


async def test_custom_outbox_dir_and_multiple_messages(tmp_path):
    settings = make_settings(tmp_path, outbox_dir=tmp_path / "nested" / "mail")
    first = await send_welcome_email(settings, make_welcome())
    second = await send_welcome_email(settings, make_welcome(email="bob@initech.example"))
    assert first.email_sent
    assert second.email_sent
    assert first.location != second.location
    assert sorted(p.name for p in (tmp_path / "nested" / "mail").iterdir()) == sorted(
        [Path(first.location).name, Path(second.location).name]
    )


async def test_invalid_recipient_is_reported_not_raised(tmp_path, caplog):
    settings = make_settings(tmp_path)
    with caplog.at_level(logging.INFO, logger="psa.email"):
        result = await send_welcome_email(settings, make_welcome(email="not-an-email"))
    assert result.email_sent is False
    assert result.provider == "outbox"
    assert result.error is not None
    assert "invalid recipient address" in result.error
    assert "not-an-email" in result.error
    assert not settings.outbox_path.exists() or not any(settings.outbox_path.iterdir())
    assert PASSWORD not in caplog.text


async def test_unwritable_outbox_is_reported_not_raised(tmp_path):
    blocker = tmp_path / "file-not-dir"
    blocker.write_text("x")
    settings = make_settings(tmp_path, outbox_dir=blocker / "outbox")
    result = await send_welcome_email(settings, make_welcome())
    assert result.email_sent is False
    assert result.error is not None
    assert "Error" in result.error.split(":")[0]
    assert result.message_id is not None


async def test_password_scrubbed_from_error(tmp_path):
    class LeakyProvider:
        name = "leaky"

        async def send(self, message):
            raise RuntimeError(f"server said: bad data {PASSWORD}")

    result = await send_welcome_email(make_settings(tmp_path), make_welcome(), provider=LeakyProvider())
    assert result.email_sent is False
    assert result.provider == "leaky"
    assert result.error is not None
    assert result.error.startswith("RuntimeError: server said")
    assert PASSWORD not in result.error
