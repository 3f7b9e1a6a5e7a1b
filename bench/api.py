"""HTTP API benchmark: latency of ``GET /api/v1/tenants/{workflow_id}`` and of
``POST /api/v1/automation/actions/clients.find/invoke`` with 16 concurrent clients on loopback.

Run from the repository root::

    .venv/bin/python bench/api.py [--clients 16] [--requests 50] [--out bench/results/api.json]

Setup (own embedded stack ``.psa/bench-stack``, database ``psa_bench_api`` re-created each time;
``DATABASE_URL`` / ``TEMPORAL_ADDRESS`` select external servers): migrate, create a management tenant with an
admin user and an API key, start ``psa worker`` and ``psa api --no-access-log`` as separate processes (as
deployed), provision one tenant through the API and wait for it to complete, create one client, ANALYZE.

Measured: each of ``--clients`` concurrent clients (its own aiohttp session, keep-alive) sends
``--requests`` requests one after another, after 5 warm-up requests each; latency = ``time.perf_counter()``
around one request (until its body is read), all clients pooled. ``GET /tenants/{id}`` of the completed
provisioning is the key and permission check (one statement) and the view the API keeps of completed runs (the
first read asked Temporal); ``clients.find/invoke`` is the key check and the whole action contract. During each
phase the CPU of every process is measured (psutil: the API server, PostgreSQL with its backends, this load
generator, the worker, Temporal) and reported per request (``cpu_ms_per_request``). Targets: p50 under 10 ms and
under 20 ms. Writes a JSON report and prints a summary; nothing here asserts on timings.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import aiohttp
import httpx
from benchlib import cpu_used, header, per_item_ms, stack_pids, summarize, write_report

from psa.config import Settings
from psa.db.engine import make_engine, tenant_transaction
from psa.db.migrate import upgrade
from psa.devstack import DevStack
from psa.domain import users
from psa.domain.api_keys import create_api_key
from psa.provisioning.customer_tracking import bootstrap_management_tenant

ROOT = Path(__file__).resolve().parents[1]
BENCH_STATE = ROOT / ".psa" / "bench-stack"
BENCH_DB = "psa_bench_api"
DEFAULT_OUT = ROOT / "bench" / "results" / "api.json"
TARGETS = {"get_tenant_p50_ms_max": 10, "invoke_find_p50_ms_max": 20}
WARMUP = 5


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def load(base_url: str, headers: dict, clients: int, requests: int, send) -> dict[str, float]:
    """``clients`` concurrent clients (each its own aiohttp session with one keep-alive connection), each sending
    ``requests`` requests in turn after the warm-up. ``send(session)`` returns the request's context manager."""
    samples: list[float] = []

    async def one_client() -> None:
        connector = aiohttp.TCPConnector(limit=1)
        async with aiohttp.ClientSession(base_url, headers=headers, connector=connector) as http:
            for i in range(WARMUP + requests):
                start = time.perf_counter()
                async with send(http) as response:
                    body = await response.read()
                elapsed = time.perf_counter() - start
                if response.status != 200:
                    raise RuntimeError(f"{response.status}: {body[:500]!r}")
                if i >= WARMUP:
                    samples.append(elapsed)

    began = time.perf_counter()
    await asyncio.gather(*(one_client() for _ in range(clients)))
    return summarize(samples, time.perf_counter() - began)


async def wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as http:
        while True:
            try:
                if (await http.get(f"{url}/healthz", timeout=2)).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("psa api did not come up")
            await asyncio.sleep(0.2)


async def run(args: argparse.Namespace) -> dict:
    stack = None
    if not (os.environ.get("DATABASE_URL") and os.environ.get("TEMPORAL_ADDRESS")):
        stack = DevStack(Settings(state_dir=BENCH_STATE), temporal_ui=False)
        stack.up()
    db_url = os.environ.get("DATABASE_URL") or stack.create_database(BENCH_DB, replace=True)
    temporal = os.environ.get("TEMPORAL_ADDRESS") or stack.settings.resolved_temporal_address()
    task_queue = f"bench-api-{uuid.uuid4().hex[:8]}"
    settings = Settings(
        state_dir=BENCH_STATE,
        database_url=db_url,
        temporal_address=temporal,
        bcrypt_rounds=4,
        task_queue=task_queue,
        email_provider="outbox",
    )
    upgrade(settings.resolved_database_url())
    engine = make_engine(settings)
    mgmt = await bootstrap_management_tenant(engine, "Bench Management", email="ops@bench.example.com")
    admin = uuid.uuid4()
    async with tenant_transaction(engine, mgmt.tenant) as conn:
        await users.create_internal_user(
            conn,
            tenant=mgmt.tenant,
            user_id=admin,
            first_name="Bench",
            last_name="Admin",
            email=f"admin-{admin.hex[:8]}@bench.example.com",
            password_hash="unused",
        )
        key = (await create_api_key(conn, mgmt.tenant, admin, name="bench")).key
    env = dict(
        os.environ,
        PSA_STATE_DIR=str(BENCH_STATE),
        DATABASE_URL=db_url,
        TEMPORAL_ADDRESS=temporal,
        PSA_TASK_QUEUE=task_queue,
        PSA_MANAGEMENT_TENANT_ID=str(mgmt.tenant),
        PSA_BCRYPT_ROUNDS="4",
        PSA_EMAIL_PROVIDER="outbox",
    )
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "env": env}
    worker = subprocess.Popen([sys.executable, "-m", "psa.cli", "worker"], **quiet)
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "psa.cli",
            "api",
            "--port",
            str(port),
            "--no-access-log",
            "--workers",
            str(args.workers),
        ],
        **quiet,
    )
    headers = {"x-api-key": key}
    try:
        await wait_healthy(base_url, server)
        async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=60) as http:
            token = uuid.uuid4().hex[:8]
            started = await http.post(
                "/api/v1/tenants",
                json={
                    "tenant_name": f"Bench Tenant {token}",
                    "admin_user": {"first_name": "B", "last_name": "T", "email": f"b.{token}@bench.example.com"},
                },
            )
            location = started.headers["location"]
            while (await http.get(location)).json()["status"] == "RUNNING":
                await asyncio.sleep(0.1)
            created = await http.post(
                "/api/v1/automation/actions/clients.create/invoke",
                json={"input": {"client_name": f"Bench Client {token}"}},
            )
            client_id = created.json()["output"]["client"]["client_id"]
        async with engine.connect() as conn:  # planner statistics, as autovacuum gives a live database
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.exec_driver_sql("ANALYZE")
        find = {"input": {"client_id": client_id}}
        path = httpx.URL(location).path
        pids = stack_pids(stack)
        processes = {
            "api": server.pid,
            "postgres": pids.get("postgres"),
            "load_generator": os.getpid(),
            "worker": worker.pid,
            "temporal": pids.get("temporal"),
        }
        with cpu_used(processes) as get_cpu:
            get_tenant = await load(base_url, headers, args.clients, args.requests, lambda http: http.get(path))
        with cpu_used(processes) as invoke_cpu:
            invoke_find = await load(
                base_url,
                headers,
                args.clients,
                args.requests,
                lambda http: http.post("/api/v1/automation/actions/clients.find/invoke", json=find),
            )
        get_tenant["cpu_ms_per_request"] = per_item_ms(get_cpu, get_tenant["n"])
        invoke_find["cpu_ms_per_request"] = per_item_ms(invoke_cpu, invoke_find["n"])
    finally:
        for proc in (server, worker):
            proc.terminate()
            proc.wait(timeout=30)
        await engine.dispose()

    report = {
        **header("api"),
        "clients": args.clients,
        "requests_per_client": args.requests,
        "server_processes": args.workers,
        "get_tenant": get_tenant,
        "invoke_clients_find": invoke_find,
        "targets": TARGETS,
    }
    report["targets_met"] = {
        "get_tenant_p50": get_tenant["p50_ms"] <= TARGETS["get_tenant_p50_ms_max"],
        "invoke_find_p50": invoke_find["p50_ms"] <= TARGETS["invoke_find_p50_ms_max"],
    }
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients (default 16)")
    parser.add_argument("--requests", type=int, default=50, help="measured requests per client (default 50)")
    parser.add_argument("--workers", type=int, default=1, help="psa api server processes (default 1)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    report = asyncio.run(run(args))
    write_report(report, args.out, ("get_tenant", "invoke_clients_find", "targets_met"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
