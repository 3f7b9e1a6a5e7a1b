"""Published definitions run durably on Temporal: control flow across several real actions, step rows,
failures, a worker crash mid-run taking effect once, and an event-triggered run from the outbox."""

from __future__ import annotations

import contextlib
import copy
import uuid
from datetime import timedelta

import pytest
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowFailureError
from temporalio.service import RPCError
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor

from psa.automation.actions import builtin_registry
from psa.automation.definitions import DefinitionInvalid, publish_definition
from psa.automation.outbox import dispatch_pending, event_trigger
from psa.automation.run.records import get_run
from psa.automation.run.starter import launch_run, run_handle
from psa.db.engine import tenant_transaction
from psa.provisioning.activities import ProvisioningActivities
from psa.temporal import connect
from psa.worker import build_worker
from tests.helpers import count, events, rows, wait_for

ONBOARD = {
    "id": "onboard-clients",
    "name": "Onboard clients",
    "steps": [
        {"id": "init", "type": "transform.assign", "config": {"assign": {"vars.created": {"$expr": "[]"}}}},
        {
            "id": "each",
            "type": "control.forEach",
            "items": {"$expr": "payload.names"},
            "itemVar": "name",
            "body": [
                {
                    "id": "create",
                    "type": "action.call",
                    "config": {
                        "actionId": "clients.create",
                        "version": 1,
                        "inputMapping": {"client_name": {"$expr": "name"}, "tags": ["imported"]},
                        "saveAs": "vars.last",
                    },
                },
                {
                    "id": "collect",
                    "type": "transform.assign",
                    "config": {
                        "assign": {"vars.created": {"$expr": "append(vars.created, vars.last.client.client_id)"}}
                    },
                },
            ],
        },
        {
            "id": "guard",
            "type": "control.tryCatch",
            "captureErrorAs": "failure",
            "try": [
                {
                    "id": "again",
                    "type": "action.call",
                    "config": {
                        "actionId": "clients.create",
                        "version": 1,
                        "inputMapping": {"client_name": {"$expr": "payload.names[0]"}},
                    },
                }
            ],
            "catch": [{"id": "mark", "type": "state.set", "config": {"state": "DUPLICATE_SEEN"}}],
        },
        {
            "id": "check",
            "type": "control.if",
            "condition": {"$expr": "vars.failure.code = 'CONFLICT'"},
            "then": [
                {
                    "id": "tag",
                    "type": "action.call",
                    "config": {
                        "actionId": "clients.add_tag",
                        "version": 1,
                        "inputMapping": {"client_id": {"$expr": "vars.created[0]"}, "tags": ["vip"]},
                        "saveAs": "vars.tagged",
                    },
                },
                {"id": "done", "type": "control.return"},
            ],
        },
        {"id": "unreachable", "type": "state.set", "config": {"state": "NEVER"}},
    ],
}


async def publish(engine, actors, definition: dict, *, key: str | None = None):
    async with tenant_transaction(engine, actors.tenant) as conn:
        return await publish_definition(
            conn, actors.tenant, definition, registry=builtin_registry(), published_by=actors.admin, key=key
        )


async def run_to_end(engine, client, worker, actors, workflow: str, payload: dict):
    launched = await launch_run(
        engine, client, tenant=actors.tenant, workflow=workflow, payload=payload, task_queue=worker
    )
    with contextlib.suppress(WorkflowFailureError):  # a failed run raises; its row says how
        await run_handle(client, launched.run_id).result()
    async with engine.connect() as conn:
        return await get_run(conn, actors.tenant, launched.run_id)


async def test_if_foreach_trycatch_saveas_across_actions(engine, client, worker, actors):
    published = await publish(engine, actors, ONBOARD)
    names = [f"Run {uuid.uuid4().hex[:6]} {i}" for i in range(3)]
    view = await run_to_end(engine, client, worker, actors, "onboard-clients", {"names": names})

    assert view.status == "SUCCEEDED"
    assert view.workflow_version == published.version
    assert view.actor_user_id == actors.admin  # the publisher of the version
    created = await rows(
        engine, "SELECT client_name FROM clients WHERE tenant = :t AND client_name = ANY(:n)", t=actors.tenant, n=names
    )
    assert sorted(r.client_name for r in created) == sorted(names)
    vip = await rows(
        engine,
        """SELECT c.client_name FROM tag_mappings m
             JOIN tag_definitions d ON d.tenant = m.tenant AND d.tag_id = m.tag_id
             JOIN clients c ON c.tenant = m.tenant AND c.client_id = m.tagged_id
            WHERE m.tenant = :t AND d.tag_text = 'vip'""",
        t=actors.tenant,
    )
    assert [r.client_name for r in vip] == [names[0]]

    by_path = {(s["step_path"], s["attempt"]): s for s in view.steps}
    assert by_path[("root.steps[1].body.steps[0]", 3)]["status"] == "SUCCEEDED"  # third loop iteration
    failed = by_path[("root.steps[2].try.steps[0]", 1)]
    assert failed["status"] == "FAILED"
    assert failed["error_json"]["code"] == "CONFLICT"
    assert failed["error_json"]["node_path"] == "root.steps[2].try.steps[0]"
    assert by_path[("root.steps[2].catch.steps[0]", 1)]["status"] == "SUCCEEDED"
    assert ("root.steps[4]", 1) not in by_path  # control.return ended the run
    assert all(s["status"] != "STARTED" for s in view.steps)
    assert all(s["duration_ms"] is not None for s in view.steps)
    logs = await rows(
        engine,
        "SELECT level, message FROM workflow_run_logs WHERE tenant = :t AND run_id = :r ORDER BY created_at",
        t=actors.tenant,
        r=view.run_id,
    )
    assert [(log.level, log.message) for log in logs] == [("INFO", "Run started"), ("INFO", "Run succeeded")]


async def test_failed_step_fails_the_run_with_its_structured_error(engine, client, worker, actors):
    definition = {
        "id": "find-missing",
        "name": "Find a missing client",
        "steps": [
            {
                "id": "find",
                "type": "action.call",
                "config": {
                    "actionId": "clients.find",
                    "version": 1,
                    "inputMapping": {"client_id": str(uuid.uuid4()), "on_not_found": "error"},
                },
                "retry": {"maxAttempts": 2, "backoffMs": 10, "retryOn": ["TransientError"]},
            }
        ],
    }
    await publish(engine, actors, definition)
    view = await run_to_end(engine, client, worker, actors, "find-missing", {})
    assert view.status == "FAILED"
    assert view.error_json["code"] == "NOT_FOUND"
    assert view.error_json["node_path"] == "root.steps[0]"
    assert [s["status"] for s in view.steps] == ["FAILED"]  # NOT_FOUND is not in retryOn: one attempt


async def test_on_error_continue_and_retry_then_give_up(engine, client, worker, actors):
    step = {
        "id": "find",
        "type": "action.call",
        "config": {
            "actionId": "clients.find",
            "version": 1,
            "inputMapping": {"client_id": str(uuid.uuid4()), "on_not_found": "error"},
        },
        "retry": {"maxAttempts": 3, "backoffMs": 1},
        "onError": {"policy": "continue"},
    }
    definition = {
        "id": "keep-going",
        "name": "Keep going",
        "steps": [
            step,
            {"id": "after", "type": "transform.assign", "config": {"assign": {"vars.seen": {"$expr": "error.code"}}}},
        ],
    }
    await publish(engine, actors, definition)
    launched = await launch_run(
        engine, client, tenant=actors.tenant, workflow="keep-going", payload={}, task_queue=worker
    )
    result = await run_handle(client, launched.run_id).result()
    assert result["status"] == "SUCCEEDED"
    assert result["vars"]["seen"] == "NOT_FOUND"
    ledger = await rows(
        engine,
        "SELECT status, attempt FROM workflow_action_invocations WHERE tenant = :t AND run_id = :r",
        t=actors.tenant,
        r=launched.run_id,
    )
    assert [(r.status, r.attempt) for r in ledger] == [("FAILED", 3)]  # three attempts under one key


async def test_publish_rejects_bad_definitions_with_codes_and_paths(engine, actors):
    bad = copy.deepcopy(ONBOARD)
    bad["steps"][1]["body"][0]["config"]["actionId"] = "clients.nope"
    bad["steps"][3]["condition"] = {"$expr": "$string(1)"}
    bad["steps"][0]["id"] = "each"
    del bad["steps"][3]["then"][0]["config"]["inputMapping"]["client_id"]
    with pytest.raises(DefinitionInvalid) as rejected:
        await publish(engine, actors, bad)
    found = {(e.code, e.step_path) for e in rejected.value.report.errors}
    assert ("UNKNOWN_ACTION", "root.steps[1].body.steps[0]") in found
    assert ("INVALID_EXPR", "root.steps[3]") in found
    assert ("MISSING_REQUIRED_MAPPING", "root.steps[3].then.steps[0]") in found
    assert any(code == "DUPLICATE_STEP_ID" for code, _ in found)
    assert await count(engine, "workflow_definitions WHERE tenant = :t", t=actors.tenant) == 0


async def test_event_triggered_run_starts_once_per_event(engine, client, worker, actors, invoke):
    definition = {
        "id": "on-client-created",
        "name": "Tag new clients",
        "trigger": {
            "type": "event",
            "eventName": "CLIENT_CREATED",
            "payloadMapping": {"client.id": {"$expr": "event.payload.clientId"}},
        },
        "steps": [
            {
                "id": "tag",
                "type": "action.call",
                "config": {
                    "actionId": "clients.add_tag",
                    "version": 1,
                    "inputMapping": {"client_id": {"$expr": "payload.client.id"}, "tags": ["auto"]},
                },
            },
        ],
    }
    await publish(engine, actors, definition)
    created = await invoke("clients.create", {"client_name": f"Evented {uuid.uuid4().hex[:6]}"})
    client_id = created.output["client"]["client_id"]
    handlers = [event_trigger(engine, client, task_queue=worker)]
    pending = len(await events(engine, actors.tenant))  # CLIENT_CREATED and whatever else clients.create queued
    # This tenant's events only: other tests' events are theirs to deliver.
    assert await dispatch_pending(engine, handlers, tenant=actors.tenant) == pending
    assert await dispatch_pending(engine, handlers, tenant=actors.tenant) == 0  # delivered once

    async def finished():
        found = await rows(
            engine,
            "SELECT run_id, status FROM workflow_runs WHERE tenant = :t AND event_type = :e",
            t=actors.tenant,
            e="CLIENT_CREATED",
        )
        return found if found and found[0].status != "RUNNING" else None

    (run,) = await wait_for(finished, timeout=60)
    assert run.status == "SUCCEEDED"
    tagged = await rows(
        engine,
        """SELECT 1 FROM tag_mappings m JOIN tag_definitions d ON d.tenant = m.tenant AND d.tag_id = m.tag_id
            WHERE m.tenant = :t AND m.tagged_id = :c AND d.tag_text = 'auto'""",
        t=actors.tenant,
        c=uuid.UUID(client_id),
    )
    assert len(tagged) == 1


class _LoseFirstCompletion(Interceptor):
    """The first attempt of ``run_action`` commits its action, then its completion is lost (as when the worker
    dies before reporting): Temporal runs the step again."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _LoseCompletion(next)


class _LoseCompletion(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput):
        result = await self.next.execute_activity(input)
        if activity.info().activity_type == "run_action" and activity.info().attempt == 1:
            raise RuntimeError("worker crashed before reporting the result")
        return result


async def test_step_rerun_after_a_lost_completion_takes_effect_once(engine, client, start_worker, actors):
    task_queue = await start_worker(interceptors=[_LoseFirstCompletion()])
    name = f"Once {uuid.uuid4().hex[:6]}"
    definition = {
        "id": "create-once",
        "name": "Create once",
        "steps": [
            {
                "id": "create",
                "type": "action.call",
                "config": {"actionId": "clients.create", "version": 1, "inputMapping": {"client_name": name}},
            }
        ],
    }
    await publish(engine, actors, definition)
    view = await run_to_end(engine, client, task_queue, actors, "create-once", {})
    assert view.status == "SUCCEEDED"
    assert await count(engine, "clients WHERE tenant = :t AND client_name = :n", t=actors.tenant, n=name) == 1
    assert (
        await count(
            engine, "audit_logs WHERE tenant = :t AND operation = 'workflow_action:clients.create'", t=actors.tenant
        )
        == 1
    )
    assert (
        await count(
            engine, "workflow_event_outbox WHERE tenant = :t AND event_type = 'CLIENT_CREATED'", t=actors.tenant
        )
        == 1
    )


async def test_a_run_started_again_after_it_ended_starts_nothing(engine, client, worker, actors):
    """A redelivered event launches its derived run id again, possibly after that run has ended (the dispatcher
    died after starting the run, before marking the event delivered): no second execution may start
    (docs/automation.md, "Events")."""
    definition = {
        "id": "short",
        "name": "Short",
        "steps": [{"id": "done", "type": "state.set", "config": {"state": "DONE"}}],
    }
    await publish(engine, actors, definition)
    run_id = uuid.uuid4()
    start = {"tenant": actors.tenant, "workflow": "short", "payload": {}, "task_queue": worker, "run_id": run_id}
    await launch_run(engine, client, **start)
    await run_handle(client, run_id).result()
    first_execution = (await run_handle(client, run_id).describe()).run_id

    again = await launch_run(engine, client, **start)

    assert again.run_id == run_id
    assert (await run_handle(client, run_id).describe()).run_id == first_execution
    logs = await rows(
        engine,
        "SELECT message FROM workflow_run_logs WHERE tenant = :t AND run_id = :r ORDER BY created_at",
        t=actors.tenant,
        r=run_id,
    )
    assert [log.message for log in logs] == ["Run started", "Run succeeded"]


async def test_each_action_attempt_has_the_launchers_timeout(engine, client, worker, actors):
    """``automation_action_timeout_seconds`` reaches every ``run_action`` attempt through the workflow input: it is
    how soon an action of a worker that died is retried (docs/automation.md, "Runs")."""
    definition = {
        "id": "timed",
        "name": "Timed",
        "steps": [
            {
                "id": "create",
                "type": "action.call",
                "config": {"actionId": "clients.create", "version": 1, "inputMapping": {"client_name": "Timed"}},
            }
        ],
    }
    await publish(engine, actors, definition)
    launched = await launch_run(
        engine,
        client,
        tenant=actors.tenant,
        workflow="timed",
        payload={},
        task_queue=worker,
        action_timeout_seconds=7.5,
    )
    await run_handle(client, launched.run_id).result()
    history = await run_handle(client, launched.run_id).fetch_history()
    scheduled = [
        e.activity_task_scheduled_event_attributes
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]
    assert [s.start_to_close_timeout.ToTimedelta() for s in scheduled] == [timedelta(seconds=7.5)]


async def test_the_worker_hands_a_dead_workers_workflows_on_after_the_sticky_timeout(client, engine, base_settings):
    """``worker_sticky_timeout_seconds`` is the worker's sticky queue timeout (docs/operations.md, "Settings")."""
    settings = base_settings.model_copy(update={"worker_sticky_timeout_seconds": 2.5})
    built = build_worker(client, ProvisioningActivities(engine, settings), task_queue=f"test-{uuid.uuid4()}")
    assert built.config()["sticky_queue_schedule_to_start_timeout"] == timedelta(seconds=2.5)


async def test_temporal_cancellation_ends_the_run_canceled(engine, client, worker, actors):
    definition = {
        "id": "slow",
        "name": "Slow",
        "steps": [
            {
                "id": "find",
                "type": "action.call",
                "config": {
                    "actionId": "clients.find",
                    "version": 1,
                    "inputMapping": {"client_id": str(uuid.uuid4()), "on_not_found": "error"},
                },
                "retry": {"maxAttempts": 100, "backoffMs": 60000},
            }
        ],
    }
    await publish(engine, actors, definition)
    launched = await launch_run(engine, client, tenant=actors.tenant, workflow="slow", payload={}, task_queue=worker)

    async def first_attempt_failed():
        where = "workflow_action_invocations WHERE tenant = :t AND run_id = :r AND status = 'FAILED'"
        return await count(engine, where, t=actors.tenant, r=launched.run_id)

    await wait_for(first_attempt_failed, timeout=30)
    await run_handle(client, launched.run_id).cancel()

    async def canceled():
        async with engine.connect() as conn:
            view = await get_run(conn, actors.tenant, launched.run_id)
        return view if view.status != "RUNNING" else None

    view = await wait_for(canceled, timeout=30)
    assert view.status == "CANCELED"
    assert view.steps[0]["status"] == "CANCELED"


async def test_a_refused_start_leaves_no_run_row(engine, base_settings, actors):
    """Temporal answers but refuses the start (a namespace it does not have): the error reaches the caller and
    no RUNNING run row is left without a workflow behind it."""
    definition = {
        "id": "refused",
        "name": "Refused",
        "steps": [{"id": "s", "type": "state.set", "config": {"state": "X"}}],
    }
    await publish(engine, actors, definition, key="refused")
    broken = await connect(base_settings.model_copy(update={"temporal_namespace": f"missing-{uuid.uuid4().hex[:8]}"}))
    run_id = uuid.uuid4()
    with pytest.raises(RPCError):
        await launch_run(
            engine, broken, tenant=actors.tenant, workflow="refused", payload={}, task_queue="unused", run_id=run_id
        )
    assert await count(engine, "workflow_runs WHERE tenant = :t AND run_id = :r", t=actors.tenant, r=run_id) == 0
    assert await count(engine, "workflow_run_logs WHERE tenant = :t AND run_id = :r", t=actors.tenant, r=run_id) == 0
