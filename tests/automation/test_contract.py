"""The action contract itself (psa.automation.invocation), with small actions defined here over the real
domain models: registration rules, the ledger (replay, failed attempt then retry under the same key),
permission before any write, structured errors passing through, audit rows and the outbox."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from pydantic import BaseModel, Field
from sqlalchemy import text

from psa.automation.errors import ActionFailure
from psa.automation.events import Event
from psa.automation.invocation import engine_key, invoke_action
from psa.automation.registry import ActionDef, ActionRegistry, RegistrationError
from psa.db.engine import tenant_transaction
from psa.domain import clients, lookups, tags
from tests.helpers import audits, count, ledger, rows


class TagInput(BaseModel):
    client_id: uuid.UUID
    tag: str
    idempotency_key: str | None = None


class TagOutput(BaseModel):
    mapping_id: uuid.UUID
    tag_id: uuid.UUID


class Tagged(Event):
    """The test action's event: ``{clientId, tag}``, keyed by the client and the tag's id."""

    event_type = "TEST_TAGGED"

    client_id: uuid.UUID
    tag: str
    tag_id: uuid.UUID = Field(exclude=True)

    def key(self) -> str:
        return f"test_tagged:{self.client_id}:{self.tag_id}"


async def tag_client(ctx, data: TagInput) -> TagOutput:
    """Tags the client; fails (retryably for the test) when the client has no 'ready' tag and the tag asked
    for is 'needs-ready'."""
    if data.tag == "needs-ready":
        present = [m.tag_text for m in await tags.tags_for(ctx.conn, ctx.tenant, data.client_id, "client")]
        if "ready" not in present:
            raise ActionFailure.of("TransientError", "TRANSIENT_FAILURE", "client is not ready yet")
    await lookups.require_client(ctx.conn, ctx.tenant, data.client_id)  # NotFoundError -> NOT_FOUND
    mapping = await tags.apply_tag(
        ctx.conn,
        ctx.tenant,
        tag_text=data.tag,
        tagged_id=data.client_id,
        tagged_type="client",
        created_by=ctx.actor_user_id,
    )
    await ctx.audit({"client_id": str(data.client_id), "tag": data.tag}, {"client_id": str(data.client_id)})
    await ctx.emit(Tagged(client_id=data.client_id, tag=data.tag, tag_id=mapping.tag_id))
    return TagOutput(mapping_id=mapping.mapping_id, tag_id=mapping.tag_id)


def make_action(**overrides) -> ActionDef:
    fields = {
        "id": "test.tag_client",
        "version": 1,
        "label": "Tag Client (test)",
        "description": "test action",
        "input_model": TagInput,
        "output_model": TagOutput,
        "side_effectful": True,
        "idempotency": "engine",
        "permissions": (("client", "update"),),
        "handler": tag_client,
    }
    return ActionDef(**{**fields, **overrides})


@pytest.fixture
def test_registry() -> ActionRegistry:
    registry = ActionRegistry()
    registry.register(make_action())
    registry.register(make_action(id="test.tag_client_by_key", idempotency="action"))
    return registry


@pytest.fixture
async def client_id(engine, actors) -> uuid.UUID:
    async with tenant_transaction(engine, actors.tenant) as conn:
        created = await clients.create_client(conn, actors.tenant, {"client_name": f"Contract {uuid.uuid4().hex[:8]}"})
    return created.client_id


def test_registration_rules():
    registry = ActionRegistry()
    registry.register(make_action())
    with pytest.raises(RegistrationError, match="already has test.tag_client@1"):
        registry.register(make_action())
    with pytest.raises(RegistrationError, match="idempotency strategy"):
        registry.register(make_action(id="test.other", idempotency=None))
    with pytest.raises(RegistrationError, match="requires id and version"):
        registry.register(make_action(id="", version=1))
    registry.register(make_action(version=2))
    assert [a.version for a in registry.versions("test.tag_client")] == [1, 2]
    meta = registry.get("test.tag_client", 1).meta()
    assert meta["idempotency"] == {"mode": "engine"}
    assert meta["permissions"] == ["client:update"]
    assert "client_id" in meta["input_schema"]["required"]
    assert "idempotency_key" not in meta["input_schema"]["required"]


def test_engine_key_is_sha256_of_the_call():
    key = engine_key(None, "root.steps[0]", "clients.create", 1, {"client_name": "Acme"})
    assert len(key) == 64
    assert key == engine_key(None, "root.steps[0]", "clients.create", 1, {"client_name": "Acme"})
    assert key != engine_key(None, "root.steps[1]", "clients.create", 1, {"client_name": "Acme"})


async def test_success_writes_ledger_audit_and_outbox_in_one_transaction(engine, test_registry, actors, client_id):
    invocation = await invoke_action(
        engine,
        test_registry,
        tenant=actors.tenant,
        action_id="test.tag_client",
        version=1,
        raw_input={"client_id": str(client_id), "tag": "vip"},
        actor_user_id=actors.admin,
        idempotency_key="req-1",
    )
    assert not invocation.replayed
    assert invocation.attempt == 1
    t = actors.tenant
    assert await count(engine, "workflow_action_invocations WHERE tenant = :t AND status = 'SUCCEEDED'", t=t) == 1
    assert (
        await count(engine, "audit_logs WHERE tenant = :t AND operation = 'workflow_action:test.tag_client'", t=t) == 1
    )
    assert await count(engine, "workflow_event_outbox WHERE tenant = :t AND event_type = 'TEST_TAGGED'", t=t) == 1

    again = await invoke_action(
        engine,
        test_registry,
        tenant=actors.tenant,
        action_id="test.tag_client",
        version=1,
        raw_input={"client_id": str(client_id), "tag": "vip"},
        actor_user_id=actors.admin,
        idempotency_key="req-1",
    )
    assert again.replayed
    assert again.output == invocation.output
    assert again.invocation_id == invocation.invocation_id
    assert await count(engine, "audit_logs WHERE tenant = :t", t=t) == 1  # a replay has no side effects
    assert await count(engine, "workflow_event_outbox WHERE tenant = :t", t=t) == 1


async def test_concurrent_twins_take_effect_once(engine, test_registry, actors, client_id):
    async def call():
        return await invoke_action(
            engine,
            test_registry,
            tenant=actors.tenant,
            action_id="test.tag_client",
            version=1,
            raw_input={"client_id": str(client_id), "tag": "twin"},
            actor_user_id=actors.admin,
            idempotency_key="twin",
        )

    results = await asyncio.gather(call(), call(), call())
    assert sorted(r.replayed for r in results) == [False, True, True]
    assert await count(engine, "audit_logs WHERE tenant = :t", t=actors.tenant) == 1


async def test_failed_attempt_retries_under_the_same_key_and_counts(engine, test_registry, actors, client_id):
    args = {
        "tenant": actors.tenant,
        "action_id": "test.tag_client",
        "version": 1,
        "actor_user_id": actors.admin,
        "raw_input": {"client_id": str(client_id), "tag": "needs-ready"},
        "idempotency_key": "order-42",
    }
    with pytest.raises(ActionFailure) as failed:
        await invoke_action(engine, test_registry, **args)
    assert failed.value.info.category == "TransientError"
    assert failed.value.info.node_path == "direct"
    [(status, attempt, error)] = [tuple(r) for r in await _ledger(engine, actors.tenant, "order-42")]
    assert (status, attempt, error["code"]) == ("FAILED", 1, "TRANSIENT_FAILURE")
    assert await count(engine, "audit_logs WHERE tenant = :t", t=actors.tenant) == 0  # the attempt rolled back

    async with tenant_transaction(engine, actors.tenant) as conn:
        await tags.apply_tag(conn, actors.tenant, tag_text="ready", tagged_id=client_id, tagged_type="client")
    invocation = await invoke_action(engine, test_registry, **args)
    assert invocation.attempt == 2
    assert not invocation.replayed
    assert [tuple(r)[:2] for r in await _ledger(engine, actors.tenant, "order-42")] == [("SUCCEEDED", 2)]


async def _ledger(engine, tenant, key):
    return await rows(
        engine,
        """SELECT status, attempt, error_json FROM workflow_action_invocations
            WHERE tenant = :t AND idempotency_key = :k""",
        t=tenant,
        k=key,
    )


async def test_direct_calls_without_a_key_run_each_time(engine, test_registry, actors, client_id):
    args = {
        "tenant": actors.tenant,
        "action_id": "test.tag_client",
        "version": 1,
        "actor_user_id": actors.admin,
        "raw_input": {"client_id": str(client_id), "tag": "again"},
    }
    first, second = (
        await invoke_action(engine, test_registry, **args),
        await invoke_action(engine, test_registry, **args),
    )
    assert not first.replayed
    assert not second.replayed
    assert first.idempotency_key != second.idempotency_key
    # The handler ran twice: two ledger rows that succeeded, one per key, and two audit rows, each with the data the
    # handler itself recorded (ctx.audit): a call that skipped the handler would leave it empty.
    ran = [(r.idempotency_key, r.status, r.attempt) for r in await ledger(engine, actors.tenant, "test.tag_client")]
    assert sorted(ran) == sorted([(first.idempotency_key, "SUCCEEDED", 1), (second.idempotency_key, "SUCCEEDED", 1)])
    recorded = [row.changed_data for row in await audits(engine, actors.tenant, "test.tag_client")]
    assert recorded == [{"client_id": str(client_id), "tag": "again"}] * 2


async def test_action_mode_uses_the_input_idempotency_key(engine, test_registry, actors, client_id):
    base = {"tenant": actors.tenant, "action_id": "test.tag_client_by_key", "version": 1, "actor_user_id": actors.admin}
    first = await invoke_action(
        engine, test_registry, raw_input={"client_id": str(client_id), "tag": "a", "idempotency_key": " k1 "}, **base
    )
    second = await invoke_action(  # different input, same key: the stored output comes back
        engine, test_registry, raw_input={"client_id": str(client_id), "tag": "b", "idempotency_key": "k1"}, **base
    )
    assert second.replayed
    assert second.output == first.output
    assert first.idempotency_key == "k1"


async def test_permission_denied_writes_nothing_not_even_the_ledger(engine, test_registry, actors, client_id):
    with pytest.raises(ActionFailure) as denied:
        await invoke_action(
            engine,
            test_registry,
            tenant=actors.tenant,
            action_id="test.tag_client",
            version=1,
            raw_input={"client_id": str(client_id), "tag": "vip"},
            actor_user_id=actors.nobody,
        )
    assert denied.value.info.code == "PERMISSION_DENIED"
    assert denied.value.info.details == {
        "resource": "client",
        "action": "update",
    }
    for table in ("workflow_action_invocations", "audit_logs", "workflow_event_outbox", "tag_mappings"):
        assert await count(engine, f"{table} WHERE tenant = :t", t=actors.tenant) == 0, table


async def test_invalid_input_names_every_field_and_writes_nothing(engine, test_registry, actors):
    with pytest.raises(ActionFailure) as invalid:
        await invoke_action(
            engine,
            test_registry,
            tenant=actors.tenant,
            action_id="test.tag_client",
            version=1,
            raw_input={"client_id": "not-a-uuid"},
            actor_user_id=actors.admin,
        )
    info = invalid.value.info
    assert info.category == "ValidationError"
    assert info.code == "VALIDATION_ERROR"
    assert {f["path"] for f in info.details["fields"]} == {"input.client_id", "input.tag"}
    assert await count(engine, "workflow_action_invocations WHERE tenant = :t", t=actors.tenant) == 0


async def test_unknown_action_and_foreign_ids(engine, test_registry, actors, other):
    with pytest.raises(ActionFailure, match="Unknown action test.nope@1"):
        await invoke_action(
            engine,
            test_registry,
            tenant=actors.tenant,
            action_id="test.nope",
            version=1,
            raw_input={},
            actor_user_id=actors.admin,
        )
    async with tenant_transaction(engine, other.tenant) as conn:
        foreign = await clients.create_client(conn, other.tenant, {"client_name": "Foreign"})
    with pytest.raises(ActionFailure) as missing:
        await invoke_action(
            engine,
            test_registry,
            tenant=actors.tenant,
            action_id="test.tag_client",
            version=1,
            raw_input={"client_id": str(foreign.client_id), "tag": "x"},
            actor_user_id=actors.admin,
        )
    assert missing.value.info.code == "NOT_FOUND"
    # an actor of another tenant is not an actor here
    with pytest.raises(ActionFailure, match="Workflow actor user not found"):
        await invoke_action(
            engine,
            test_registry,
            tenant=actors.tenant,
            action_id="test.tag_client",
            version=1,
            raw_input={"client_id": str(foreign.client_id), "tag": "x"},
            actor_user_id=other.admin,
        )


async def store_display_order(ctx, data: TagInput) -> TagOutput:
    """Tags the client, then stores a display order that no ``integer`` column holds (a rule the input model
    forgot): the database's data error must come back as VALIDATION_ERROR, and the tag must be rolled back."""
    mapping = await tags.apply_tag(
        ctx.conn,
        ctx.tenant,
        tag_text=data.tag,
        tagged_id=data.client_id,
        tagged_type="client",
        created_by=ctx.actor_user_id,
    )
    await ctx.conn.execute(text("SELECT CAST(:n AS integer)"), {"n": 2**40})
    return TagOutput(mapping_id=mapping.mapping_id, tag_id=mapping.tag_id)


async def test_a_value_the_database_cannot_store_is_a_validation_error(engine, actors, client_id):
    registry = ActionRegistry()
    registry.register(make_action(id="test.store_display_order", handler=store_display_order))
    with pytest.raises(ActionFailure) as caught:
        await invoke_action(
            engine,
            registry,
            tenant=actors.tenant,
            action_id="test.store_display_order",
            version=1,
            raw_input={"client_id": str(client_id), "tag": "overflow"},
            actor_user_id=actors.admin,
        )
    info = caught.value.info
    assert (info.code, info.message) == ("VALIDATION_ERROR", "a value cannot be stored: integer out of range")
    assert await count(engine, "tag_definitions WHERE tenant = :t AND tag_text = 'overflow'", t=actors.tenant) == 0


async def test_a_key_longer_than_the_ledger_stores_is_hashed_and_replays(engine, test_registry, actors, client_id):
    long_key = "step-key:" + "x" * 5000
    call = {"client_id": str(client_id), "tag": "long-key"}
    first, again = [
        await invoke_action(
            engine,
            test_registry,
            tenant=actors.tenant,
            action_id="test.tag_client",
            version=1,
            raw_input=call,
            actor_user_id=actors.admin,
            idempotency_key=long_key,
        )
        for _ in range(2)
    ]
    assert first.idempotency_key.startswith("sha256:")
    assert first.idempotency_key == again.idempotency_key
    assert not first.replayed
    assert again.replayed
    assert again.output == first.output


async def map_twice(ctx, data: TagInput) -> TagOutput:
    """Tags the client, then inserts the same mapping again without ON CONFLICT: a unique violation that
    reaches the contract."""
    mapping = await tags.apply_tag(
        ctx.conn, ctx.tenant, tag_text=data.tag, tagged_id=data.client_id, tagged_type="client"
    )
    await ctx.conn.execute(
        text("INSERT INTO tag_mappings (tenant, tag_id, tagged_id, tagged_type) VALUES (:t, :tag, :c, 'client')"),
        {"t": ctx.tenant, "tag": mapping.tag_id, "c": data.client_id},
    )
    return TagOutput(mapping_id=mapping.mapping_id, tag_id=mapping.tag_id)


async def map_a_missing_tag(ctx, data: TagInput) -> TagOutput:
    """Maps a tag definition that does not exist: a foreign-key violation that reaches the contract."""
    await ctx.conn.execute(
        text("INSERT INTO tag_mappings (tenant, tag_id, tagged_id, tagged_type) VALUES (:t, :tag, :c, 'client')"),
        {"t": ctx.tenant, "tag": uuid.uuid4(), "c": data.client_id},
    )
    raise AssertionError("the insert must fail")


async def map_without_a_type(ctx, data: TagInput) -> TagOutput:
    """Inserts a mapping without its NOT NULL tagged_type."""
    mapping = await tags.apply_tag(
        ctx.conn, ctx.tenant, tag_text=data.tag, tagged_id=data.client_id, tagged_type="client"
    )
    await ctx.conn.execute(
        text("INSERT INTO tag_mappings (tenant, tag_id, tagged_id) VALUES (:t, :tag, :t)"),
        {"t": ctx.tenant, "tag": mapping.tag_id},
    )
    raise AssertionError("the insert must fail")


@pytest.mark.parametrize(
    ("handler", "category", "code", "field", "constraint"),
    [
        (map_twice, "ActionError", "CONFLICT", "tagged_id", "uq_tag_mappings_tenant_tag_id_tagged_id"),
        (map_a_missing_tag, "ActionError", "NOT_FOUND", "tag_id", "fk_tag_mappings_tenant_tag_id_tag_definitions"),
        (map_without_a_type, "ValidationError", "VALIDATION_ERROR", "tagged_type", None),
    ],
    ids=["unique", "foreign-key", "not-null"],
)
async def test_a_constraint_violation_is_the_error_it_stands_for_naming_the_field(
    engine, actors, client_id, handler, category, code, field, constraint
):
    """Never INTERNAL_ERROR: a duplicate is CONFLICT, a missing reference NOT_FOUND, a missing value
    VALIDATION_ERROR, each naming the field in ``details``; the attempt's writes roll back."""
    registry = ActionRegistry()
    registry.register(make_action(id="test.violate", handler=handler))
    with pytest.raises(ActionFailure) as caught:
        await invoke_action(
            engine,
            registry,
            tenant=actors.tenant,
            action_id="test.violate",
            version=1,
            raw_input={"client_id": str(client_id), "tag": f"violate-{code.lower()}"},
            actor_user_id=actors.admin,
        )
    info = caught.value.info
    assert (info.category, info.code, info.details["field"]) == (category, code, field)
    assert info.details["fields"] == [{"path": field, "message": info.message}]
    assert (info.details["constraint"], info.details["table"]) == (constraint, "tag_mappings")
    assert info.message.startswith(f"{field}: ")
    assert await count(engine, "tag_definitions WHERE tenant = :t AND tag_text LIKE 'violate-%'", t=actors.tenant) == 0
    [failed] = await rows(
        engine,
        "SELECT status, error_json FROM workflow_action_invocations WHERE tenant = :t AND action_id = 'test.violate'",
        t=actors.tenant,
    )
    assert (failed.status, failed.error_json["code"]) == ("FAILED", code)
