"""Fixtures for the HTTP API: the real app (psa.api.app.create_app) on the test database and Temporal, called
through httpx's ASGI transport; a management tenant and an ordinary tenant, each with users holding real API
keys (created through psa.domain.api_keys, stored hashed)."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from sqlalchemy import text

from psa.api.app import create_app
from psa.config import Settings
from psa.db.engine import tenant_transaction
from psa.provisioning.customer_tracking import bootstrap_management_tenant
from tests.factories import NO_ACCESS_ROLE, Actors, Keyed, add_user, keyed, make_actors
from tests.helpers import BASE_URL, cli_env, free_port, unique_name


@pytest.fixture(scope="session")
async def api_settings(engine, base_settings: Settings) -> Settings:
    """Settings of the app under test: a management tenant of its own and a task queue of its own."""
    mgmt = await bootstrap_management_tenant(engine, unique_name("Api Mgmt"), email="ops@api-mgmt.example.com")
    return base_settings.model_copy(
        update={"management_tenant_id": mgmt.tenant, "task_queue": f"api-{uuid.uuid4()}", "api_sse_poll_seconds": 0.1}
    )


@pytest.fixture(scope="session")
async def management(engine, api_settings: Settings) -> Keyed:
    """Users of the management tenant (its admin holds tenant:create) with API keys."""
    tenant = api_settings.management_tenant_id
    async with tenant_transaction(engine, tenant) as conn:
        await conn.execute(
            text(
                "INSERT INTO roles (tenant, role_name, msp, client) VALUES (:t, :n, true, false) ON CONFLICT DO NOTHING"
            ),
            {"t": tenant, "n": NO_ACCESS_ROLE},
        )
    actors = Actors(
        tenant=tenant,
        admin=await add_user(engine, tenant, "Admin"),
        technician=await add_user(engine, tenant, "Technician"),
        nobody=await add_user(engine, tenant, NO_ACCESS_ROLE),
        info=None,  # type: ignore[arg-type]
    )
    return await keyed(engine, actors)


@pytest.fixture
async def tenant_a(engine) -> Keyed:
    """An ordinary tenant whose actors hold API keys."""
    return await keyed(engine, await make_actors(engine))


@pytest.fixture
async def tenant_b(engine) -> Keyed:
    """A second ordinary tenant: its ids must be invisible to tenant_a."""
    return await keyed(engine, await make_actors(engine))


@pytest.fixture(scope="session")
async def app(api_settings: Settings):
    """The real app (psa.api.app.create_app) with the API settings, closed at the end of the session."""
    app = create_app(api_settings)
    yield app
    await app.state.api.close()


@pytest.fixture(scope="session")
async def http(app) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client calling the app in process (ASGI transport)."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL) as client:
        yield client


@pytest.fixture
async def api_worker(start_worker, api_settings: Settings) -> str:
    """A worker on the app's task queue with the app's settings (management tenant)."""
    return await start_worker(settings=api_settings, task_queue=api_settings.task_queue)


@pytest.fixture(scope="session")
def api_server(api_settings: Settings) -> Iterator[str]:
    """A real ``psa api`` process (uvicorn) on a free loopback port with the app's settings; its base URL."""
    port = free_port()
    mgmt = str(api_settings.management_tenant_id)
    env = cli_env(api_settings, api_settings.task_queue, PSA_MANAGEMENT_TENANT_ID=mgmt, PSA_API_SSE_POLL_SECONDS="0.1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "psa.cli", "api", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"psa api did not come up: {proc.stderr.read().decode() if proc.stderr else ''}")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
