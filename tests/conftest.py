"""Shared fixtures: the real embedded stack (or DATABASE_URL / TEMPORAL_ADDRESS), a fresh migrated
database per session, a Temporal client, and per-test workers on their own task queues."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from psa.config import Settings
from psa.db.engine import make_engine
from psa.db.migrate import upgrade
from psa.devstack import DevStack
from psa.provisioning.activities import ProvisioningActivities
from psa.temporal import connect
from psa.worker import build_worker
from tests.helpers import TEST_STATE

TEST_DB = f"psa_test_{uuid.uuid4().hex[:8]}"  # per session: parallel sessions never collide


@pytest.fixture(scope="session")
def stack() -> DevStack:
    """The embedded stack used by tests (state under .psa/test-stack), started once."""
    stack = DevStack(Settings(state_dir=TEST_STATE), temporal_ui=False)
    stack.up()
    return stack


@pytest.fixture(scope="session")
def base_settings(stack: DevStack, tmp_path_factory) -> Iterator[Settings]:
    """Settings pointing at a fresh, migrated test database and the test Temporal server."""
    external_db = os.environ.get("DATABASE_URL")
    db_url = external_db or stack.create_database(TEST_DB, replace=True)
    settings = Settings(
        state_dir=TEST_STATE,
        database_url=db_url,
        temporal_address=os.environ.get("TEMPORAL_ADDRESS") or stack.settings.resolved_temporal_address(),
        email_provider="outbox",
        outbox_dir=tmp_path_factory.mktemp("outbox"),
        bcrypt_rounds=4,
    )
    upgrade(settings.resolved_database_url())
    yield settings
    if not external_db:
        stack.drop_database(TEST_DB)


@pytest.fixture(scope="session")
async def engine(base_settings: Settings) -> AsyncIterator[AsyncEngine]:
    """The application engine on the test database, for the whole session."""
    eng = make_engine(base_settings)
    yield eng
    await eng.dispose()


@pytest.fixture(scope="session")
async def client(base_settings: Settings):
    """A Temporal client of the test server, with the project's data converter."""
    return await connect(base_settings)


@pytest.fixture
async def start_worker(client, engine, base_settings):
    """Factory: start an in-process worker (custom settings, engine, interceptors, task queue) that
    stops at the end of the test. Returns the task queue name."""
    async with contextlib.AsyncExitStack() as stack:

        async def factory(*, settings=None, engine_=None, interceptors=(), task_queue=None) -> str:
            task_queue = task_queue or f"test-{uuid.uuid4()}"
            activities = ProvisioningActivities(engine_ or engine, settings or base_settings)
            worker = build_worker(client, activities, task_queue=task_queue, interceptors=list(interceptors))
            await stack.enter_async_context(worker)
            return task_queue

        yield factory


@pytest.fixture
async def worker(start_worker) -> str:
    """A default worker on a fresh task queue; the task queue name."""
    return await start_worker()
