"""`psa dev up|down|status` semantics on a throwaway state dir: idempotent start, clean stop, restart keeps data."""

from __future__ import annotations

import os

import psycopg
import pytest

from psa.config import Settings
from psa.devstack import DevStack

pytestmark = pytest.mark.skipif(
    bool(os.environ.get("DATABASE_URL") or os.environ.get("TEMPORAL_ADDRESS")), reason="embedded stack only"
)


def test_up_is_idempotent_down_stops_and_restart_keeps_data(tmp_path):
    stack = DevStack(Settings(state_dir=tmp_path / "state"), temporal_ui=False)
    try:
        first = stack.up()
        pid = stack._read()["temporal_pid"]
        assert stack.up() == first, "a second up reuses the running servers and their ports"
        assert stack._read()["temporal_pid"] == pid
        assert {c.name: c.running for c in stack.status()} == {"postgres": True, "temporal": True, "worker": False}
        assert (tmp_path / "state" / "codec.key").stat().st_mode & 0o777 == 0o600
        admin = first["database_url"].replace("postgresql+psycopg", "postgresql")
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("CREATE TABLE kept (x int)")

        stack.down()
        assert {c.name: c.running for c in stack.status()} == {"postgres": False, "temporal": False, "worker": False}

        assert stack.up() == first, "ports are kept across restarts"
        with psycopg.connect(admin, autocommit=True) as conn:
            assert conn.execute("SELECT count(*) FROM kept").fetchone() == (0,)
    finally:
        stack.down()


def test_external_servers_start_nothing(tmp_path):
    settings = Settings(
        state_dir=tmp_path, database_url="postgresql://u@db.invalid/x", temporal_address="t.invalid:7233"
    )
    stack = DevStack(settings)
    assert stack.up() == {"database_url": "postgresql://u@db.invalid/x", "temporal_address": "t.invalid:7233"}
    assert not (tmp_path / "pg").exists()
    assert not (tmp_path / "temporal.db").exists()
    assert all(c.external for c in stack.status() if c.name != "worker")
