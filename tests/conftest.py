"""Shared fixtures: the real embedded stack (or DATABASE_URL / TEMPORAL_ADDRESS), a fresh migrated
database per session, a Temporal client, and per-test workers on their own task queues. Also the hypothesis
profiles of ``make test`` and ``make fuzz`` (docs/operations.md, "Tests")."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.database import DirectoryBasedExampleDatabase
from sqlalchemy.ext.asyncio import AsyncEngine

from psa.config import Settings
from psa.db.engine import make_engine
from psa.db.migrate import upgrade
from psa.devstack import DevStack
from psa.provisioning.activities import ProvisioningActivities
from psa.temporal import connect
from psa.worker import build_worker
from tests.helpers import FUZZ_PROFILE, TEST_STATE, ActivityHooks

TEST_DB = f"psa_test_{uuid.uuid4().hex[:8]}"  # per session: parallel sessions never collide

# Hypothesis profiles. `make test` selects hypothesis's built-in "ci" profile (derandomised: every run draws the
# same inputs, so the suite passes or fails the same way each time; no deadline, no example database, and the
# timing-based too_slow health check off, so a loaded machine decides nothing). It is also the default here, for a
# plain `pytest`. `make fuzz` selects FUZZ_PROFILE: random, 500 cases per test (tests.helpers.examples), the same
# timing rules, each failure printed with its @reproduce_failure blob and kept in .psa/hypothesis, where the next
# fuzz run tries it first.
settings.register_profile(
    FUZZ_PROFILE,
    max_examples=500,
    derandomize=False,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
    database=DirectoryBasedExampleDatabase(TEST_STATE.parent / "hypothesis"),
)
settings.load_profile("ci")


@pytest.fixture(scope="session")
def stack() -> Iterator[DevStack]:
    """The test stack's embedded PostgreSQL (data under .psa/test-stack; none with DATABASE_URL) and its codec key.
    Started unless it runs, and stopped when the session ends if this session started it (a server someone else
    started is left alone). Temporal is not part of it: see ``temporal_address``."""
    stack = DevStack(Settings(state_dir=TEST_STATE), temporal_ui=False)
    stack.ensure_codec_key()
    started_here = not stack.settings.database_url and not stack.pg_running()
    if not stack.settings.database_url:
        stack.start_postgres()
    yield stack
    if started_here:
        stack.stop_postgres()


@pytest.fixture(scope="session")
def temporal_address(stack: DevStack, tmp_path_factory) -> Iterator[str]:
    """host:port of this session's own Temporal dev server (headless), on a fresh SQLite store in the session's
    temporary directory, so every run starts from an empty Temporal; stopped when the session ends. With
    TEMPORAL_ADDRESS, that server, untouched."""
    if stack.settings.temporal_address:
        yield stack.settings.temporal_address
        return
    server = DevStack(Settings(state_dir=tmp_path_factory.mktemp("temporal")), temporal_ui=False)
    try:
        yield server.start_temporal()
    finally:
        server.stop_temporal()


@pytest.fixture(scope="session")
def base_settings(stack: DevStack, temporal_address: str, tmp_path_factory) -> Iterator[Settings]:
    """Settings pointing at a fresh, migrated test database and the session's Temporal server."""
    external_db = stack.settings.database_url
    db_url = external_db or stack.create_database(TEST_DB, replace=True)
    settings = Settings(
        state_dir=TEST_STATE,
        database_url=db_url,
        temporal_address=temporal_address,
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
    stops at the end of the test. Returns the task queue name. The test fails if an ActivityHooks hook raised."""
    hooked: list[ActivityHooks] = []
    async with contextlib.AsyncExitStack() as stack:

        async def factory(*, settings=None, engine_=None, interceptors=(), task_queue=None) -> str:
            task_queue = task_queue or f"test-{uuid.uuid4()}"
            activities = ProvisioningActivities(engine_ or engine, settings or base_settings)
            worker = build_worker(client, activities, task_queue=task_queue, interceptors=list(interceptors))
            await stack.enter_async_context(worker)
            hooked.extend(i for i in interceptors if isinstance(i, ActivityHooks))
            return task_queue

        yield factory
    for hooks in hooked:
        hooks.check()


@pytest.fixture
async def worker(start_worker) -> str:
    """A default worker on a fresh task queue; the task queue name."""
    return await start_worker()
