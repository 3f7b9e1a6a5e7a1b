"""End to end over real HTTP: ``psa api`` (uvicorn) in its own process, keys made and revoked with the
``psa apikeys`` CLI, a provisioning followed as a live server-sent event stream."""

from __future__ import annotations

import json
import re
import uuid

import httpx
from httpx_sse import aconnect_sse

from tests.factories import tenant_request_body
from tests.helpers import psa


async def test_keys_from_the_cli_authenticate_until_revoked(api_server, api_settings, tenant_a):
    slug = tenant_a.actors.info.slug
    user = str(tenant_a.actors.technician)
    code, out = await psa(
        api_settings, api_settings.task_queue, "apikeys", "create", "--tenant", slug, "--user", user, "--name", "portal"
    )
    assert code == 0, out
    [key] = re.findall(r"^psa_\S{43}$", out, flags=re.MULTILINE)
    [key_id] = re.findall(r"API key ([0-9a-f-]{36})", out)
    async with httpx.AsyncClient(base_url=api_server, headers={"x-api-key": key}) as http:
        found = await http.post(
            "/api/v1/automation/actions/clients.find/invoke", json={"input": {"name": f"Nobody {uuid.uuid4().hex[:6]}"}}
        )
        assert found.status_code == 200, found.text
        assert found.json()["output"]["client"] is None, found.text
        code, listing = await psa(api_settings, api_settings.task_queue, "apikeys", "list", "--tenant", slug)
        assert code == 0
        assert key_id in listing
        assert key[4:12] in listing
        assert key not in listing
        code, out = await psa(api_settings, api_settings.task_queue, "apikeys", "revoke", key_id, "--tenant", slug)
        assert code == 0
        assert "revoked" in out
        denied = await http.get("/api/v1/automation/actions")
        assert denied.status_code == 401
        assert denied.headers["content-type"] == "application/problem+json"
    code, out = await psa(
        api_settings,
        api_settings.task_queue,
        "apikeys",
        "create",
        "--tenant",
        slug,
        "--user",
        "nobody@nowhere.example.com",
    )
    assert code == 2
    assert "not an internal user" in out


async def test_provisioning_streams_progress_over_real_http(api_server, api_worker, management):
    async with httpx.AsyncClient(base_url=api_server, headers=management.headers(), timeout=60) as http:
        started = await http.post("/api/v1/tenants", json=tenant_request_body())
        assert started.status_code == 202, started.text
        events = []
        async with aconnect_sse(http, "GET", started.json()["events_url"]) as source:
            async for event in source.aiter_sse():
                events.append((event.event, json.loads(event.data)))
        assert events[-1][0] == "end"
        assert events[-1][1]["status"] == "COMPLETED"
        steps = [data["state"]["step"] for kind, data in events if kind == "state"]
        assert len(steps) >= 2  # several updates arrived while it ran
        assert steps[-1] == "completed"
        assert (await http.get("/healthz")).json()["status"] == "ok"
        assert "psa_api_requests_total" in (await http.get("/metrics")).text


async def test_an_operator_added_with_the_cli_lists_tenants(api_server, api_settings):
    mgmt = str(api_settings.management_tenant_id)
    email = f"operator.{uuid.uuid4().hex[:8]}@mgmt.example.com"
    code, out = await psa(
        api_settings,
        api_settings.task_queue,
        "users",
        "add",
        "--tenant",
        mgmt,
        "--email",
        email,
        "--first-name",
        "Op",
        "--last-name",
        "Erator",
    )
    assert code == 0, out
    assert "Admin" in out, out
    code, out = await psa(
        api_settings,
        api_settings.task_queue,
        "users",
        "add",
        "--tenant",
        mgmt,
        "--email",
        email,
        "--first-name",
        "Op",
        "--last-name",
        "Erator",
    )
    assert code == 2
    assert "already exists" in out
    code, out = await psa(api_settings, api_settings.task_queue, "apikeys", "create", "--tenant", mgmt, "--user", email)
    [key] = re.findall(r"^psa_\S{43}$", out, flags=re.MULTILINE)
    async with httpx.AsyncClient(base_url=api_server, headers={"x-api-key": key}) as http:
        listing = await http.get("/api/v1/tenants")
    assert listing.status_code == 200
    assert any(t["tenant"] == mgmt for t in listing.json())
