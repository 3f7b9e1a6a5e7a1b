"""Fixtures for action tests: a seeded tenant with an admin actor (MSP "Admin": every MSP permission), a
technician (MSP "Technician": client:read only among client permissions, ticket CRUD) and an actor whose only
role grants nothing; a second tenant for cross-tenant ids; and a helper that invokes an action through the
real runtime (validation, permissions, ledger, savepoint, audit, outbox) against the real database."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from psa.automation.actions import builtin_registry
from psa.automation.errors import ActionFailure
from psa.automation.invocation import Invocation, engine_key, invoke_action
from psa.automation.registry import ActionRegistry
from psa.db.engine import tenant_transaction
from psa.domain.users import create_internal_user
from tests.factories import NewTenant, make_tenant, rows, unique_email

NO_ACCESS_ROLE = "No Access"


@dataclass
class Actors:
    """A seeded tenant and three of its internal users."""

    tenant: uuid.UUID
    admin: uuid.UUID
    technician: uuid.UUID
    nobody: uuid.UUID
    info: NewTenant


async def add_user(engine: AsyncEngine, tenant: uuid.UUID, role_name: str) -> uuid.UUID:
    """An internal user of ``tenant`` holding the MSP role ``role_name``."""
    user_id = uuid.uuid4()
    async with tenant_transaction(engine, tenant) as conn:
        await create_internal_user(
            conn,
            tenant=tenant,
            user_id=user_id,
            first_name="Test",
            last_name=role_name,
            email=unique_email(role_name.lower().replace(" ", "-")),
            password_hash="unused",
            role_name=role_name,
        )
    return user_id


async def make_actors(engine: AsyncEngine) -> Actors:
    info = await make_tenant(engine, seeded=True)
    async with tenant_transaction(engine, info.tenant) as conn:
        await conn.execute(
            text(
                "INSERT INTO roles (tenant, role_name, description, msp, client) "
                "VALUES (:t, :n, 'grants nothing', true, false)"
            ),
            {"t": info.tenant, "n": NO_ACCESS_ROLE},
        )
    return Actors(
        tenant=info.tenant,
        admin=await add_user(engine, info.tenant, "Admin"),
        technician=await add_user(engine, info.tenant, "Technician"),
        nobody=await add_user(engine, info.tenant, NO_ACCESS_ROLE),
        info=info,
    )


@pytest.fixture
async def actors(engine) -> Actors:
    return await make_actors(engine)


@pytest.fixture
async def other(engine) -> Actors:
    """A second tenant: its ids must behave like missing ids in the first."""
    return await make_actors(engine)


@pytest.fixture(scope="session")
def registry() -> ActionRegistry:
    return builtin_registry()


@pytest.fixture
def invoke(engine, registry, actors):
    """``await invoke(action_id, raw_input, actor=None, tenant=None, **kwargs)`` -> Invocation; the actor
    defaults to the admin, the tenant to the actors' tenant, and the idempotency key to one derived from the
    request (the same input is a retry of the same request)."""

    async def call(
        action_id: str,
        raw_input: dict[str, Any],
        *,
        actor: uuid.UUID | None = None,
        tenant: uuid.UUID | None = None,
        **kwargs: Any,
    ) -> Invocation:
        # A caller retrying the same request sends the same key: derive one from the request, so calling
        # twice with the same input is a retry (a direct call without any key would run again).
        if "idempotency_key" not in raw_input:  # an action-mode input key is the request's key
            kwargs.setdefault("idempotency_key", "test:" + engine_key(None, "direct", action_id, 1, raw_input))
        return await invoke_action(
            engine,
            registry,
            tenant=tenant or actors.tenant,
            action_id=action_id,
            version=1,
            raw_input=raw_input,
            actor_user_id=actor or actors.admin,
            **kwargs,
        )

    return call


@pytest.fixture
def fails(invoke):
    """``await fails(action_id, raw_input, **kwargs)`` -> the ActionErrorInfo of the expected failure."""

    async def call(action_id: str, raw_input: dict[str, Any], **kwargs: Any):
        with pytest.raises(ActionFailure) as caught:
            await invoke(action_id, raw_input, **kwargs)
        return caught.value.info

    return call


async def count(engine: AsyncEngine, sql: str, **params: Any) -> int:
    [(n,)] = await rows(engine, f"SELECT count(*) FROM {sql}", **params)
    return n


async def audits(engine: AsyncEngine, tenant: uuid.UUID, action_id: str) -> list:
    return await rows(
        engine,
        "SELECT user_id, changed_data, details FROM audit_logs WHERE tenant = :t AND operation = :op "
        "ORDER BY timestamp, audit_id",
        t=tenant,
        op=f"workflow_action:{action_id}",
    )


async def ledger(engine: AsyncEngine, tenant: uuid.UUID, action_id: str) -> list:
    return await rows(
        engine,
        "SELECT status, attempt, idempotency_key, error_json, output_json FROM workflow_action_invocations "
        "WHERE tenant = :t AND action_id = :a ORDER BY created_at",
        t=tenant,
        a=action_id,
    )


async def events(engine: AsyncEngine, tenant: uuid.UUID, event_type: str | None = None) -> list:
    return await rows(
        engine,
        "SELECT event_type, idempotency_key, payload FROM workflow_event_outbox WHERE tenant = :t "
        "AND (CAST(:e AS text) IS NULL OR event_type = :e) ORDER BY created_at, idempotency_key",
        t=tenant,
        e=event_type,
    )
