"""Automation runtime benchmark: direct action invocation, ledger replay, and a 10-step run on Temporal.

Run from the repository root::

    .venv/bin/python bench/automation.py [--n 200] [--runs 20] [--out bench/results/automation.json]

What it measures (on its own embedded stack ``.psa/bench-stack``, database ``psa_bench_automation``
re-created each time; ``DATABASE_URL`` / ``TEMPORAL_ADDRESS`` select external servers):

* The database is ANALYZEd after setup, as autovacuum does on a live one (see the comment in ``run``).
* ``direct``: ``invoke_action`` of ``clients.create`` (a new client each time) and ``clients.find`` (by id),
  N times each after 10 warm-up calls, as the tenant's admin: the whole contract (validation, actor,
  permissions, ledger, savepoint, audit, outbox) in one transaction. Latency = ``time.perf_counter()``
  around the call. Target: p50 under 5 ms.
* ``replay``: the same ``clients.create`` call repeated under one idempotency key: every call after the
  first returns the ledger's stored output with no side effects.
* ``run``: a published 10-step definition (assign, create, find, add_tag, if, update, state.set, assign,
  find, state.set; five of them action calls) started with ``launch_run`` and awaited, ``--runs`` times
  one after another with an in-process worker. Target: p50 under 1 s.

Writes a JSON report and prints a summary; nothing here asserts on timings.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import uuid
from pathlib import Path

from benchlib import header, summarize, timed, write_report

from psa.automation.actions import builtin_registry
from psa.automation.definitions import publish_definition
from psa.automation.invocation import invoke_action
from psa.automation.run.starter import launch_run, run_handle
from psa.config import Settings
from psa.db.engine import make_engine, tenant_transaction
from psa.db.migrate import upgrade
from psa.devstack import DevStack
from psa.domain import seeds, tenants, users
from psa.provisioning.activities import ProvisioningActivities
from psa.temporal import connect
from psa.worker import build_worker

ROOT = Path(__file__).resolve().parents[1]
BENCH_STATE = ROOT / ".psa" / "bench-stack"
BENCH_DB = "psa_bench_automation"
DEFAULT_OUT = ROOT / "bench" / "results" / "automation.json"
TARGETS = {"direct_p50_ms_max": 5, "run_10_steps_p50_ms_max": 1000}

TEN_STEPS = {
    "id": "bench-ten-steps",
    "name": "Ten steps",
    "steps": [
        {
            "id": "name",
            "type": "transform.assign",
            "config": {"assign": {"vars.name": {"$expr": "'Bench ' & meta.runId"}}},
        },
        {
            "id": "create",
            "type": "action.call",
            "config": {
                "actionId": "clients.create",
                "version": 1,
                "inputMapping": {"client_name": {"$expr": "vars.name"}},
                "saveAs": "vars.created",
            },
        },
        {
            "id": "find",
            "type": "action.call",
            "config": {
                "actionId": "clients.find",
                "version": 1,
                "inputMapping": {"client_id": {"$expr": "vars.created.client.client_id"}},
                "saveAs": "vars.found",
            },
        },
        {
            "id": "tag",
            "type": "action.call",
            "config": {
                "actionId": "clients.add_tag",
                "version": 1,
                "inputMapping": {"client_id": {"$expr": "vars.found.client.client_id"}, "tags": ["bench"]},
            },
        },
        {
            "id": "check",
            "type": "control.if",
            "condition": {"$expr": "vars.found.client != null"},
            "then": [
                {
                    "id": "update",
                    "type": "action.call",
                    "config": {
                        "actionId": "clients.update",
                        "version": 1,
                        "inputMapping": {
                            "client_id": {"$expr": "vars.found.client.client_id"},
                            "patch": {"notes": "benchmarked"},
                        },
                    },
                }
            ],
        },
        {"id": "state", "type": "state.set", "config": {"state": "UPDATED"}},
        {"id": "again", "type": "transform.assign", "config": {"assign": {"vars.done": {"$expr": "true"}}}},
        {
            "id": "refind",
            "type": "action.call",
            "config": {
                "actionId": "clients.find",
                "version": 1,
                "inputMapping": {"client_id": {"$expr": "vars.created.client.client_id"}},
            },
        },
        {"id": "final", "type": "state.set", "config": {"state": "DONE"}},
    ],
}


async def run(args: argparse.Namespace) -> dict:
    stack = None
    if not (os.environ.get("DATABASE_URL") and os.environ.get("TEMPORAL_ADDRESS")):
        stack = DevStack(Settings(state_dir=BENCH_STATE), temporal_ui=False)
        stack.up()
    db_url = os.environ.get("DATABASE_URL") or stack.create_database(BENCH_DB, replace=True)
    temporal = os.environ.get("TEMPORAL_ADDRESS") or stack.settings.resolved_temporal_address()
    settings = Settings(state_dir=BENCH_STATE, database_url=db_url, temporal_address=temporal, bcrypt_rounds=4)
    upgrade(settings.resolved_database_url())
    engine = make_engine(settings)
    registry = builtin_registry()
    tenant, admin = uuid.uuid4(), uuid.uuid4()
    async with tenant_transaction(engine, tenant) as conn:
        await tenants.create_tenant(
            conn, tenant=tenant, slug=f"bench-{tenant.hex[:8]}", company_name="Bench", email="bench@example.com"
        )
        await seeds.seed_tenant(conn, tenant)
        await users.create_internal_user(
            conn,
            tenant=tenant,
            user_id=admin,
            first_name="Bench",
            last_name="Admin",
            email=f"admin-{tenant.hex[:8]}@example.com",
            password_hash="unused",
        )

    # A fresh database has no planner statistics until autovacuum's first pass (a minute in); without them the
    # permission join is planned as nested sequential scans (about 5 ms instead of under 1). Measure the
    # steady state a live database is in.
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.exec_driver_sql("ANALYZE")

    async def invoke(action_id: str, raw: dict, **kwargs):
        return await invoke_action(
            engine,
            registry,
            tenant=tenant,
            action_id=action_id,
            version=1,
            raw_input=raw,
            actor_user_id=admin,
            **kwargs,
        )

    run_id = uuid.uuid4().hex[:8]
    await timed(lambda i: invoke("clients.create", {"client_name": f"Warm {run_id} {i}"}), 10)
    create = await timed(lambda i: invoke("clients.create", {"client_name": f"Direct {run_id} {i}"}), args.n)
    some = (await invoke("clients.create", {"client_name": f"Found {run_id}"})).output["client"]["client_id"]
    find = await timed(lambda i: invoke("clients.find", {"client_id": some}), args.n)
    first = await timed(
        lambda i: invoke("clients.create", {"client_name": f"Replay {run_id}"}, idempotency_key=f"replay-{run_id}"), 1
    )
    replay = await timed(
        lambda i: invoke("clients.create", {"client_name": f"Replay {run_id}"}, idempotency_key=f"replay-{run_id}"),
        args.n,
    )

    async with tenant_transaction(engine, tenant) as conn:
        await publish_definition(conn, tenant, TEN_STEPS, registry=registry, published_by=admin)
    client = await connect(settings)
    task_queue = f"bench-automation-{run_id}"
    async with build_worker(client, ProvisioningActivities(engine, settings), task_queue=task_queue):

        async def one_run(i: int) -> None:
            launched = await launch_run(
                engine, client, tenant=tenant, workflow="bench-ten-steps", payload={}, task_queue=task_queue
            )
            result = await run_handle(client, launched.run_id).result()
            if result["status"] != "SUCCEEDED":
                raise RuntimeError(f"run {launched.run_id} ended {result['status']}")

        await timed(one_run, 2)
        runs = await timed(one_run, args.runs)
    await engine.dispose()

    report = {
        **header("automation"),
        "direct": {"clients.create": summarize(create), "clients.find": summarize(find)},
        "replay": {"first_call_ms": round(first[0] * 1000, 2), "replayed": summarize(replay)},
        "run_10_steps": summarize(runs),
        "targets": TARGETS,
    }
    report["targets_met"] = {
        "direct_create_p50": report["direct"]["clients.create"]["p50_ms"] <= TARGETS["direct_p50_ms_max"],
        "direct_find_p50": report["direct"]["clients.find"]["p50_ms"] <= TARGETS["direct_p50_ms_max"],
        "run_10_steps_p50": report["run_10_steps"]["p50_ms"] <= TARGETS["run_10_steps_p50_ms_max"],
    }
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--n", type=int, default=200, help="direct invocations per action (default 200)")
    parser.add_argument("--runs", type=int, default=20, help="10-step runs (default 20)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    report = asyncio.run(run(args))
    write_report(report, args.out, ("direct", "replay", "run_10_steps", "targets_met"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
