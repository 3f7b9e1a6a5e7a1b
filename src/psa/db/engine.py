"""Async engine and transactions (SQLAlchemy 2 Core, psycopg 3).

Every tenant-scoped unit of work runs in ``tenant_transaction``, which sets ``app.current_tenant`` for the
transaction (``set_config(..., true)``). Every query still filters by tenant explicitly; the setting is what the
row-level security policies of the API's database role (migration 0006) check (docs/architecture.md, "Tenant
isolation").
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from uuid import UUID

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from psa.config import Settings


def make_engine(settings: Settings, *, url: str | None = None, pool_size: int | None = None) -> AsyncEngine:
    """An async engine for ``url`` (default: the settings' database) keeping ``pool_size`` connections (default
    ``settings.db_pool_size``) and opening as many again in bursts (those are closed when returned).

    No ``pool_pre_ping``: it cost a round trip per transaction (15 per provisioning; concurrent throughput
    rose from 4.6 to 5.9 tenants/s without it). After a database restart the first statement on a dead
    pooled connection fails as a disconnect, SQLAlchemy then discards every connection of the pool, and the
    activity's retry runs on a fresh one (tests/workflows/test_faults.py stops PostgreSQL mid-workflow)."""
    return create_async_engine(
        url or settings.resolved_database_url(),
        pool_size=pool_size or settings.db_pool_size,
        max_overflow=pool_size or settings.db_pool_size,
        pool_pre_ping=False,
        pool_recycle=300,
    )


API_ROLE = "psa_api"
"""The HTTP API's database role (migration 0006): every table with a ``tenant`` column is row-level secured
for it by ``app.current_tenant``."""
DIRECTORY_ROLE = "psa_api_directory"
"""Read-only role (migration 0006) that sees tenants and their admins across tenants: the management tenant's
tenant listing switches to it (``directory_transaction``) after its permission check."""


def make_api_engine(settings: Settings, *, url: str | None = None) -> AsyncEngine:
    """An engine whose connections act as the API role: each runs ``SET ROLE psa_api`` when it opens, so every
    statement on it (the API's own and the shared domain and automation code the API calls) is subject to
    row-level security. The connecting user must be a member of the role (migration 0006 grants it to the
    migrating user); ``tenant_transaction`` then scopes each transaction to one tenant.

    Its pool keeps ``settings.api_db_pool_size`` connections: with fewer than the concurrent requests, the
    burst connections are opened and closed per request (a server process each), which made 16 concurrent
    clients several times slower in bench/api.py."""
    engine = make_engine(settings, url=url, pool_size=settings.api_db_pool_size)

    @event.listens_for(engine.sync_engine, "connect")
    def _act_as_api_role(dbapi_connection, _record) -> None:  # SQLAlchemy's "set on connect" recipe
        autocommit = dbapi_connection.autocommit
        dbapi_connection.autocommit = True
        cursor = dbapi_connection.cursor()
        cursor.execute(f"SET ROLE {API_ROLE}")
        cursor.close()
        dbapi_connection.autocommit = autocommit

    return engine


@asynccontextmanager
async def tenant_transaction(engine: AsyncEngine, tenant: UUID | str | None) -> AsyncIterator[AsyncConnection]:
    """One transaction; with a tenant, ``app.current_tenant`` is set for its duration.

    Commits on normal exit, rolls back on any exception (which propagates unchanged).
    """
    async with engine.begin() as conn:
        if tenant is not None:
            await conn.execute(text("SELECT set_config('app.current_tenant', :t, true)"), {"t": str(tenant)})
        yield conn


@asynccontextmanager
async def directory_transaction(engine: AsyncEngine, tenant: UUID) -> AsyncIterator[AsyncConnection]:
    """A ``tenant_transaction`` that acts as the read-only ``psa_api_directory`` role (``SET LOCAL ROLE``) for its
    duration: it reads tenants and their admins across tenants and can write nothing. For the management
    tenant's tenant listing, after its permission check."""
    async with tenant_transaction(engine, tenant) as conn:
        await conn.execute(text(f"SET LOCAL ROLE {DIRECTORY_ROLE}"))
        yield conn
