"""HTTP-level behaviour: body size limit (413), malformed JSON and wrong types (422 with paths), unknown
routes as problems, health, metrics and the OpenAPI docs."""

from __future__ import annotations

import httpx

from psa.api.app import create_app
from tests.api.conftest import BASE_URL, assert_problem

INVOKE = "/api/v1/automation/actions/clients.create/invoke"


async def test_oversized_bodies_are_413_before_any_work(http, api_settings, tenant_a):
    limit = api_settings.api_max_body_bytes
    big = {"input": {"client_name": "x" * (limit + 10)}}
    body = assert_problem(await http.post(INVOKE, json=big, headers=tenant_a.headers()), 413, "PAYLOAD_TOO_LARGE")
    assert str(limit) in body["detail"]

    async def chunks():  # no Content-Length: the streamed body is counted as it arrives
        yield b'{"input": {"client_name": "'
        for _ in range(limit // 65536 + 2):
            yield b"y" * 65536
        yield b'"}}'

    streamed = await http.post(INVOKE, content=chunks(), headers={**tenant_a.headers(),
                               "content-type": "application/json"})  # fmt: skip
    assert "content-length" not in streamed.request.headers
    assert_problem(streamed, 413, "PAYLOAD_TOO_LARGE")
    # A body just under the limit is read (and judged on its content).
    fits = await http.post(INVOKE, json={"input": {"client_name": "z" * 300}}, headers=tenant_a.headers())
    assert fits.status_code == 422  # too long a name: the action's own validation, not the size limit


async def test_malformed_json_and_wrong_types_are_422_with_field_paths(http, tenant_a, management):
    malformed = await http.post(INVOKE, content=b'{"input": {', headers={**tenant_a.headers(),
                                "content-type": "application/json"})  # fmt: skip
    body = assert_problem(malformed, 422, "VALIDATION_ERROR")
    assert body["errors"][0]["in"] == "body" and "JSON" in body["errors"][0]["message"]
    wrong = await http.post(INVOKE, json={"input": ["not", "an", "object"], "version": "one"},
                            headers=tenant_a.headers())  # fmt: skip
    body = assert_problem(wrong, 422, "VALIDATION_ERROR")
    assert {e["path"] for e in body["errors"]} == {"input", "version"}
    query = await http.get("/api/v1/tenants", params={"limit": 0}, headers=management.headers())
    body = assert_problem(query, 422, "VALIDATION_ERROR")
    assert body["errors"] == [{"path": "limit", "message": body["errors"][0]["message"], "in": "query"}]
    bad_id = await http.get("/api/v1/automation/runs/not-a-uuid", headers=tenant_a.headers())
    assert assert_problem(bad_id, 422, "VALIDATION_ERROR")["errors"][0]["path"] == "run_id"


async def test_nul_characters_are_refused_with_their_path(http, tenant_a, management):
    nul = await http.post(INVOKE, json={"input": {"client_name": "Acme", "notes": ["ok", "bad\u0000"]}},
                          headers=tenant_a.headers())  # fmt: skip
    body = assert_problem(nul, 422, "VALIDATION_ERROR")
    assert body["errors"][0]["path"] == "input" and "input.notes.1" in body["errors"][0]["message"]
    tenant = {"tenant_name": "Nul\u0000 Corp", "admin_user": {"first_name": "A", "last_name": "B",
                                                              "email": "a@nul.example.com"}}  # fmt: skip
    body = assert_problem(await http.post("/api/v1/tenants", json=tenant, headers=management.headers()), 422,
                          "VALIDATION_ERROR")  # fmt: skip
    assert body["errors"][0]["path"] == "tenant_name"


async def test_unknown_routes_and_methods_are_problems(http):
    assert_problem(await http.get("/api/v1/nothing-here"), 404, "NOT_FOUND")
    assert_problem(await http.delete("/api/v1/automation/actions"), 405, "METHOD_NOT_ALLOWED")


async def test_healthz_checks_the_database_and_temporal(http, api_settings):
    response = await http.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok", "database": "ok", "temporal": "ok"}
    # Temporal unreachable (nothing listens on port 1): 503 naming the failing check.
    broken = create_app(api_settings.model_copy(update={"temporal_address": "127.0.0.1:1"}))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=broken), base_url=BASE_URL) as other:
        response = await other.get("/healthz")
    await broken.state.api.close()
    body = response.json()
    assert response.status_code == 503 and body["database"] == "ok" and body["temporal"].startswith("error")


async def test_metrics_count_requests_by_route_template(http, tenant_a):
    await http.get("/api/v1/automation/runs/00000000-0000-0000-0000-000000000000", headers=tenant_a.headers())
    text = (await http.get("/metrics")).text
    assert 'psa_api_requests_total{method="GET",route="/api/v1/automation/runs/{run_id}",status="404"}' in text
    assert "psa_api_request_duration_seconds_bucket" in text


async def test_openapi_docs_are_served(http):
    assert "swagger-ui" in (await http.get("/docs")).text
    spec = (await http.get("/openapi.json")).json()
    scheme = spec["components"]["securitySchemes"]["APIKeyHeader"]
    assert (scheme["type"], scheme["in"], scheme["name"]) == ("apiKey", "header", "x-api-key")
    assert "application/problem+json" in spec["paths"]["/api/v1/tenants"]["post"]["responses"]["422"]["content"]
