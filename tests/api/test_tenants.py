"""Provisioning over HTTP (management tenant, tenant:create): start with 202 and Location, live state,
server-sent progress, list, cancel and update, bad input, concurrent duplicate starts."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import uuid

from httpx_sse import aconnect_sse
from temporalio.service import RPCError, RPCStatusCode

from psa.api import tenants as tenants_api
from psa.domain.values import tenant_slug
from psa.provisioning.starter import ProvisioningStatus
from psa.provisioning.types import TenantCreationState
from psa.provisioning.workflow import derived_id
from tests.factories import tenant_request_body
from tests.helpers import ActivityHooks, assert_no_workflow, assert_problem, rows, tenant_row_counts, wait_for

TENANTS = "/api/v1/tenants"


async def finished(http, headers, location: str) -> dict:
    async def done():
        view = (await http.get(location, headers=headers)).json()
        return view if view["status"] != "RUNNING" else None

    return await wait_for(done, timeout=60, interval=0.1)


async def test_start_follow_and_list(http, api_worker, management):
    body = tenant_request_body()
    started = await http.post(TENANTS, json=body, headers=management.headers())
    assert started.status_code == 202, started.text
    workflow_id = started.json()["workflow_id"]
    assert workflow_id == f"tenant-creation-{tenant_slug(body['tenant_name'])}"
    assert started.headers["location"] == f"{TENANTS}/{workflow_id}"

    events = []
    async with aconnect_sse(http, "GET", f"{TENANTS}/{workflow_id}/events", headers=management.headers()) as source:
        assert source.response.headers["content-type"].startswith("text/event-stream")
        async for event in source.aiter_sse():
            events.append((event.event, json.loads(event.data)))
    assert events[-1] == ("end", {"workflow_id": workflow_id, "status": "COMPLETED"})
    progress = [data["state"]["progress"] for kind, data in events if kind == "state"]
    assert progress == sorted(progress)  # monotonic, to the end
    assert progress[-1] == 100

    view = (await http.get(started.headers["location"], headers=management.headers())).json()
    assert view["status"] == "COMPLETED"
    assert view["state"]["step"] == "completed"
    assert view["state"]["customer_tracking"]["status"] == "ok"  # recorded in the API's management tenant
    assert "password" not in json.dumps(view).lower()

    listing = (await http.get(TENANTS, params={"limit": 1000}, headers=management.headers())).json()
    mine = next(t for t in listing if t["tenant"] == view["state"]["tenant_id"])
    assert mine["name"] == body["company_name"]
    assert mine["admin_email"] == body["admin_user"]["email"]
    assert any(t["tenant"] == str(management.tenant) for t in listing)

    again = await http.post(TENANTS, json=body, headers=management.headers())
    assert "already exists" in assert_problem(again, 409, "CONFLICT")["detail"]


async def test_concurrent_duplicate_starts_create_one_tenant(http, api_worker, management, engine):
    body = tenant_request_body()
    responses = await asyncio.gather(*(http.post(TENANTS, json=body, headers=management.headers()) for _ in range(6)))
    assert {r.status_code for r in responses} == {202}
    [workflow_id] = {r.json()["workflow_id"] for r in responses}
    view = await finished(http, management.headers(), f"{TENANTS}/{workflow_id}")
    assert view["status"] == "COMPLETED"
    slug = tenant_slug(body["tenant_name"])
    assert len(await rows(engine, "SELECT tenant FROM tenants WHERE slug = :s", s=slug)) == 1
    assert (
        len(
            await rows(
                engine,
                "SELECT 1 FROM users WHERE lower(email) = :e AND user_type = 'internal'",
                e=body["admin_user"]["email"],
            )
        )
        == 1
    )


async def test_update_then_cancel_a_running_provisioning(http, start_worker, api_settings, management, engine):
    reached, release = asyncio.Event(), asyncio.Event()

    async def pause(info) -> None:
        reached.set()
        await release.wait()

    await start_worker(
        settings=api_settings, task_queue=api_settings.task_queue, interceptors=[ActivityHooks({"seed_tenant": pause})]
    )
    started = await http.post(TENANTS, json=tenant_request_body(), headers=management.headers())
    location = started.headers["location"]
    await asyncio.wait_for(reached.wait(), 30)

    updated = await http.post(
        f"{location}/update", json={"field": "email_provider", "value": "smtp"}, headers=management.headers()
    )
    assert updated.status_code == 200, updated.text
    assert updated.json()["applied_at_step"] == "seeding", updated.text
    late = await http.post(
        f"{location}/update", json={"field": "company_name", "value": "Too Late"}, headers=management.headers()
    )
    body = assert_problem(late, 422, "VALIDATION_ERROR")
    assert "already used by step 'creating_tenant'" in body["detail"]
    assert body["errors"][0]["path"] == "field"

    cancelled = await http.post(
        f"{location}/cancel", json={"reason": "customer withdrew"}, headers=management.headers()
    )
    assert cancelled.status_code == 202
    assert cancelled.json()["state"]["cancel_reason"] == "customer withdrew"
    release.set()
    view = await finished(http, management.headers(), location)
    assert view["state"]["step"] == "cancelled"
    assert view["state"]["cancelled_by"] == f"api:user:{management.actors.admin}"
    assert set((await tenant_row_counts(engine, view["state"]["tenant_id"])).values()) == {0}
    ended = await http.post(f"{location}/cancel", json={"reason": "again"}, headers=management.headers())
    assert_problem(ended, 409, "CONFLICT")


async def test_bad_input_is_422_with_field_paths_and_starts_nothing(http, management, client, engine):
    before = await tenant_row_counts(engine, management.tenant)
    bad_email = tenant_request_body(admin_user={"first_name": "A", "last_name": "B", "email": "not-an-email"})
    body = assert_problem(
        await http.post(TENANTS, json=bad_email, headers=management.headers()), 422, "VALIDATION_ERROR"
    )
    assert body["errors"][0]["path"] == "admin_user.email"
    wrong_types = tenant_request_body(license_count="many", skip_welcome_email="perhaps")
    wrong_types["admin_user"].pop("email")
    body = assert_problem(
        await http.post(TENANTS, json=wrong_types, headers=management.headers()), 422, "VALIDATION_ERROR"
    )
    assert {"license_count", "skip_welcome_email", "admin_user.email"} <= {e["path"] for e in body["errors"]}
    assert {e["in"] for e in body["errors"]} == {"body"}
    cut_short = tenant_request_body()["tenant_name"]
    malformed = await http.post(
        TENANTS,
        content=f'{{"tenant_name": "{cut_short}",'.encode(),
        headers={**management.headers(), "content-type": "application/json"},
    )
    assert_problem(malformed, 422, "VALIDATION_ERROR")
    blank = tenant_request_body(tenant_name="  ")
    body = assert_problem(await http.post(TENANTS, json=blank, headers=management.headers()), 422, "VALIDATION_ERROR")
    assert body["errors"][0]["path"] == "tenant_name"
    # Nothing was started or written for any of the four: no workflow under the id each named tenant would have had
    # (described by id: the visibility list lags), no row of the tenant it would have made, and (also for the blank
    # name, which has no id) no row in the management tenant.
    for name in (bad_email["tenant_name"], wrong_types["tenant_name"], cut_short):
        workflow_id = f"tenant-creation-{tenant_slug(name)}"
        await assert_no_workflow(client, workflow_id)
        assert set((await tenant_row_counts(engine, derived_id(workflow_id, "tenant"))).values()) == {0}
    assert await tenant_row_counts(engine, management.tenant) == before


async def test_unknown_and_foreign_workflow_ids_are_404(http, management):
    assert_problem(
        await http.get(f"{TENANTS}/tenant-creation-nobody-{uuid.uuid4().hex[:6]}", headers=management.headers()),
        404,
        "NOT_FOUND",
    )
    # Another kind of workflow (an automation run) is not a provisioning.
    assert_problem(
        await http.get(f"{TENANTS}/automation-run-{uuid.uuid4()}", headers=management.headers()), 404, "NOT_FOUND"
    )
    assert_problem(
        await http.get(f"{TENANTS}/tenant-creation-x{uuid.uuid4().hex}/events", headers=management.headers()),
        404,
        "NOT_FOUND",
    )


async def test_cancel_or_update_of_a_run_that_ends_meanwhile_is_409(http, app, api_worker, management, monkeypatch):
    """The run is RUNNING when the route looks and has completed when the signal or Update reaches Temporal."""
    started = await http.post(TENANTS, json=tenant_request_body(skip_welcome_email=True), headers=management.headers())
    location = started.headers["location"]
    workflow_id = started.json()["workflow_id"]
    assert (await finished(http, management.headers(), location))["status"] == "COMPLETED"
    ended = app.state.api.completed.pop(workflow_id).run

    async def seen_before_it_ended(client, wid):
        return dataclasses.replace(ended, status="RUNNING") if wid == workflow_id else await real_status(client, wid)

    real_status = tenants_api.provisioning_status
    monkeypatch.setattr(tenants_api, "provisioning_status", seen_before_it_ended)
    cancel = await http.post(f"{location}/cancel", json={"reason": "too late"}, headers=management.headers())
    assert "already ended" in assert_problem(cancel, 409, "CONFLICT")["detail"]
    update = await http.post(f"{location}/update", json={"field": "plan", "value": "pro"}, headers=management.headers())
    assert "already ended" in assert_problem(update, 409, "CONFLICT")["detail"]


async def test_events_end_with_an_error_event_when_temporal_stops_answering(http, management, monkeypatch):
    """The stream has started (200) when a later poll fails: it ends with ``event: error`` carrying the problem,
    instead of the server aborting the response mid-stream."""
    workflow_id = f"tenant-creation-sse-{uuid.uuid4().hex[:8]}"
    polls = 0

    async def running_then_unavailable(client, wid):
        nonlocal polls
        polls += 1
        if polls == 1:
            return ProvisioningStatus(wid, "RUNNING", TenantCreationState())
        raise RPCError("connection refused", RPCStatusCode.UNAVAILABLE, b"")

    monkeypatch.setattr(tenants_api, "provisioning_status", running_then_unavailable)
    events = []
    async with aconnect_sse(http, "GET", f"{TENANTS}/{workflow_id}/events", headers=management.headers()) as source:
        assert source.response.status_code == 200
        async for event in source.aiter_sse():
            events.append((event.event, json.loads(event.data)))
    assert [kind for kind, _ in events] == ["state", "error"]
    problem = events[-1][1]
    assert problem["status"] == 503
    assert problem["code"] == "TEMPORAL_UNAVAILABLE"
