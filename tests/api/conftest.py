"""Fixtures for the HTTP API: the real app (psa.api.app.create_app) on the test database and Temporal, called
through httpx's ASGI transport; a management tenant and an ordinary tenant, each with users holding real API
keys (created through psa.domain.api_keys, stored hashed)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from psa.api.app import create_app
from psa.config import Settings
from psa.provisioning.customer_tracking import bootstrap_management_tenant
from tests.factories import Keyed, keyed, keyed_management, make_actors
from tests.helpers import BASE_URL, serve_api, unique_name


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
    return await keyed_management(engine, api_settings.management_tenant_id)


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
def api_server(api_settings: Settings, tmp_path_factory) -> Iterator[str]:
    """A real ``psa api`` process (uvicorn) on a free loopback port with the app's settings; its base URL."""
    with serve_api(api_settings, tmp_path_factory.mktemp("api") / "api.log") as url:
        yield url
