"""Contact lookup benchmark: contacts.search and contacts.find over 10 tenants of 100,000 contacts each.

Run from the repository root::

    .venv/bin/python bench/contacts.py [--tenants 10] [--contacts 100000] [--n 200]
                                       [--out bench/results/contacts.json]

What it does (on the embedded PostgreSQL of ``.psa/bench-stack``, database ``psa_bench_contacts`` re-created each
time; ``DATABASE_URL`` selects an external server; Temporal is not needed):

* Loads ``--tenants`` tenants (seeded roles, an Admin actor, 20 clients) of ``--contacts`` contacts each, in
  set-based SQL batches: names from 120 first x 120 last names, unique emails, one default phone each (E.164,
  area codes spread over 700 values) and an additional email for one contact in ten. The migrations' indexes
  are in place while loading, as on a live database. Then ANALYZE (autovacuum's steady state). ``--reuse``
  keeps the database of the previous run and loads only missing tenants.
* Measures, ``--n`` calls each, through ``invoke_action`` (the whole contract: input validation, actor and
  permissions, ledger row, the query, output validation, commit), each call on a random tenant and a random
  existing contact of it:
  - ``search_name_prefix``: ``contacts.search`` with the first 3 letters of the contact's full name
    (e.g. "Mar": every name containing it, typically 2-4 % of the tenant, counted and the first page of 25
    sorted by name);
  - ``search_name_prefix_6``: the same with the first 6 characters ("Maria " / "Martin");
  - ``search_email``: ``contacts.search`` with the contact's whole email address;
  - ``find_phone_last10``: ``contacts.find`` with the contact's number written nationally, ``phone_match=last10``.
  Latency = ``time.perf_counter()`` around the call. Target: p50 under 20 ms for each.

Writes a JSON report and prints a summary; nothing here asserts on timings.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import time
import uuid
from pathlib import Path

from benchlib import header, summarize, write_report
from sqlalchemy import text

from psa.automation.actions import builtin_registry
from psa.automation.invocation import invoke_action
from psa.config import Settings
from psa.db.engine import make_engine, tenant_transaction
from psa.db.migrate import upgrade
from psa.devstack import DevStack
from psa.domain import clients, seeds, tenants, users

ROOT = Path(__file__).resolve().parents[1]
BENCH_STATE = ROOT / ".psa" / "bench-stack"
BENCH_DB = "psa_bench_contacts"
DEFAULT_OUT = ROOT / "bench" / "results" / "contacts.json"
TARGET_P50_MS = 20
CLIENTS_PER_TENANT = 20

_FIRST_NAMES = """
James Mary Robert Patricia John Jennifer Michael Linda David Elizabeth William Barbara Richard Susan Joseph Jessica
Thomas Sarah Charles Karen Christopher Lisa Daniel Nancy Matthew Betty Anthony Margaret Mark Sandra Donald Ashley
Steven Kimberly Paul Emily Andrew Donna Joshua Michelle Kenneth Carol Kevin Amanda Brian Dorothy George Melissa
Timothy Deborah Ronald Stephanie Edward Rebecca Jason Sharon Jeffrey Laura Ryan Cynthia Jacob Kathleen Gary Amy
Nicholas Angela Eric Shirley Jonathan Anna Stephen Brenda Larry Pamela Justin Emma Scott Nicole Brandon Helen
Benjamin Samantha Samuel Katherine Gregory Christine Alexander Debra Frank Rachel Patrick Carolyn Raymond Janet Jack
Catherine Dennis Maria Jerry Heather Tyler Diane Aaron Ruth Jose Julie Adam Olivia Nathan Joyce Henry Virginia
Douglas Victoria Zachary Kelly Peter Lauren Kyle Christina"""
FIRST = _FIRST_NAMES.split()
_LAST_NAMES = """
Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez Gonzalez Wilson Anderson
Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris Sanchez Clark Ramirez Lewis Robinson Walker Young
Allen King Wright Scott Torres Nguyen Hill Flores Green Adams Nelson Baker Hall Rivera Campbell Mitchell Carter
Roberts Gomez Phillips Evans Turner Diaz Parker Cruz Edwards Collins Reyes Stewart Morris Morales Murphy Cook Rogers
Gutierrez Ortiz Morgan Cooper Peterson Bailey Reed Kelly Howard Ramos Kim Cox Ward Richardson Watson Brooks Chavez
Wood James Bennett Gray Mendoza Ruiz Hughes Price Alvarez Castillo Sanders Patel Myers Long Ross Foster Jimenez
Powell Jenkins Perry Russell Sullivan Bell Coleman Butler Henderson Barnes Gonzales Fisher Vasquez Simmons Romero
Jordan Patterson Alexander Hamilton Graham"""
LAST = _LAST_NAMES.split()

# One statement per batch: contacts from generate_series, their default phones and, for one in ten, an additional
# email. Batches, because the email-uniqueness triggers take an advisory lock per address until commit.
LOAD_BATCH = text(
    """WITH src AS (
         SELECT i, gen_random_uuid() AS id, f.name AS first, l.name AS last
           FROM generate_series(CAST(:lo AS bigint), CAST(:hi AS bigint)) AS i
           JOIN LATERAL (SELECT (CAST(:first AS text[]))[1 + (i * 7919) % cardinality(CAST(:first AS text[]))])
                AS f(name) ON true
           JOIN LATERAL (SELECT (CAST(:last AS text[]))[1 + (i * 104729 / 7) % cardinality(CAST(:last AS text[]))])
                AS l(name) ON true),
       contacts_in AS (
         INSERT INTO contacts (tenant, contact_name_id, full_name, email, client_id, is_inactive,
                               primary_email_canonical_type, created_at, updated_at)
         SELECT :t, id, first || ' ' || last,
                lower(first) || '.' || lower(last) || '.' || i || '@'
                  || (ARRAY['example.com', 'acme.test', 'globex.test', 'initech.test'])[1 + i % 4],
                (CAST(:clients AS uuid[]))[1 + i % cardinality(CAST(:clients AS uuid[]))], i % 50 = 0, 'work',
                now() - make_interval(mins => CAST(i AS integer)), now() - make_interval(mins => CAST(i AS integer))
           FROM src),
       phones_in AS (
         INSERT INTO contact_phone_numbers (tenant, contact_name_id, phone_number, canonical_type, is_default)
         SELECT :t, id, '+1' || (200 + i % 700) || lpad((i * 7919 % 10000000)::text, 7, '0'), 'work', true FROM src)
       INSERT INTO contact_additional_email_addresses (tenant, contact_name_id, email_address, canonical_type)
       SELECT :t, id, 'alt.' || lower(first) || '.' || lower(last) || '.' || i || '@example.org', 'personal'
         FROM src WHERE i % 10 = 0"""
)
BATCH = 5000


def national(e164: str) -> str:
    """``+14155550123`` -> ``(415) 555-0123``: how a person types a US number."""
    d = e164[2:]
    return f"({d[:3]}) {d[3:6]}-{d[6:]}"


async def load_tenant(engine, index: int, n: int) -> dict:
    """One tenant with seeded roles, an Admin actor, 20 clients and ``n`` contacts. Returns its ids."""
    tenant, admin = uuid.uuid4(), uuid.uuid4()
    async with tenant_transaction(engine, tenant) as conn:
        await tenants.create_tenant(
            conn,
            tenant=tenant,
            slug=f"bench-contacts-{index}-{tenant.hex[:6]}",
            company_name=f"Bench {index}",
            email="bench@example.com",
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
            role_name="Admin",
        )
        client_ids = [
            (await clients.create_client(conn, tenant, {"client_name": f"Client {index}-{i}"})).client_id
            for i in range(CLIENTS_PER_TENANT)
        ]
    for lo in range(1, n + 1, BATCH):
        async with tenant_transaction(engine, tenant) as conn:
            await conn.execute(
                LOAD_BATCH,
                {
                    "t": tenant,
                    "lo": lo,
                    "hi": min(n, lo + BATCH - 1),
                    "clients": client_ids,
                    "first": FIRST,
                    "last": LAST,
                },
            )
    return {"tenant": tenant, "admin": admin}


async def loaded_tenants(engine) -> list[dict]:
    """The tenants (and their Admin actors) a previous run loaded (``--reuse``)."""
    async with engine.connect() as conn:
        found = await conn.execute(
            text(
                """SELECT t.tenant, min(u.user_id::text) AS admin FROM tenants t
                     JOIN users u ON u.tenant = t.tenant AND u.user_type = 'internal'
                    WHERE t.slug LIKE 'bench-contacts-%' GROUP BY t.tenant ORDER BY min(t.slug)"""
            )
        )
        return [{"tenant": row.tenant, "admin": uuid.UUID(row.admin)} for row in found]


async def sample_contacts(engine, tenant: uuid.UUID, k: int, rng: random.Random) -> list:
    async with engine.connect() as conn:
        found = await conn.execute(
            text(
                """SELECT c.full_name, c.email, p.phone_number FROM contacts c
                     JOIN contact_phone_numbers p ON p.tenant = c.tenant AND p.contact_name_id = c.contact_name_id
                    WHERE c.tenant = :t ORDER BY random() LIMIT :k"""
            ),
            {"t": tenant, "k": k},
        )
        picked = found.all()
    rng.shuffle(picked)
    return picked


async def run(args: argparse.Namespace) -> dict:
    stack = None
    started_here = False
    if not os.environ.get("DATABASE_URL"):
        stack = DevStack(Settings(state_dir=BENCH_STATE), temporal_ui=False)
        started_here = not stack.pg_running()
        stack.start_postgres()
    db_url = os.environ.get("DATABASE_URL") or stack.create_database(BENCH_DB, replace=not args.reuse)
    settings = Settings(state_dir=BENCH_STATE, database_url=db_url, bcrypt_rounds=4)
    upgrade(settings.resolved_database_url())
    engine = make_engine(settings)
    registry = builtin_registry()
    rng = random.Random(args.seed)
    try:
        load_start = time.perf_counter()
        loaded = await loaded_tenants(engine) if args.reuse else []
        reused = len(loaded)
        for index in range(len(loaded), args.tenants):
            loaded.append(await load_tenant(engine, index, args.contacts))
            print(f"tenant {index + 1}/{args.tenants} loaded ({time.perf_counter() - load_start:.0f} s)", flush=True)
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.exec_driver_sql("ANALYZE")
        load_seconds = time.perf_counter() - load_start
        totals_sql = text(
            "SELECT (SELECT count(*) FROM contacts) AS contacts,"
            " (SELECT count(*) FROM contact_phone_numbers) AS phones,"
            " (SELECT count(*) FROM contact_additional_email_addresses) AS additional_emails"
        )
        async with engine.connect() as conn:
            totals = (await conn.execute(totals_sql)).one()._asdict()

        per_tenant = max(1, args.n // len(loaded) + 1)
        picks = {t["tenant"]: await sample_contacts(engine, t["tenant"], per_tenant, rng) for t in loaded}
        calls = []  # round-robin over the tenants, a different contact each time
        for i in range(args.n):
            who = loaded[i % len(loaded)]
            sample = picks[who["tenant"]]
            calls.append((who, sample[(i // len(loaded)) % len(sample)]))

        async def invoke(who: dict, action_id: str, raw: dict) -> dict:
            result = await invoke_action(
                engine,
                registry,
                tenant=who["tenant"],
                action_id=action_id,
                version=1,
                raw_input=raw,
                actor_user_id=who["admin"],
            )
            return result.output

        scenarios = {
            "search_name_prefix": lambda c: ("contacts.search", {"query": c.full_name[:3]}),
            "search_name_prefix_6": lambda c: ("contacts.search", {"query": c.full_name[:6]}),
            "search_email": lambda c: ("contacts.search", {"query": c.email}),
            "find_phone_last10": lambda c: (
                "contacts.find",
                {"phone": national(c.phone_number), "phone_match": "last10"},
            ),
        }
        results = {}
        for name, build in scenarios.items():
            for who, contact in calls[:10]:  # warm-up
                await invoke(who, *build(contact))
            samples, matched = [], []
            for who, contact in calls:
                action_id, raw = build(contact)
                start = time.perf_counter()
                output = await invoke(who, action_id, raw)
                samples.append(time.perf_counter() - start)
                found = output["total"] if action_id == "contacts.search" else int(output["contact"] is not None)
                matched.append(found)
            results[name] = {
                **summarize(samples),
                "mean_matches": round(statistics.fmean(matched), 1),
                "min_matches": min(matched),
            }
            print(f"{name}: {results[name]}", flush=True)
    finally:
        await engine.dispose()
        if started_here and stack is not None:
            stack.stop_postgres()

    return {
        **header("contacts"),
        "data": {
            "tenants": args.tenants,
            "contacts_per_tenant": args.contacts,
            **totals,
            "reused_tenants": reused,
            "load_seconds": round(load_seconds, 1),
        },
        "latency": results,
        "target_p50_ms": TARGET_P50_MS,
        "targets_met": {name: r["p50_ms"] <= TARGET_P50_MS for name, r in results.items()},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--tenants", type=int, default=10)
    parser.add_argument("--contacts", type=int, default=100_000, help="contacts per tenant (default 100000)")
    parser.add_argument("--n", type=int, default=200, help="calls per scenario (default 200)")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument(
        "--reuse", action="store_true", help="keep the database of a previous run and load only missing tenants"
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    report = asyncio.run(run(args))
    write_report(report, args.out, ("data", "latency", "targets_met"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
