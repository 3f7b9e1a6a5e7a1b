"""What commands declare and receive, the CLI's counterpart of the API's ``Annotated`` dependencies
(``api/automation.py``): the shared ``--tenant`` option, JSON options, the one engine a command opens, and
``--tenant`` and ``--actor`` resolved to a tenant row and a user id.

Resolution raises NotFoundError, which ``reported_errors`` turns into a red message and exit code 2.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Annotated
from uuid import UUID

import typer
from pydantic import JsonValue
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from psa.cli.output import USAGE_ERROR, fail
from psa.config import get_settings
from psa.db.engine import make_engine, tenant_transaction
from psa.domain import tenants, users
from psa.domain.errors import NotFoundError

TenantOption = Annotated[str, typer.Option("--tenant", help="tenant id or slug")]


def json_option(value: str, name: str) -> JsonValue:
    """``value`` parsed as JSON. Exits with USAGE_ERROR, naming the option ``name``, when it is not JSON."""
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        fail(f"{name} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})", code=USAGE_ERROR)


@asynccontextmanager
async def database() -> AsyncIterator[AsyncEngine]:
    """An engine on the configured database (``Settings``), disposed on exit: the only way a command opens one.
    Raises ConfigurationError when no database is configured."""
    engine = make_engine(get_settings())
    try:
        yield engine
    finally:
        await engine.dispose()


@dataclass(frozen=True)
class TenantScope:
    """The tenant a command acts on (``--tenant``, resolved) and the engine it acts through."""

    engine: AsyncEngine
    tenant: tenants.TenantRow

    @property
    def id(self) -> UUID:
        """The tenant's id."""
        return self.tenant.tenant

    def transaction(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """A ``tenant_transaction`` on this tenant."""
        return tenant_transaction(self.engine, self.id)

    async def user(self, email_or_id: str | None) -> UUID:
        """The user id of ``--actor`` / ``--user``: a user id is taken as given, an email is looked up among the
        tenant's internal users, and None stands for the tenant's first admin. Raises NotFoundError when no
        internal user of the tenant has that email."""
        email = email_or_id if email_or_id is not None else self.tenant.admin_email
        try:
            return UUID(email or "")
        except ValueError:
            pass
        async with self.transaction() as conn:
            user_id = await users.find_internal_user(conn, self.id, email or "")
        if user_id is None:
            raise NotFoundError(f"actor '{email}' is not an internal user of the tenant")
        return user_id


@asynccontextmanager
async def tenant_scope(id_or_slug: str) -> AsyncIterator[TenantScope]:
    """Open the database and resolve ``--tenant`` (an id or a slug). Raises NotFoundError when no tenant has
    that id or slug."""
    async with database() as engine:
        async with engine.connect() as conn:
            tenant = await tenants.get_tenant(conn, id_or_slug)
        if tenant is None:
            raise NotFoundError(f"tenant '{id_or_slug}' not found (give its id or slug)")
        yield TenantScope(engine, tenant)
