"""``psa automation ...`` as an operator runs it: catalog, invoke, publish, run with progress, runs show."""

from __future__ import annotations

import asyncio
import json
import sys
import uuid

from tests.factories import make_actors
from tests.helpers import cli_env, psa, rows, wait_for

DEFINITION = {
    "id": "cli-onboard",
    "name": "CLI onboarding",
    "steps": [
        {
            "id": "create",
            "type": "action.call",
            "config": {
                "actionId": "clients.create",
                "version": 1,
                "inputMapping": {"client_name": {"$expr": "payload.name"}},
                "saveAs": "vars.created",
            },
        },
        {
            "id": "tag",
            "type": "action.call",
            "config": {
                "actionId": "clients.add_tag",
                "version": 1,
                "inputMapping": {"client_id": {"$expr": "vars.created.client.client_id"}, "tags": ["cli"]},
            },
        },
    ],
}


async def test_actions_catalog_as_table_and_json(base_settings, worker):
    code, out = await psa(base_settings, worker, "automation", "actions", "--json")
    assert code == 0, out
    catalog = json.loads(out)
    client_group = next(r for r in catalog if r["group_key"] == "client")
    assert "clients.create" in client_group["allowed_action_ids"]
    assert client_group["default_action_id"] == "clients.find"
    code, out = await psa(base_settings, worker, "automation", "actions")
    assert code == 0
    assert "Create Client" in out


async def test_invoke_publish_run_and_show(base_settings, worker, engine, tmp_path):
    actors = await make_actors(engine)
    tenant = actors.info.slug
    name = f"Cli Client {uuid.uuid4().hex[:6]}"

    direct = [
        "automation",
        "invoke",
        "clients.create",
        "--tenant",
        tenant,
        "--input",
        json.dumps({"client_name": name + " direct"}),
        "--idempotency-key",
        "cli-1",
    ]
    code, out = await psa(base_settings, worker, *direct)
    assert code == 0, out
    assert json.loads(out)["client"]["client_name"] == name + " direct"
    code, out = await psa(base_settings, worker, *direct)
    assert code == 0
    assert "replayed from the idempotency ledger" in out

    code, out = await psa(
        base_settings,
        worker,
        "automation",
        "invoke",
        "clients.create",
        "--tenant",
        tenant,
        "--input",
        json.dumps({"client_name": ""}),
    )
    assert code == 1
    assert "VALIDATION_ERROR" in out
    assert "input.client_name" in out

    bad = {
        **DEFINITION,
        "steps": [
            {**DEFINITION["steps"][0], "config": {**DEFINITION["steps"][0]["config"], "actionId": "clients.nope"}}
        ],
    }
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    code, out = await psa(
        base_settings, worker, "automation", "publish", str(tmp_path / "bad.json"), "--tenant", tenant
    )
    assert code == 1
    assert "UNKNOWN_ACTION" in out
    assert "root.steps[0]" in out

    (tmp_path / "def.json").write_text(json.dumps(DEFINITION))
    code, out = await psa(
        base_settings, worker, "automation", "publish", str(tmp_path / "def.json"), "--tenant", tenant
    )
    assert code == 0, out
    assert "version 1" in out, out

    code, out = await psa(
        base_settings,
        worker,
        "automation",
        "run",
        "cli-onboard",
        "--tenant",
        tenant,
        "--payload",
        json.dumps({"name": name}),
    )
    assert code == 0, out
    assert "SUCCEEDED root.steps[0] (create)" in out
    assert "SUCCEEDED root.steps[1] (tag)" in out
    assert "run SUCCEEDED" in out
    run_id = out.split("run ", 1)[1].split()[0]

    code, out = await psa(base_settings, worker, "automation", "runs", "show", run_id, "--tenant", tenant)
    assert code == 0
    assert "SUCCEEDED" in out
    assert "root.steps[1]" in out
    assert str(actors.admin) in out

    code, out = await psa(base_settings, worker, "automation", "run", "no-such-workflow", "--tenant", tenant)
    assert code == 2
    assert "workflow 'no-such-workflow' has no published version in this tenant" in out


async def test_the_worker_dispatches_events_to_event_triggered_workflows(base_settings, engine, tmp_path):
    """A real ``psa worker`` process: its outbox dispatcher turns CLIENT_CREATED into a run."""
    actors = await make_actors(engine)
    tenant, task_queue = actors.info.slug, f"dispatch-{uuid.uuid4()}"
    definition = {
        "id": "welcome-client",
        "name": "Welcome new clients",
        "trigger": {"type": "event", "eventName": "CLIENT_CREATED"},
        "steps": [
            {
                "id": "tag",
                "type": "action.call",
                "config": {
                    "actionId": "clients.add_tag",
                    "version": 1,
                    "inputMapping": {"client_id": {"$expr": "payload.clientId"}, "tags": ["welcomed"]},
                },
            }
        ],
    }
    (tmp_path / "welcome.json").write_text(json.dumps(definition))
    code, out = await psa(
        base_settings, task_queue, "automation", "publish", str(tmp_path / "welcome.json"), "--tenant", tenant
    )
    assert code == 0, out
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "psa.cli",
        "worker",
        env=cli_env(base_settings, task_queue),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        code, out = await psa(
            base_settings,
            task_queue,
            "automation",
            "invoke",
            "clients.create",
            "--tenant",
            tenant,
            "--input",
            json.dumps({"client_name": f"Welcome {uuid.uuid4().hex[:6]}"}),
        )
        assert code == 0, out
        client_id = json.loads(out)["client"]["client_id"]

        async def welcomed():
            found = await rows(
                engine,
                """SELECT 1 FROM tag_mappings m JOIN tag_definitions d ON d.tenant = m.tenant AND d.tag_id = m.tag_id
                    WHERE m.tenant = :t AND m.tagged_id = :c AND d.tag_text = 'welcomed'""",
                t=actors.tenant,
                c=uuid.UUID(client_id),
            )
            return bool(found)

        await wait_for(welcomed, timeout=60)
        delivered = await rows(
            engine, "SELECT delivered_at FROM workflow_event_outbox WHERE tenant = :t", t=actors.tenant
        )
        assert delivered
        assert all(r.delivered_at is not None for r in delivered)
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), timeout=30)
