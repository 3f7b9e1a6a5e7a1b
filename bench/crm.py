"""CRM activity search benchmark: ``crm.find_activities`` over 1,000,000 interactions in 10 tenants.

Run from the repository root::

    .venv/bin/python bench/crm.py [--tenants 10] [--per-tenant 100000] [--n 200] [--out bench/results/crm.json]

What it does (on its own embedded stack ``.psa/bench-stack``, database ``psa_bench_crm`` re-created each time;
``DATABASE_URL`` selects an external server):

* Loads ``--tenants`` seeded tenants, each with an admin, 5 owners, 100 clients and ``--per-tenant``
  interactions, with set-based SQL (``generate_series``, one INSERT per tenant, never row by row): clients
  round-robin, the 4 system types, every third interaction "Completed" and the rest "Planned", one every
  5 minutes back from now (about a year per tenant). Then ANALYZE, as autovacuum does on a live database.
* ``client_date_range``: ``crm.find_activities`` with ``client_id`` + a 30-day ``date_from``/``date_to``
  window (random tenant, client and window per call); ``type_status``: with ``type_id`` + ``status_id``
  (random tenant, type and status); ``date_range``: a 7-day window alone (beyond the issue's two shapes).
  All ``limit`` 25, ``--n`` calls each after 20 warm-up calls, through
  ``invoke_action`` as the tenant's admin: the whole contract (validation, actor and permissions, ledger row,
  the query and its joins). Latency = ``time.perf_counter()`` around the call. Target: p50 under 20 ms.

Writes a JSON report and prints a summary; nothing here asserts on timings.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import random
import sys
import time
import uuid
from pathlib import Path

from benchlib import header, summarize, timed, write_report
from sqlalchemy import text

from psa.automation.actions import builtin_registry
from psa.automation.invocation import invoke_action
from psa.config import Settings
from psa.db.engine import make_engine, tenant_transaction
from psa.db.migrate import upgrade
from psa.devstack import DevStack
from psa.domain import seeds, tenants, users
from psa.domain.values import name_key

ROOT = Path(__file__).resolve().parents[1]
BENCH_STATE = ROOT / ".psa" / "bench-stack"
BENCH_DB = "psa_bench_crm"
DEFAULT_OUT = ROOT / "bench" / "results" / "crm.json"
TARGETS = {"find_activities_p50_ms_max": 20}
CLIENTS_PER_TENANT = 100
OWNERS_PER_TENANT = 5
SYSTEM_TYPES = [  # migration 0003: Call, Email, Meeting, Note
    "8e36ee4d-d124-5e40-8076-5d9b3b587fc1",
    "2db33f79-cfd5-54c2-b07b-04f5efa37c70",
    "933a78c3-f69c-5ae9-98cc-73480fb3a89a",
    "1af97a91-1713-5a9a-a018-72d449958989",
]

CLIENTS = text(
    """INSERT INTO clients (tenant, client_name, name_key)
       SELECT :t, * FROM unnest(CAST(:names AS text[]), CAST(:keys AS text[]))"""
)
INTERACTIONS = text(
    """INSERT INTO interactions (tenant, type_id, client_id, user_id, title, interaction_date, start_time, end_time,
                                 duration, status_id, visibility)
       SELECT :t, (CAST(:types AS uuid[]))[1 + g % 4], k.clients[1 + g % array_length(k.clients, 1)],
              (CAST(:owners AS uuid[]))[1 + g % :owner_count], 'Activity ' || g, at, at, at, 0,
              CASE WHEN g % 3 = 0 THEN CAST(:completed AS uuid) ELSE CAST(:planned AS uuid) END, 'internal'
         FROM generate_series(1, :n) AS g
        CROSS JOIN (SELECT array_agg(client_id ORDER BY client_name) AS clients FROM clients WHERE tenant = :t) AS k
        CROSS JOIN LATERAL (SELECT now() - g * interval '5 minutes' AS at) AS d"""
)


async def load_tenant(engine, per_tenant: int) -> dict:
    """One seeded tenant with its admin, owners, clients and ``per_tenant`` interactions; returns its ids."""
    tenant, admin = uuid.uuid4(), uuid.uuid4()
    owners = [admin]
    async with tenant_transaction(engine, tenant) as conn:
        await tenants.create_tenant(
            conn, tenant=tenant, slug=f"bench-crm-{tenant.hex[:8]}", company_name="Bench", email="bench@example.com"
        )
        await seeds.seed_tenant(conn, tenant)
        for i in range(OWNERS_PER_TENANT + 1):
            user_id = admin if i == 0 else uuid.uuid4()
            await users.create_internal_user(
                conn,
                tenant=tenant,
                user_id=user_id,
                first_name="Bench",
                last_name=f"Owner {i}",
                email=f"owner{i}-{tenant.hex[:8]}@example.com",
                password_hash="unused",
                role_name="Admin" if i == 0 else "Technician",
            )
            if i:
                owners.append(user_id)
        statuses = dict(
            (
                await conn.execute(
                    text("SELECT name, status_id FROM statuses WHERE tenant = :t AND status_type = 'interaction'"),
                    {"t": tenant},
                )
            ).all()
        )
        names = [f"Bench client {n:03d}" for n in range(1, CLIENTS_PER_TENANT + 1)]
        await conn.execute(CLIENTS, {"t": tenant, "names": names, "keys": [name_key(n) for n in names]})
        await conn.execute(
            INTERACTIONS,
            {
                "t": tenant,
                "n": per_tenant,
                "types": SYSTEM_TYPES,
                "owners": [str(o) for o in owners],
                "owner_count": len(owners),
                "planned": statuses["Planned"],
                "completed": statuses["Completed"],
            },
        )
        clients = [
            row.client_id
            for row in await conn.execute(text("SELECT client_id FROM clients WHERE tenant = :t"), {"t": tenant})
        ]
    return {"tenant": tenant, "admin": admin, "clients": clients, "statuses": list(statuses.values())}


async def run(args: argparse.Namespace) -> dict:
    stack = None
    if not os.environ.get("DATABASE_URL"):
        stack = DevStack(Settings(state_dir=BENCH_STATE), temporal_ui=False)
        stack.up()
    db_url = os.environ.get("DATABASE_URL") or stack.create_database(BENCH_DB, replace=True)
    settings = Settings(state_dir=BENCH_STATE, database_url=db_url, bcrypt_rounds=4)
    upgrade(settings.resolved_database_url())
    engine = make_engine(settings)
    registry = builtin_registry()

    load_start = time.perf_counter()
    loaded = [await load_tenant(engine, args.per_tenant) for _ in range(args.tenants)]
    load_seconds = time.perf_counter() - load_start
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.exec_driver_sql("ANALYZE")
        total = (await conn.execute(text("SELECT count(*) FROM interactions"))).scalar_one()

    rng = random.Random(42)
    now = dt.datetime.now(dt.UTC)
    span_days = args.per_tenant * 5 // (24 * 60)  # one interaction every 5 minutes

    def iso(value: dt.datetime) -> str:
        return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")

    async def find(raw: dict, who: dict) -> None:
        result = await invoke_action(
            engine,
            registry,
            tenant=who["tenant"],
            action_id="crm.find_activities",
            version=1,
            raw_input=raw,
            actor_user_id=who["admin"],
        )
        if not result.output["activities"]:
            raise RuntimeError(f"no activities for {raw}")

    def by_client(_: int):
        who = rng.choice(loaded)
        end = now - dt.timedelta(days=rng.randint(0, max(0, span_days - 30)))
        raw = {
            "client_id": str(rng.choice(who["clients"])),
            "date_from": iso(end - dt.timedelta(days=30)),
            "date_to": iso(end),
            "limit": 25,
        }
        return find(raw, who)

    def by_date_range(_: int):
        who = rng.choice(loaded)
        end = now - dt.timedelta(days=rng.randint(0, max(0, span_days - 7)))
        raw = {"date_from": iso(end - dt.timedelta(days=7)), "date_to": iso(end), "limit": 25}
        return find(raw, who)

    def by_type_status(_: int):
        who = rng.choice(loaded)
        raw = {"type_id": rng.choice(SYSTEM_TYPES), "status_id": str(rng.choice(who["statuses"])), "limit": 25}
        return find(raw, who)

    await timed(by_client, 20)
    client_range = await timed(by_client, args.n)
    await timed(by_type_status, 20)
    type_status = await timed(by_type_status, args.n)
    await timed(by_date_range, 20)
    date_range = await timed(by_date_range, args.n)
    await engine.dispose()

    report = {
        **header("crm"),
        "data": {
            "tenants": args.tenants,
            "interactions": total,
            "load_seconds": round(load_seconds, 1),
            "clients_per_tenant": CLIENTS_PER_TENANT,
        },
        "find_activities": {
            "client_date_range": summarize(client_range),
            "type_status": summarize(type_status),
            "date_range": summarize(date_range),
        },
        "targets": TARGETS,
    }
    report["targets_met"] = {
        key: value["p50_ms"] <= TARGETS["find_activities_p50_ms_max"]
        for key, value in report["find_activities"].items()
    }
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--tenants", type=int, default=10)
    parser.add_argument("--per-tenant", type=int, default=100_000, help="interactions per tenant (default 100000)")
    parser.add_argument("--n", type=int, default=200, help="measured calls per query shape (default 200)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    report = asyncio.run(run(args))
    write_report(report, args.out, ("data", "find_activities", "targets_met"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
