"""Tenant-provisioning benchmark: end-to-end latency, throughput and SQL statements per provisioning.

Run from the repository root::

    .venv/bin/python bench/provisioning.py [--n 40] [--concurrency 8] [--bcrypt-rounds 10] \\
        [--out bench/results/provisioning.json] [--stop-stack]

What it does
------------
* Starts (or reuses) an embedded stack with its own state dir ``.psa/bench-stack`` -- PostgreSQL and the
  Temporal dev server, headless. ``DATABASE_URL`` / ``TEMPORAL_ADDRESS`` select external servers instead.
  The stack is left running afterwards (``up()`` reuses it next time) unless ``--stop-stack`` is given.
* Drops and re-creates the database ``psa_bench`` (embedded server only; with ``DATABASE_URL`` that database
  is used as is) and migrates it to head.
* Runs an in-process worker (``psa.worker.build_worker``) on a unique task queue, with the ``outbox`` email
  provider writing into a temporary directory, and bcrypt at the Settings default (10 rounds) unless
  ``--bcrypt-rounds`` says otherwise.
* Creates a management tenant (``bootstrap_management_tenant``) and points the worker at it, so every
  provisioning also records the tenant as a customer (client, contact, tag, portal user).
* Warm-up: 2 provisionings, not counted.
* Phase ``sequential``: N provisionings with customer tracking on, interleaved one by one with N provisionings
  with it off (``skip_customer_tracking``), one after another; ``tracking_overhead_p50_pct`` compares their
  medians. Phase ``concurrent``: N provisionings with tracking on, at most
  ``--concurrency`` in flight (asyncio.Semaphore). One provisioning = ``start_tenant_creation`` with a unique
  tenant name and admin email, then ``await handle.result()``; its latency is ``time.perf_counter()`` around
  both. Throughput = N / wall-clock time of the phase.
* SQL statements: a ``before_cursor_execute`` listener on the engine's ``sync_engine`` counts every statement
  the activities send during the sequential tracking-on runs, divided by N (tracking-off runs are counted
  apart, in ``sql_statements_per_provisioning_without_tracking``). The count is also given without the six
  seed statements of ``psa.domain.seeds.seed_tenant`` (one INSERT into each of ``SEEDED_TABLES``: roles,
  permissions, role_permissions, tax_regions, tax_rates, statuses). Pre-ping pings (the engine no longer
  pre-pings, so 0) do not go through the
  cursor-execute event; they are counted by wrapping the dialect's ``do_ping`` (``pings_per_provisioning``).
  Transaction BEGIN/COMMIT are not statements SQLAlchemy executes and are not counted.

* CPU: during the concurrent phase, the user + system CPU seconds of this process (the worker, its bcrypt
  threads and the client), of the Temporal dev server and of PostgreSQL (all its backends), per provisioning
  (``concurrent_cpu_ms_per_provisioning``, psutil), beside one bcrypt hash's CPU and the budget the throughput
  target leaves on this machine (cores x 1000 ms / 10 provisionings).

Writes a JSON report (``--out``, directories created) and prints a summary table. The targets in the report
are informational: nothing here asserts on timings.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

from benchlib import cpu_used, header, per_item_ms, stack_pids
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from psa.config import Settings
from psa.db.engine import make_engine
from psa.db.migrate import upgrade
from psa.devstack import DevStack
from psa.domain import users
from psa.domain.seeds import SEEDED_TABLES
from psa.provisioning.activities import ProvisioningActivities
from psa.provisioning.customer_tracking import bootstrap_management_tenant
from psa.provisioning.starter import start_tenant_creation
from psa.provisioning.types import AdminUser, TenantCreationInput
from psa.temporal import connect
from psa.worker import build_worker

ROOT = Path(__file__).resolve().parents[1]
BENCH_STATE = ROOT / ".psa" / "bench-stack"
BENCH_DB = "psa_bench"
DEFAULT_OUT = ROOT / "bench" / "results" / "provisioning.json"
WARMUP = 2
PROVISION_TIMEOUT = 120.0  # seconds; generous, only there to fail instead of hanging

TARGETS = {
    "p50_ms_max": 500,
    "concurrent_throughput_min_per_s": 10,
    "sql_statements_max_excluding_seeds": 40,
    "tracking_overhead_p50_pct_max": 25,
}
SEED_STATEMENT = re.compile(rf"^\s*INSERT\s+INTO\s+({'|'.join(SEEDED_TABLES)})\b", re.IGNORECASE)


# -- setup ----------------------------------------------------------------------------------------
def prepare_settings(bcrypt_rounds: int | None, outbox_dir: Path) -> tuple[Settings, DevStack | None]:
    """Start/reuse the bench stack, (re)create and migrate ``psa_bench``; return settings pointing at it."""
    stack = None
    external_db = os.environ.get("DATABASE_URL")
    external_temporal = os.environ.get("TEMPORAL_ADDRESS")
    if not (external_db and external_temporal):
        stack = DevStack(Settings(state_dir=BENCH_STATE), temporal_ui=False)
        stack.up()
    db_url = external_db or stack.create_database(BENCH_DB, replace=True)
    overrides: dict = {
        "state_dir": BENCH_STATE,
        "database_url": db_url,
        "temporal_address": external_temporal or stack.settings.resolved_temporal_address(),
        "email_provider": "outbox",
        "outbox_dir": outbox_dir,
    }
    if bcrypt_rounds is not None:
        overrides["bcrypt_rounds"] = bcrypt_rounds
    settings = Settings(**overrides)
    upgrade(settings.resolved_database_url())
    return settings, stack


def process_ids(stack: DevStack | None) -> dict[str, int | None]:
    """The processes whose CPU the concurrent phase measures: this one (the worker, its bcrypt threads and the
    client), and the embedded Temporal dev server and PostgreSQL (None when external)."""
    pids = stack_pids(stack)
    return {
        "bench_process_with_worker": os.getpid(),
        "temporal": pids.get("temporal"),
        "postgres": pids.get("postgres"),
    }


def bcrypt_cpu_ms(rounds: int, hashes: int = 5) -> float:
    """CPU milliseconds of one bcrypt hash at ``rounds`` (mean of ``hashes``): the admin password's share of a
    provisioning's CPU."""
    began = time.process_time()
    for _ in range(hashes):
        users.hash_password("Bench-Temporary-1", rounds=rounds)
    return round((time.process_time() - began) / hashes * 1000, 1)


class SqlCounter:
    """Counts cursor executes (split into seed / other, with a per-kind breakdown) and pre-ping pings while
    ``active``; statements of tracking-off runs (``off`` set) are counted apart in ``statements_off``."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.active = False
        self.off = False
        self.statements_off = 0
        self.statements = 0
        self.seed_statements = 0
        self.pings = 0
        self.kinds: Counter[str] = Counter()
        sync_engine = engine.sync_engine
        event.listen(sync_engine, "before_cursor_execute", self._on_execute)
        dialect = sync_engine.dialect
        original_ping = dialect.do_ping

        def counting_ping(dbapi_connection):
            if self.active:
                self.pings += 1
            return original_ping(dbapi_connection)

        dialect.do_ping = counting_ping  # instance attribute: this engine's dialect only

    def _on_execute(self, conn, cursor, statement, parameters, context, executemany) -> None:
        if not self.active:
            return
        if self.off:
            self.statements_off += 1
            return
        self.statements += 1
        if SEED_STATEMENT.match(statement):
            self.seed_statements += 1
        self.kinds[_statement_kind(statement)] += 1


def _statement_kind(statement: str) -> str:
    """A short label: 'INSERT tenants', 'SELECT set_config', 'UPDATE users', ..."""
    words = statement.split()
    if not words:
        return "?"
    verb = words[0].upper()
    upper = [w.upper() for w in words]
    target = None
    if verb == "INSERT" and "INTO" in upper:
        target = words[upper.index("INTO") + 1]
    elif verb in ("DELETE",) and "FROM" in upper:
        target = words[upper.index("FROM") + 1]
    elif verb == "UPDATE" and len(words) > 1:
        target = words[1]
    elif verb == "SELECT":
        if "SET_CONFIG" in statement.upper():
            target = "set_config"
        elif "FROM" in upper:
            target = words[upper.index("FROM") + 1]
    return f"{verb} {target.split('(')[0]}" if target else verb


# -- measurement ----------------------------------------------------------------------------------
def make_request(run_id: str, label: str, *, tracking: bool = True) -> TenantCreationInput:
    return TenantCreationInput(
        tenant_name=f"Bench {run_id} {label}",
        skip_customer_tracking=not tracking,
        admin_user=AdminUser(
            first_name="Bench",
            last_name="Admin",
            email=f"admin-{run_id}-{label.replace(' ', '-')}@bench-psa.example.com",
        ),
    )


async def provision_once(
    client, task_queue: str, request: TenantCreationInput, timeout: float = PROVISION_TIMEOUT
) -> float:
    """Start one provisioning and wait for its result; returns the latency in seconds.

    A run not finished within ``timeout`` seconds (e.g. a workflow task failing on a broken import, which
    Temporal retries forever) is terminated and reported as a RuntimeError instead of hanging the benchmark.
    """
    start = time.perf_counter()
    handle = await start_tenant_creation(client, request, task_queue=task_queue)
    try:
        result = await asyncio.wait_for(handle.result(), timeout)
    except TimeoutError:
        with contextlib.suppress(Exception):
            await handle.terminate(reason="benchmark timeout")
        raise RuntimeError(
            f"provisioning {handle.id} did not finish within {timeout:.0f} s; see the worker log output"
        ) from None
    elapsed = time.perf_counter() - start
    expected = "skipped" if request.skip_customer_tracking else "ok"
    if not result.success or result.customer_tracking.status != expected:
        raise RuntimeError(f"provisioning of {request.tenant_name} did not succeed as expected: {result}")
    return elapsed


def summarize(latencies: list[float], wall: float) -> dict[str, float]:
    ms = sorted(x * 1000 for x in latencies)
    cuts = statistics.quantiles(ms, n=100, method="inclusive") if len(ms) > 1 else [ms[0]] * 99
    return {
        "p50_ms": round(statistics.median(ms), 1),
        "p95_ms": round(cuts[94], 1),
        "mean_ms": round(statistics.fmean(ms), 1),
        "min_ms": round(ms[0], 1),
        "max_ms": round(ms[-1], 1),
        "wall_s": round(wall, 3),
        "throughput_per_s": round(len(ms) / wall, 2),
    }


async def run(args: argparse.Namespace) -> dict:
    run_id = uuid.uuid4().hex[:8]
    with tempfile.TemporaryDirectory(prefix="psa-bench-outbox-") as outbox:
        settings, stack = prepare_settings(args.bcrypt_rounds, Path(outbox))
        engine = make_engine(settings)
        mgmt = await bootstrap_management_tenant(engine, f"Bench Management {run_id}", email="ops@bench.example.com")
        settings = settings.model_copy(update={"management_tenant_id": mgmt.tenant})
        counter = SqlCounter(engine)
        client = await connect(settings)
        task_queue = f"bench-{run_id}"
        try:
            async with build_worker(client, ProvisioningActivities(engine, settings), task_queue=task_queue):
                for i in range(WARMUP):
                    await provision_once(client, task_queue, make_request(run_id, f"warmup {i}"))

                counter.active = True
                latencies: list[float] = []
                latencies_off: list[float] = []
                seq_wall = off_wall = 0.0
                for i in range(args.n):
                    t0 = time.perf_counter()
                    latencies.append(await provision_once(client, task_queue, make_request(run_id, f"seq {i}")))
                    seq_wall += time.perf_counter() - t0
                    counter.off = True
                    t0 = time.perf_counter()
                    off = make_request(run_id, f"off {i}", tracking=False)
                    latencies_off.append(await provision_once(client, task_queue, off))
                    off_wall += time.perf_counter() - t0
                    counter.off = False
                counter.active = False
                sequential = summarize(latencies, seq_wall)
                sequential_off = summarize(latencies_off, off_wall)

                sem = asyncio.Semaphore(args.concurrency)

                async def limited(i: int) -> float:
                    async with sem:
                        return await provision_once(client, task_queue, make_request(run_id, f"conc {i}"))

                t0 = time.perf_counter()
                with cpu_used(process_ids(stack)) as conc_cpu:
                    conc_latencies = await asyncio.gather(*(limited(i) for i in range(args.n)))
                conc_wall = time.perf_counter() - t0
                concurrent = summarize(list(conc_latencies), conc_wall)
        finally:
            await engine.dispose()
            if args.stop_stack and stack is not None:
                stack.down()

    n = args.n
    per = round(counter.statements / n, 2)
    per_ex = round((counter.statements - counter.seed_statements) / n, 2)
    overhead = round((sequential["p50_ms"] - sequential_off["p50_ms"]) / sequential_off["p50_ms"] * 100, 1)
    report = {
        **header("provisioning"),
        "settings": {
            "n": n,
            "concurrency": args.concurrency,
            "bcrypt_rounds": settings.bcrypt_rounds,
            "email_provider": settings.email_provider,
            "warmup": WARMUP,
            "external_database": bool(os.environ.get("DATABASE_URL")),
            "external_temporal": bool(os.environ.get("TEMPORAL_ADDRESS")),
        },
        "sequential": sequential,
        "sequential_without_tracking": sequential_off,
        "tracking_overhead_p50_pct": overhead,
        "concurrent": concurrent,
        "concurrent_cpu_ms_per_provisioning": per_item_ms(conc_cpu, n),
        "cpu_budget_ms_per_provisioning_at_target": round(
            (os.cpu_count() or 1) * 1000 / TARGETS["concurrent_throughput_min_per_s"], 1
        ),
        "bcrypt_cpu_ms_per_hash": bcrypt_cpu_ms(settings.bcrypt_rounds),
        "sql_statements_per_provisioning": per,
        "sql_statements_per_provisioning_without_tracking": round(counter.statements_off / n, 2),
        "sql_statements_per_provisioning_excluding_seeds": per_ex,
        "pings_per_provisioning": round(counter.pings / n, 2),
        "sql_statement_kinds_per_provisioning": {
            kind: round(count / n, 2) for kind, count in counter.kinds.most_common()
        },
        "targets": TARGETS,
        "targets_met": {
            "sequential_p50": sequential["p50_ms"] <= TARGETS["p50_ms_max"],
            "concurrent_p50": concurrent["p50_ms"] <= TARGETS["p50_ms_max"],
            "concurrent_throughput": concurrent["throughput_per_s"] >= TARGETS["concurrent_throughput_min_per_s"],
            "sql_statements_excluding_seeds": per_ex <= TARGETS["sql_statements_max_excluding_seeds"],
            "tracking_overhead_p50": overhead < TARGETS["tracking_overhead_p50_pct_max"],
        },
    }
    return report


def print_report(report: dict, out: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    s = report["settings"]
    table = Table(title=f"provisioning: n={s['n']} concurrency={s['concurrency']} bcrypt_rounds={s['bcrypt_rounds']}")
    for col in ("phase", "p50 ms", "p95 ms", "mean ms", "throughput /s"):
        table.add_column(col, justify="right" if col != "phase" else "left")
    for phase in ("sequential", "sequential_without_tracking", "concurrent"):
        r = report[phase]
        table.add_row(
            phase, f"{r['p50_ms']:.1f}", f"{r['p95_ms']:.1f}", f"{r['mean_ms']:.1f}", f"{r['throughput_per_s']:.2f}"
        )
    console = Console()
    console.print(table)
    console.print(
        f"SQL statements / provisioning: {report['sql_statements_per_provisioning']} "
        f"({report['sql_statements_per_provisioning_excluding_seeds']} excluding seeds), "
        f"pre-ping pings: {report['pings_per_provisioning']}; without tracking: "
        f"{report['sql_statements_per_provisioning_without_tracking']}"
    )
    console.print(f"customer tracking adds {report['tracking_overhead_p50_pct']} % to the sequential p50")
    cpu = ", ".join(f"{k} {v}" for k, v in report["concurrent_cpu_ms_per_provisioning"].items())
    console.print(
        f"CPU ms per provisioning at concurrency {s['concurrency']}: {cpu} (one bcrypt hash: "
        f"{report['bcrypt_cpu_ms_per_hash']}); the budget for the throughput target on "
        f"{report['machine']['cpus']} cores: {report['cpu_budget_ms_per_provisioning_at_target']}"
    )
    met = report["targets_met"]
    console.print("targets met: " + ", ".join(f"{k}={'yes' if v else 'NO'}" for k, v in met.items()))
    console.print(f"written to {out}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--n", type=int, default=40, help="provisionings per phase (default 40)")
    parser.add_argument("--concurrency", type=int, default=8, help="in flight in the concurrent phase")
    parser.add_argument("--bcrypt-rounds", type=int, default=None, help="default: Settings (10)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON report path")
    parser.add_argument("--stop-stack", action="store_true", help="stop the embedded bench stack afterwards")
    args = parser.parse_args(argv)
    if args.n < 1 or args.concurrency < 1:
        parser.error("--n and --concurrency must be at least 1")
    report = asyncio.run(run(args))
    out = args.out.expanduser().resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print_report(report, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
