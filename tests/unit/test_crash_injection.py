"""The test-only crash hook of the worker (psa.automation.crash_injection): unset it installs nothing, and a
malformed value is refused before the worker starts. The hook's effect is proved by
tests/automation/test_exactly_once.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from psa.automation import crash_injection
from psa.config import ConfigurationError, Settings

ENGINE_EVENTS = ("after_cursor_execute", "commit", "rollback")


def _engine():
    return create_async_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")  # never connects


def _listeners(engine) -> int:
    return sum(len(getattr(engine.sync_engine.dispatch, name)) for name in ENGINE_EVENTS)


def test_unset_installs_nothing():
    engine = _engine()
    injection = crash_injection.from_settings(Settings(), engine)
    assert injection.interceptors == []
    assert injection.handlers == []
    assert _listeners(engine) == 0


@pytest.mark.parametrize(
    ("point", "interceptors", "handlers", "listeners"),
    [("before_commit", 0, 0, 3), ("before_completion", 1, 0, 0), ("before_delivered", 0, 1, 0)],
)
def test_each_point_installs_only_its_own_hook(tmp_path: Path, point, interceptors, handlers, listeners):
    engine = _engine()
    settings = Settings(test_crash_at=f"{point}:clients.create", test_crash_marker=tmp_path / "marker")
    injection = crash_injection.from_settings(settings, engine)
    assert len(injection.interceptors) == interceptors
    assert len(injection.handlers) == handlers
    assert _listeners(engine) == listeners


@pytest.mark.parametrize("spec", ["nowhere:clients.create", "before_commit", "before_commit:", "before_commit: "])
def test_a_malformed_point_is_refused(tmp_path: Path, spec: str):
    settings = Settings(test_crash_at=spec, test_crash_marker=tmp_path / "marker")
    with pytest.raises(ConfigurationError, match="PSA_TEST_CRASH_AT must be <point>:<target>"):
        crash_injection.from_settings(settings, _engine())


def test_a_point_without_a_marker_file_is_refused():
    with pytest.raises(ConfigurationError, match="PSA_TEST_CRASH_MARKER"):
        crash_injection.parse(Settings(test_crash_at="before_commit:clients.create"))


def test_the_environment_variables_name_the_point(monkeypatch, tmp_path: Path):
    monkeypatch.setenv("PSA_TEST_CRASH_AT", "before_completion:crm.create_quote")
    monkeypatch.setenv("PSA_TEST_CRASH_MARKER", str(tmp_path / "marker"))
    crash = crash_injection.parse(Settings())
    assert crash == crash_injection.CrashPoint("before_completion", "crm.create_quote", tmp_path / "marker")
