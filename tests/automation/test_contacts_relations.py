"""contacts.add_tag / remove_tag / assign_to_ticket / add_note / add_interaction / add_to_client / move_to_client
(docs/actions.md) through the real runtime and database."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import text

from psa.automation.errors import ActionFailure
from psa.db.engine import tenant_transaction
from psa.domain import documents, tags
from tests.factories import (
    CALL_TYPE,
    Actors,
    ContactWorld,
    new_client,
    new_contact,
    new_ticket,
    tag_contact,
)
from tests.helpers import (
    audits,
    count,
    events,
    execute,
    field_paths,
    get_contact,
    ledger,
    nothing_written,
    wait_until_blocked_on_a_lock,
)


async def contact_tags(engine, tenant: uuid.UUID, contact_id: uuid.UUID) -> list[str]:
    async with engine.connect() as conn:
        return [m.tag_text for m in await tags.tags_for(conn, tenant, contact_id, "contact")]


# -- contacts.add_tag / contacts.remove_tag ----------------------------------------------------------------------


async def test_add_tag_reports_added_and_existing(engine, actors: Actors, world: ContactWorld, invoke):
    t = actors.tenant
    await tag_contact(engine, t, world.loose, "gold")  # the definition exists, not yet on this contact
    definitions = await count(engine, "tag_definitions WHERE tenant = :t", t=t)
    result = await invoke(
        "contacts.add_tag", {"contact_id": str(world.contact), "tags": ["vip", "gold", " Gold ", "new"]}
    )
    out = result.output
    assert [a["tag_text"] for a in out["added"]] == ["gold", "new"]
    assert [e["tag_text"] for e in out["existing"]] == ["vip"]
    assert (out["added_count"], out["existing_count"]) == (2, 1)
    assert all(r["mapping_id"] for r in out["added"] + out["existing"])
    assert await count(engine, "tag_definitions WHERE tenant = :t", t=t) == definitions + 1  # only "new"
    assert await contact_tags(engine, t, world.contact) == ["gold", "new", "vip"]
    again = await invoke(
        "contacts.add_tag", {"contact_id": str(world.contact), "tags": ["new"], "idempotency_key": "second-call"}
    )
    assert (again.output["added_count"], again.output["existing_count"]) == (0, 1)
    assert [a.changed_data for a in await audits(engine, t, "contacts.add_tag")] == [
        {"contact_id": str(world.contact), "added_count": 2, "existing_count": 1},
        {"contact_id": str(world.contact), "added_count": 0, "existing_count": 1},
    ]


@pytest.mark.parametrize(("tags_in", "path"), [([], "input.tags"), ([""], "input.tags.0"), (None, "input.tags")])
async def test_add_tag_validation(engine, actors: Actors, world: ContactWorld, fails, tags_in, path):
    info = await fails("contacts.add_tag", {"contact_id": str(world.contact), "tags": tags_in})
    assert info.code == "VALIDATION_ERROR"
    assert path in field_paths(info)
    await nothing_written(engine, actors.tenant, "contacts.add_tag")


async def test_remove_tag_is_idempotent(engine, actors: Actors, world: ContactWorld, invoke):
    t = actors.tenant
    await tag_contact(engine, t, world.contact, "Gold")
    await tag_contact(engine, t, world.loose, "vip")
    first = await invoke("contacts.remove_tag", {"contact_id": str(world.contact), "tags": ["VIP", "gold", "never"]})
    assert [r["tag_text"] for r in first.output["removed"]] == ["vip", "Gold"]
    assert (first.output["removed_count"], first.output["not_present"]) == (2, ["never"])
    assert await contact_tags(engine, t, world.contact) == []
    assert await contact_tags(engine, t, world.loose) == ["vip"]  # other contacts keep theirs
    assert await count(engine, "tag_definitions WHERE tenant = :t AND tag_text = 'Gold'", t=t) == 1
    second = await invoke(
        "contacts.remove_tag", {"contact_id": str(world.contact), "tags": ["vip"]}, idempotency_key="another-call"
    )
    assert (second.replayed, second.output["removed"], second.output["not_present"]) == (False, [], ["vip"])


async def test_remove_tag_validation(engine, actors: Actors, world: ContactWorld, fails):
    info = await fails("contacts.remove_tag", {"contact_id": str(world.contact), "tags": []})
    assert info.code == "VALIDATION_ERROR"
    assert "input.tags" in field_paths(info)
    await nothing_written(engine, actors.tenant, "contacts.remove_tag")
    assert await contact_tags(engine, actors.tenant, world.contact) == ["vip"]


# -- contacts.assign_to_ticket -----------------------------------------------------------------------------------


async def test_assign_to_ticket_sets_only_the_contact(engine, actors: Actors, world: ContactWorld, invoke):
    t = actors.tenant
    raw = {
        "contact_id": str(world.contact),
        "ticket_id": str(world.ticket),
        "reason": "caller",
        "comment": "from phone",
    }
    result = await invoke("contacts.assign_to_ticket", raw)
    assert result.output == {
        "ticket_id": str(world.ticket),
        "previous_contact_id": None,
        "current_contact_id": str(world.contact),
    }
    client = await execute(
        engine, t, "SELECT client_id FROM tickets WHERE tenant = :t AND ticket_id = :k", k=world.ticket
    )
    assert client == world.client
    colleague = await new_contact(engine, t, world.client, full_name="Colleague")
    moved = await invoke(
        "contacts.assign_to_ticket", {"contact_id": str(colleague.contact_name_id), "ticket_id": str(world.ticket)}
    )
    assert (moved.output["previous_contact_id"], moved.output["current_contact_id"]) == (
        str(world.contact),
        str(colleague.contact_name_id),
    )
    [first, _] = await audits(engine, t, "contacts.assign_to_ticket")
    assert first.changed_data == result.output
    assert (first.details["reason"], first.details["comment"]) == ("caller", "from phone")


async def test_assign_to_ticket_requires_the_ticket_client(engine, actors: Actors, world: ContactWorld, fails):
    outsider = await new_contact(engine, actors.tenant, world.other_client, full_name="Outsider")
    info = await fails(
        "contacts.assign_to_ticket", {"contact_id": str(outsider.contact_name_id), "ticket_id": str(world.ticket)}
    )
    assert (info.code, info.message, info.details["field"]) == (
        "VALIDATION_ERROR",
        "Contact must belong to the ticket client",
        "contact_id",
    )
    assert (
        await execute(
            engine,
            actors.tenant,
            "SELECT contact_name_id FROM tickets WHERE tenant = :t AND ticket_id = :k",
            k=world.ticket,
        )
        is None
    )
    missing = await fails(
        "contacts.assign_to_ticket", {"contact_id": str(uuid.uuid4()), "ticket_id": str(world.ticket)}
    )
    assert (missing.code, missing.message) == ("NOT_FOUND", "Contact not found")


async def test_assign_to_ticket_needs_ticket_update_permission_first(
    engine, actors: Actors, world: ContactWorld, fails
):
    info = await fails(
        "contacts.assign_to_ticket",
        {"contact_id": str(world.contact), "ticket_id": str(world.ticket)},
        actor=actors.nobody,
    )
    assert info.details == {"resource": "ticket", "action": "update"}


# -- contacts.add_note -------------------------------------------------------------------------------------------


async def test_add_note_creates_the_document_once_then_appends(engine, actors: Actors, world: ContactWorld, invoke):
    t = actors.tenant
    first = await invoke("contacts.add_note", {"contact_id": str(world.contact), "body": "Prefers  email\n  replies"})
    second = await invoke("contacts.add_note", {"contact_id": str(world.contact), "body": "Called back"})
    assert (first.output["created_document"], second.output["created_document"]) == (True, False)
    assert first.output["document_id"] == second.output["document_id"]
    assert second.output["updated_at"].endswith("Z")
    document_id = uuid.UUID(first.output["document_id"])
    async with engine.connect() as conn:
        blocks = await documents.read_note_blocks(conn, t, document_id)
    assert [b["content"][0]["text"] for b in blocks] == ["Prefers  email\n  replies", "Called back"]
    assert (
        await execute(
            engine, t, "SELECT document_name FROM documents WHERE tenant = :t AND document_id = :d", d=document_id
        )
        == "Grace Hopper Notes"
    )
    assert await count(engine, "interactions WHERE tenant = :t", t=t) == 0
    [event] = await events(engine, t, "NOTE_CREATED")
    assert event.idempotency_key == f"note_created:contact:{world.contact}:{document_id}"
    assert (event.payload["entityType"], event.payload["bodyPreview"], event.payload["visibility"]) == (
        "contact",
        "Prefers email replies",
        "internal",
    )
    assert [a.changed_data["created_document"] for a in await audits(engine, t, "contacts.add_note")] == [True, False]


async def test_add_note_validation(engine, actors: Actors, world: ContactWorld, fails):
    for body in ("", "   ", None):
        info = await fails("contacts.add_note", {"contact_id": str(world.contact), "body": body})
        assert info.code == "VALIDATION_ERROR"
        assert "input.body" in field_paths(info)
    await nothing_written(engine, actors.tenant, "contacts.add_note")


# -- contacts.add_interaction ------------------------------------------------------------------------------------


async def test_add_interaction_logs_it_for_the_actor(engine, actors: Actors, world: ContactWorld, invoke):
    t = actors.tenant
    result = await invoke(
        "contacts.add_interaction",
        {
            "contact_id": str(world.contact),
            "interaction_type_id": str(CALL_TYPE),
            "title": " Intro call ",
            "ticket_id": str(world.ticket),
            "notes": "went well",
            "start_time": "2026-03-01T10:00:00Z",
            "end_time": "2026-03-01T10:30:00Z",
        },
    )
    out = result.output
    default_status = await execute(
        engine, t, "SELECT status_id FROM statuses WHERE tenant = :t AND status_type = 'interaction' AND is_default"
    )
    assert (out["contact_id"], out["client_id"], out["ticket_id"], out["user_id"]) == (
        str(world.contact),
        str(world.client),
        str(world.ticket),
        str(actors.admin),
    )
    assert (out["interaction_type_id"], out["status_id"], out["title"], out["duration"]) == (
        str(CALL_TYPE),
        str(default_status),
        "Intro call",
        30,
    )
    assert (out["interaction_date"], out["start_time"]) == ("2026-03-01T10:00:00.000000Z",) * 2
    [event] = await events(engine, t, "INTERACTION_LOGGED")
    assert event.idempotency_key == f"interaction_logged:{out['interaction_id']}"
    assert (event.payload["contactId"], event.payload["interactionType"], event.payload["channel"]) == (
        str(world.contact),
        "Call",
        "phone",
    )
    [audit] = await audits(engine, t, "contacts.add_interaction")
    assert audit.changed_data == {
        "interaction_id": out["interaction_id"],
        "contact_id": str(world.contact),
        "client_id": str(world.client),
        "ticket_id": str(world.ticket),
        "type_id": str(CALL_TYPE),
    }


async def test_add_interaction_refusals(engine, actors: Actors, world: ContactWorld, fails):
    t = actors.tenant
    unassigned = await fails(
        "contacts.add_interaction",
        {"contact_id": str(world.loose), "interaction_type_id": str(CALL_TYPE), "title": "Call"},
    )
    assert (unassigned.code, unassigned.message) == (
        "VALIDATION_ERROR",
        "Contact must be assigned to a client before logging interactions",
    )
    foreign_ticket = await new_ticket(engine, t, client_id=world.other_client)
    mismatch = await fails(
        "contacts.add_interaction",
        {
            "contact_id": str(world.contact),
            "interaction_type_id": str(CALL_TYPE),
            "title": "Call",
            "ticket_id": str(foreign_ticket.ticket_id),
        },
    )
    assert (mismatch.code, mismatch.details["field"]) == ("VALIDATION_ERROR", "ticket_id")
    status = await fails(
        "contacts.add_interaction",
        {
            "contact_id": str(world.contact),
            "title": "Call",
            "interaction_type_id": str(CALL_TYPE),
            "status_id": str(uuid.uuid4()),
        },
    )
    assert (status.code, status.message) == ("NOT_FOUND", "Interaction status not found")
    unknown_type = await fails(
        "contacts.add_interaction",
        {"contact_id": str(world.contact), "title": "Call", "interaction_type_id": str(uuid.uuid4())},
    )
    assert (unknown_type.code, unknown_type.details["field"]) == ("NOT_FOUND", "interaction_type_id")
    assert await count(engine, "interactions WHERE tenant = :t", t=t) == 0
    assert [r.status for r in await ledger(engine, t, "contacts.add_interaction")] == ["FAILED"] * 4


@pytest.mark.parametrize(
    ("extra", "path"),
    [
        ({"title": "  "}, "input.title"),
        ({"duration": -1}, "input.duration"),
        ({"start_time": "2026-03-01T10:00:00+02:00"}, "input.start_time"),
        ({"interaction_type_id": "call"}, "input.interaction_type_id"),
        ({"duration": 2**31}, "input.duration"),
    ],
)
async def test_add_interaction_validation(engine, actors: Actors, world: ContactWorld, fails, extra, path):
    raw = {"contact_id": str(world.contact), "interaction_type_id": str(CALL_TYPE), "title": "Call", **extra}
    info = await fails("contacts.add_interaction", raw)
    assert info.code == "VALIDATION_ERROR"
    assert path in field_paths(info)
    await nothing_written(engine, actors.tenant, "contacts.add_interaction")


async def test_add_interaction_ending_too_long_after_it_starts_names_end_time(
    engine, actors: Actors, world: ContactWorld, fails
):
    info = await fails(
        "contacts.add_interaction",
        {
            "contact_id": str(world.contact),
            "interaction_type_id": str(CALL_TYPE),
            "title": "Call",
            "start_time": "2026-03-01T10:00:00Z",
            "end_time": "9999-12-31T23:59:59Z",
        },
    )
    assert (info.category, info.code, info.details["field"]) == ("ValidationError", "VALIDATION_ERROR", "end_time")
    assert await count(engine, "interactions WHERE tenant = :t", t=actors.tenant) == 0
    assert await audits(engine, actors.tenant, "contacts.add_interaction") == []


# -- contacts.add_to_client / contacts.move_to_client ------------------------------------------------------------


async def test_add_to_client_assigns_once_and_refuses_another_client(
    engine, actors: Actors, world: ContactWorld, invoke, fails
):
    t = actors.tenant
    raw = {"contact_id": str(world.loose), "client_id": str(world.client)}
    added = await invoke("contacts.add_to_client", raw)
    assert {k: v for k, v in added.output.items() if k != "contact"} == {
        "contact_id": str(world.loose),
        "previous_client_id": None,
        "current_client_id": str(world.client),
        "noop": False,
    }
    assert added.output["contact"]["client_id"] == str(world.client)
    again = await invoke("contacts.add_to_client", raw, idempotency_key="again")
    assert (again.replayed, again.output["noop"], again.output["previous_client_id"]) == (
        False,
        True,
        str(world.client),
    )
    assert [a.changed_data["noop"] for a in await audits(engine, t, "contacts.add_to_client")] == [False, True]
    info = await fails("contacts.add_to_client", {"contact_id": str(world.loose), "client_id": str(world.other_client)})
    assert (info.code, info.message) == (
        "CONFLICT",
        "Contact is already assigned to a different client; use contacts.move_to_client",
    )
    assert info.details == {
        "contact_id": str(world.loose),
        "previous_client_id": str(world.client),
        "requested_client_id": str(world.other_client),
    }
    assert (await get_contact(engine, t, world.loose)).client_id == world.client


async def test_move_to_client_with_and_without_guard(engine, actors: Actors, world: ContactWorld, invoke):
    t = actors.tenant
    moved = await invoke(
        "contacts.move_to_client",
        {
            "contact_id": str(world.contact),
            "target_client_id": str(world.other_client),
            "expected_current_client_id": str(world.client),
        },
    )
    assert (moved.output["previous_client_id"], moved.output["current_client_id"], moved.output["noop"]) == (
        str(world.client),
        str(world.other_client),
        False,
    )
    assert (await get_contact(engine, t, world.contact)).client_id == world.other_client
    noop = await invoke(
        "contacts.move_to_client", {"contact_id": str(world.contact), "target_client_id": str(world.other_client)}
    )
    assert noop.output["noop"] is True
    unassigned = await invoke(
        "contacts.move_to_client",
        {"contact_id": str(world.loose), "target_client_id": str(world.client), "expected_current_client_id": None},
    )
    assert (unassigned.output["previous_client_id"], unassigned.output["noop"]) == (None, False)
    [audit, *_] = await audits(engine, t, "contacts.move_to_client")
    assert audit.details["expected_current_client_id"] == str(world.client)


async def test_move_guard_mismatch_names_the_field_and_changes_nothing(
    engine, actors: Actors, world: ContactWorld, fails
):
    t = actors.tenant
    for guard in (str(world.other_client), None):
        info = await fails(
            "contacts.move_to_client",
            {
                "contact_id": str(world.contact),
                "target_client_id": str(world.other_client),
                "expected_current_client_id": guard,
            },
        )
        assert (info.category, info.code) == ("ActionError", "CONFLICT")
        assert info.message == "Contact current client did not match expected_current_client_id"
        assert (info.details["field"], field_paths(info)) == (
            "expected_current_client_id",
            ["expected_current_client_id"],
        )
        assert (info.details["expected_current_client_id"], info.details["actual_current_client_id"]) == (
            guard,
            str(world.client),
        )
    assert (await get_contact(engine, t, world.contact)).client_id == world.client
    assert await audits(engine, t, "contacts.move_to_client") == []


async def test_move_guard_sees_a_concurrent_move(engine, actors: Actors, world: ContactWorld, invoke):
    """The guard is checked against the contact as it is once locked, not against a stale read: a move that
    commits first makes the guarded move fail instead of being overwritten."""
    t = actors.tenant
    target = await new_client(engine, t, f"Initech {uuid.uuid4().hex[:6]}")
    async with tenant_transaction(engine, t) as conn:  # a concurrent move holding the row
        await conn.execute(
            text("UPDATE contacts SET client_id = :o WHERE tenant = :t AND contact_name_id = :c"),
            {"t": t, "o": world.other_client, "c": world.contact},
        )
        guarded = asyncio.ensure_future(
            invoke(
                "contacts.move_to_client",
                {
                    "contact_id": str(world.contact),
                    "target_client_id": str(target.client_id),
                    "expected_current_client_id": str(world.client),
                },
            )
        )
        await wait_until_blocked_on_a_lock(engine)
    with pytest.raises(ActionFailure) as caught:
        await guarded
    assert (caught.value.info.code, caught.value.info.details["actual_current_client_id"]) == (
        "CONFLICT",
        str(world.other_client),
    )
    assert (await get_contact(engine, t, world.contact)).client_id == world.other_client


async def test_concurrent_add_to_client_cannot_take_an_assigned_contact(
    engine, actors: Actors, world: ContactWorld, invoke
):
    t = actors.tenant
    async with tenant_transaction(engine, t) as conn:
        await conn.execute(
            text("UPDATE contacts SET client_id = :o WHERE tenant = :t AND contact_name_id = :c"),
            {"t": t, "o": world.other_client, "c": world.loose},
        )
        added = asyncio.ensure_future(
            invoke("contacts.add_to_client", {"contact_id": str(world.loose), "client_id": str(world.client)})
        )
        await wait_until_blocked_on_a_lock(engine)
    with pytest.raises(ActionFailure) as caught:
        await added
    assert caught.value.info.code == "CONFLICT"
    assert (await get_contact(engine, t, world.loose)).client_id == world.other_client


@pytest.mark.parametrize("action_id", ["contacts.add_to_client", "contacts.move_to_client"])
async def test_client_moves_validation(engine, actors: Actors, world: ContactWorld, fails, action_id):
    info = await fails(action_id, {"contact_id": str(world.contact)})
    assert info.code == "VALIDATION_ERROR"
    assert field_paths(info) == [
        "input.client_id" if action_id == "contacts.add_to_client" else "input.target_client_id"
    ]
    await nothing_written(engine, actors.tenant, action_id)
