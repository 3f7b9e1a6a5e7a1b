"""The test suite's own servers (docs/operations.md, "Tests"): a pytest session stops what it started when it ends,
and every session starts from an empty Temporal. Two sessions of tests/integration/session_probe.py run here as
subprocesses, on a test stack of their own (PSA_TEST_STATE_DIR)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import psutil
import pytest

from psa.config import Settings
from psa.devstack import DevStack
from tests.helpers import ROOT

pytestmark = pytest.mark.skipif(
    bool(os.environ.get("DATABASE_URL") or os.environ.get("TEMPORAL_ADDRESS")), reason="embedded stack only"
)


def running(pid: int) -> bool:
    """``pid`` is a live process (a zombie, ended but not yet reaped by its parent, is not)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_each_session_stops_what_it_started_and_starts_temporal_empty(tmp_path):
    state, basetemp, probe = tmp_path / "test-stack", tmp_path / "inner", tmp_path / "probe.json"
    env = {**os.environ, "PSA_TEST_STATE_DIR": str(state), "PSA_SESSION_PROBE": str(probe)}
    for _ in range(2):
        session = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--basetemp={basetemp}"]
            + ["tests/integration/session_probe.py"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=200,
        )
        assert session.returncode == 0, session.stdout + session.stderr
        seen = json.loads(probe.read_text())
        assert seen["seen_before"] is False, "the session's Temporal still held the previous session's workflow"
        assert seen["pg_pid"] is not None
        assert not running(seen["pg_pid"]), "the PostgreSQL the session started still runs"
        assert DevStack(Settings(state_dir=state)).postgres_pid() is None
        temporal = json.loads((basetemp / "temporal0" / "stack.json").read_text())
        assert not running(temporal["temporal_pid"]), "the session's Temporal server still runs"
