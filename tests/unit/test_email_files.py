"""The file provider (OutboxProvider): one ``.eml`` per Message-ID, written 0600 by an atomic rename, and the
temporary files a crashed writer left removed when a provider is built (docs/provisioning.md, "Welcome email")."""

from __future__ import annotations

import fcntl
import os
from email import message_from_bytes, policy

import pytest

from psa.config import Settings
from psa.email import OutboxProvider, SmtpProvider, build_provider, render_welcome
from tests.factories import make_welcome

PASSWORD = "Outbox-Secret-9!"


def make_settings(tmp_path, **overrides) -> Settings:
    values = {"state_dir": tmp_path, "email_provider": "outbox", "product_name": "Acme PSA"}
    values.update(overrides)
    return Settings(**values)


def welcome_message(tmp_path, message_id: str | None = "<0b5f-1@acme.example>", **overrides):
    message = render_welcome(make_settings(tmp_path), make_welcome(PASSWORD, **overrides))
    if message_id:
        message["Message-ID"] = message_id
    return message


def test_build_provider_selects_by_setting(tmp_path):
    outbox = build_provider(make_settings(tmp_path))
    assert isinstance(outbox, OutboxProvider)
    assert outbox.directory == (tmp_path / "outbox").resolve()
    assert isinstance(build_provider(make_settings(tmp_path, email_provider="smtp")), SmtpProvider)


async def test_writes_one_parseable_eml_named_after_the_message_id(tmp_path):
    provider = OutboxProvider(tmp_path / "outbox")
    result = await provider.send(welcome_message(tmp_path))

    assert result.email_sent is True
    assert result.provider == "outbox"
    assert result.message_id == "<0b5f-1@acme.example>"
    [eml] = list((tmp_path / "outbox").iterdir())
    assert eml.name == "0b5f-1@acme.example.eml"
    assert result.location == str(eml)
    assert eml.is_absolute()
    assert (eml.stat().st_mode & 0o777) == 0o600
    assert ((tmp_path / "outbox").stat().st_mode & 0o777) == 0o700
    parsed = message_from_bytes(eml.read_bytes(), policy=policy.default)
    assert parsed["Message-ID"] == "<0b5f-1@acme.example>"
    assert parsed["To"].addresses[0].addr_spec == "peter@initech.example"
    assert PASSWORD in parsed.get_body(preferencelist=("plain",)).get_content()


async def test_a_resend_of_the_same_message_replaces_its_file(tmp_path):
    provider = OutboxProvider(tmp_path / "outbox")
    first = await provider.send(welcome_message(tmp_path))
    again = await provider.send(welcome_message(tmp_path, tenant_name="Initech (resent)"))
    assert again.location == first.location
    [eml] = list((tmp_path / "outbox").iterdir())  # no second file, no temporary file left
    assert "Initech (resent)" in eml.read_text()


async def test_each_message_gets_its_own_file(tmp_path):
    provider = OutboxProvider(tmp_path / "nested" / "mail")
    first = await provider.send(welcome_message(tmp_path, "<a-1@acme.example>"))
    second = await provider.send(welcome_message(tmp_path, "<a-2@acme.example>", email="bob@initech.example"))
    assert sorted(p.name for p in (tmp_path / "nested" / "mail").iterdir()) == [
        "a-1@acme.example.eml",
        "a-2@acme.example.eml",
    ]
    assert first.location != second.location


async def test_unsafe_message_id_characters_cannot_leave_the_directory(tmp_path):
    provider = OutboxProvider(tmp_path / "outbox")
    result = await provider.send(welcome_message(tmp_path, "<../../etc/x y@acme.example>"))
    [eml] = list((tmp_path / "outbox").iterdir())
    assert eml.name == "_.._etc_x_y@acme.example.eml"
    assert result.location == str(eml)


async def test_a_message_without_message_id_is_refused(tmp_path):
    provider = OutboxProvider(tmp_path / "outbox")
    with pytest.raises(ValueError, match="no Message-ID"):
        await provider.send(welcome_message(tmp_path, message_id=None))
    assert not (tmp_path / "outbox").exists()


async def test_unwritable_outbox_raises(tmp_path):
    blocker = tmp_path / "file-not-dir"
    blocker.write_text("x")
    with pytest.raises(OSError):
        await OutboxProvider(blocker / "outbox").send(welcome_message(tmp_path))


def test_stale_temporary_files_are_removed_when_a_provider_is_built(tmp_path):
    outbox = tmp_path / "outbox"
    outbox.mkdir()
    # What a writer killed between its write and its rename leaves: an unlocked temporary file holding the message.
    stale = outbox / ".k3j2h1.eml.tmp"
    stale.write_text(f"Temporary Password: {PASSWORD}\n")
    kept = outbox / "0b5f-1@acme.example.eml"
    kept.write_text("a delivered message")
    provider = OutboxProvider(outbox)
    assert not stale.exists()
    assert kept.exists()
    assert provider.remove_stale_temporary_files() == []  # nothing left to remove


def test_a_temporary_file_a_live_writer_holds_is_kept(tmp_path):
    outbox = tmp_path / "outbox"
    outbox.mkdir()
    busy = outbox / ".w9x8y7.eml.tmp"
    with open(busy, "wb") as writer:
        fcntl.flock(writer, fcntl.LOCK_EX)  # as OutboxProvider._write holds it until the rename
        assert OutboxProvider(outbox).remove_stale_temporary_files() == []
        assert busy.exists()
    OutboxProvider(outbox)  # the writer is gone: its file is stale now
    assert os.listdir(outbox) == []
