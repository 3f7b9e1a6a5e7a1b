"""Test data factories shared by the integration and workflow tests (real database rows, no mocks)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from slugify import slugify
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from psa.db.engine import tenant_transaction
from psa.domain.seeds import seed_tenant
from psa.domain.tenants import create_tenant
from tests.conftest import unique_name


@dataclass
class NewTenant:
    tenant: uuid.UUID
    slug: str
    name: str


def unique_email(prefix: str = "admin") -> str:
    return f"{prefix}.{uuid.uuid4().hex[:12]}@example.com"


async def make_tenant(engine: AsyncEngine, *, seeded: bool = False, name: str | None = None) -> NewTenant:
    """A committed tenant row (optionally seeded with roles, permissions and the default tax rate)."""
    tenant, name = uuid.uuid4(), name or unique_name("Acme")
    slug = slugify(name)
    async with tenant_transaction(engine, tenant) as conn:
        await create_tenant(conn, tenant=tenant, slug=slug, company_name=name, email="Owner@Example.com")
        if seeded:
            await seed_tenant(conn, tenant)
    return NewTenant(tenant, slug, name)


async def rows(engine: AsyncEngine, sql: str, **params) -> list:
    """Rows of one SQL query, read in its own connection."""
    async with engine.connect() as conn:
        return list(await conn.execute(text(sql), params))
