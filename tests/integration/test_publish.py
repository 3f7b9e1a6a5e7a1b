"""Versioned publishing of workflow definitions against the real PostgreSQL test database
(psa.automation.definitions; docs/automation.md, "Definition format" and "Events")."""

from __future__ import annotations

import asyncio
import copy
import uuid
from typing import Any

import pytest
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from psa.automation.definitions import (
    DefinitionInvalid,
    PublishedVersion,
    definition_hash,
    get_published,
    list_event_triggered,
    publish_definition,
    workflow_id_for,
)
from psa.automation.registry import ActionDef, ActionRegistry
from psa.db.engine import tenant_transaction
from psa.domain.errors import ConflictError, NotFoundError
from tests.factories import NewTenant, make_tenant
from tests.helpers import rows


class NoteInput(BaseModel):
    body: str


class NoteOutput(BaseModel):
    ok: bool


async def _handler(ctx, data):
    return {"ok": True}


@pytest.fixture(scope="module")
def registry() -> ActionRegistry:
    reg = ActionRegistry()
    reg.register(
        ActionDef(
            id="notes.add",
            version=1,
            label="Add Note",
            description="",
            input_model=NoteInput,
            output_model=NoteOutput,
            side_effectful=True,
            idempotency="engine",
            permissions=(),
            handler=_handler,
        )
    )
    return reg


@pytest.fixture
async def tenant(engine: AsyncEngine) -> NewTenant:
    return await make_tenant(engine)


def workflow(workflow_id: str = "contact-welcome", *, event: str | None = "CONTACT_CREATED", note: str = "hi") -> dict:
    raw: dict[str, Any] = {
        "id": workflow_id,
        "name": "Contact welcome",
        "description": "Adds a note",
        "payloadSchemaRef": "payload.ContactCreated.v1",
        "steps": [
            {"id": "state", "type": "state.set", "config": {"state": "RUNNING"}},
            {
                "id": "note",
                "type": "action.call",
                "config": {"actionId": "notes.add", "version": 1, "inputMapping": {"body": note}, "saveAs": "note"},
            },
        ],
    }
    if event:
        raw["trigger"] = {"type": "event", "eventName": event}
    return raw


async def publish(
    engine: AsyncEngine, tenant: uuid.UUID, raw: dict, registry: ActionRegistry, **kwargs
) -> PublishedVersion:
    async with tenant_transaction(engine, tenant) as conn:
        return await publish_definition(
            conn, tenant, raw, registry=registry, published_by=kwargs.pop("published_by", uuid.uuid4()), **kwargs
        )


async def get(engine: AsyncEngine, tenant: uuid.UUID, ref, version: int | None = None) -> PublishedVersion:
    async with tenant_transaction(engine, tenant) as conn:
        return await get_published(conn, tenant, ref, version)


async def triggered(engine: AsyncEngine, tenant: uuid.UUID, event: str, **kwargs) -> list[PublishedVersion]:
    async with tenant_transaction(engine, tenant) as conn:
        return await list_event_triggered(conn, tenant, event, **kwargs)


async def test_first_publish_creates_the_definition_and_version_1(engine, tenant, registry) -> None:
    publisher = uuid.uuid4()
    raw = workflow()
    published = await publish(engine, tenant.tenant, raw, registry, published_by=publisher)
    expected_id = workflow_id_for(tenant.tenant, "contact-welcome")
    assert (published.workflow_id, published.key, published.version) == (expected_id, "contact-welcome", 1)
    assert published.definition["id"] == str(expected_id)  # id and version forced into the stored JSON
    assert published.definition["version"] == 1
    assert published.definition_hash == definition_hash(published.definition)
    assert published.published_by == publisher
    assert published.published_at is not None
    assert raw["id"] == "contact-welcome"  # the caller's dict is untouched
    assert "version" not in raw

    [definition_row] = await rows(
        engine,
        "SELECT key, name, description, payload_schema_ref, trigger, status, draft_version, draft_definition,"
        " created_by, updated_by, is_paused FROM workflow_definitions WHERE tenant = :t",
        t=tenant.tenant,
    )
    assert definition_row.key == "contact-welcome"
    assert (definition_row.name, definition_row.description) == ("Contact welcome", "Adds a note")
    assert definition_row.payload_schema_ref == "payload.ContactCreated.v1"
    assert definition_row.trigger == {"type": "event", "eventName": "CONTACT_CREATED"}
    assert (definition_row.status, definition_row.draft_version) == ("published", 2)
    assert definition_row.draft_definition == {**published.definition, "version": 2}
    assert definition_row.created_by == definition_row.updated_by == publisher
    assert definition_row.is_paused is False

    [version_row] = await rows(
        engine,
        "SELECT version, definition_json, definition_hash, published_by FROM workflow_definition_versions"
        " WHERE tenant = :t",
        t=tenant.tenant,
    )
    assert version_row.version == 1
    assert version_row.definition_json == published.definition
    assert version_row.definition_hash == published.definition_hash
    assert version_row.published_by == publisher


async def test_republishing_adds_versions_and_get_published_reads_them(engine, tenant, registry) -> None:
    first = await publish(engine, tenant.tenant, workflow(note="one"), registry)
    raw = workflow(note="two")
    raw["version"] = 1  # a stale requested version is ignored: max + 1 wins
    second = await publish(engine, tenant.tenant, raw, registry)
    assert (first.version, second.version) == (1, 2)
    assert first.workflow_id == second.workflow_id
    assert first.definition_hash != second.definition_hash

    latest = await get(engine, tenant.tenant, first.workflow_id)
    assert latest.version == 2
    assert latest.definition["steps"][1]["config"]["inputMapping"] == {"body": "two"}
    assert latest == second
    assert (await get(engine, tenant.tenant, str(first.workflow_id), 1)).definition == first.definition
    assert (await get(engine, tenant.tenant, "contact-welcome")).version == 2  # by key
    assert (await get(engine, tenant.tenant, "contact-welcome", 1)).version_id == first.version_id
    assert latest.model.steps[1].config.action_id == "notes.add"

    with pytest.raises(NotFoundError):
        await get(engine, tenant.tenant, first.workflow_id, 3)
    with pytest.raises(NotFoundError):
        await get(engine, tenant.tenant, "no-such-workflow")
    with pytest.raises(NotFoundError):
        await get(engine, tenant.tenant, uuid.uuid4())


async def test_uuid_ids_are_kept_and_keys_can_be_given(engine, tenant, registry) -> None:
    workflow_id = uuid.uuid4()
    published = await publish(engine, tenant.tenant, workflow(str(workflow_id)), registry, key="system.welcome")
    assert (published.workflow_id, published.key) == (workflow_id, "system.welcome")
    assert (await get(engine, tenant.tenant, "system.welcome")).workflow_id == workflow_id
    # another uuid under the same key is a conflict
    with pytest.raises(ConflictError):
        await publish(engine, tenant.tenant, workflow(str(uuid.uuid4())), registry, key="system.welcome")
    # a non-uuid id published under that key becomes a new version of the keyed workflow
    again = await publish(engine, tenant.tenant, workflow("anything"), registry, key="system.welcome")
    assert (again.workflow_id, again.version) == (workflow_id, 2)
    # a uuid id without a key has no key
    plain = await publish(engine, tenant.tenant, workflow(str(uuid.uuid4())), registry)
    assert plain.key is None


async def test_invalid_definitions_write_nothing(engine, tenant, registry) -> None:
    raw = workflow()
    raw["steps"].append({"id": "state", "type": "action.call", "config": {"actionId": "notes.add", "version": 9}})
    raw["steps"].append({"id": "bad", "type": "control.if", "condition": {"$expr": "$string(1)"}, "then": []})
    with pytest.raises(DefinitionInvalid) as info:
        await publish(engine, tenant.tenant, raw, registry)
    assert info.value.report.codes() == ["DUPLICATE_STEP_ID", "UNKNOWN_ACTION", "INVALID_EXPR"]
    assert str(info.value).startswith("Workflow definition is invalid: root.steps[2]: Duplicate step id")
    assert await rows(engine, "SELECT 1 FROM workflow_definitions WHERE tenant = :t", t=tenant.tenant) == []
    assert await rows(engine, "SELECT 1 FROM workflow_definition_versions WHERE tenant = :t", t=tenant.tenant) == []


async def test_concurrent_publishes_get_distinct_versions(engine, tenant, registry) -> None:
    results = await asyncio.gather(
        *(publish(engine, tenant.tenant, workflow(note=f"n{i}"), registry) for i in range(6))
    )
    assert sorted(r.version for r in results) == [1, 2, 3, 4, 5, 6]
    assert len({r.workflow_id for r in results}) == 1
    stored = await rows(
        engine, "SELECT version FROM workflow_definition_versions WHERE tenant = :t ORDER BY version", t=tenant.tenant
    )
    assert [r.version for r in stored] == [1, 2, 3, 4, 5, 6]
    [row] = await rows(engine, "SELECT draft_version FROM workflow_definitions WHERE tenant = :t", t=tenant.tenant)
    assert row.draft_version == 7


async def test_list_event_triggered_returns_the_latest_version_of_each_workflow(engine, tenant, registry) -> None:
    a1 = await publish(engine, tenant.tenant, workflow("wf-a", note="a1"), registry)
    a2 = await publish(engine, tenant.tenant, workflow("wf-a", note="a2"), registry)
    b1 = await publish(engine, tenant.tenant, workflow("wf-b"), registry)
    await publish(engine, tenant.tenant, workflow("wf-c", event="CLIENT_CREATED"), registry)
    await publish(engine, tenant.tenant, workflow("wf-d", event=None), registry)

    found = await triggered(engine, tenant.tenant, "CONTACT_CREATED")
    assert [(p.workflow_id, p.version) for p in found] == [(a2.workflow_id, 2), (b1.workflow_id, 1)]
    assert found[0].definition["steps"][1]["config"]["inputMapping"] == {"body": "a2"}
    assert found[0].trigger == {"type": "event", "eventName": "CONTACT_CREATED"}
    assert a1.workflow_id == a2.workflow_id
    assert [p.key for p in await triggered(engine, tenant.tenant, "CLIENT_CREATED")] == ["wf-c"]
    assert await triggered(engine, tenant.tenant, "NOTHING") == []

    # a new version with another trigger moves the workflow to that event
    await publish(engine, tenant.tenant, workflow("wf-b", event="CLIENT_CREATED"), registry)
    assert [p.key for p in await triggered(engine, tenant.tenant, "CONTACT_CREATED")] == ["wf-a"]
    assert [p.key for p in await triggered(engine, tenant.tenant, "CLIENT_CREATED")] == ["wf-b", "wf-c"]

    # paused workflows are left out unless asked for
    async with tenant_transaction(engine, tenant.tenant) as conn:
        await conn.execute(
            text("UPDATE workflow_definitions SET is_paused = true WHERE tenant = :t AND key = 'wf-a'"),
            {"t": tenant.tenant},
        )
    assert await triggered(engine, tenant.tenant, "CONTACT_CREATED") == []
    paused = await triggered(engine, tenant.tenant, "CONTACT_CREATED", include_paused=True)
    assert [(p.key, p.is_paused) for p in paused] == [("wf-a", True)]


async def test_tenants_are_isolated(engine, tenant, registry) -> None:
    other = await make_tenant(engine)
    mine = await publish(engine, tenant.tenant, workflow(), registry)
    theirs = await publish(engine, other.tenant, workflow(), registry)
    assert mine.workflow_id != theirs.workflow_id  # derived per tenant
    assert theirs.version == 1
    with pytest.raises(NotFoundError):
        await get(engine, other.tenant, mine.workflow_id)
    assert [p.workflow_id for p in await triggered(engine, other.tenant, "CONTACT_CREATED")] == [theirs.workflow_id]


async def test_published_json_is_normalised(engine, tenant, registry) -> None:
    raw = workflow()
    raw["steps"].append({"id": "when", "type": "control.if", "condition": {"$expr": "true", "label": "x"}, "then": []})
    published = await publish(engine, tenant.tenant, copy.deepcopy(raw), registry)
    assert published.definition["steps"][2]["condition"] == {"$expr": "true"}  # extra Expr keys dropped
    assert "onItemError" not in str(published.definition)  # defaults are not written in
