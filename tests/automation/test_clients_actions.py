"""The clients.* actions (docs/actions.md) through the real runtime and database: success (rows and output),
idempotent replay, permission denied, another tenant's ids, input validation, audit rows, outbox events with
deterministic keys, and ledger attempts across a failure and its retry."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text

from psa.db.engine import tenant_transaction
from psa.domain import clients, documents, interactions, tags
from psa.domain.tenants import create_default_client
from psa.domain.users import create_portal_user
from psa.timeutil import iso_z
from tests.factories import (
    CALL_TYPE,
    Actors,
    new_client,
    new_contact,
    new_location,
    new_ticket,
    tag_client,
)
from tests.helpers import audits, count, events, field_paths, get_client, ledger, nothing_written, rows

# -- registration ---------------------------------------------------------------------------------------------

EXPECTED = {
    # id: (label, description, side_effectful, idempotency, permissions)
    "clients.find": (
        "Find Client",
        "Find a client by id, name, external ref, or location phone",
        False,
        "engine",
        ["client:read"],
    ),
    "clients.search": ("Search Clients", "Search clients by name", False, "engine", ["client:read"]),
    "clients.create": (
        "Create Client",
        "Create a client and optionally attach initial tags",
        True,
        "action",
        ["client:create"],
    ),
    "clients.update": (
        "Edit Client",
        "Update editable fields on an existing client",
        True,
        "engine",
        ["client:update"],
    ),
    "clients.archive": (
        "Archive Client",
        "Set a client inactive with idempotent semantics",
        True,
        "engine",
        ["client:update"],
    ),
    "clients.delete": (
        "Delete Client",
        "Hard-delete a client with dependency validation guardrails",
        True,
        "engine",
        ["client:delete"],
    ),
    "clients.duplicate": (
        "Duplicate Client",
        "Create a new client from a source profile with safe copy options",
        True,
        "action",
        ["client:read", "client:create"],
    ),
    "clients.add_tag": (
        "Add Tag to Client",
        "Attach one or more tags to a client with idempotent mapping behavior",
        True,
        "action",
        ["client:update"],
    ),
    "clients.assign_to_ticket": (
        "Assign Client to Ticket",
        "Move a ticket to a client and optionally set/clear contact and location",
        True,
        "engine",
        ["client:read", "ticket:update"],
    ),
    "clients.add_note": (
        "Add Note to Client",
        "Append a note block to the client notes document",
        True,
        "action",
        ["client:update"],
    ),
    "clients.add_interaction": (
        "Add Interaction to Client",
        "Log an interaction against a client using the workflow actor as owner",
        True,
        "action",
        ["client:update"],
    ),
}


def test_registers_the_eleven_actions_as_specified(registry):
    registered = [a for a in registry.list() if a.id.startswith("clients.")]
    assert [a.id for a in registered] == list(EXPECTED)
    for action in registered:
        meta = action.meta()
        label, description, side_effectful, mode, permissions = EXPECTED[action.id]
        assert (meta["version"], meta["ui"]["label"], meta["ui"]["description"]) == (1, label, description)
        assert meta["ui"]["category"] == "Business Operations"
        assert (meta["side_effectful"], meta["idempotency"]["mode"], meta["permissions"]) == (
            side_effectful,
            mode,
            permissions,
        )
        assert ("idempotency_key" in meta["input_schema"]["properties"]) == (mode == "action")


def test_input_schemas_carry_picker_metadata(registry):
    schema = registry.get("clients.assign_to_ticket", 1).input_schema()
    props = schema["properties"]
    assert props["client_id"]["x-workflow-picker-kind"] == "client"
    assert props["client_id"]["x-workflow-picker-fixed-value-hint"] == "Search clients"
    assert props["client_id"]["x-workflow-picker-allow-dynamic-reference"] is True
    assert props["ticket_id"]["x-workflow-picker-kind"] == "ticket"
    assert props["contact_id"]["x-workflow-picker-dependencies"] == ["client_id"]
    assert props["location_id"]["x-workflow-picker-kind"] == "client-location"
    assert sorted(schema["required"]) == ["client_id", "ticket_id"]
    find = registry.get("clients.find", 1).input_schema()
    assert "required" not in find  # every field optional or defaulted
    assert find["properties"]["phone_match"]["default"] == "exact"


# -- clients.find ---------------------------------------------------------------------------------------------


async def test_find_by_id_name_external_ref_and_phone(engine, actors: Actors, invoke):
    t = actors.tenant
    acme = await new_client(engine, t, "Acme Widgets", properties={"external_ref": "crm:42"})
    await clients_archive(engine, t, acme.client_id)  # inactive clients are returned too
    contact = await new_contact(
        engine,
        t,
        acme.client_id,
        phone_numbers=[{"phone_number": "+1 415 555 0100", "canonical_type": "work", "is_default": True}],
    )

    by_id = await invoke("clients.find", {"client_id": str(acme.client_id), "include_primary_contact": True})
    assert by_id.output["client"]["client_id"] == str(acme.client_id)
    assert by_id.output["client"]["is_inactive"] is True
    assert by_id.output["client"]["updated_at"].endswith("Z")
    assert by_id.output["primary_contact"] == {
        "contact_name_id": str(contact.contact_name_id),
        "full_name": "Grace Hopper",
        "email": contact.email,
        "phone": "+14155550100",
        "client_id": str(acme.client_id),
    }
    assert set(by_id.output) == {"client", "primary_contact"}  # phone keys only for phone lookups

    by_name = await invoke("clients.find", {"name": "  acme WIDGETS "})
    assert by_name.output["client"]["client_id"] == str(acme.client_id)
    assert by_name.output["primary_contact"] is None
    by_ref = await invoke("clients.find", {"external_ref": "crm:42", "unknown_key": "ignored"})
    assert by_ref.output["client"]["client_id"] == str(acme.client_id)

    other = await new_client(engine, t, "Other Co")
    await new_location(engine, t, acme.client_id, "(415) 555-0199", default=False)
    await new_location(engine, t, acme.client_id, "415.555.0199", default=True)
    await new_location(engine, t, other.client_id, "+44 20 555 0199")
    await new_location(engine, t, other.client_id, "555-0199", active=False)
    exact = await invoke("clients.find", {"phone": "+1 415-555-0199"})
    assert exact.output["client"] is None  # digits differ: 1415... vs 415...
    assert exact.output["matched_count"] == 0
    last7 = await invoke("clients.find", {"phone": "415 555 0199", "phone_match": "last7"})
    assert last7.output["client"]["client_id"] == str(acme.client_id)
    assert last7.output["matched_location"]["phone"] == "415.555.0199"  # the default location wins
    assert last7.output["matched_count"] == 2  # distinct clients; the inactive location does not count
    last10 = await invoke("clients.find", {"phone": "4155550199", "phone_match": "last10"})
    assert last10.output["matched_count"] == 1


async def clients_archive(engine, tenant: uuid.UUID, client_id: uuid.UUID) -> None:
    async with tenant_transaction(engine, tenant) as conn:
        await clients.archive_client(conn, tenant, client_id)


async def test_find_replays_from_the_ledger(engine, actors: Actors, invoke):
    acme = await new_client(engine, actors.tenant)
    first = await invoke("clients.find", {"client_id": str(acme.client_id)})
    second = await invoke("clients.find", {"client_id": str(acme.client_id)})
    assert (first.replayed, second.replayed) == (False, True)
    assert second.output == first.output
    assert second.invocation_id == first.invocation_id
    assert [r.status for r in await ledger(engine, actors.tenant, "clients.find")] == ["SUCCEEDED"]
    assert await audits(engine, actors.tenant, "clients.find") == []  # read-only: no audit row


async def test_find_permission_denied(engine, actors: Actors, fails):
    acme = await new_client(engine, actors.tenant)
    info = await fails("clients.find", {"client_id": str(acme.client_id)}, actor=actors.nobody)
    assert (info.code, info.message, info.details) == (
        "PERMISSION_DENIED",
        "Permission denied: client:read",
        {"resource": "client", "action": "read"},
    )
    await nothing_written(engine, actors.tenant, "clients.find")


async def test_find_another_tenants_client_is_not_found(engine, actors: Actors, other: Actors, invoke, fails):
    foreign = await new_client(engine, other.tenant, "Foreign Co", properties={"external_ref": "x1"})
    miss = await invoke("clients.find", {"client_id": str(foreign.client_id)})
    assert miss.output == {"client": None, "primary_contact": None}
    assert (await invoke("clients.find", {"name": "Foreign Co"})).output["client"] is None
    info = await fails("clients.find", {"external_ref": "x1", "on_not_found": "error"})
    assert (info.category, info.code, info.message, info.details) == (
        "ActionError",
        "NOT_FOUND",
        "Client not found",
        {"matched_by": "external_ref"},
    )
    phone = await invoke("clients.find", {"phone": "5550100"})
    assert phone.output == {"client": None, "primary_contact": None, "matched_location": None, "matched_count": 0}


@pytest.mark.parametrize(
    ("raw", "path", "message"),
    [
        ({}, "input", "client_id, name, external_ref, or phone required"),
        ({"external_ref": "has space"}, "input.external_ref", "external_ref has invalid format"),
        ({"phone": "555-01", "phone_match": "last7"}, "input.phone", "phone is invalid"),
        ({"phone": "555 0100 99", "phone_match": "last10"}, "input.phone", "phone is invalid"),
        ({"client_id": "not-a-uuid"}, "input.client_id", None),
        ({"name": "x", "on_not_found": "explode"}, "input.on_not_found", None),
    ],
)
async def test_find_validation(engine, actors: Actors, fails, raw, path, message):
    info = await fails("clients.find", raw)
    assert (info.category, info.code) == ("ValidationError", "VALIDATION_ERROR")
    assert path in field_paths(info)
    if message:
        assert message in info.message
    await nothing_written(engine, actors.tenant, "clients.find")


# -- clients.search -------------------------------------------------------------------------------------------


async def test_search_pages_in_stable_order_without_duplicates(engine, actors: Actors, invoke):
    t = actors.tenant
    made = {name: await new_client(engine, t, name) for name in ("Zeta Alpha", "Alpha One", "alpha two", "Beta")}
    inactive = await new_client(engine, t, "Alpha Gone")
    await clients_archive(engine, t, inactive.client_id)
    await new_client(engine, t, "100% Alpha")
    await tag_client(engine, t, made["Zeta Alpha"].client_id, "vip", "gold")
    await tag_client(engine, t, made["Alpha One"].client_id, "vip")

    page1 = await invoke("clients.search", {"query": " alpha ", "page_size": 2})
    names = [c["client_name"] for c in page1.output["clients"]]
    assert page1.output["total"] == 4
    assert (page1.output["page"], page1.output["page_size"]) == (1, 2)
    page2 = await invoke("clients.search", {"query": "alpha", "page": 2, "page_size": 2})
    names += [c["client_name"] for c in page2.output["clients"]]
    expected = await rows(
        engine,
        "SELECT client_name FROM clients WHERE tenant = :t AND client_name ILIKE '%alpha%' "
        "AND NOT is_inactive ORDER BY client_name, client_id",
        t=t,
    )
    assert names == [r.client_name for r in expected]
    assert set(names) == {"100% Alpha", "Alpha One", "alpha two", "Zeta Alpha"}
    assert len(names) == len(set(names))
    assert page1.output["first_client"] == page1.output["clients"][0]

    both_tags = await invoke("clients.search", {"query": "alpha", "filters": {"tags": ["vip", "gold"]}})
    assert [c["client_name"] for c in both_tags.output["clients"]] == ["Alpha One", "Zeta Alpha"]
    assert both_tags.output["total"] == 2  # Zeta Alpha matches both tags and appears once
    await tag_client(engine, t, made["alpha two"].client_id, "VIP")  # the tag "vip": texts match by name_key
    case = await invoke("clients.search", {"query": "alpha", "filters": {"tags": [" VIP ", "gold"]}})
    assert {c["client_name"] for c in case.output["clients"]} == {"Alpha One", "alpha two", "Zeta Alpha"}

    with_inactive = await invoke(
        "clients.search",
        {"query": "alpha", "filters": {"include_inactive": True, "sort_by": "name", "sort_order": "desc"}},
    )
    assert with_inactive.output["total"] == 5
    listed = [c["client_name"] for c in with_inactive.output["clients"]]
    expected = await rows(
        engine,
        "SELECT client_name FROM clients WHERE tenant = :t AND client_name ILIKE '%alpha%' "
        "ORDER BY client_name DESC, client_id",
        t=t,
    )
    assert "Alpha Gone" in listed
    assert listed == [r.client_name for r in expected]

    literal = await invoke("clients.search", {"query": "0%"})
    assert [c["client_name"] for c in literal.output["clients"]] == ["100% Alpha"]


async def test_search_orders_ties_by_id(engine, actors: Actors, invoke):
    t = actors.tenant
    made = [await new_client(engine, t, f"Same {i}") for i in range(3)]
    async with tenant_transaction(engine, t) as conn:
        await conn.execute(
            text(
                "UPDATE clients SET updated_at = '2026-01-01T00:00:00Z' WHERE tenant = :t AND client_name LIKE 'Same%'"
            ),
            {"t": t},
        )
    result = await invoke("clients.search", {"query": "same", "filters": {"sort_by": "updated_at"}})
    assert [c["client_id"] for c in result.output["clients"]] == sorted(str(c.client_id) for c in made)


async def test_search_replay_permission_and_tenant_scope(engine, actors: Actors, other: Actors, invoke, fails):
    await new_client(engine, other.tenant, "Foreign Alpha")
    first = await invoke("clients.search", {"query": "foreign"})
    assert first.output["total"] == 0
    assert first.output["clients"] == []
    assert first.output["first_client"] is None
    assert (await invoke("clients.search", {"query": "foreign"})).replayed is True
    info = await fails("clients.search", {"query": "alpha"}, actor=actors.nobody)
    assert info.code == "PERMISSION_DENIED"
    tech = await invoke("clients.search", {"query": "alpha"}, actor=actors.technician)  # client:read suffices
    assert tech.output["total"] == 0


@pytest.mark.parametrize(
    ("raw", "path"),
    [
        ({"query": "a"}, "input.query"),
        ({"query": " a "}, "input.query"),
        ({}, "input.query"),
        ({"query": "alpha", "page_size": 101}, "input.page_size"),
        ({"query": "alpha", "page": 0}, "input.page"),
        ({"query": "alpha", "filters": {"sort_by": "size"}}, "input.filters.sort_by"),
    ],
)
async def test_search_validation(engine, actors: Actors, fails, raw, path):
    info = await fails("clients.search", raw)
    assert info.code == "VALIDATION_ERROR"
    assert path in field_paths(info)
    if raw.get("query", "").strip() == "a":
        assert "query must be at least 2 characters" in info.message
    await nothing_written(engine, actors.tenant, "clients.search")


# -- clients.create -------------------------------------------------------------------------------------------


async def test_create_writes_client_location_tags_audit_and_event(engine, actors: Actors, invoke):
    t = actors.tenant
    result = await invoke(
        "clients.create",
        {
            "client_name": "  Initech  ",
            "url": "https://initech.example.com",
            "email": "AP@Initech.example.com",
            "phone_no": "+1 555 0100",
            "city": "Austin",
            "country": "United States",
            "notes": "big account",
            "properties": {"external_ref": "crm:7"},
            "tags": ["VIP", " vip ", "Priority", " "],
            "idempotency_key": "create-initech",
        },
    )
    out = result.output
    client_id = uuid.UUID(out["client"]["client_id"])
    assert out["client"]["client_name"] == "Initech"
    assert out["client"]["client_type"] == "company"
    assert out["client"]["billing_email"] == "ap@initech.example.com"
    assert out["client"]["properties"] == {"external_ref": "crm:7", "website": "https://initech.example.com"}
    assert [tag["tag_text"] for tag in out["tags"]] == ["VIP", "Priority"]
    assert result.idempotency_key == "create-initech"

    stored = await get_client(engine, t, client_id)
    assert stored.default_currency_code == "USD"
    assert stored.notes == "big account"
    [location] = await rows(
        engine,
        "SELECT location_name, phone, city, country_code, country_name, address_line1, is_default "
        "FROM client_locations WHERE tenant = :t AND client_id = :c",
        t=t,
        c=client_id,
    )
    assert tuple(location) == ("Main Office", "+1 555 0100", "Austin", "UN", "United States", "", True)
    async with engine.connect() as conn:
        assert [m.tag_text for m in await tags.tags_for(conn, t, client_id, "client")] == ["Priority", "VIP"]

    [audit] = await audits(engine, t, "clients.create")
    assert audit.user_id == actors.admin
    assert audit.changed_data == {"client_id": str(client_id), "client_name": "Initech"}
    assert audit.details["client_id"] == str(client_id)
    assert audit.details["action_id"] == "clients.create"
    [event] = await events(engine, t)
    assert (event.event_type, event.idempotency_key) == ("CLIENT_CREATED", f"client_created:{client_id}")
    assert event.payload["clientId"] == str(client_id)
    assert event.payload["clientName"] == "Initech"
    assert event.payload["status"] == "active"
    assert event.payload["createdByUserId"] == str(actors.admin)
    assert event.payload["createdAt"].endswith("Z")
    assert event.payload["tenantId"] == str(t)


async def test_create_replays_under_the_same_key(engine, actors: Actors, invoke):
    raw = {"client_name": "Replay Co", "tags": ["a"], "idempotency_key": "k-1"}
    first = await invoke("clients.create", raw)
    second = await invoke("clients.create", raw)
    assert (first.replayed, second.replayed) == (False, True)
    assert second.output == first.output
    assert await count(engine, "clients WHERE tenant = :t AND client_name = 'Replay Co'", t=actors.tenant) == 1
    assert len(await audits(engine, actors.tenant, "clients.create")) == 1
    assert len(await events(engine, actors.tenant, "CLIENT_CREATED")) == 1
    # Without an explicit key the engine key (hash of the call) dedupes an identical call too.
    third = await invoke("clients.create", {"client_name": "Keyless Co"})
    assert (await invoke("clients.create", {"client_name": "Keyless Co"})).output == third.output


async def test_create_permission_denied_writes_nothing(engine, actors: Actors, fails):
    info = await fails("clients.create", {"client_name": "Nope Co"}, actor=actors.technician)
    assert (info.code, info.details) == ("PERMISSION_DENIED", {"resource": "client", "action": "create"})
    assert await count(engine, "clients WHERE tenant = :t", t=actors.tenant) == 0
    await nothing_written(engine, actors.tenant, "clients.create")


async def test_create_with_another_tenants_parent_is_not_found(engine, actors: Actors, other: Actors, fails):
    foreign = await new_client(engine, other.tenant)
    info = await fails("clients.create", {"client_name": "Child Co", "parent_client_id": str(foreign.client_id)})
    assert (info.code, info.details) == ("NOT_FOUND", {"parent_client_id": str(foreign.client_id)})
    assert await count(engine, "clients WHERE tenant = :t", t=actors.tenant) == 0
    assert await audits(engine, actors.tenant, "clients.create") == []


@pytest.mark.parametrize(
    ("raw", "path"),
    [
        ({}, "input.client_name"),
        ({"client_name": ""}, "input.client_name"),
        ({"client_name": "X", "email": "not-an-email"}, "input.email"),
        ({"client_name": "X", "url": "ftp://example.com"}, "input.url"),
        ({"client_name": "X", "client_type": "partnership"}, "input.client_type"),
        ({"client_name": "X", "tags": ["ok", "x" * 51]}, "input.tags.1"),
        ({"client_name": "X", "default_currency_code": "dollars"}, "input.default_currency_code"),
    ],
)
async def test_create_validation(engine, actors: Actors, fails, raw, path):
    info = await fails("clients.create", raw)
    assert info.code == "VALIDATION_ERROR"
    assert path in field_paths(info)
    await nothing_written(engine, actors.tenant, "clients.create")


async def test_create_conflict_then_retry_counts_attempts(engine, actors: Actors, invoke, fails):
    t = actors.tenant
    taken = await new_client(engine, t, "Taken Co")
    raw = {"client_name": "Taken Co", "idempotency_key": "retry-me"}
    info = await fails("clients.create", raw)
    assert info.code == "CONFLICT"
    [row] = await ledger(engine, t, "clients.create")
    assert (row.status, row.attempt, row.error_json["code"]) == ("FAILED", 1, "CONFLICT")
    assert await audits(engine, t, "clients.create") == []
    assert await events(engine, t) == []
    async with tenant_transaction(engine, t) as conn:
        await clients.update_client(conn, t, taken.client_id, {"client_name": "Renamed Co"})
    result = await invoke("clients.create", raw)
    assert (result.replayed, result.attempt) == (False, 2)
    [row] = await ledger(engine, t, "clients.create")
    assert (row.status, row.attempt) == ("SUCCEEDED", 2)
    assert len(await audits(engine, t, "clients.create")) == 1


# -- clients.update -------------------------------------------------------------------------------------------


async def test_update_patches_columns_location_and_emits_diff(engine, actors: Actors, invoke):
    t = actors.tenant
    client = await new_client(engine, t, "Umbrella", notes="old notes", properties={"tier": "gold", "region": "eu"})
    await new_location(engine, t, client.client_id, "555 0000", default=True)
    result = await invoke(
        "clients.update",
        {
            "client_id": str(client.client_id),
            "patch": {
                "client_name": "Umbrella Corp",
                "email": "Billing@Umbrella.example",
                "notes": None,
                "properties": {"tier": "platinum", "external_ref": "u-1"},
                "phone_no": "555 1111",
                "address": None,
                "parent_client_id": None,
                "bogus": 1,
            },
        },
    )
    out = result.output
    assert out["changed_fields"] == ["client_name", "billing_email", "notes", "properties"]
    assert out["client_before"]["client_name"] == "Umbrella"
    assert out["client_after"]["client_name"] == "Umbrella Corp"
    assert out["client_after"]["billing_email"] == "billing@umbrella.example"
    assert out["client_after"]["properties"] == {"tier": "platinum", "region": "eu", "external_ref": "u-1"}
    after = await get_client(engine, t, client.client_id)
    assert after.notes is None  # a key present with null clears
    [location] = await rows(
        engine,
        "SELECT phone, email, address_line1 FROM client_locations WHERE tenant = :t AND client_id = :c",
        t=t,
        c=client.client_id,
    )
    assert tuple(location) == ("555 1111", "billing@umbrella.example", "")

    [audit] = await audits(engine, t, "clients.update")
    assert audit.changed_data == {"client_id": str(client.client_id), "changed_fields": out["changed_fields"]}
    [event] = await events(engine, t, "CLIENT_UPDATED")
    assert event.idempotency_key == f"client_updated:{client.client_id}:{iso_z(after.updated_at)}"
    assert event.payload["updatedAt"] == iso_z(after.updated_at)
    assert event.payload["updatedFields"] == [
        "properties.tier",
        "properties.externalRef",
        "clientName",
        "billingEmail",
        "notes",
    ]
    assert event.payload["changes"]["properties.tier"] == {"previous": "gold", "new": "platinum"}
    assert event.payload["changes"]["notes"] == {"previous": "old notes", "new": None}


async def test_update_without_real_changes_emits_no_event_and_never_creates_a_location(engine, actors, invoke):
    t = actors.tenant
    client = await new_client(engine, t, "Stable Co")
    result = await invoke(
        "clients.update", {"client_id": str(client.client_id), "patch": {"client_name": "Stable Co", "city": "Paris"}}
    )
    assert result.output["changed_fields"] == ["client_name"]
    assert await events(engine, t) == []
    assert await count(engine, "client_locations WHERE tenant = :t", t=t) == 0
    assert len(await audits(engine, t, "clients.update")) == 1


async def test_update_is_inactive_deactivates_contacts_and_portal_users(engine, actors: Actors, invoke):
    t = actors.tenant
    client = await new_client(engine, t)
    contact = await new_contact(engine, t, client.client_id)
    portal_user = uuid.uuid4()
    async with tenant_transaction(engine, t) as conn:
        await create_portal_user(conn, tenant=t, user_id=portal_user, contact_id=contact.contact_name_id)
    result = await invoke("clients.update", {"client_id": str(client.client_id), "patch": {"is_inactive": True}})
    assert result.output["changed_fields"] == ["is_inactive"]
    [(contact_off,)] = await rows(
        engine,
        "SELECT is_inactive FROM contacts WHERE tenant = :t AND contact_name_id = :c",
        t=t,
        c=contact.contact_name_id,
    )
    [(user_off,)] = await rows(
        engine, "SELECT is_inactive FROM users WHERE tenant = :t AND user_id = :u", t=t, u=portal_user
    )
    assert contact_off
    assert user_off
    [event] = await events(engine, t, "CLIENT_UPDATED")
    assert event.payload["changes"] == {"isInactive": {"previous": False, "new": True}}


async def test_update_replay_permission_not_found(engine, actors: Actors, other: Actors, invoke, fails):
    t = actors.tenant
    client = await new_client(engine, t, "Replay Update")
    raw = {"client_id": str(client.client_id), "patch": {"notes": "n1"}}
    first = await invoke("clients.update", raw)
    second = await invoke("clients.update", raw)
    assert second.replayed
    assert second.output == first.output
    assert len(await audits(engine, t, "clients.update")) == 1
    assert len(await events(engine, t, "CLIENT_UPDATED")) == 1

    denied = await fails("clients.update", {**raw, "patch": {"notes": "n2"}}, actor=actors.technician)
    assert (denied.code, denied.message) == ("PERMISSION_DENIED", "Permission denied: client:update")
    assert (await get_client(engine, t, client.client_id)).notes == "n1"

    foreign = await new_client(engine, other.tenant)
    missing = await fails("clients.update", {"client_id": str(foreign.client_id), "patch": {"notes": "x"}})
    assert (missing.code, missing.message, missing.details) == (
        "NOT_FOUND",
        "Client not found",
        {"client_id": str(foreign.client_id)},
    )
    assert (await get_client(engine, other.tenant, foreign.client_id)).notes is None


@pytest.mark.parametrize(
    ("patch", "path"),
    [
        ({}, "input.patch"),
        ({"unknown": 1}, "input.patch"),
        ({"client_name": None}, "input.patch.client_name"),
        ({"client_name": ""}, "input.patch.client_name"),
        ({"client_type": None}, "input.patch.client_type"),
        ({"email": "nope"}, "input.patch.email"),
        ({"is_inactive": "maybe"}, "input.patch.is_inactive"),
    ],
)
async def test_update_validation(engine, actors: Actors, fails, patch, path):
    client = await new_client(engine, actors.tenant)
    info = await fails("clients.update", {"client_id": str(client.client_id), "patch": patch})
    assert info.code == "VALIDATION_ERROR"
    assert path in field_paths(info)
    if path == "input.patch":
        assert "patch must include at least one editable field" in info.message
    await nothing_written(engine, actors.tenant, "clients.update")


async def test_update_failure_then_retry_increments_attempt(engine, actors: Actors, invoke, fails):
    t = actors.tenant
    blocker = await new_client(engine, t, "Wanted Name")
    client = await new_client(engine, t, "Current Name")
    raw = {"client_id": str(client.client_id), "patch": {"client_name": "Wanted Name"}}
    assert (await fails("clients.update", raw)).code == "CONFLICT"
    async with tenant_transaction(engine, t) as conn:
        await clients.update_client(conn, t, blocker.client_id, {"client_name": "Other Name"})
    result = await invoke("clients.update", raw)
    assert result.attempt == 2
    assert result.output["client_after"]["client_name"] == "Wanted Name"
    assert [(r.status, r.attempt) for r in await ledger(engine, t, "clients.update")] == [("SUCCEEDED", 2)]


# -- clients.archive ------------------------------------------------------------------------------------------


async def test_archive_deactivates_and_emits_once(engine, actors: Actors, invoke):
    t = actors.tenant
    client = await new_client(engine, t)
    contact = await new_contact(engine, t, client.client_id)
    first = await invoke("clients.archive", {"client_id": str(client.client_id)})
    out = first.output
    assert (out["archived"], out["previous_is_inactive"], out["current_is_inactive"]) == (True, False, True)
    stored = await get_client(engine, t, client.client_id)
    assert stored.is_inactive
    assert out["archived_at"] == iso_z(stored.updated_at)
    [(contact_off,)] = await rows(
        engine,
        "SELECT is_inactive FROM contacts WHERE tenant = :t AND contact_name_id = :c",
        t=t,
        c=contact.contact_name_id,
    )
    assert contact_off
    [event] = await events(engine, t)
    assert event.event_type == "CLIENT_ARCHIVED"
    assert event.idempotency_key == f"client_archived:{client.client_id}:{out['archived_at']}"
    assert event.payload["archivedAt"] == out["archived_at"]
    assert event.payload["archivedByUserId"] == str(actors.admin)

    replay = await invoke("clients.archive", {"client_id": str(client.client_id)})
    assert replay.replayed
    assert replay.output == out

    again = await invoke("clients.archive", {"client_id": str(client.client_id)}, idempotency_key="second-run")
    assert (again.replayed, again.output["archived"], again.output["archived_at"]) == (False, False, None)
    assert again.output["previous_is_inactive"] is True
    assert len(await events(engine, t)) == 1  # no second event
    changed = [a.changed_data for a in await audits(engine, t, "clients.archive")]
    assert changed == [
        {"client_id": str(client.client_id), "previous_is_inactive": False, "current_is_inactive": True},
        {"client_id": str(client.client_id), "previous_is_inactive": True, "current_is_inactive": True},
    ]


async def test_archive_permission_not_found_validation(engine, actors: Actors, other: Actors, fails):
    t = actors.tenant
    client = await new_client(engine, t)
    denied = await fails("clients.archive", {"client_id": str(client.client_id)}, actor=actors.technician)
    assert denied.code == "PERMISSION_DENIED"
    assert not (await get_client(engine, t, client.client_id)).is_inactive
    await nothing_written(engine, t, "clients.archive")

    invalid = await fails("clients.archive", {"client_id": "42"})
    assert invalid.code == "VALIDATION_ERROR"
    assert field_paths(invalid) == ["input.client_id"]
    assert (await fails("clients.archive", {})).code == "VALIDATION_ERROR"
    await nothing_written(engine, t, "clients.archive")

    foreign = await new_client(engine, other.tenant)
    missing = await fails("clients.archive", {"client_id": str(foreign.client_id)})
    assert (missing.code, missing.message) == ("NOT_FOUND", "Client not found")
    assert not (await get_client(engine, other.tenant, foreign.client_id)).is_inactive
    assert await audits(engine, t, "clients.archive") == []


# -- clients.delete -------------------------------------------------------------------------------------------


async def test_delete_removes_client_and_its_owned_rows(engine, actors: Actors, invoke):
    t = actors.tenant
    client = await new_client(engine, t, url="https://delete-me.example.com")
    await new_location(engine, t, client.client_id, "555 0101", default=True)
    await tag_client(engine, t, client.client_id, "doomed")
    async with tenant_transaction(engine, t) as conn:
        note = await documents.append_note_block(
            conn, t, entity_type="client", entity_id=client.client_id, body="note", actor_user_id=actors.admin
        )
    result = await invoke("clients.delete", {"client_id": str(client.client_id), "confirm": True})
    assert result.output == {"deleted": True, "client_id": str(client.client_id)}
    assert await get_client(engine, t, client.client_id) is None
    for table, column in (
        ("client_locations", "client_id"),
        ("tag_mappings", "tagged_id"),
        ("client_email_settings", "client_id"),
        ("client_tax_settings", "client_id"),
    ):
        assert await count(engine, f"{table} WHERE tenant = :t AND {column} = :c", t=t, c=client.client_id) == 0
    assert await count(engine, "documents WHERE tenant = :t AND document_id = :d", t=t, d=note.document_id) == 0
    [audit] = await audits(engine, t, "clients.delete")
    assert audit.changed_data == {"client_id": str(client.client_id), "deleted": True}
    assert await events(engine, t) == []  # clients.delete emits no event
    replay = await invoke("clients.delete", {"client_id": str(client.client_id), "confirm": True})
    assert replay.replayed
    assert replay.output == result.output
    assert len(await audits(engine, t, "clients.delete")) == 1


async def test_delete_missing_and_foreign_clients(engine, actors: Actors, other: Actors, invoke, fails):
    foreign = await new_client(engine, other.tenant)
    raw = {"client_id": str(foreign.client_id), "confirm": True}
    info = await fails("clients.delete", raw)
    assert (info.code, info.message, info.details) == (
        "NOT_FOUND",
        "Client not found",
        {"client_id": str(foreign.client_id)},
    )
    soft = await invoke("clients.delete", {**raw, "on_not_found": "return_false"})
    assert soft.output == {"deleted": False, "client_id": str(foreign.client_id)}
    assert await get_client(engine, other.tenant, foreign.client_id) is not None


async def test_delete_guardrails(engine, actors: Actors, fails):
    t = actors.tenant
    default_id = uuid.uuid4()
    async with tenant_transaction(engine, t) as conn:
        await create_default_client(
            conn,
            tenant=t,
            client_id=default_id,
            location_id=uuid.uuid4(),
            client_name="Our MSP",
            email="msp@example.com",
        )
    info = await fails("clients.delete", {"client_id": str(default_id), "confirm": True})
    assert (info.category, info.code) == ("ValidationError", "VALIDATION_ERROR")
    assert info.message.startswith("Cannot delete the default client.")

    client = await new_client(engine, t)
    contact = await new_contact(engine, t, client.client_id)
    await new_ticket(engine, t, client_id=client.client_id, contact_id=contact.contact_name_id)
    await new_ticket(engine, t, client_id=client.client_id)
    info = await fails("clients.delete", {"client_id": str(client.client_id), "confirm": True})
    assert info.code == "CONFLICT"
    assert info.message == (
        "This client has associated records that must be removed or reassigned first: 1 contact, 2 tickets"
    )
    assert info.details["dependencies"] == [
        {"type": "contact", "count": 1, "label": "contact"},
        {"type": "ticket", "count": 2, "label": "tickets", "viewUrl": f"/msp/tickets?client_id={client.client_id}"},
    ]
    assert info.details["alternatives"][0]["action"] == "deactivate"
    assert await get_client(engine, t, client.client_id) is not None
    assert await audits(engine, t, "clients.delete") == []


async def test_delete_permission_and_validation(engine, actors: Actors, fails):
    t = actors.tenant
    client = await new_client(engine, t)
    denied = await fails(
        "clients.delete", {"client_id": str(client.client_id), "confirm": True}, actor=actors.technician
    )
    assert (denied.code, denied.message) == ("PERMISSION_DENIED", "Permission denied: client:delete")
    for raw, path in (
        ({"client_id": str(client.client_id), "confirm": False}, "input.confirm"),
        ({"client_id": str(client.client_id)}, "input.confirm"),
        ({"client_id": str(client.client_id), "confirm": True, "on_not_found": "x"}, "input.on_not_found"),
    ):
        info = await fails("clients.delete", raw)
        assert info.code == "VALIDATION_ERROR"
        assert path in field_paths(info)
    confirm = await fails("clients.delete", {"client_id": str(client.client_id), "confirm": False})
    assert "confirm must be true to delete a client" in confirm.message
    assert await get_client(engine, t, client.client_id) is not None
    await nothing_written(engine, t, "clients.delete")


# -- clients.duplicate ----------------------------------------------------------------------------------------


async def test_duplicate_copies_profile_tags_and_locations(engine, actors: Actors, invoke):
    t = actors.tenant
    source = await new_client(
        engine,
        t,
        "Source Co",
        url="https://source.example.com",
        billing_email="ap@source.example",
        notes="n",
        properties={"tier": "gold", "tenant_id": str(uuid.uuid4())},
    )
    async with tenant_transaction(engine, t) as conn:
        await conn.execute(
            text(
                "UPDATE clients SET payment_terms = 'net_30', timezone = 'Europe/Paris', billing_cycle = 'quarterly' "
                "WHERE tenant = :t AND client_id = :c"
            ),
            {"t": t, "c": source.client_id},
        )
    await tag_client(engine, t, source.client_id, "vip", "gold")
    await new_location(engine, t, source.client_id, "555 0001", default=True)
    await new_location(engine, t, source.client_id, "555 0002")
    await new_contact(engine, t, source.client_id)

    result = await invoke(
        "clients.duplicate",
        {
            "source_client_id": str(source.client_id),
            "client_name": "Copy Co",
            "copy_locations": True,
            "idempotency_key": "dup-1",
        },
    )
    out = result.output
    dup_id = uuid.UUID(out["duplicate_client"]["client_id"])
    assert (out["copied_tags"], out["copied_locations"]) == (2, 2)
    assert out["source_client"]["client_id"] == str(source.client_id)
    assert out["duplicate_client"]["properties"] == {"tier": "gold", "website": "https://source.example.com"}
    assert out["duplicate_client"]["billing_email"] == "ap@source.example"
    [copied] = await rows(
        engine,
        "SELECT payment_terms, timezone, billing_cycle, notes, is_inactive FROM clients "
        "WHERE tenant = :t AND client_id = :c",
        t=t,
        c=dup_id,
    )
    assert tuple(copied) == ("net_30", "Europe/Paris", "quarterly", "n", False)
    assert await count(engine, "contacts WHERE tenant = :t AND client_id = :c", t=t, c=dup_id) == 0
    assert (
        await count(engine, "client_locations WHERE tenant = :t AND client_id = :c AND is_default", t=t, c=dup_id) == 1
    )
    [audit] = await audits(engine, t, "clients.duplicate")
    assert audit.changed_data == {
        "source_client_id": str(source.client_id),
        "duplicate_client_id": str(dup_id),
        "copied_tags": 2,
        "copied_locations": 2,
    }
    assert audit.details["client_id"] == str(dup_id)
    assert await events(engine, t) == []

    replay = await invoke(
        "clients.duplicate",
        {
            "source_client_id": str(source.client_id),
            "client_name": "Copy Co",
            "copy_locations": True,
            "idempotency_key": "dup-1",
        },
    )
    assert replay.replayed
    assert replay.output == out
    assert await count(engine, "clients WHERE tenant = :t AND client_name = 'Copy Co'", t=t) == 1


async def test_duplicate_permission_not_found_validation(engine, actors: Actors, other: Actors, fails):
    t = actors.tenant
    source = await new_client(engine, t)
    raw = {"source_client_id": str(source.client_id), "client_name": "Nope Copy"}
    technician = await fails("clients.duplicate", raw, actor=actors.technician)  # has client:read, lacks create
    assert technician.details == {"resource": "client", "action": "create"}
    nobody = await fails("clients.duplicate", raw, actor=actors.nobody)  # first missing permission wins
    assert nobody.details == {"resource": "client", "action": "read"}
    await nothing_written(engine, t, "clients.duplicate")

    info = await fails("clients.duplicate", {"source_client_id": str(source.client_id)})
    assert info.code == "VALIDATION_ERROR"
    assert field_paths(info) == ["input.client_name"]

    foreign = await new_client(engine, other.tenant)
    missing = await fails("clients.duplicate", {"source_client_id": str(foreign.client_id), "client_name": "X"})
    assert (missing.code, missing.details) == ("NOT_FOUND", {"source_client_id": str(foreign.client_id)})
    assert await count(engine, "clients WHERE tenant = :t", t=t) == 1


# -- clients.add_tag ------------------------------------------------------------------------------------------


async def test_add_tag_reports_added_and_existing(engine, actors: Actors, invoke):
    t = actors.tenant
    client = await new_client(engine, t)
    first = await invoke("clients.add_tag", {"client_id": str(client.client_id), "tags": ["VIP", " vip", "Beta", " "]})
    assert [x["tag_text"] for x in first.output["added"]] == ["VIP", "Beta"]
    assert (first.output["added_count"], first.output["existing_count"]) == (2, 0)
    second = await invoke("clients.add_tag", {"client_id": str(client.client_id), "tags": ["VIP", "New"]})
    assert [x["tag_text"] for x in second.output["existing"]] == ["VIP"]
    assert second.output["existing"][0]["mapping_id"] == first.output["added"][0]["mapping_id"]
    assert [x["tag_text"] for x in second.output["added"]] == ["New"]
    assert await count(engine, "tag_mappings WHERE tenant = :t AND tagged_id = :c", t=t, c=client.client_id) == 3
    created_by = await rows(engine, "SELECT DISTINCT created_by FROM tag_mappings WHERE tenant = :t", t=t)
    assert [r.created_by for r in created_by] == [actors.admin]
    assert [a.changed_data for a in await audits(engine, t, "clients.add_tag")] == [
        {"client_id": str(client.client_id), "added_count": 2, "existing_count": 0},
        {"client_id": str(client.client_id), "added_count": 1, "existing_count": 1},
    ]
    replay = await invoke("clients.add_tag", {"client_id": str(client.client_id), "tags": ["VIP", "New"]})
    assert replay.replayed
    assert replay.output == second.output
    assert len(await audits(engine, t, "clients.add_tag")) == 2


async def test_add_tag_permission_not_found_validation(engine, actors: Actors, other: Actors, fails):
    t = actors.tenant
    client = await new_client(engine, t)
    denied = await fails(
        "clients.add_tag", {"client_id": str(client.client_id), "tags": ["x"]}, actor=actors.technician
    )
    assert denied.code == "PERMISSION_DENIED"
    for raw, path in (
        ({"client_id": str(client.client_id), "tags": []}, "input.tags"),
        ({"client_id": str(client.client_id), "tags": [""]}, "input.tags.0"),
        ({"client_id": str(client.client_id)}, "input.tags"),
    ):
        info = await fails("clients.add_tag", raw)
        assert info.code == "VALIDATION_ERROR"
        assert path in field_paths(info)
    await nothing_written(engine, t, "clients.add_tag")
    assert await count(engine, "tag_definitions WHERE tenant = :t", t=t) == 0

    foreign = await new_client(engine, other.tenant)
    missing = await fails("clients.add_tag", {"client_id": str(foreign.client_id), "tags": ["x"]})
    assert missing.code == "NOT_FOUND"
    assert await count(engine, "tag_mappings WHERE tenant = :t", t=other.tenant) == 0


# -- clients.assign_to_ticket ---------------------------------------------------------------------------------


async def test_assign_to_ticket_moves_and_keeps_or_clears(engine, actors: Actors, invoke, fails):
    t = actors.tenant
    old = await new_client(engine, t)
    new = await new_client(engine, t)
    old_contact = await new_contact(engine, t, old.client_id)
    old_location = await new_location(engine, t, old.client_id, "555 0003")
    new_contact_ = await new_contact(engine, t, new.client_id)
    ticket = await new_ticket(
        engine, t, client_id=old.client_id, contact_id=old_contact.contact_name_id, location_id=old_location
    )

    moved = await invoke(
        "clients.assign_to_ticket",
        {
            "client_id": str(new.client_id),
            "ticket_id": str(ticket.ticket_id),
            "contact_id": str(new_contact_.contact_name_id),
            "reason": "merge",
        },
    )
    assert moved.output == {
        "ticket_id": str(ticket.ticket_id),
        "previous_client_id": str(old.client_id),
        "current_client_id": str(new.client_id),
        "previous_contact_id": str(old_contact.contact_name_id),
        "current_contact_id": str(new_contact_.contact_name_id),
        "previous_location_id": str(old_location),
        "current_location_id": str(old_location),  # omitted: kept
    }
    [audit] = await audits(engine, t, "clients.assign_to_ticket")
    assert audit.changed_data == moved.output
    assert (audit.details["client_id"], audit.details["reason"], audit.details["comment"]) == (
        str(new.client_id),
        "merge",
        None,
    )

    cleared = await invoke(
        "clients.assign_to_ticket",
        {
            "client_id": str(new.client_id),
            "ticket_id": str(ticket.ticket_id),
            "contact_id": None,
            "location_id": None,
        },
        actor=actors.technician,
    )  # client:read + ticket:update suffice
    assert (cleared.output["current_contact_id"], cleared.output["current_location_id"]) == (None, None)
    stored = await rows(engine, "SELECT client_id, contact_name_id, location_id FROM tickets WHERE tenant = :t", t=t)
    assert [tuple(r) for r in stored] == [(new.client_id, None, None)]

    wrong = await fails(
        "clients.assign_to_ticket",
        {
            "client_id": str(new.client_id),
            "ticket_id": str(ticket.ticket_id),
            "contact_id": str(old_contact.contact_name_id),
        },
    )
    assert (wrong.code, wrong.message) == ("VALIDATION_ERROR", "contact_id must belong to the selected client")
    assert await events(engine, t) == []


async def test_assign_to_ticket_replay_permission_not_found_validation(
    engine, actors: Actors, other: Actors, invoke, fails
):
    t = actors.tenant
    client = await new_client(engine, t)
    ticket = await new_ticket(engine, t)
    raw = {"client_id": str(client.client_id), "ticket_id": str(ticket.ticket_id)}
    first = await invoke("clients.assign_to_ticket", raw)
    assert (await invoke("clients.assign_to_ticket", raw)).output == first.output
    assert len(await audits(engine, t, "clients.assign_to_ticket")) == 1

    other_ticket = await new_ticket(engine, t)
    denied = await fails(
        "clients.assign_to_ticket", {**raw, "ticket_id": str(other_ticket.ticket_id)}, actor=actors.nobody
    )
    assert denied.details == {"resource": "client", "action": "read"}
    [(client_of_ticket,)] = await rows(
        engine, "SELECT client_id FROM tickets WHERE tenant = :t AND ticket_id = :k", t=t, k=other_ticket.ticket_id
    )
    assert client_of_ticket is None

    foreign_ticket = await new_ticket(engine, other.tenant)
    missing = await fails("clients.assign_to_ticket", {**raw, "ticket_id": str(foreign_ticket.ticket_id)})
    assert (missing.code, missing.message) == ("NOT_FOUND", "Ticket not found")
    foreign_client = await new_client(engine, other.tenant)
    missing = await fails("clients.assign_to_ticket", {**raw, "client_id": str(foreign_client.client_id)})
    assert (missing.code, missing.message) == ("NOT_FOUND", "Client not found")

    info = await fails("clients.assign_to_ticket", {"client_id": str(client.client_id), "contact_id": "nope"})
    assert info.code == "VALIDATION_ERROR"
    assert {"input.ticket_id", "input.contact_id"} <= set(field_paths(info))


# -- clients.add_note -----------------------------------------------------------------------------------------


async def test_add_note_creates_then_appends(engine, actors: Actors, invoke):
    t = actors.tenant
    client = await new_client(engine, t, "Notable Co")
    body = "Called   about\n renewal. " + "x" * 250
    first = await invoke("clients.add_note", {"client_id": str(client.client_id), "body": body})
    out = first.output
    assert out["created_document"] is True
    assert out["updated_at"].endswith("Z")
    document_id = uuid.UUID(out["document_id"])
    [doc] = await rows(engine, "SELECT document_name, created_by FROM documents WHERE tenant = :t", t=t)
    assert tuple(doc) == ("Notable Co Notes", actors.admin)
    [event] = await events(engine, t)
    assert event.event_type == "NOTE_CREATED"
    assert event.idempotency_key == f"note_created:client:{client.client_id}:{document_id}"
    assert event.payload["entityType"] == "client"
    assert event.payload["visibility"] == "internal"
    assert event.payload["bodyPreview"] == ("Called about renewal. " + "x" * 250)[:200] + "…"
    assert event.payload["createdAt"] == out["updated_at"]

    second = await invoke("clients.add_note", {"client_id": str(client.client_id), "body": "second"})
    assert second.output["created_document"] is False
    assert second.output["document_id"] == out["document_id"]
    async with engine.connect() as conn:
        assert len(await documents.read_note_blocks(conn, t, document_id)) == 2
    assert len(await events(engine, t)) == 1  # NOTE_CREATED only when the document is created
    assert [a.changed_data["created_document"] for a in await audits(engine, t, "clients.add_note")] == [True, False]

    replay = await invoke("clients.add_note", {"client_id": str(client.client_id), "body": "second"})
    assert replay.replayed
    assert replay.output == second.output
    async with engine.connect() as conn:
        assert len(await documents.read_note_blocks(conn, t, document_id)) == 2


async def test_add_note_permission_not_found_validation(engine, actors: Actors, other: Actors, fails):
    t = actors.tenant
    client = await new_client(engine, t)
    denied = await fails("clients.add_note", {"client_id": str(client.client_id), "body": "b"}, actor=actors.technician)
    assert denied.code == "PERMISSION_DENIED"
    for body in ("", "   "):
        info = await fails("clients.add_note", {"client_id": str(client.client_id), "body": body})
        assert info.code == "VALIDATION_ERROR"
        assert field_paths(info) == ["input.body"]
    await nothing_written(engine, t, "clients.add_note")
    foreign = await new_client(engine, other.tenant)
    missing = await fails("clients.add_note", {"client_id": str(foreign.client_id), "body": "b"})
    assert (missing.code, missing.message) == ("NOT_FOUND", "Client not found")
    assert await count(engine, "documents WHERE tenant = :t OR tenant = :o", t=t, o=other.tenant) == 0


# -- clients.add_interaction ----------------------------------------------------------------------------------


async def test_add_interaction_logs_with_actor_default_status_and_event(engine, actors: Actors, invoke):
    t = actors.tenant
    client = await new_client(engine, t)
    contact = await new_contact(engine, t, client.client_id)
    ticket = await new_ticket(engine, t, client_id=client.client_id)
    result = await invoke(
        "clients.add_interaction",
        {
            "client_id": str(client.client_id),
            "type_id": str(CALL_TYPE),
            "title": " Quarterly review ",
            "contact_id": str(contact.contact_name_id),
            "ticket_id": str(ticket.ticket_id),
            "notes": "went well",
            "start_time": "2026-03-01T10:00:00Z",
            "end_time": "2026-03-01T10:30:00.500Z",
            "idempotency_key": "call-1",
        },
        actor=actors.admin,
    )
    out = result.output
    interaction_id = uuid.UUID(out["interaction_id"])
    async with engine.connect() as conn:
        stored = await interactions.get_interaction(conn, t, interaction_id)
        default_status = await interactions.default_interaction_status(conn, t)
    assert stored.user_id == actors.admin
    assert stored.status_id == default_status
    assert out["user_id"] == str(actors.admin)
    assert out["status_id"] == str(default_status)
    assert (out["contact_id"], out["ticket_id"], out["title"]) == (
        str(contact.contact_name_id),
        str(ticket.ticket_id),
        "Quarterly review",
    )
    assert out["start_time"] == "2026-03-01T10:00:00.000000Z"
    assert out["interaction_date"] == out["start_time"]
    assert out["end_time"] == "2026-03-01T10:30:00.500000Z"
    assert out["duration"] == 30

    [audit] = await audits(engine, t, "clients.add_interaction")
    assert audit.changed_data == {
        "interaction_id": str(interaction_id),
        "client_id": str(client.client_id),
        "ticket_id": str(ticket.ticket_id),
        "contact_id": str(contact.contact_name_id),
        "type_id": str(CALL_TYPE),
    }
    assert audit.details["interaction_id"] == str(interaction_id)
    [event] = await events(engine, t)
    assert (event.event_type, event.idempotency_key) == ("INTERACTION_LOGGED", f"interaction_logged:{interaction_id}")
    assert (event.payload["interactionType"], event.payload["channel"]) == ("Call", "phone")
    assert event.payload["subject"] == "Quarterly review"
    assert event.payload["loggedByUserId"] == str(actors.admin)
    assert event.payload["interactionOccurredAt"] == out["interaction_date"]

    replay = await invoke(
        "clients.add_interaction",
        {
            "client_id": str(client.client_id),
            "type_id": str(CALL_TYPE),
            "title": "other input",
            "idempotency_key": "call-1",
        },
    )
    assert replay.replayed  # the explicit key wins (actionProvided)
    assert replay.output == out
    assert await count(engine, "interactions WHERE tenant = :t", t=t) == 1


async def test_add_interaction_rules(engine, actors: Actors, other: Actors, fails):
    t = actors.tenant
    client = await new_client(engine, t)
    elsewhere = await new_client(engine, t)
    stranger = await new_contact(engine, t, elsewhere.client_id)
    foreign_ticket = await new_ticket(engine, t, client_id=elsewhere.client_id)
    base = {"client_id": str(client.client_id), "type_id": str(CALL_TYPE), "title": "t"}
    wrong_contact = await fails("clients.add_interaction", {**base, "contact_id": str(stranger.contact_name_id)})
    assert (wrong_contact.code, wrong_contact.message) == (
        "VALIDATION_ERROR",
        "contact_id must belong to the selected client",
    )
    wrong_ticket = await fails("clients.add_interaction", {**base, "ticket_id": str(foreign_ticket.ticket_id)})
    assert wrong_ticket.message == "ticket_id must belong to the selected client"
    unknown_type = await fails("clients.add_interaction", {**base, "type_id": str(uuid.uuid4())})
    assert (unknown_type.code, unknown_type.message) == ("NOT_FOUND", "Interaction type not found")
    foreign = await new_client(engine, other.tenant)
    missing = await fails("clients.add_interaction", {**base, "client_id": str(foreign.client_id)})
    assert (missing.code, missing.message) == ("NOT_FOUND", "Client not found")
    assert await count(engine, "interactions WHERE tenant = :t OR tenant = :o", t=t, o=other.tenant) == 0
    assert await audits(engine, t, "clients.add_interaction") == []
    assert await events(engine, t) == []
    assert [r.status for r in await ledger(engine, t, "clients.add_interaction")] == ["FAILED"] * 4


@pytest.mark.parametrize(
    ("extra", "path"),
    [
        ({"start_time": "2026-03-01T10:00:00+01:00"}, "input.start_time"),
        ({"interaction_date": "yesterday"}, "input.interaction_date"),
        ({"duration": -1}, "input.duration"),
        ({"title": "  "}, "input.title"),
        ({"type_id": None}, "input.type_id"),
    ],
)
async def test_add_interaction_validation(engine, actors: Actors, fails, extra, path):
    client = await new_client(engine, actors.tenant)
    raw = {"client_id": str(client.client_id), "type_id": str(CALL_TYPE), "title": "t", **extra}
    info = await fails("clients.add_interaction", raw)
    assert info.code == "VALIDATION_ERROR"
    assert path in field_paths(info)
    await nothing_written(engine, actors.tenant, "clients.add_interaction")


async def test_add_interaction_permission_denied(engine, actors: Actors, fails):
    client = await new_client(engine, actors.tenant)
    raw = {"client_id": str(client.client_id), "type_id": str(CALL_TYPE), "title": "t"}
    info = await fails("clients.add_interaction", raw, actor=actors.technician)
    assert (info.code, info.details) == ("PERMISSION_DENIED", {"resource": "client", "action": "update"})
    await nothing_written(engine, actors.tenant, "clients.add_interaction")
    assert await count(engine, "interactions WHERE tenant = :t", t=actors.tenant) == 0
