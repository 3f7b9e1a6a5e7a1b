"""The crm.* activity actions and crm.complete_activity (docs/actions.md) through the real runtime and
database: success (rows, output, audit, outbox events), idempotent replay, permission denied with nothing
written, another tenant's ids, and each validation rule."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from psa.automation.catalog import build_catalog
from psa.db.engine import tenant_transaction
from psa.domain import interactions
from tests.factories import Actors, add_user, new_client, new_contact, new_ticket, set_tenant_timezone
from tests.helpers import audits, count, events, field_paths, ledger, nothing_written, rows

CALL = uuid.UUID("8e36ee4d-d124-5e40-8076-5d9b3b587fc1")  # system interaction types (migration 0003)
MEETING = uuid.UUID("933a78c3-f69c-5ae9-98cc-73480fb3a89a")
NOTE = uuid.UUID("1af97a91-1713-5a9a-a018-72d449958989")


def iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def days(n: float) -> str:
    return iso(datetime.now(UTC) + timedelta(days=n))


async def status_id(engine, tenant: uuid.UUID, name: str) -> uuid.UUID:
    [(found,)] = await rows(
        engine,
        "SELECT status_id FROM statuses WHERE tenant = :t AND status_type = 'interaction' AND name = :n",
        t=tenant,
        n=name,
    )
    return found


async def log(engine, tenant: uuid.UUID, actor: uuid.UUID, **kwargs: Any) -> interactions.Interaction:
    """An interaction written through the domain model (type Call unless given)."""
    kwargs.setdefault("type_id", CALL)
    kwargs.setdefault("title", "Call")
    async with tenant_transaction(engine, tenant) as conn:
        return await interactions.create_interaction(conn, tenant, user_id=actor, **kwargs)


async def scheduled(invoke, client_id: uuid.UUID, **extra: Any) -> dict:
    raw = {"client_id": str(client_id), "type_id": str(CALL), "title": "Follow up", "start_time": days(2), **extra}
    return (await invoke("crm.schedule_activity", raw)).output["activity"]


# -- registration ----------------------------------------------------------------------------------------------

EXPECTED = {
    # id: (label, side_effectful, idempotency, static permissions)
    "crm.create_activity_note": ("Create Activity Note", True, "engine", []),
    "crm.find_activities": ("Find CRM Activities", False, "engine", ["client:read"]),
    "crm.update_activity": ("Update CRM Activity", True, "engine", ["client:update"]),
    "crm.schedule_activity": ("Schedule CRM Activity", True, "action", ["client:update"]),
    "crm.create_interaction_type": ("Create Activity Type", True, "action", ["settings:update"]),
    "crm.update_activity_status": ("Update Activity Status", True, "engine", ["client:update"]),
    "crm.tag_activity": ("Tag CRM Activity", True, "action", ["interaction:update"]),
    "crm.complete_activity": ("Complete CRM Activity", True, "engine", ["client:update"]),
    "crm.send_quote": ("Send Quote", True, "engine", ["billing:read", "billing:update"]),
    "crm.create_quote": ("Create Quote", True, "action", ["billing:create", "billing:read"]),
    "crm.add_quote_item": ("Add Quote Item", True, "action", ["billing:update", "billing:read"]),
    "crm.find_quotes": ("Find Quotes", False, "engine", ["billing:read"]),
    "crm.submit_quote_for_approval": ("Submit Quote for Approval", True, "engine", ["billing:read", "billing:update"]),
}


def test_registers_the_crm_actions_as_specified(registry):
    registered = [a for a in registry.list() if a.id.startswith("crm.")]
    assert [a.id for a in registered] == list(EXPECTED)
    ids = [a.id for a in registry.list()]
    assert ids.index("crm.create_activity_note") > ids.index("clients.add_interaction")  # after clients
    for action in registered:
        meta = action.meta()
        label, side_effectful, mode, permissions = EXPECTED[action.id]
        assert (meta["version"], meta["ui"]["label"], meta["ui"]["category"]) == (1, label, "Business Operations")
        assert (meta["side_effectful"], meta["idempotency"]["mode"], meta["permissions"]) == (
            side_effectful,
            mode,
            permissions,
        )
        assert ("idempotency_key" in meta["input_schema"]["properties"]) == (mode == "action")
    [crm] = [record for record in build_catalog(registry) if record.group_key == "crm"]
    labels = [label for label, *_ in EXPECTED.values()]
    assert [a.label for a in crm.actions] == sorted(labels, key=str.casefold)  # the designer's CRM group
    schema = registry.get("crm.find_activities", 1).input_schema()
    assert schema["properties"]["contact_id"]["x-workflow-picker-dependencies"] == ["client_id"]
    assert schema["properties"]["user_id"]["x-workflow-picker-kind"] == "user"


# -- crm.create_activity_note --------------------------------------------------------------------------------


async def test_create_activity_note_for_each_target(engine, actors: Actors, invoke):
    t = actors.tenant
    acme = await new_client(engine, t, "Acme Notes")
    grace = await new_contact(engine, t, acme.client_id)
    ticket = await new_ticket(engine, t, client_id=acme.client_id, contact_id=grace.contact_name_id)

    target = {"type": "client", "id": str(acme.client_id)}
    raw = {"target": target, "body": "Renewal call went well", "tags": ["renewal"]}
    on_client = await invoke("crm.create_activity_note", raw)
    out = on_client.output
    assert out["target_summary"] == {"client_id": str(acme.client_id), "client_name": "Acme Notes"}
    assert (out["target_type"], out["target_id"]) == ("client", str(acme.client_id))
    assert out["created_at"].endswith("Z")
    [note] = await rows(
        engine, "SELECT * FROM interactions WHERE tenant = :t AND interaction_id = :i", t=t, i=out["note_id"]
    )
    assert (note.type_id, note.title, note.notes, note.status_id, note.duration) == (
        NOTE,
        "Note",
        "Renewal call went well",
        None,
        0,
    )
    assert (note.user_id, note.client_id, note.visibility, note.tags) == (
        actors.admin,
        acme.client_id,
        "internal",
        ["renewal"],
    )

    on_ticket = await invoke(
        "crm.create_activity_note",
        {
            "target": {"type": "ticket", "id": str(ticket.ticket_id)},
            "body": "Escalated",
            "category": "Escalation",
            "visibility": "client_visible",
        },
    )
    [row] = await rows(
        engine,
        "SELECT * FROM interactions WHERE tenant = :t AND interaction_id = :i",
        t=t,
        i=on_ticket.output["note_id"],
    )
    assert (row.ticket_id, row.client_id, row.contact_name_id) == (
        ticket.ticket_id,
        acme.client_id,
        grace.contact_name_id,
    )
    assert (row.title, row.category, row.visibility) == ("Escalation", "Escalation", "client_visible")
    assert on_ticket.output["target_summary"]["ticket_number"] == ticket.ticket_number

    blank_category = await invoke("crm.create_activity_note", {"target": target, "body": "x", "category": "  "})
    [(title,)] = await rows(
        engine,
        "SELECT title FROM interactions WHERE tenant = :t AND interaction_id = :i",
        t=t,
        i=blank_category.output["note_id"],
    )
    assert title == "Note"  # a blank category is no title

    contact_target = {"type": "contact", "id": str(grace.contact_name_id)}
    on_contact = await invoke("crm.create_activity_note", {"target": contact_target, "body": "Hi"})
    assert on_contact.output["target_summary"]["full_name"] == "Grace Hopper"
    [audit, *_] = await audits(engine, t, "crm.create_activity_note")
    assert audit.changed_data == {
        "interaction_id": out["note_id"],
        "target": {"type": "client", "id": str(acme.client_id)},
    }
    assert audit.details["note_id"] == out["note_id"]
    assert await events(engine, t) == []  # no event for notes


async def test_create_activity_note_replay_permissions_and_tenants(
    engine, actors: Actors, other: Actors, invoke, fails
):
    t = actors.tenant
    acme = await new_client(engine, t)
    raw = {"target": {"type": "client", "id": str(acme.client_id)}, "body": "Once"}
    first, second = await invoke("crm.create_activity_note", raw), await invoke("crm.create_activity_note", raw)
    assert second.replayed
    assert second.output == first.output
    assert await count(engine, "interactions WHERE tenant = :t AND type_id = :n", t=t, n=NOTE) == 1

    ticket = await new_ticket(engine, t, client_id=acme.client_id)
    denied = await fails(
        "crm.create_activity_note",
        {"target": {"type": "ticket", "id": str(ticket.ticket_id)}, "body": "x"},
        actor=actors.nobody,
    )
    assert (denied.code, denied.message) == ("PERMISSION_DENIED", "Permission denied: ticket:update")
    # the technician may update tickets but not clients: the permission follows the target type
    on_ticket = {"target": {"type": "ticket", "id": str(ticket.ticket_id)}, "body": "ok"}
    assert (await invoke("crm.create_activity_note", on_ticket, actor=actors.technician)).output["note_id"]
    denied = await fails("crm.create_activity_note", raw | {"body": "again"}, actor=actors.technician)
    assert denied.message == "Permission denied: client:update"

    foreign = await new_client(engine, other.tenant)
    missing = await fails(
        "crm.create_activity_note", {"target": {"type": "client", "id": str(foreign.client_id)}, "body": "x"}
    )
    assert (missing.code, missing.message) == ("NOT_FOUND", "Client not found")
    project = await fails(
        "crm.create_activity_note", {"target": {"type": "project", "id": str(uuid.uuid4())}, "body": "x"}
    )
    assert (project.code, project.message) == ("NOT_FOUND", "Project not found")
    assert await count(engine, "interactions WHERE tenant = :t", t=other.tenant) == 0


async def test_denied_notes_and_types_write_nothing(engine, actors: Actors, fails):
    t = actors.tenant
    acme = await new_client(engine, t)
    note = {"target": {"type": "client", "id": str(acme.client_id)}, "body": "x"}
    assert (await fails("crm.create_activity_note", note, actor=actors.technician)).code == "PERMISSION_DENIED"
    await nothing_written(engine, t, "crm.create_activity_note")
    assert (await fails("crm.create_interaction_type", {"type_name": "Visit"}, actor=actors.nobody)).code == (
        "PERMISSION_DENIED"
    )
    await nothing_written(engine, t, "crm.create_interaction_type")
    assert await count(engine, "interactions WHERE tenant = :t", t=t) == 0
    assert await count(engine, "interaction_types WHERE tenant = :t", t=t) == 0


@pytest.mark.parametrize(
    ("raw", "path", "message"),
    [
        (
            {"target": {"type": "project", "id": str(uuid.uuid4())}, "body": "x", "visibility": "client_visible"},
            "input.visibility",
            "client_visible notes are not supported for project targets",
        ),
        ({"target": {"type": "client", "id": str(uuid.uuid4())}, "body": "   "}, "input.body", "must not be blank"),
        ({"target": {"type": "invoice", "id": str(uuid.uuid4())}, "body": "x"}, "input.target.type", None),
        ({"body": "x"}, "input.target", None),
    ],
)
async def test_create_activity_note_validation(engine, actors: Actors, fails, raw, path, message):
    info = await fails("crm.create_activity_note", raw)
    assert info.code == "VALIDATION_ERROR"
    assert path in field_paths(info)
    if message:
        assert message in info.message
    await nothing_written(engine, actors.tenant, "crm.create_activity_note")


# -- crm.find_activities -------------------------------------------------------------------------------------


async def test_find_activities_filters_pages_and_on_empty(engine, actors: Actors, invoke, fails):
    t = actors.tenant
    acme, globex = await new_client(engine, t, "Acme Find"), await new_client(engine, t, "Globex Find")
    grace = await new_contact(engine, t, acme.client_id)
    base = datetime(2026, 3, 1, 12, tzinfo=UTC)
    made = [
        await log(
            engine,
            t,
            actors.admin,
            client_id=acme.client_id,
            interaction_date=base + timedelta(days=i),
            notes="  lots   of\n notes " * 20,
        )
        for i in range(5)
    ]
    same_time = await log(
        engine,
        t,
        actors.admin,
        client_id=acme.client_id,
        interaction_date=base + timedelta(days=2),
        contact_id=grace.contact_name_id,
        type_id=MEETING,
    )
    await log(engine, t, actors.technician, client_id=globex.client_id, interaction_date=base)

    window = {
        "client_id": str(acme.client_id),
        "date_from": iso(base + timedelta(days=1)),
        "date_to": iso(base + timedelta(days=3)),
        "limit": 2,
    }
    page1 = (await invoke("crm.find_activities", window)).output
    page2 = (await invoke("crm.find_activities", window | {"page": 2})).output
    listed = [a["activity_id"] for a in page1["activities"] + page2["activities"]]
    ties = sorted([str(made[2].interaction_id), str(same_time.interaction_id)], reverse=True)
    assert listed == [str(made[3].interaction_id), *ties, str(made[1].interaction_id)]  # newest first, ties by id
    assert (page1["count"], page1["pagination"], page2["pagination"]["has_more"]) == (
        2,
        {"page": 1, "limit": 2, "has_more": True},
        False,
    )
    assert page1["matched_filters"]["client_id"] == str(acme.client_id)
    assert page1["matched_filters"]["contact_id"] is None
    assert page1["matched_filters"]["limit"] == 2
    first = page1["activities"][0]
    assert (first["client_name"], first["type_name"], first["status_name"], first["user_name"]) == (
        "Acme Find",
        "Call",
        "Planned",
        "Test Admin",
    )
    assert first["notes_preview"].startswith("lots of notes lots")
    assert len(first["notes_preview"]) == 181
    assert first["notes_preview"].endswith("…")
    assert first["state"] == "overdue"

    by_contact = (await invoke("crm.find_activities", {"contact_id": str(grace.contact_name_id)})).output
    assert [a["activity_id"] for a in by_contact["activities"]] == [str(same_time.interaction_id)]
    assert by_contact["activities"][0]["contact_name"] == "Grace Hopper"
    by_user = (await invoke("crm.find_activities", {"user_id": str(actors.technician)})).output
    assert [a["client_name"] for a in by_user["activities"]] == ["Globex Find"]
    planned = await status_id(engine, t, "Planned")
    by_type = (await invoke("crm.find_activities", {"type_id": str(MEETING), "status_id": str(planned)})).output
    assert [a["activity_id"] for a in by_type["activities"]] == [str(same_time.interaction_id)]

    nothing = {"client_id": str(globex.client_id), "date_from": iso(base + timedelta(days=10))}
    assert (await invoke("crm.find_activities", nothing)).output["activities"] == []
    info = await fails("crm.find_activities", nothing | {"on_empty": "error"})
    assert (info.code, info.message) == ("NOT_FOUND", "No CRM activities matched the supplied filters")


async def test_find_activities_replay_permissions_and_tenants(engine, actors: Actors, other: Actors, invoke, fails):
    t = actors.tenant
    acme = await new_client(engine, t)
    await log(engine, t, actors.admin, client_id=acme.client_id)
    first = await invoke("crm.find_activities", {"client_id": str(acme.client_id)})
    assert (await invoke("crm.find_activities", {"client_id": str(acme.client_id)})).replayed
    assert first.output["count"] == 1
    assert await audits(engine, t, "crm.find_activities") == []  # read-only

    denied = await fails("crm.find_activities", {"client_id": str(acme.client_id)}, actor=actors.nobody)
    assert (denied.code, denied.details) == ("PERMISSION_DENIED", {"resource": "client", "action": "read"})
    finance = await add_user(engine, t, "Finance")  # client:read and contact:read, but no ticket:read
    assert (await invoke("crm.find_activities", {"contact_id": str(uuid.uuid4())}, actor=finance)).output["count"] == 0
    denied = await fails(
        "crm.find_activities", {"client_id": str(acme.client_id), "ticket_id": str(uuid.uuid4())}, actor=finance
    )
    assert denied.message == "Permission denied: ticket:read"
    assert [r.status for r in await ledger(engine, t, "crm.find_activities")] == ["SUCCEEDED", "SUCCEEDED"]

    foreign = await new_client(engine, other.tenant)
    await log(engine, other.tenant, other.admin, client_id=foreign.client_id)
    info = await fails("crm.find_activities", {"client_id": str(foreign.client_id), "on_empty": "error"})
    assert info.code == "NOT_FOUND"


async def test_find_activities_takes_a_date_only_bound_as_a_whole_day_in_the_tenants_time_zone(
    engine, actors: Actors, invoke
):
    """docs/automation.md, "Dates": on Kolkata time (UTC+05:30), ``date_to`` 2026-03-02 includes 23:59:59.999
    local and excludes the next midnight; ``date_from`` starts at local midnight; the filters echo as given."""
    t = actors.tenant
    await set_tenant_timezone(engine, t, "Asia/Kolkata")
    acme = await new_client(engine, t)
    at = {  # local time -> UTC
        "before": datetime(2026, 3, 1, 18, 29, 59, 999000, tzinfo=UTC),  # 2026-03-01 23:59:59.999 local
        "first": datetime(2026, 3, 1, 18, 30, tzinfo=UTC),  # 2026-03-02 00:00 local
        "last": datetime(2026, 3, 2, 18, 29, 59, 999000, tzinfo=UTC),  # 2026-03-02 23:59:59.999 local
        "next": datetime(2026, 3, 2, 18, 30, tzinfo=UTC),  # 2026-03-03 00:00 local
    }
    for title, instant in at.items():
        await log(engine, t, actors.admin, client_id=acme.client_id, title=title, interaction_date=instant)

    async def found(**bounds: str) -> set[str]:
        page = (await invoke("crm.find_activities", {"client_id": str(acme.client_id), **bounds})).output
        return {a["title"] for a in page["activities"]}

    assert await found(date_to="2026-03-02") == {"before", "first", "last"}
    assert await found(date_from="2026-03-02") == {"first", "last", "next"}
    assert await found(date_from="2026-03-02", date_to="2026-03-02") == {"first", "last"}
    assert await found(date_to="2026-03-02T18:29:59.999Z") == {"before", "first", "last"}  # an instant as given
    assert await found(date_from="2026-03-02", date_to="2026-03-01T18:30:00Z") == {"first"}
    echoed = (
        await invoke(
            "crm.find_activities",
            {"client_id": str(acme.client_id), "date_from": "2026-03-02", "date_to": "2026-03-02T18:30:00Z"},
        )
    ).output["matched_filters"]
    assert (echoed["date_from"], echoed["date_to"]) == ("2026-03-02", "2026-03-02T18:30:00.000000Z")


@pytest.mark.parametrize(
    ("raw", "path", "message"),
    [
        ({}, "input", "At least one filter or date range is required"),
        ({"limit": 10}, "input", "At least one filter or date range is required"),
        (
            {"date_from": "2026-03-02T00:00:00Z", "date_to": "2026-03-01T00:00:00Z"},
            "input.date_from",
            "date_from must be less than or equal to date_to",
        ),
        ({"date_from": "2026-03-02T00:00:00+02:00"}, "input.date_from", "ending in Z"),
        ({"date_from": "2026-03-02", "date_to": "2026-03-01"}, "input.date_from", "less than or equal to date_to"),
        ({"date_to": "2026-02-30"}, "input.date_to", "must be a calendar date YYYY-MM-DD"),
        ({"client_id": str(uuid.uuid4()), "limit": 201}, "input.limit", None),
        ({"client_id": str(uuid.uuid4()), "page": 0}, "input.page", None),
        ({"client_id": str(uuid.uuid4()), "on_empty": "explode"}, "input.on_empty", None),
    ],
)
async def test_find_activities_validation(engine, actors: Actors, fails, raw, path, message):
    info = await fails("crm.find_activities", raw)
    assert info.code == "VALIDATION_ERROR"
    assert path in field_paths(info)
    if message:
        assert message in info.message
    await nothing_written(engine, actors.tenant, "crm.find_activities")


# -- crm.update_activity -------------------------------------------------------------------------------------


async def test_update_activity_patches_and_diffs(engine, actors: Actors, invoke):
    t = actors.tenant
    acme = await new_client(engine, t)
    activity = await log(engine, t, actors.admin, client_id=acme.client_id, notes="old notes", category="Sales")
    done = await status_id(engine, t, "Completed")
    raw = {
        "activity_id": str(activity.interaction_id),
        "reason": "call happened",
        "patch": {
            "title": "Call with CFO",
            "notes": "old   notes",
            "status_id": str(done),
            "category": None,
            "tags": ["vip"],
            "type_id": str(MEETING),
        },
    }
    result = await invoke("crm.update_activity", raw)
    out = result.output
    assert out["changed_fields"] == ["category", "status_id", "tags", "title", "type_id"]  # notes preview unchanged
    assert (out["activity_before"]["title"], out["activity_after"]["title"]) == ("Call", "Call with CFO")
    assert (out["activity_after"]["status_name"], out["activity_after"]["type_name"]) == ("Completed", "Meeting")
    assert out["activity_after"]["category"] is None
    assert out["activity_after"]["tags"] == ["vip"]
    [row] = await rows(
        engine, "SELECT * FROM interactions WHERE tenant = :t AND interaction_id = :i", t=t, i=activity.interaction_id
    )
    assert (row.notes, row.status_id, row.category) == ("old   notes", done, None)
    [audit] = await audits(engine, t, "crm.update_activity")
    assert audit.changed_data["reason"] == "call happened"
    assert audit.changed_data["before"] == {
        "status_id": str(activity.status_id),
        "type_id": str(CALL),
        "title": "Call",
        "visibility": "internal",
        "category": "Sales",
    }
    assert audit.changed_data["after"]["type_id"] == str(MEETING)
    assert await events(engine, t) == []  # no event

    replay = await invoke("crm.update_activity", raw)
    assert replay.replayed
    assert replay.output == out


async def test_update_activity_permissions_tenants_and_rules(engine, actors: Actors, other: Actors, fails):
    t = actors.tenant
    acme = await new_client(engine, t)
    start = datetime(2026, 3, 1, 10, tzinfo=UTC)
    activity = await log(
        engine, t, actors.admin, client_id=acme.client_id, start_time=start, end_time=start + timedelta(hours=1)
    )
    raw = {"activity_id": str(activity.interaction_id), "patch": {"title": "New"}}
    denied = await fails("crm.update_activity", raw, actor=actors.technician)  # client:read only
    assert (denied.code, denied.message) == ("PERMISSION_DENIED", "Permission denied: client:update")
    await nothing_written(engine, t, "crm.update_activity")

    foreign = await log(engine, other.tenant, other.admin, client_id=(await new_client(engine, other.tenant)).client_id)
    missing = await fails("crm.update_activity", {"activity_id": str(foreign.interaction_id), "patch": {"title": "x"}})
    assert (missing.code, missing.message, missing.details) == (
        "NOT_FOUND",
        "Activity not found",
        {"activity_id": str(foreign.interaction_id)},
    )

    bad_status = await fails("crm.update_activity", raw | {"patch": {"status_id": str(uuid.uuid4())}})
    assert (bad_status.code, bad_status.message) == (
        "VALIDATION_ERROR",
        "status_id is not a valid interaction status for this tenant",
    )
    other_status = await status_id(engine, other.tenant, "Completed")  # another tenant's status is not valid either
    foreign_status = await fails("crm.update_activity", raw | {"patch": {"status_id": str(other_status)}})
    assert foreign_status.message == "status_id is not a valid interaction status for this tenant"
    bad_type = await fails("crm.update_activity", raw | {"patch": {"type_id": str(uuid.uuid4())}})
    assert bad_type.message == "type_id is not a valid interaction type id for this tenant"
    late_start = await fails("crm.update_activity", raw | {"patch": {"start_time": iso(start + timedelta(hours=2))}})
    assert late_start.message == "start_time must be less than or equal to end_time"
    [row] = await rows(
        engine,
        "SELECT title, start_time FROM interactions WHERE tenant = :t AND interaction_id = :i",
        t=t,
        i=activity.interaction_id,
    )
    assert (row.title, row.start_time) == ("Call", start)  # nothing partial


@pytest.mark.parametrize(
    ("patch", "path"),
    [
        ({}, "input.patch"),
        ({"title": ""}, "input.patch.title"),
        ({"title": None}, "input.patch.title"),
        ({"visibility": "public"}, "input.patch.visibility"),
        ({"duration": -1}, "input.patch.duration"),
        ({"interaction_date": "yesterday"}, "input.patch.interaction_date"),
        ({"tags": ["bad|tag"]}, "input.patch.tags.0"),
    ],
)
async def test_update_activity_validation(engine, actors: Actors, fails, patch, path):
    info = await fails("crm.update_activity", {"activity_id": str(uuid.uuid4()), "patch": patch})
    assert info.code == "VALIDATION_ERROR"
    assert path in field_paths(info)
    await nothing_written(engine, actors.tenant, "crm.update_activity")


# -- crm.schedule_activity -----------------------------------------------------------------------------------


async def test_schedule_activity_creates_a_follow_up_and_logs_it(engine, actors: Actors, invoke):
    t = actors.tenant
    acme = await new_client(engine, t, "Acme Schedule")
    grace = await new_contact(engine, t, acme.client_id)
    ticket = await new_ticket(engine, t, client_id=acme.client_id, contact_id=grace.contact_name_id)
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)
    raw = {
        "contact_id": str(grace.contact_name_id),
        "ticket_id": str(ticket.ticket_id),
        "type_id": str(CALL),
        "title": "Check the fix",
        "start_time": iso(start),
        "end_time": iso(start + timedelta(hours=1)),
        "assigned_user_id": str(actors.technician),
        "tags": ["follow-up"],
        "idempotency_key": "sched-1",
    }
    result = await invoke("crm.schedule_activity", raw)
    activity = result.output["activity"]
    assert (activity["client_id"], activity["contact_id"], activity["ticket_id"]) == (
        str(acme.client_id),
        str(grace.contact_name_id),
        str(ticket.ticket_id),
    )
    assert (activity["user_id"], activity["duration"], activity["status_name"], activity["state"]) == (
        str(actors.technician),
        60,
        "Planned",
        "planned",
    )
    assert activity["interaction_date"] == iso(start).replace("Z", ".000000Z")
    [event] = await events(engine, t, "INTERACTION_LOGGED")
    assert event.idempotency_key == f"interaction_logged:{activity['activity_id']}"
    payload = event.payload
    assert (payload["interactionOccurredAt"], payload["loggedByUserId"], payload["outcome"]) == (
        activity["interaction_date"],
        str(actors.technician),
        "Planned",
    )
    assert (payload["interactionType"], payload["channel"], payload["subject"]) == ("Call", "phone", "Check the fix")
    [audit] = await audits(engine, t, "crm.schedule_activity")
    assert audit.changed_data["assigned_user_id"] == str(actors.technician)
    assert audit.changed_data["duration"] == 60

    again = await invoke("crm.schedule_activity", raw)  # same idempotency_key: a replay
    assert again.replayed
    assert again.output == result.output
    assert await count(engine, "interactions WHERE tenant = :t", t=t) == 1
    assert len(await events(engine, t)) == 1

    default_owner = await scheduled(invoke, acme.client_id)
    assert (default_owner["user_id"], default_owner["duration"], default_owner["start_time"]) == (
        str(actors.admin),
        0,
        default_owner["end_time"],
    )


async def test_schedule_activity_permissions_tenants_and_rules(engine, actors: Actors, other: Actors, invoke, fails):
    t = actors.tenant
    acme, globex = await new_client(engine, t), await new_client(engine, t)
    grace = await new_contact(engine, t, acme.client_id)
    ada = await new_contact(engine, t, acme.client_id, full_name="Ada")
    ticket = await new_ticket(engine, t, client_id=acme.client_id, contact_id=grace.contact_name_id)
    base = {"type_id": str(CALL), "title": "Follow up", "start_time": days(1)}

    denied = await fails("crm.schedule_activity", base | {"client_id": str(acme.client_id)}, actor=actors.technician)
    assert denied.message == "Permission denied: client:update"
    await nothing_written(engine, t, "crm.schedule_activity")

    foreign = await new_client(engine, other.tenant)
    cases = [
        ({"client_id": str(foreign.client_id)}, "NOT_FOUND", "Client not found"),
        ({"contact_id": str(uuid.uuid4())}, "NOT_FOUND", "Contact not found"),
        (
            {"client_id": str(globex.client_id), "contact_id": str(grace.contact_name_id)},
            "VALIDATION_ERROR",
            "contact_id must belong to the selected client",
        ),
        (
            {"client_id": str(globex.client_id), "ticket_id": str(ticket.ticket_id)},
            "VALIDATION_ERROR",
            "ticket_id must belong to the selected client",
        ),
        (
            {"contact_id": str(ada.contact_name_id), "ticket_id": str(ticket.ticket_id)},
            "VALIDATION_ERROR",
            "ticket_id contact does not match the selected contact_id",
        ),
        (
            {"client_id": str(acme.client_id), "type_id": str(uuid.uuid4())},
            "VALIDATION_ERROR",
            "type_id is not a valid interaction type id for this tenant",
        ),
        (
            {"client_id": str(acme.client_id), "status_id": str(uuid.uuid4())},
            "VALIDATION_ERROR",
            "status_id is not a valid interaction status for this tenant",
        ),
        (
            {"client_id": str(acme.client_id), "assigned_user_id": str(other.admin)},
            "NOT_FOUND",
            "Assigned user not found",
        ),
    ]
    for extra, code, message in cases:
        info = await fails("crm.schedule_activity", base | extra)
        assert (info.code, info.message) == (code, message), extra
    assert await count(engine, "interactions WHERE tenant = :t", t=t) == 0
    assert await events(engine, t) == []
    assert await audits(engine, t, "crm.schedule_activity") == []


@pytest.mark.parametrize(
    ("extra", "path", "message"),
    [
        ({}, "input", "client_id or contact_id is required"),
        (
            {"client_id": str(uuid.uuid4()), "end_time": "2026-01-01T00:00:00Z"},
            "input.start_time",
            "start_time must be less than or equal to end_time",
        ),
        ({"client_id": str(uuid.uuid4()), "title": " "}, "input.title", None),
        ({"client_id": str(uuid.uuid4()), "start_time": None}, "input.start_time", None),
        ({"client_id": str(uuid.uuid4()), "duration": -5}, "input.duration", None),
    ],
)
async def test_schedule_activity_validation(engine, actors: Actors, fails, extra, path, message):
    raw = {"type_id": str(CALL), "title": "Follow up", "start_time": "2026-02-01T00:00:00Z", **extra}
    info = await fails("crm.schedule_activity", raw)
    assert info.code == "VALIDATION_ERROR"
    assert path in field_paths(info)
    if message:
        assert message in info.message
    await nothing_written(engine, actors.tenant, "crm.schedule_activity")


# -- computed state (beyond the reference) -------------------------------------------------------------------


async def test_state_is_overdue_today_or_planned_in_the_owners_time_zone(engine, actors: Actors, invoke):
    t = actors.tenant
    acme = await new_client(engine, t)
    overdue = await scheduled(invoke, acme.client_id, start_time=days(-2))
    planned = await scheduled(invoke, acme.client_id, start_time=days(2), title="Later")
    assert (overdue["state"], planned["state"]) == ("overdue", "planned")

    async with tenant_transaction(engine, t) as conn:
        await conn.execute(
            text("UPDATE users SET timezone = 'Pacific/Kiritimati' WHERE tenant = :t AND user_id = :u"),
            {"t": t, "u": actors.admin},
        )
        activity = await interactions.get_activity(conn, t, uuid.UUID(planned["activity_id"]))
    now = datetime(2026, 3, 10, 11, 0, tzinfo=UTC)  # 2026-03-11 01:00 in Kiritimati (UTC+14)
    due = activity.model_copy(update={"interaction_date": datetime(2026, 3, 11, 5, 0, tzinfo=UTC)})
    assert due.state(now) == "today"  # in UTC it would still be tomorrow
    assert due.model_copy(update={"user_timezone": None}).state(now) == "planned"
    assert due.model_copy(update={"user_timezone": "Not/AZone"}).state(now) == "planned"  # unknown zone: UTC
    assert due.state(datetime(2026, 3, 12, 0, 0, tzinfo=UTC)) == "overdue"
    assert due.model_copy(update={"status_id": None}).state(now) is None  # a note is nothing to do


async def test_state_and_duration_at_the_ends_of_the_calendar(engine, actors: Actors, invoke, fails):
    """Dates near 0001-01-01 and 9999-12-31 have no local day west / east of UTC: still a state, not a crash;
    a derived duration too long for its column names end_time."""
    t = actors.tenant
    acme = await new_client(engine, t)
    async with tenant_transaction(engine, t) as conn:
        for user, zone in ((actors.admin, "America/New_York"), (actors.technician, "Pacific/Kiritimati")):
            await conn.execute(
                text("UPDATE users SET timezone = :z WHERE tenant = :t AND user_id = :u"),
                {"t": t, "u": user, "z": zone},
            )
    ancient = await scheduled(invoke, acme.client_id, start_time="0001-01-01T00:00:00Z")
    future = await scheduled(
        invoke, acme.client_id, start_time="9999-12-31T23:59:59Z", title="Far", assigned_user_id=str(actors.technician)
    )
    assert (ancient["state"], future["state"]) == ("overdue", "planned")
    found = (await invoke("crm.find_activities", {"client_id": str(acme.client_id)})).output["activities"]
    assert [a["state"] for a in found] == ["planned", "overdue"]

    too_long = await fails(
        "crm.schedule_activity",
        {
            "client_id": str(acme.client_id),
            "type_id": str(CALL),
            "title": "Forever",
            "start_time": "0001-01-01T00:00:00Z",
            "end_time": "9999-12-31T23:59:59Z",
        },
    )
    assert too_long.code == "VALIDATION_ERROR"
    assert field_paths(too_long) == ["end_time"]
    assert await count(engine, "interactions WHERE tenant = :t", t=t) == 2


@pytest.mark.parametrize(
    ("action_id", "raw", "path"),
    [
        (
            "crm.create_activity_note",
            {"target": {"type": "client", "id": str(uuid.uuid4())}, "body": "x", "tags": ["a\x00"]},
            "input.tags.0",
        ),
        (
            "crm.schedule_activity",
            {
                "client_id": str(uuid.uuid4()),
                "type_id": str(CALL),
                "title": "x",
                "notes": "n\x00",
                "start_time": "2026-02-01T00:00:00Z",
            },
            "input.notes",
        ),
        (
            "crm.update_activity",
            {"activity_id": str(uuid.uuid4()), "patch": {"category": "\x00"}},
            "input.patch.category",
        ),
        (
            "crm.update_activity_status",
            {"activity_id": str(uuid.uuid4()), "status_name": "Done\x00"},
            "input.status_name",
        ),
        ("crm.create_interaction_type", {"type_name": "Visit\x00"}, "input.type_name"),
        ("crm.complete_activity", {"activity_id": str(uuid.uuid4()), "feedback": "\x00"}, "input.feedback"),
    ],
)
async def test_activity_text_with_nul_is_refused_naming_the_field(engine, actors: Actors, fails, action_id, raw, path):
    info = await fails(action_id, raw)
    assert info.code == "VALIDATION_ERROR"
    assert field_paths(info) == [path]
    await nothing_written(engine, actors.tenant, action_id)


# -- crm.update_activity_status ------------------------------------------------------------------------------


async def test_update_activity_status_by_id_or_name(engine, actors: Actors, invoke):
    t = actors.tenant
    activity = await log(engine, t, actors.admin, client_id=(await new_client(engine, t)).client_id)
    done = await status_id(engine, t, "Completed")
    by_name = await invoke(
        "crm.update_activity_status",
        {"activity_id": str(activity.interaction_id), "status_name": "  cOMPLETED ", "reason": "done"},
    )
    out = by_name.output
    assert (out["previous_status_name"], out["current_status_id"], out["current_status_name"], out["no_op"]) == (
        "Planned",
        str(done),
        "Completed",
        False,
    )
    assert out["activity"]["state"] == "done"
    [audit] = await audits(engine, t, "crm.update_activity_status")
    assert audit.changed_data == {
        "activity_id": str(activity.interaction_id),
        "previous_status_id": str(activity.status_id),
        "current_status_id": str(done),
        "reason": "done",
        "no_op": False,
    }

    same = await invoke(
        "crm.update_activity_status", {"activity_id": str(activity.interaction_id), "status_id": str(done)}
    )
    assert same.output["no_op"] is True
    assert same.output["current_status_id"] == str(done)
    updated_sql = "SELECT updated_at FROM interactions WHERE tenant = :t AND interaction_id = :i"
    [(updated_at,)] = await rows(engine, updated_sql, t=t, i=activity.interaction_id)
    replay = await invoke(
        "crm.update_activity_status", {"activity_id": str(activity.interaction_id), "status_id": str(done)}
    )
    assert replay.replayed
    assert replay.output == same.output
    forced = await invoke(
        "crm.update_activity_status",
        {"activity_id": str(activity.interaction_id), "status_id": str(done), "no_op_if_already_status": False},
    )
    assert forced.output["no_op"] is False
    [(touched,)] = await rows(engine, updated_sql, t=t, i=activity.interaction_id)
    assert touched > updated_at


async def test_update_activity_status_permissions_tenants_and_rules(engine, actors: Actors, other: Actors, fails):
    t = actors.tenant
    activity = await log(engine, t, actors.admin, client_id=(await new_client(engine, t)).client_id)
    raw = {"activity_id": str(activity.interaction_id), "status_name": "Completed"}
    assert (await fails("crm.update_activity_status", raw, actor=actors.nobody)).code == "PERMISSION_DENIED"
    await nothing_written(engine, t, "crm.update_activity_status")
    foreign = await log(engine, other.tenant, other.admin, client_id=(await new_client(engine, other.tenant)).client_id)
    assert (await fails("crm.update_activity_status", raw | {"activity_id": str(foreign.interaction_id)})).code == (
        "NOT_FOUND"
    )
    foreign_status = await status_id(engine, other.tenant, "Completed")
    for target in ({"status_name": "Archived"}, {"status_name": None, "status_id": str(foreign_status)}):
        info = await fails("crm.update_activity_status", raw | target)
        assert (info.code, info.message) == ("VALIDATION_ERROR", "Target interaction status was not found")
    [(status,)] = await rows(
        engine,
        "SELECT status_id FROM interactions WHERE tenant = :t AND interaction_id = :i",
        t=t,
        i=activity.interaction_id,
    )
    assert status == activity.status_id


@pytest.mark.parametrize(
    ("extra", "path", "message"),
    [
        ({}, "input", "Either status_id or status_name is required"),
        (
            {"status_id": str(uuid.uuid4()), "status_name": "Completed"},
            "input.status_name",
            "Provide either status_id or status_name, not both",
        ),
        ({"status_name": "   "}, "input.status_name", None),
        ({"status_name": "x" * 256}, "input.status_name", None),
    ],
)
async def test_update_activity_status_validation(engine, actors: Actors, fails, extra, path, message):
    info = await fails("crm.update_activity_status", {"activity_id": str(uuid.uuid4()), **extra})
    assert info.code == "VALIDATION_ERROR"
    assert path in field_paths(info)
    if message:
        assert message in info.message
    await nothing_written(engine, actors.tenant, "crm.update_activity_status")


# -- crm.create_interaction_type -----------------------------------------------------------------------------


async def test_create_interaction_type_if_exists(engine, actors: Actors, other: Actors, invoke, fails):
    t = actors.tenant
    created = (await invoke("crm.create_interaction_type", {"type_name": "  Site   Visit ", "icon": " map "})).output
    first = created["interaction_type"]
    assert (first["type_name"], first["icon"], first["display_order"], first["created"]) == (
        "Site   Visit",
        "map",
        0,
        True,
    )
    assert first["created_by"] == str(actors.admin)
    second = (await invoke("crm.create_interaction_type", {"type_name": "Demo"})).output["interaction_type"]
    assert second["display_order"] == 1
    existing = (await invoke("crm.create_interaction_type", {"type_name": "site visit"})).output["interaction_type"]
    assert (existing["type_id"], existing["created"]) == (first["type_id"], False)
    conflict = await fails("crm.create_interaction_type", {"type_name": "SITE VISIT", "if_exists": "error"})
    assert (conflict.code, conflict.message, conflict.details) == (
        "CONFLICT",
        "Interaction type already exists",
        {
            "type_name": "SITE VISIT",
            "field": "type_name",
            "fields": [{"path": "type_name", "message": "Interaction type already exists"}],
        },
    )
    assert await count(engine, "interaction_types WHERE tenant = :t", t=t) == 2
    [audit, *_] = await audits(engine, t, "crm.create_interaction_type")
    assert audit.changed_data == {
        "type_id": first["type_id"],
        "type_name": "Site   Visit",
        "display_order": 0,
        "created": True,
    }

    keyed = {"type_name": "Lunch", "idempotency_key": "type-lunch"}
    assert (await invoke("crm.create_interaction_type", keyed)).output == (
        await invoke("crm.create_interaction_type", keyed)
    ).output
    assert [r.status for r in await ledger(engine, t, "crm.create_interaction_type")].count("SUCCEEDED") == 4

    # another tenant's types neither conflict nor are returned
    theirs = (
        await invoke(
            "crm.create_interaction_type",
            {"type_name": "Site Visit", "if_exists": "error"},
            tenant=other.tenant,
            actor=other.admin,
        )
    ).output["interaction_type"]
    assert theirs["created"] is True
    assert theirs["type_id"] != first["type_id"]
    no_icon = (await invoke("crm.create_interaction_type", {"type_name": "Call back", "icon": None})).output
    assert no_icon["interaction_type"]["icon"] is None
    denied = await fails("crm.create_interaction_type", {"type_name": "Nope"}, actor=actors.technician)
    assert denied.message == "Permission denied: settings:update"


@pytest.mark.parametrize(
    ("raw", "path"),
    [
        ({"type_name": "   "}, "input.type_name"),
        ({"type_name": "x" * 121}, "input.type_name"),
        ({"type_name": "ok", "display_order": -1}, "input.display_order"),
        ({"type_name": "ok", "display_order": 2**31}, "input.display_order"),
        ({"type_name": "ok", "icon": "x" * 121}, "input.icon"),
        ({"type_name": "ok", "if_exists": "replace"}, "input.if_exists"),
        ({}, "input.type_name"),
    ],
)
async def test_create_interaction_type_validation(engine, actors: Actors, fails, raw, path):
    info = await fails("crm.create_interaction_type", raw)
    assert info.code == "VALIDATION_ERROR"
    assert path in field_paths(info)
    await nothing_written(engine, actors.tenant, "crm.create_interaction_type")


# -- crm.tag_activity ----------------------------------------------------------------------------------------


async def test_tag_activity_tags_the_ticket_then_contact_then_client(engine, actors: Actors, invoke, fails):
    t = actors.tenant
    acme = await new_client(engine, t)
    grace = await new_contact(engine, t, acme.client_id)
    ticket = await new_ticket(engine, t, client_id=acme.client_id)
    on_ticket = await log(
        engine, t, actors.admin, client_id=acme.client_id, contact_id=grace.contact_name_id, ticket_id=ticket.ticket_id
    )
    on_contact = await log(engine, t, actors.admin, contact_id=grace.contact_name_id)
    on_client = await log(engine, t, actors.admin, client_id=acme.client_id)

    result = await invoke(
        "crm.tag_activity", {"activity_id": str(on_ticket.interaction_id), "tags": [" urgent ", "urgent", "Urgent"]}
    )
    out = result.output
    assert out["tagged_entity"] == {"type": "ticket", "id": str(ticket.ticket_id)}
    assert [tag["tag_text"] for tag in out["added_tags"]] == ["urgent"]  # one tag per name_key, first spelling
    assert (out["added_count"], out["existing_count"]) == (1, 0)
    kinds = [(e.event_type, e.idempotency_key) for e in await events(engine, t)]
    tag_ids = [tag["tag_id"] for tag in out["added_tags"]]
    assert sorted(kinds) == sorted(
        [("TAG_DEFINITION_CREATED", f"tag_definition_created:{i}") for i in tag_ids]
        + [("TAG_APPLIED", f"tag_applied:ticket:{ticket.ticket_id}:{i}") for i in tag_ids]
    )
    assert (
        await count(
            engine,
            "tag_mappings WHERE tenant = :t AND tagged_id = :i AND tagged_type = 'ticket'",
            t=t,
            i=ticket.ticket_id,
        )
        == 1
    )
    [audit] = await audits(engine, t, "crm.tag_activity")
    assert audit.changed_data["tags"] == ["urgent"]
    assert audit.details["tagged_entity_type"] == "ticket"

    contact_tag = (
        await invoke("crm.tag_activity", {"activity_id": str(on_contact.interaction_id), "tags": ["vip"]})
    ).output
    assert contact_tag["tagged_entity"] == {"type": "contact", "id": str(grace.contact_name_id)}
    client_tag = (
        await invoke("crm.tag_activity", {"activity_id": str(on_client.interaction_id), "tags": ["vip"]})
    ).output
    assert client_tag["tagged_entity"] == {"type": "client", "id": str(acme.client_id)}

    keyed = {"activity_id": str(on_client.interaction_id), "tags": ["vip", "gold"], "idempotency_key": "tag-1"}
    again = (await invoke("crm.tag_activity", keyed)).output
    assert ([x["tag_text"] for x in again["existing_tags"]], [x["tag_text"] for x in again["added_tags"]]) == (
        ["vip"],
        ["gold"],
    )
    assert (await invoke("crm.tag_activity", keyed)).replayed
    conflict = await fails(
        "crm.tag_activity", {"activity_id": str(on_client.interaction_id), "tags": ["vip"], "if_exists": "error"}
    )
    assert (conflict.code, conflict.details["tag_text"]) == ("CONFLICT", "vip")


async def test_tag_activity_permissions_tenants_and_rules(engine, actors: Actors, other: Actors, fails):
    t = actors.tenant
    acme = await new_client(engine, t)
    on_client = await log(engine, t, actors.admin, client_id=acme.client_id)
    raw = {"activity_id": str(on_client.interaction_id), "tags": ["vip"]}
    denied = await fails("crm.tag_activity", raw, actor=actors.nobody)
    assert denied.message == "Permission denied: interaction:update"
    await nothing_written(engine, t, "crm.tag_activity")
    # the technician may update interactions but not clients: denied on the target, nothing tagged
    target_denied = await fails("crm.tag_activity", raw, actor=actors.technician)
    assert target_denied.message == "Permission denied: client:update"
    assert await count(engine, "tag_mappings WHERE tenant = :t", t=t) == 0

    foreign = await log(engine, other.tenant, other.admin, client_id=(await new_client(engine, other.tenant)).client_id)
    missing = await fails("crm.tag_activity", raw | {"activity_id": str(foreign.interaction_id)})
    assert (missing.code, missing.message) == ("NOT_FOUND", "Activity not found")
    unlinked = await log(engine, t, actors.admin)
    info = await fails("crm.tag_activity", raw | {"activity_id": str(unlinked.interaction_id)})
    assert (info.code, info.details) == (
        "VALIDATION_ERROR",
        {"supported_entity_types": ["ticket", "contact", "client"]},
    )
    for tags, path in (
        (["x" * 51], "input.tags.0"),
        (["bad|char"], "input.tags.0"),
        ([], "input.tags"),
        (["ok", "  "], "input.tags.1"),
    ):
        bad = await fails("crm.tag_activity", raw | {"tags": tags})
        assert bad.code == "VALIDATION_ERROR"
        assert path in field_paths(bad)
    assert await count(engine, "tag_definitions WHERE tenant = :t", t=t) == 0


# -- crm.complete_activity -----------------------------------------------------------------------------------


async def test_complete_activity_with_feedback_and_next_follow_up(engine, actors: Actors, invoke, fails):
    t = actors.tenant
    acme = await new_client(engine, t)
    grace = await new_contact(engine, t, acme.client_id)
    first = await scheduled(
        invoke,
        acme.client_id,
        contact_id=str(grace.contact_name_id),
        start_time=days(-1),
        assigned_user_id=str(actors.technician),
    )
    next_start = days(7)
    raw = {
        "activity_id": first["activity_id"],
        "feedback": "  Customer wants a demo  ",
        "next_activity": {"title": "Demo", "start_time": next_start, "type_id": str(MEETING)},
    }
    result = await invoke("crm.complete_activity", raw)
    out = result.output
    assert (out["activity"]["state"], out["activity"]["status_name"], out["activity"]["feedback"], out["no_op"]) == (
        "done",
        "Completed",
        "Customer wants a demo",
        False,
    )
    assert out["activity"]["completed_at"].endswith("Z")
    follow = out["next_activity"]
    assert (follow["client_id"], follow["contact_id"], follow["user_id"], follow["type_name"], follow["state"]) == (
        str(acme.client_id),
        str(grace.contact_name_id),
        str(actors.technician),
        "Meeting",
        "planned",
    )
    [row] = await rows(
        engine,
        "SELECT completed_by, feedback FROM interactions WHERE tenant = :t AND interaction_id = :i",
        t=t,
        i=first["activity_id"],
    )
    assert (row.completed_by, row.feedback) == (actors.admin, "Customer wants a demo")
    logged = [e.idempotency_key for e in await events(engine, t, "INTERACTION_LOGGED")]
    assert f"interaction_logged:{follow['activity_id']}" in logged
    [audit] = await audits(engine, t, "crm.complete_activity")
    assert audit.changed_data["next_activity_id"] == follow["activity_id"]
    # kept for reporting: still found, as done
    found = (await invoke("crm.find_activities", {"client_id": str(acme.client_id)})).output["activities"]
    assert {a["activity_id"]: a["state"] for a in found}[first["activity_id"]] == "done"

    assert (await invoke("crm.complete_activity", raw)).replayed
    again = await invoke("crm.complete_activity", {"activity_id": first["activity_id"]})
    assert again.output["no_op"] is True
    assert again.output["next_activity"] is None
    strict = await fails(
        "crm.complete_activity", {"activity_id": first["activity_id"], "no_op_if_already_completed": False}
    )
    assert (strict.code, strict.message) == ("VALIDATION_ERROR", "Activity is already completed")
    assert await count(engine, "interactions WHERE tenant = :t", t=t) == 2


async def test_complete_activity_follow_up_on_a_ticket_needs_ticket_read(engine, actors: Actors, invoke, fails):
    """Like crm.schedule_activity with a ticket_id: Finance (client:update, no ticket:read) may complete a
    ticket's activity, but not schedule its follow-up on the ticket."""
    t = actors.tenant
    acme = await new_client(engine, t)
    ticket = await new_ticket(engine, t, client_id=acme.client_id)
    finance = await add_user(engine, t, "Finance")
    first = await scheduled(invoke, acme.client_id, ticket_id=str(ticket.ticket_id))
    raw = {"activity_id": first["activity_id"], "next_activity": {"title": "Again", "start_time": days(3)}}
    denied = await fails("crm.complete_activity", raw, actor=finance)
    assert (denied.code, denied.message) == ("PERMISSION_DENIED", "Permission denied: ticket:read")
    [row] = await rows(
        engine,
        "SELECT completed_at FROM interactions WHERE tenant = :t AND interaction_id = :i",
        t=t,
        i=first["activity_id"],
    )
    assert row.completed_at is None
    assert await count(engine, "interactions WHERE tenant = :t", t=t) == 1
    done = await invoke("crm.complete_activity", {"activity_id": first["activity_id"]}, actor=finance)
    assert done.output["activity"]["state"] == "done"


async def test_concurrent_completions_schedule_one_follow_up(engine, actors: Actors, invoke):
    """Two workflows completing the same activity at once (different keys): one completes it and schedules
    the follow-up, the other is a no-op."""
    t = actors.tenant
    acme = await new_client(engine, t)
    for attempt in range(3):
        first = await scheduled(invoke, acme.client_id, title=f"Call {attempt}")
        results = await asyncio.gather(
            *(
                invoke(
                    "crm.complete_activity",
                    {
                        "activity_id": first["activity_id"],
                        "feedback": who,
                        "next_activity": {"title": f"Next {attempt}", "start_time": days(3)},
                    },
                )
                for who in ("workflow A", "workflow B")
            )
        )
        assert sorted(r.output["no_op"] for r in results) == [False, True]
        assert await count(engine, "interactions WHERE tenant = :t AND title = :n", t=t, n=f"Next {attempt}") == 1


async def test_complete_activity_permissions_tenants_and_rules(engine, actors: Actors, other: Actors, invoke, fails):
    t = actors.tenant
    acme = await new_client(engine, t)
    first = await scheduled(invoke, acme.client_id)
    denied = await fails("crm.complete_activity", {"activity_id": first["activity_id"]}, actor=actors.technician)
    assert denied.code == "PERMISSION_DENIED"
    assert await ledger(engine, t, "crm.complete_activity") == []
    assert await audits(engine, t, "crm.complete_activity") == []
    foreign = await log(engine, other.tenant, other.admin, client_id=(await new_client(engine, other.tenant)).client_id)
    assert (await fails("crm.complete_activity", {"activity_id": str(foreign.interaction_id)})).code == "NOT_FOUND"
    bad_next = await fails(
        "crm.complete_activity",
        {
            "activity_id": first["activity_id"],
            "next_activity": {"title": "x", "start_time": days(2), "type_id": str(uuid.uuid4())},
        },
    )
    assert bad_next.message == "type_id is not a valid interaction type id for this tenant"
    [row] = await rows(
        engine,
        "SELECT completed_at FROM interactions WHERE tenant = :t AND interaction_id = :i",
        t=t,
        i=first["activity_id"],
    )
    assert row.completed_at is None  # the failed follow-up rolled the completion back
    for nxt, path in (
        ({"title": "x"}, "input.next_activity.start_time"),
        ({"title": "x", "start_time": days(2), "end_time": days(1)}, "input.next_activity.start_time"),
        ({"title": " ", "start_time": days(2)}, "input.next_activity.title"),
    ):
        info = await fails("crm.complete_activity", {"activity_id": first["activity_id"], "next_activity": nxt})
        assert info.code == "VALIDATION_ERROR"
        assert path in field_paths(info)
