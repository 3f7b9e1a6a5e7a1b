"""Fixtures for action tests: a seeded tenant with its actors (tests/factories.py ``Actors``: admin, technician,
nobody), a second tenant for cross-tenant ids, the contact-actions world, and a helper that invokes an action
through the real runtime (validation, permissions, ledger, one transaction rolled back on failure, audit,
outbox) against the real database."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from psa.automation.actions import builtin_registry
from psa.automation.errors import ActionFailure
from psa.automation.invocation import Invocation, engine_key, invoke_action
from psa.automation.registry import ActionRegistry
from tests.factories import Actors, ContactWorld, make_actors, make_contact_world


@pytest.fixture
async def actors(engine) -> Actors:
    """A new seeded tenant with an admin, a technician and an actor without permissions."""
    return await make_actors(engine)


@pytest.fixture
async def other(engine) -> Actors:
    """A second tenant: its ids must behave like missing ids in the first."""
    return await make_actors(engine)


@pytest.fixture
async def world(engine, actors: Actors, other: Actors) -> ContactWorld:
    """The contacts.* action tests' data in ``actors``' tenant, with foreign records in ``other``'s."""
    return await make_contact_world(engine, actors, other)


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
