"""Automation over HTTP: catalog and schemas, one action under the full contract, publishing, runs; another
tenant's ids are 404 and leak nothing; validation errors carry codes and field paths."""

from __future__ import annotations

import uuid

from tests.helpers import assert_problem, audits, count, wait_for

BASE = "/api/v1/automation"
ONE_CLIENT = {
    "id": "api-one-client",
    "name": "Create one client",
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
        {"id": "done", "type": "control.return"},
    ],
}


def invoke_url(action_id: str) -> str:
    return f"{BASE}/actions/{action_id}/invoke"


async def test_catalog_and_an_actions_schemas(http, tenant_a):
    catalog = (await http.get(f"{BASE}/actions", headers=tenant_a.headers())).json()
    client_tile = next(record for record in catalog if record["group_key"] == "client")
    assert "clients.find" in client_tile["allowed_action_ids"]
    described = (await http.get(f"{BASE}/actions/clients.create", headers=tenant_a.headers())).json()
    [v1] = described["versions"]
    assert v1["version"] == 1
    assert "client_name" in v1["input_schema"]["properties"]
    assert "client:create" in v1["permissions"]
    assert v1["output_schema"]["type"] == "object"
    assert_problem(await http.get(f"{BASE}/actions/clients.nope", headers=tenant_a.headers()), 404, "NOT_FOUND")
    assert_problem(
        await http.get(f"{BASE}/actions/clients.create?version=9", headers=tenant_a.headers()), 404, "NOT_FOUND"
    )


async def test_invoke_runs_the_full_contract_as_the_keys_user(http, engine, tenant_a):
    body = {"input": {"client_name": f"Globex {uuid.uuid4().hex[:6]}"}, "idempotency_key": "order-1"}
    first = await http.post(invoke_url("clients.create"), json=body, headers=tenant_a.headers())
    assert first.status_code == 200, first.text
    created = first.json()
    assert created["replayed"] is False
    assert created["attempt"] == 1
    client_id = created["output"]["client"]["client_id"]
    again = (await http.post(invoke_url("clients.create"), json=body, headers=tenant_a.headers())).json()
    assert again["replayed"] is True
    assert again["output"] == created["output"]
    [audit] = await audits(engine, tenant_a.tenant, "clients.create")
    assert audit.user_id == tenant_a.actors.admin  # the key's user is the actor
    found = await http.post(
        invoke_url("clients.find"), json={"input": {"client_id": client_id}}, headers=tenant_a.headers("technician")
    )
    assert found.status_code == 200
    assert found.json()["output"]["client"]["client_id"] == client_id


async def test_invoke_errors_are_problems_with_the_action_code_and_field_paths(http, tenant_a):
    invalid = await http.post(
        invoke_url("clients.create"), json={"input": {"client_name": 42, "url": "no url"}}, headers=tenant_a.headers()
    )
    body = assert_problem(invalid, 422, "VALIDATION_ERROR")
    assert body["category"] == "ValidationError"
    assert body["node_path"] == "direct"
    assert {"input.client_name", "input.url"} <= {e["path"] for e in body["errors"]}
    denied = await http.post(
        invoke_url("clients.create"), json={"input": {"client_name": "Nope"}}, headers=tenant_a.headers("technician")
    )
    assert assert_problem(denied, 403, "PERMISSION_DENIED")["details"] == {"resource": "client", "action": "create"}
    unknown = await http.post(invoke_url("clients.nope"), json={}, headers=tenant_a.headers())
    assert_problem(unknown, 404, "NOT_FOUND")


async def test_another_tenants_ids_are_404_and_never_data(http, tenant_a, tenant_b):
    name = f"Secret {uuid.uuid4().hex[:6]}"
    theirs = (
        await http.post(invoke_url("clients.create"), json={"input": {"client_name": name}}, headers=tenant_b.headers())
    ).json()["output"]["client"]["client_id"]
    probe = {"input": {"client_id": theirs, "on_not_found": "error"}}
    response = await http.post(invoke_url("clients.find"), json=probe, headers=tenant_a.headers())
    assert_problem(response, 404, "NOT_FOUND")
    assert name not in response.text
    quiet = (
        await http.post(invoke_url("clients.find"), json={"input": {"client_id": theirs}}, headers=tenant_a.headers())
    ).json()
    assert quiet["output"]["client"] is None
    archive = await http.post(
        invoke_url("clients.archive"), json={"input": {"client_id": theirs}}, headers=tenant_a.headers()
    )
    assert_problem(archive, 404, "NOT_FOUND")
    assert_problem(await http.get(f"{BASE}/runs/{uuid.uuid4()}", headers=tenant_a.headers()), 404, "NOT_FOUND")


async def test_publish_rejects_an_invalid_definition_with_codes_and_paths(http, engine, tenant_a):
    bad = {
        **ONE_CLIENT,
        "steps": [
            {**ONE_CLIENT["steps"][0], "config": {"actionId": "clients.nope", "version": 1}},
            {**ONE_CLIENT["steps"][1], "id": "create"},
        ],
    }
    response = await http.post(f"{BASE}/workflows", json={"definition": bad}, headers=tenant_a.headers())
    body = assert_problem(response, 422, "VALIDATION_ERROR")
    found = {(e["code"], e["path"]) for e in body["errors"]}
    assert ("UNKNOWN_ACTION", "root.steps[0]") in found
    assert any(code == "DUPLICATE_STEP_ID" for code, _ in found)
    assert await count(engine, "workflow_definitions WHERE tenant = :t", t=tenant_a.tenant) == 0
    denied = await http.post(f"{BASE}/workflows", json={"definition": ONE_CLIENT}, headers=tenant_a.headers("nobody"))
    assert assert_problem(denied, 403, "PERMISSION_DENIED")["details"]["action"] == "publish"


async def test_publish_run_and_read_the_run_with_its_steps(http, api_worker, tenant_a, tenant_b):
    published = await http.post(f"{BASE}/workflows", json={"definition": ONE_CLIENT}, headers=tenant_a.headers())
    assert published.status_code == 201, published.text
    assert published.json()["version"] == 1
    assert published.headers["location"].endswith(published.json()["workflow_id"])
    started = await http.post(
        f"{BASE}/workflows/{ONE_CLIENT['id']}/runs", json={"payload": {"name": "Run Co"}}, headers=tenant_a.headers()
    )
    assert started.status_code == 202, started.text
    location = started.headers["location"]
    assert location == started.json()["status_url"]

    async def finished():
        view = (await http.get(location, headers=tenant_a.headers())).json()
        return view if view["status"] != "RUNNING" else None

    view = await wait_for(finished, timeout=60, interval=0.2)
    assert view["status"] == "SUCCEEDED", view
    assert view["actor_user_id"] == str(tenant_a.actors.admin)
    assert [s["definition_step_id"] for s in view["steps"]] == ["create", "done"]
    assert all(s["status"] == "SUCCEEDED" for s in view["steps"])
    # The other tenant sees neither the run nor the workflow.
    assert_problem(await http.get(location, headers=tenant_b.headers()), 404, "NOT_FOUND")
    missing = await http.post(f"{BASE}/workflows/{ONE_CLIENT['id']}/runs", json={}, headers=tenant_b.headers())
    assert_problem(missing, 404, "NOT_FOUND")


async def test_creating_an_interaction_type_twice_is_never_a_server_error(http, tenant_a):
    """Issue 14: the second create of "ΣΑΣ repro" answered 500 (a unique violation the three normalisations let
    through). Now it returns the first type; with ``if_exists: error`` it is 409 naming the field."""
    url = invoke_url("crm.create_interaction_type")
    first = await http.post(url, json={"input": {"type_name": "ΣΑΣ repro"}}, headers=tenant_a.headers())
    assert first.status_code == 200, first.text
    created = first.json()["output"]["interaction_type"]
    for spelling in ("ΣΑΣ repro", "σας\xa0REPRO", "σασ\x1crepro"):
        again = await http.post(url, json={"input": {"type_name": spelling}}, headers=tenant_a.headers())
        assert again.status_code == 200, again.text
        found = again.json()["output"]["interaction_type"]
        assert (found["type_id"], found["type_name"], found["created"]) == (created["type_id"], "ΣΑΣ repro", False)
    refused = await http.post(
        url, json={"input": {"type_name": "σας repro", "if_exists": "error"}}, headers=tenant_a.headers()
    )
    body = assert_problem(refused, 409, "CONFLICT")
    assert body["details"]["field"] == "type_name"
    assert body["errors"] == [{"path": "type_name", "message": "Interaction type already exists", "in": "body"}]


async def test_a_duplicate_contact_email_is_409_naming_the_field(http, tenant_a):
    """Issue 14: duplicates are conflicts, a taken contact email too (as the reference answers)."""
    email = f"dup.{uuid.uuid4().hex[:8]}@example.com"
    url = invoke_url("contacts.create")
    first = await http.post(url, json={"input": {"full_name": "One", "email": email}}, headers=tenant_a.headers())
    assert first.status_code == 200, first.text
    again = await http.post(
        url, json={"input": {"full_name": "Two", "email": email.upper()}}, headers=tenant_a.headers()
    )
    body = assert_problem(again, 409, "CONFLICT")
    assert (body["category"], body["details"]["field"]) == ("ActionError", "email")
    assert [e["path"] for e in body["errors"]] == ["email"]
