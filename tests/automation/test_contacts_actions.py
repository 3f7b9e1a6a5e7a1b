"""The contacts.* actions (docs/actions.md) through the real runtime and database. This file: the
registration, the contract checks every action must pass (idempotent replay, permission denied with nothing
written, another tenant's ids not found), and contacts.find / contacts.search. The mutations are tested in
test_contacts_mutations.py and test_contacts_relations.py."""

from __future__ import annotations

import secrets
import uuid

import pytest

from psa.config import get_settings
from tests.factories import (
    FOREIGN_CONTACT_INPUTS,
    VALID_CONTACT_INPUTS,
    Actors,
    ContactWorld,
    new_contact,
    tag_contact,
)
from tests.helpers import (
    audits,
    count,
    events,
    execute,
    field_paths,
    ledger,
    nothing_written,
    unique_email,
)

EXPECTED = {
    # id: (label, side_effectful, idempotency, permissions)
    "contacts.find": ("Find Contact", False, "engine", ["contact:read"]),
    "contacts.search": ("Search Contacts", False, "engine", ["contact:read"]),
    "contacts.create": ("Create Contact", True, "action", ["contact:create"]),
    "contacts.update": ("Edit Contact", True, "engine", ["contact:update"]),
    "contacts.deactivate": ("Deactivate Contact", True, "engine", ["contact:update"]),
    "contacts.delete": ("Delete Contact", True, "engine", ["contact:delete"]),
    "contacts.duplicate": ("Duplicate Contact", True, "action", ["contact:read", "contact:create"]),
    "contacts.add_tag": ("Add Tag to Contact", True, "action", ["contact:update"]),
    "contacts.assign_to_ticket": ("Assign Contact to Ticket", True, "engine", ["ticket:update", "contact:read"]),
    "contacts.add_note": ("Add Note to Contact", True, "action", ["contact:update"]),
    "contacts.add_interaction": ("Add Interaction to Contact", True, "action", ["contact:update"]),
    "contacts.add_to_client": ("Add Contact to Client", True, "engine", ["contact:update"]),
    "contacts.move_to_client": ("Move Contact to Client", True, "engine", ["contact:update"]),
    "contacts.upsert": ("Create or Update Contact", True, "action", ["contact:create", "contact:update"]),
    "contacts.remove_tag": ("Remove Tag from Contact", True, "engine", ["contact:update"]),
}


def test_registers_the_contact_actions_after_the_client_actions(registry):
    ids = [a.id for a in registry.list()]
    registered = [i for i in ids if i.startswith("contacts.")]
    assert registered == list(EXPECTED)
    assert ids.index("contacts.find") > max(i for i, a in enumerate(ids) if a.startswith("clients."))
    for action_id in registered:
        meta = registry.get(action_id, 1).meta()
        label, side_effectful, mode, permissions = EXPECTED[action_id]
        assert (meta["ui"]["label"], meta["ui"]["category"]) == (label, "Business Operations")
        assert (meta["side_effectful"], meta["idempotency"]["mode"], meta["permissions"]) == (
            side_effectful,
            mode,
            permissions,
        )
        assert ("idempotency_key" in meta["input_schema"]["properties"]) == (mode == "action")


def test_input_schemas_carry_picker_metadata(registry):
    props = registry.get("contacts.move_to_client", 1).input_schema()["properties"]
    assert props["contact_id"]["x-workflow-picker-kind"] == "contact"
    assert props["contact_id"]["x-workflow-picker-fixed-value-hint"] == "Search contacts"
    assert props["target_client_id"]["x-workflow-picker-kind"] == "client"
    delete = registry.get("contacts.delete", 1).input_schema()
    assert sorted(delete["required"]) == ["confirm", "contact_id"]
    assert delete["properties"]["confirm"]["const"] is True


# -- the contract, for every action -----------------------------------------------------------------------------


@pytest.mark.parametrize("action_id", list(VALID_CONTACT_INPUTS))
async def test_replaying_a_step_writes_nothing_twice(engine, actors: Actors, world: ContactWorld, invoke, action_id):
    raw = VALID_CONTACT_INPUTS[action_id](world)
    t = actors.tenant
    first = await invoke(action_id, raw)
    tables = (
        "contacts",
        "contact_phone_numbers",
        "tag_mappings",
        "tickets",
        "interactions",
        "documents",
        "document_block_content",
    )
    before = {table: await count(engine, f"{table} WHERE tenant = :t", t=t) for table in tables}
    before_events = len(await events(engine, t))
    second = await invoke(action_id, raw)
    assert (first.replayed, second.replayed) == (False, True)
    assert second.output == first.output
    assert second.invocation_id == first.invocation_id
    assert {table: await count(engine, f"{table} WHERE tenant = :t", t=t) for table in tables} == before
    assert len(await events(engine, t)) == before_events
    assert [r.status for r in await ledger(engine, t, action_id)] == ["SUCCEEDED"]
    assert len(await audits(engine, t, action_id)) == (1 if EXPECTED[action_id][1] else 0)


@pytest.mark.parametrize("action_id", list(VALID_CONTACT_INPUTS))
async def test_permission_denied_writes_nothing(engine, actors: Actors, world: ContactWorld, fails, action_id):
    t = actors.tenant
    contacts_before = await count(engine, "contacts WHERE tenant = :t", t=t)
    info = await fails(action_id, VALID_CONTACT_INPUTS[action_id](world), actor=actors.nobody)
    resource, action = EXPECTED[action_id][3][0].split(":")
    assert (info.category, info.code, info.message, info.details) == (
        "ActionError",
        "PERMISSION_DENIED",
        f"Permission denied: {resource}:{action}",
        {"resource": resource, "action": action},
    )
    await nothing_written(engine, t, action_id)
    assert await count(engine, "contacts WHERE tenant = :t", t=t) == contacts_before


async def test_technician_may_read_create_and_update_but_not_delete(
    engine, actors: Actors, world: ContactWorld, invoke, fails
):
    assert (
        await invoke("contacts.find", VALID_CONTACT_INPUTS["contacts.find"](world), actor=actors.technician)
    ).output["contact"]
    await invoke("contacts.add_tag", VALID_CONTACT_INPUTS["contacts.add_tag"](world), actor=actors.technician)
    info = await fails("contacts.delete", VALID_CONTACT_INPUTS["contacts.delete"](world), actor=actors.technician)
    assert (info.code, info.details) == ("PERMISSION_DENIED", {"resource": "contact", "action": "delete"})
    assert (
        await count(engine, "contacts WHERE tenant = :t AND contact_name_id = :c", t=actors.tenant, c=world.loose) == 1
    )


@pytest.mark.parametrize("action_id", list(FOREIGN_CONTACT_INPUTS))
async def test_another_tenants_ids_are_not_found(
    engine, actors: Actors, other: Actors, world: ContactWorld, fails, action_id
):
    info = await fails(action_id, FOREIGN_CONTACT_INPUTS[action_id](world))
    assert (info.category, info.code) == ("ActionError", "NOT_FOUND")
    assert [r.status for r in await ledger(engine, actors.tenant, action_id)] in ([], ["FAILED"])
    assert await audits(engine, actors.tenant, action_id) == []
    assert await events(engine, actors.tenant) == []
    foreign = await execute(
        engine,
        other.tenant,
        "SELECT updated_at FROM contacts WHERE tenant = :t AND contact_name_id = :c",
        c=world.foreign_contact,
    )
    assert foreign is not None  # the other tenant's contact is untouched (not deleted)
    assert await count(engine, "tag_mappings WHERE tenant = :t", t=other.tenant) == 0
    assert await count(engine, "documents WHERE tenant = :t", t=other.tenant) == 0


# Text holding NUL, which PostgreSQL text and jsonb cannot store: (action, field path, input).
NUL_INPUTS = [
    ("contacts.find", "input.phone", lambda w: {"phone": "415\x00555 0100"}),
    ("contacts.search", "input.query", lambda w: {"query": "Gr\x00ace"}),
    ("contacts.search", "input.filters.tags.0", lambda w: {"query": "Grace", "filters": {"tags": ["v\x00ip"]}}),
    ("contacts.create", "input.full_name", lambda w: {"full_name": "Ada\x00", "email": w.new_email}),
    (
        "contacts.create",
        "input.phone_numbers.0.extension",
        lambda w: {
            "full_name": "Ada",
            "email": w.new_email,
            "phone_numbers": [
                {"phone_number": "+14155550100", "extension": "1\x00", "canonical_type": "work", "is_default": True}
            ],
        },
    ),
    ("contacts.update", "input.patch.notes", lambda w: {"contact_id": str(w.contact), "patch": {"notes": "\x00"}}),
    ("contacts.deactivate", "input.reason", lambda w: {"contact_id": str(w.contact), "reason": "left\x00"}),
    (
        "contacts.duplicate",
        "input.role",
        lambda w: {"source_contact_id": str(w.contact), "email": w.new_email, "role": "r\x00le"},
    ),
    (
        "contacts.assign_to_ticket",
        "input.comment",
        lambda w: {"contact_id": str(w.contact), "ticket_id": str(w.ticket), "comment": "\x00"},
    ),
    ("contacts.add_note", "input.body", lambda w: {"contact_id": str(w.contact), "body": "note\x00"}),
    (
        "contacts.add_interaction",
        "input.title",
        lambda w: {
            "contact_id": str(w.contact),
            "interaction_type_id": "8e36ee4d-d124-5e40-8076-5d9b3b587fc1",
            "title": "Call\x00",
        },
    ),
    ("contacts.upsert", "input.role", lambda w: {"email": w.new_email, "full_name": "Ada", "role": "\x00"}),
    (
        "contacts.create",
        "input.idempotency_key",
        lambda w: {"full_name": "Ada", "email": w.new_email, "idempotency_key": "k\x00"},
    ),
]


@pytest.mark.parametrize(("action_id", "path", "make"), NUL_INPUTS, ids=[f"{a}:{p}" for a, p, _ in NUL_INPUTS])
async def test_text_with_nul_is_a_validation_error_naming_the_field(
    engine, actors: Actors, world: ContactWorld, fails, action_id, path, make
):
    t = actors.tenant
    contacts_before = await count(engine, "contacts WHERE tenant = :t", t=t)
    info = await fails(action_id, make(world))
    assert (info.category, info.code) == ("ValidationError", "VALIDATION_ERROR")
    assert field_paths(info) == [path]
    await nothing_written(engine, t, action_id)
    assert await count(engine, "contacts WHERE tenant = :t", t=t) == contacts_before


@pytest.mark.parametrize("action_id", [a for a, (*_, mode, _) in EXPECTED.items() if mode == "action"])
async def test_an_idempotency_key_too_long_to_store_is_a_validation_error(
    engine, actors: Actors, world: ContactWorld, fails, action_id
):
    key = secrets.token_urlsafe(4000)  # incompressible: too big for the ledger's unique index
    info = await fails(action_id, {**VALID_CONTACT_INPUTS[action_id](world), "idempotency_key": key})
    assert (info.category, info.code, field_paths(info)) == (
        "ValidationError",
        "VALIDATION_ERROR",
        ["input.idempotency_key"],
    )
    await nothing_written(engine, actors.tenant, action_id)


async def test_search_never_lists_another_tenants_contacts(actors: Actors, world: ContactWorld, invoke):
    result = await invoke("contacts.search", {"query": "Foreign"})
    assert result.output["total"] == 0
    assert result.output["contacts"] == []
    scoped = await invoke("contacts.search", {"query": "Grace", "client_id": str(world.foreign_client)})
    assert scoped.output["total"] == 0


# -- contacts.find -----------------------------------------------------------------------------------------------


async def test_find_by_id_email_additional_email_and_phone(engine, actors: Actors, world: ContactWorld, invoke):
    t = actors.tenant
    extra = unique_email("contact")
    await execute(
        engine,
        t,
        "INSERT INTO contact_additional_email_addresses (tenant, contact_name_id, email_address, "
        "canonical_type) VALUES (:t, :c, :e, 'personal')",
        c=world.contact,
        e=extra,
    )
    summary = {
        "contact_name_id": str(world.contact),
        "full_name": "Grace Hopper",
        "email": world.contact_email,
        "phone": "+14155550100",
        "client_id": str(world.client),
        "is_inactive": False,
    }
    assert (await invoke("contacts.find", {"contact_id": str(world.contact)})).output == {"contact": summary}
    assert (await invoke("contacts.find", {"email": world.contact_email.upper()})).output == {"contact": summary}
    assert (await invoke("contacts.find", {"email": f" {extra} "})).output == {"contact": summary}  # primary shown
    for phone, mode in (
        ("+1 (415) 555-0100", "exact"),
        ("415-555-0100", "exact"),
        ("555 0100", "last7"),
        ("(415) 555 0100", "last10"),
    ):
        found = await invoke("contacts.find", {"phone": phone, "phone_match": mode})
        assert found.output == {"contact": summary}, (phone, mode)
    # precedence: contact_id over email over phone
    loose = await invoke("contacts.find", {"contact_id": str(world.loose), "email": world.contact_email})
    assert loose.output["contact"]["contact_name_id"] == str(world.loose)


async def test_find_by_phone_prefers_active_then_oldest_or_newest(engine, actors: Actors, world: ContactWorld, invoke):
    t = actors.tenant
    phone = [{"phone_number": "+1 212 555 0199", "canonical_type": "mobile", "is_default": True}]
    oldest = await new_contact(engine, t, world.client, full_name="Oldest", phone_numbers=phone)
    middle = await new_contact(engine, t, world.other_client, full_name="Middle", phone_numbers=phone)
    newest = await new_contact(engine, t, world.client, full_name="Newest", phone_numbers=phone)
    await execute(
        engine,
        t,
        "UPDATE contacts SET is_inactive = true WHERE tenant = :t AND contact_name_id = :c",
        c=oldest.contact_name_id,
    )
    first = await invoke("contacts.find", {"phone": "2125550199", "phone_match": "last10"})
    assert first.output["contact"]["contact_name_id"] == str(middle.contact_name_id)  # oldest active
    recent = await invoke(
        "contacts.find", {"phone": "5550199", "phone_match": "last7", "match_strategy": "most_recent"}
    )
    assert recent.output["contact"]["contact_name_id"] == str(newest.contact_name_id)
    scoped = await invoke(
        "contacts.find", {"phone": "212 555 0199", "phone_match": "last10", "client_id": str(world.client)}
    )
    assert scoped.output["contact"]["contact_name_id"] == str(newest.contact_name_id)  # inactive oldest last


async def test_find_not_found_returns_null_or_errors(actors: Actors, world: ContactWorld, invoke, fails):
    missing = str(uuid.uuid4())
    assert (await invoke("contacts.find", {"contact_id": missing})).output == {"contact": None}
    assert (await invoke("contacts.find", {"email": "nobody@example.com"})).output == {"contact": None}
    other_client = await invoke(
        "contacts.find", {"contact_id": str(world.contact), "client_id": str(world.other_client)}
    )
    assert other_client.output == {"contact": None}
    info = await fails("contacts.find", {"phone": "999 555 0000", "phone_match": "last10", "on_not_found": "error"})
    assert (info.category, info.code, info.message, info.details) == (
        "ActionError",
        "NOT_FOUND",
        "Contact not found",
        {"matched_by": "phone"},
    )


@pytest.mark.parametrize(
    ("raw", "path", "message"),
    [
        ({}, "input", "contact_id, email, or phone required"),
        ({"email": "not-an-email"}, "input.email", None),
        ({"phone": "555-01"}, "input.phone", "phone is invalid"),
        ({"phone": "555 0100 99", "phone_match": "last10"}, "input.phone", "phone is invalid"),
        ({"contact_id": "42"}, "input.contact_id", None),
        ({"phone": "5550100", "phone_match": "last5"}, "input.phone_match", None),
    ],
)
async def test_find_validation(engine, actors: Actors, fails, raw, path, message):
    info = await fails("contacts.find", raw)
    assert (info.category, info.code) == ("ValidationError", "VALIDATION_ERROR")
    assert path in field_paths(info)
    if message:
        assert message in info.message
    await nothing_written(engine, actors.tenant, "contacts.find")


# -- contacts.search ---------------------------------------------------------------------------------------------


async def test_search_matches_name_email_additional_email_and_phone(
    engine, actors: Actors, world: ContactWorld, invoke
):
    t = actors.tenant
    ada = await new_contact(
        engine,
        t,
        world.other_client,
        full_name="Ada Lovelace",
        email="ada@engine.example",
        additional_email_addresses=[{"email_address": "countess@analytical.example", "canonical_type": "personal"}],
    )

    def ids(result) -> list[str]:
        return [c["contact_name_id"] for c in result.output["contacts"]]

    assert ids(await invoke("contacts.search", {"query": "lovel"})) == [str(ada.contact_name_id)]
    assert ids(await invoke("contacts.search", {"query": "ENGINE.example"})) == [str(ada.contact_name_id)]
    assert ids(await invoke("contacts.search", {"query": "analytical"})) == [str(ada.contact_name_id)]
    by_phone = await invoke("contacts.search", {"query": "(415) 555-0100"})
    assert ids(by_phone) == [str(world.contact)]
    assert by_phone.output["first_contact"]["phone"] == "+14155550100"
    assert (await invoke("contacts.search", {"query": "100%"})).output["total"] == 0  # % is literal
    zed = await new_contact(
        engine,
        t,
        None,
        full_name="Zed Zebra",
        email="zed@zoo.example",
        phone_numbers=[{"phone_number": "+1 415 555 0133", "canonical_type": "work", "is_default": True}],
        additional_email_addresses=[
            {"email_address": "zebra@zoo.example", "canonical_type": "work"},
            {"email_address": "zebra.stripes@zoo.example", "canonical_type": "other"},
        ],
    )
    for query in ("zebra", "zoo.example", "ZEBRA.S"):  # matched by name and/or several addresses: listed once
        once = await invoke("contacts.search", {"query": query})
        assert (ids(once), once.output["total"]) == ([str(zed.contact_name_id)], 1), query
    both = await invoke("contacts.search", {"query": "555 01"})  # phone digits: Grace and Zed
    assert set(ids(both)) == {str(world.contact), str(zed.contact_name_id)}
    assert both.output["total"] == 2


async def test_search_filters_pages_and_orders_stably(engine, actors: Actors, world: ContactWorld, invoke):
    t = actors.tenant
    made = [await new_contact(engine, t, world.client, full_name="Sam Same") for _ in range(3)]
    inactive = await new_contact(engine, t, world.other_client, full_name="Sam Gone", is_inactive=True)
    await tag_contact(engine, t, made[0].contact_name_id, "vip")
    await tag_contact(engine, t, made[1].contact_name_id, "gold", "vip")
    expected = sorted([str(c.contact_name_id) for c in made])  # same name: ordered by id

    pages = []
    for page in (1, 2, 3):
        result = await invoke("contacts.search", {"query": "sam", "page": page, "page_size": 2})
        assert result.output["total"] == 4
        assert result.output["page"] == page
        pages += [c["contact_name_id"] for c in result.output["contacts"]]
    assert pages == [str(inactive.contact_name_id), *expected]  # "Sam Gone" < "Sam Same"; page 3 is empty
    assert len(pages) == len(set(pages))

    active = await invoke("contacts.search", {"query": "sam", "filters": {"is_inactive": False}})
    assert [c["contact_name_id"] for c in active.output["contacts"]] == expected
    only_inactive = await invoke("contacts.search", {"query": "sam", "filters": {"is_inactive": True}})
    assert only_inactive.output["total"] == 1
    assert only_inactive.output["contacts"][0]["is_inactive"] is True
    scoped = await invoke("contacts.search", {"query": "sam", "client_id": str(world.other_client)})
    assert [c["contact_name_id"] for c in scoped.output["contacts"]] == [str(inactive.contact_name_id)]
    tagged = await invoke("contacts.search", {"query": "sam", "filters": {"tags": ["vip", "gold"]}})
    assert tagged.output["total"] == 2  # the contact with both tags is listed once
    desc = await invoke("contacts.search", {"query": "sam", "filters": {"sort_order": "desc"}})
    assert [c["full_name"] for c in desc.output["contacts"]] == ["Sam Same"] * 3 + ["Sam Gone"]
    assert [c["contact_name_id"] for c in desc.output["contacts"]][:3] == expected  # ties still by id ascending


@pytest.mark.parametrize(
    ("raw", "path"),
    [
        ({"query": "a"}, "input.query"),
        ({"query": "  a  "}, "input.query"),
        ({}, "input.query"),
        ({"query": "sam", "page_size": 101}, "input.page_size"),
        ({"query": "sam", "page": 0}, "input.page"),
        ({"query": "sam", "filters": {"sort_by": "email"}}, "input.filters.sort_by"),
        ({"query": "sam", "client_id": "acme"}, "input.client_id"),
    ],
)
async def test_search_validation(engine, actors: Actors, fails, raw, path):
    info = await fails("contacts.search", raw)
    assert info.code == "VALIDATION_ERROR"
    assert path in field_paths(info)
    await nothing_written(engine, actors.tenant, "contacts.search")


async def test_search_min_query_length_follows_the_setting(actors: Actors, invoke, monkeypatch, fails):
    try:
        monkeypatch.setenv("WORKFLOW_CONTACT_SEARCH_MIN_QUERY_LEN", "4")
        get_settings.cache_clear()  # the process-wide settings are read once: read them again after each change
        info = await fails("contacts.search", {"query": "sam"})
        assert "query must be at least 4 characters" in info.message
        monkeypatch.setenv("PSA_WORKFLOW_CONTACT_SEARCH_MIN_QUERY_LEN", "1")
        get_settings.cache_clear()
        assert (await invoke("contacts.search", {"query": "s"})).output["page"] == 1
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
