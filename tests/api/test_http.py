"""HTTP-level behaviour: body size limit (413), malformed JSON and wrong types (422 with paths), unknown
routes as problems, health, metrics and the OpenAPI docs."""

from __future__ import annotations

import uuid

import httpx
from fastapi import FastAPI
from sqlalchemy import text

from psa.api.app import create_app
from psa.api.bodies import MAX_DEPTH
from psa.api.problem import install_problem_handlers
from psa.db.engine import tenant_transaction
from tests.factories import make_actors
from tests.helpers import BASE_URL, assert_problem

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

    streamed = await http.post(
        INVOKE, content=chunks(), headers={**tenant_a.headers(), "content-type": "application/json"}
    )
    assert "content-length" not in streamed.request.headers
    assert_problem(streamed, 413, "PAYLOAD_TOO_LARGE")
    # A body just under the limit is read (and judged on its content).
    fits = await http.post(INVOKE, json={"input": {"client_name": "z" * 300}}, headers=tenant_a.headers())
    assert fits.status_code == 422  # too long a name: the action's own validation, not the size limit


async def test_malformed_json_and_wrong_types_are_422_with_field_paths(http, tenant_a, management):
    malformed = await http.post(
        INVOKE, content=b'{"input": {', headers={**tenant_a.headers(), "content-type": "application/json"}
    )
    body = assert_problem(malformed, 422, "VALIDATION_ERROR")
    assert body["errors"][0]["in"] == "body"
    assert "JSON" in body["errors"][0]["message"]
    wrong = await http.post(
        INVOKE, json={"input": ["not", "an", "object"], "version": "one"}, headers=tenant_a.headers()
    )
    body = assert_problem(wrong, 422, "VALIDATION_ERROR")
    assert {e["path"] for e in body["errors"]} == {"input", "version"}
    query = await http.get("/api/v1/tenants", params={"limit": 0}, headers=management.headers())
    body = assert_problem(query, 422, "VALIDATION_ERROR")
    assert body["errors"] == [{"path": "limit", "message": body["errors"][0]["message"], "in": "query"}]
    bad_id = await http.get("/api/v1/automation/runs/not-a-uuid", headers=tenant_a.headers())
    assert assert_problem(bad_id, 422, "VALIDATION_ERROR")["errors"][0]["path"] == "run_id"


async def test_nul_characters_are_refused_with_their_path(http, tenant_a, management):
    nul = await http.post(
        INVOKE, json={"input": {"client_name": "Acme", "notes": ["ok", "bad\u0000"]}}, headers=tenant_a.headers()
    )
    body = assert_problem(nul, 422, "VALIDATION_ERROR")
    assert body["errors"][0]["path"] == "input"
    assert "input.notes.1" in body["errors"][0]["message"]
    tenant = {
        "tenant_name": "Nul\u0000 Corp",
        "admin_user": {"first_name": "A", "last_name": "B", "email": "a@nul.example.com"},
    }
    body = assert_problem(
        await http.post("/api/v1/tenants", json=tenant, headers=management.headers()), 422, "VALIDATION_ERROR"
    )
    assert body["errors"][0]["path"] == "tenant_name"


async def test_unknown_routes_and_methods_are_problems(http):
    assert_problem(await http.get("/api/v1/nothing-here"), 404, "NOT_FOUND")
    assert_problem(await http.delete("/api/v1/automation/actions"), 405, "METHOD_NOT_ALLOWED")


async def test_healthz_checks_the_database_and_temporal(http, api_settings):
    response = await http.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "temporal": "ok"}
    # Temporal unreachable (nothing listens on port 1): 503 naming the failing check.
    broken = create_app(api_settings.model_copy(update={"temporal_address": "127.0.0.1:1"}))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=broken), base_url=BASE_URL) as other:
        response = await other.get("/healthz")
    await broken.state.api.close()
    body = response.json()
    assert response.status_code == 503
    assert body["database"] == "ok"
    assert body["temporal"].startswith("error")


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


async def test_nan_and_infinity_are_refused_with_their_path(http, tenant_a):
    """JSON has no NaN or Infinity, but Python's parser accepts them and PostgreSQL jsonb cannot store them."""
    definition = {"id": "api-nan", "name": "NaN", "steps": [{"id": "done", "type": "control.return"}]}
    published = await http.post(
        "/api/v1/automation/workflows", json={"definition": definition}, headers=tenant_a.headers()
    )
    assert published.status_code == 201, published.text
    headers = {**tenant_a.headers(), "content-type": "application/json"}
    for number in (b"NaN", b"Infinity", b"-Infinity", b"1e999"):
        content = b'{"payload": {"deep": [1, {"x": ' + number + b"}]}}"
        run = await http.post("/api/v1/automation/workflows/api-nan/runs", content=content, headers=headers)
        body = assert_problem(run, 422, "VALIDATION_ERROR")
        assert body["errors"][0]["path"] == "payload"
        assert "payload.deep.1.x" in body["errors"][0]["message"]
    invoke = await http.post(
        INVOKE, content=b'{"input": {"client_name": "Nan", "properties": {"x": NaN}}}', headers=headers
    )
    assert assert_problem(invoke, 422, "VALIDATION_ERROR")["errors"][0]["path"] == "input"


async def test_nul_in_a_path_parameter_is_422(http, tenant_a):
    response = await http.post("/api/v1/automation/workflows/a%00b/runs", json={}, headers=tenant_a.headers())
    body = assert_problem(response, 422, "VALIDATION_ERROR")
    assert body["errors"][0] == {"path": "workflow", "message": body["errors"][0]["message"], "in": "path"}


async def test_metrics_do_not_label_arbitrary_methods(http):
    """An attacker-chosen method would otherwise add a label series (and 12 histogram buckets) per request."""
    response = await http.request("BREWCOFFEE", "/api/v1/nothing-here")
    assert response.status_code in (404, 405)
    text = (await http.get("/metrics")).text
    assert "BREWCOFFEE" not in text
    assert 'psa_api_requests_total{method="OTHER",route="unmatched"' in text


async def test_deeply_nested_json_is_422_not_a_server_error(http, api_settings, api_worker, tenant_a):
    """Nesting beyond what serialisation (pydantic: 255 levels) and recursion can take is refused at the door;
    a payload nested within the limit still starts its run."""
    definition = {"id": "api-deep", "name": "Deep", "steps": [{"id": "done", "type": "control.return"}]}
    published = await http.post(
        "/api/v1/automation/workflows", json={"definition": definition}, headers=tenant_a.headers()
    )
    assert published.status_code == 201, published.text
    headers = {**tenant_a.headers(), "content-type": "application/json"}

    def nested(depth: int) -> bytes:
        return b'{"a": ' * (depth - 1) + b"[1]" + b"}" * (depth - 1)

    assert len(b'{"payload": ' + nested(5000) + b"}") < api_settings.api_max_body_bytes
    for depth in (MAX_DEPTH + 1, 300, 1000, 5000):
        run = await http.post(
            "/api/v1/automation/workflows/api-deep/runs",
            content=b'{"payload": ' + nested(depth) + b"}",
            headers=headers,
        )
        body = assert_problem(run, 422, "VALIDATION_ERROR")
        assert body["errors"][0]["path"] == "payload"
        assert str(MAX_DEPTH) in body["errors"][0]["message"]
        invoke = await http.post(
            INVOKE, content=b'{"input": {"client_name": "Deep", "properties": ' + nested(depth) + b"}}", headers=headers
        )
        assert assert_problem(invoke, 422, "VALIDATION_ERROR")["errors"][0]["path"] == "input"
    fits = await http.post(
        "/api/v1/automation/workflows/api-deep/runs",
        content=b'{"payload": ' + nested(MAX_DEPTH) + b"}",
        headers=headers,
    )
    assert fits.status_code == 202, fits.text


async def test_temporal_refusing_a_start_is_503_not_500(api_settings, management, tenant_a):
    """Temporal answers but refuses (here: a namespace it does not have, as after a misconfiguration or while
    its frontend is unavailable): the start routes answer 503 TEMPORAL_UNAVAILABLE problems."""
    broken = create_app(api_settings.model_copy(update={"temporal_namespace": f"missing-{uuid.uuid4().hex[:8]}"}))
    transport = httpx.ASGITransport(app=broken, raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as other:
            token = uuid.uuid4().hex[:8]
            admin = {"first_name": "A", "last_name": "B", "email": f"a.{token}@nowhere.example.com"}
            tenant = {"tenant_name": f"Nowhere {token}", "admin_user": admin}
            started = await other.post("/api/v1/tenants", json=tenant, headers=management.headers())
            assert_problem(started, 503, "TEMPORAL_UNAVAILABLE")
            definition = {"id": "api-nowhere", "name": "Nowhere", "steps": [{"id": "done", "type": "control.return"}]}
            published = await other.post(
                "/api/v1/automation/workflows", json={"definition": definition}, headers=tenant_a.headers()
            )
            assert published.status_code == 201, published.text
            run = await other.post("/api/v1/automation/workflows/api-nowhere/runs", json={}, headers=tenant_a.headers())
            assert_problem(run, 503, "TEMPORAL_UNAVAILABLE")
    finally:
        await broken.state.api.close()


async def test_lone_surrogates_are_refused_with_their_path(http, tenant_a, management):
    """JSON escapes can spell half a UTF-16 pair (``\\ud800``), which Python's parser accepts and no UTF-8 text
    (PostgreSQL, Temporal payloads) can hold."""
    definition = {"id": "api-surrogate", "name": "Surrogate", "steps": [{"id": "done", "type": "control.return"}]}
    published = await http.post(
        "/api/v1/automation/workflows", json={"definition": definition}, headers=tenant_a.headers()
    )
    assert published.status_code == 201, published.text
    headers = {**tenant_a.headers(), "content-type": "application/json"}
    for payload in (b'{"x": ["ok", "a\\ud800b"]}', b'{"\\udc00": 1}'):
        run = await http.post(
            "/api/v1/automation/workflows/api-surrogate/runs", content=b'{"payload": ' + payload + b"}", headers=headers
        )
        body = assert_problem(run, 422, "VALIDATION_ERROR")
        assert body["errors"][0]["path"] == "payload"
        assert "payload." in body["errors"][0]["message"]
    tenant = (
        b'{"tenant_name": "Half \\ud800 Corp", "admin_user": {"first_name": "A", "last_name": "B", '
        b'"email": "a@surrogate.example.com"}}'
    )
    started = await http.post(
        "/api/v1/tenants", content=tenant, headers={**management.headers(), "content-type": "application/json"}
    )
    assert assert_problem(started, 422, "VALIDATION_ERROR")["errors"][0]["path"] == "tenant_name"


async def test_an_unreachable_database_is_503_not_500(api_settings, tenant_a):
    """No connection can be opened (nothing listens on port 1): a transient problem, as the documentation says."""
    down = api_settings.model_copy(update={"database_url": "postgresql+psycopg://postgres@127.0.0.1:1/psa"})
    broken = create_app(down)
    transport = httpx.ASGITransport(app=broken, raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as other:
            for response in (
                await other.get("/api/v1/automation/actions", headers=tenant_a.headers()),
                await other.post(INVOKE, json={"input": {"client_name": "Down"}}, headers=tenant_a.headers()),
            ):
                body = assert_problem(response, 503, "TRANSIENT_FAILURE")
                assert "127.0.0.1" not in body["detail"]
    finally:
        await broken.state.api.close()


async def test_a_constraint_violation_outside_an_action_is_the_error_it_stands_for(engine):
    """A database constraint is never a 500: a unique violation that reaches a route is 409 naming the field,
    a foreign-key violation 404 (psa.api.problem, as the action contract converts them)."""
    app = FastAPI()
    install_problem_handlers(app)
    tenant = (await make_actors(engine)).tenant

    @app.post("/twice")
    async def twice() -> None:
        async with tenant_transaction(engine, tenant) as conn:
            slug = await conn.scalar(text("SELECT slug FROM tenants WHERE tenant = :t"), {"t": tenant})
            await conn.execute(
                text("INSERT INTO tenants (client_name, slug, email) VALUES ('Twin', :s, 'twin@example.com')"),
                {"s": slug},
            )

    @app.post("/dangling")
    async def dangling() -> None:
        async with tenant_transaction(engine, tenant) as conn:
            await conn.execute(
                text("INSERT INTO tag_mappings (tenant, tag_id, tagged_id, tagged_type) VALUES (:t, :i, :i, 'client')"),
                {"t": tenant, "i": uuid.uuid4()},
            )

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL) as client:
        conflict = assert_problem(await client.post("/twice"), 409, "CONFLICT")
        assert (conflict["details"]["field"], conflict["details"]["constraint"]) == ("slug", "uq_tenants_slug")
        missing = assert_problem(await client.post("/dangling"), 404, "NOT_FOUND")
        assert missing["details"]["field"] == "tag_id"
