"""contacts.create / update / deactivate / delete / duplicate / upsert (docs/actions.md) through the real
runtime and database: rows, outputs, audit rows, outbox events, and every bad input failing with a structured
error that names the field and leaves no partial data."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from psa.db.engine import tenant_transaction
from psa.domain import documents, interactions, quotes, tags, tickets
from psa.domain.users import create_portal_user
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
    get_client,
    get_contact,
    ledger,
    nothing_written,
    rows,
    unique_email,
    wait_until_blocked_on_a_lock,
)


def is_validation(info, path: str) -> bool:
    return (info.category, info.code) == ("ValidationError", "VALIDATION_ERROR") and path in field_paths(info)


def is_conflict(info, path: str) -> bool:
    """A taken email: CONFLICT (as the reference answers), naming the field in ``details``."""
    return (info.category, info.code, info.details["field"]) == ("ActionError", "CONFLICT", path) and field_paths(
        info
    ) == [path]


# -- contacts.create ---------------------------------------------------------------------------------------------


async def test_create_with_client_phones_emails_and_tags(engine, actors: Actors, world: ContactWorld, invoke):
    t = actors.tenant
    raw = {
        "full_name": "  Ada Lovelace ",
        "email": "Ada.Lovelace@Example.com",
        "client_id": str(world.client),
        "role": "Analyst",
        "primary_email_canonical_type": "personal",
        "phone_numbers": [
            {"phone_number": "+44 20 7946 0018", "custom_type": "Desk", "display_order": 2},
            {"phone_number": "415 555 0101", "canonical_type": "mobile", "is_default": True, "display_order": 1},
        ],
        "additional_email_addresses": [{"email_address": "countess@example.org", "canonical_type": "other"}],
        "tags": ["vip", " VIP ", "Board"],
        "unknown": "ignored",
    }
    result = await invoke("contacts.create", raw)
    contact = result.output["contact"]
    assert result.output["created"] is True
    assert {k: v for k, v in contact.items() if k != "contact_name_id"} == {
        "full_name": "Ada Lovelace",
        "email": "ada.lovelace@example.com",
        "phone": "+14155550101",
        "client_id": str(world.client),
        "is_inactive": False,
    }
    stored = await get_contact(engine, t, uuid.UUID(contact["contact_name_id"]))
    assert [p.phone_number for p in stored.phone_numbers] == ["+14155550101", "+442079460018"]  # display order
    assert stored.phone_numbers[1].phone_type == "Desk"
    assert [e.email_address for e in stored.additional_email_addresses] == ["countess@example.org"]
    assert stored.primary_email_type == "personal"
    assert stored.role == "Analyst"
    async with engine.connect() as conn:
        assert [m.tag_text for m in await tags.tags_for(conn, t, stored.contact_name_id, "contact")] == ["Board", "vip"]

    [audit] = await audits(engine, t, "contacts.create")
    assert audit.user_id == actors.admin
    assert audit.changed_data == {
        "contact_id": contact["contact_name_id"],
        "full_name": "Ada Lovelace",
        "client_id": str(world.client),
    }
    assert audit.details["contact_id"] == contact["contact_name_id"]
    [event] = await events(engine, t, "CONTACT_CREATED")
    assert event.idempotency_key == f"contact_created:{contact['contact_name_id']}"
    payload = event.payload
    assert (payload["contactId"], payload["fullName"], payload["email"], payload["clientId"]) == (
        contact["contact_name_id"],
        "Ada Lovelace",
        "ada.lovelace@example.com",
        str(world.client),
    )
    assert (payload["defaultPhoneNumber"], payload["primaryEmailType"], payload["createdByUserId"]) == (
        "+14155550101",
        "personal",
        str(actors.admin),
    )
    assert len(payload["phoneNumbers"]) == 2
    assert payload["createdAt"].endswith("Z")


async def test_create_with_a_custom_primary_email_type_names_it_in_the_event(engine, actors: Actors, invoke):
    t = actors.tenant
    result = await invoke(
        "contacts.create",
        {"full_name": "Custom Type", "email": unique_email("contact"), "primary_email_custom_type": "Assistant"},
    )
    type_id = await execute(
        engine,
        t,
        "SELECT contact_email_type_id FROM contact_email_type_definitions WHERE tenant = :t AND label = 'Assistant'",
    )
    [event] = await events(engine, t, "CONTACT_CREATED")
    assert event.payload["contactId"] == result.output["contact"]["contact_name_id"]
    assert (event.payload["primaryEmailCustomTypeId"], event.payload["primaryEmailType"]) == (str(type_id), "Assistant")
    assert event.payload["primaryEmailCanonicalType"] is None  # kept even though null (docs/automation.md, "Events")


async def test_create_with_an_idempotency_key_creates_once(engine, actors: Actors, invoke):
    raw = {"full_name": "Key Holder", "email": unique_email("contact"), "idempotency_key": "crm-sync:42"}
    first = await invoke("contacts.create", raw)
    again = await invoke("contacts.create", {**raw, "full_name": "Key Holder (retry)"})  # same key: replay
    assert again.replayed is True
    assert again.output == first.output
    assert await count(engine, "contacts WHERE tenant = :t AND full_name LIKE 'Key Holder%'", t=actors.tenant) == 1


@pytest.mark.parametrize(
    ("extra", "path"),
    [
        ({"email": "not an email"}, "input.email"),
        ({"email": None}, "input.email"),
        ({"full_name": ""}, "input.full_name"),
        (
            {"phone_numbers": [{"phone_number": "12", "canonical_type": "work", "is_default": True}]},
            "input.phone_numbers.0.phone_number",
        ),
        (
            {"phone_numbers": [{"phone_number": "call me", "canonical_type": "work", "is_default": True}]},
            "input.phone_numbers.0.phone_number",
        ),
        (
            {"phone_numbers": [{"phone_number": "+14155550100", "canonical_type": "pager"}]},
            "input.phone_numbers.0.canonical_type",
        ),
        (
            {"additional_email_addresses": [{"email_address": "@nowhere", "canonical_type": "work"}]},
            "input.additional_email_addresses.0.email_address",
        ),
        ({"client_id": "acme"}, "input.client_id"),
        ({"tags": ["ok", "bad\u00e9"]}, "input.tags.1"),
    ],
)
async def test_create_rejects_bad_input_before_writing(engine, actors: Actors, fails, extra, path):
    info = await fails("contacts.create", {"full_name": "Bad Input", "email": unique_email("contact"), **extra})
    assert is_validation(info, path), info
    await nothing_written(engine, actors.tenant, "contacts.create")
    assert await count(engine, "contacts WHERE tenant = :t AND full_name = 'Bad Input'", t=actors.tenant) == 0


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"phone_numbers": [{"phone_number": "+14155550100", "canonical_type": "work"}]}, "phone_numbers"),
        (
            {
                "phone_numbers": [
                    {"phone_number": "+14155550100", "canonical_type": "work", "is_default": True},
                    {"phone_number": "+14155550101", "canonical_type": "home", "is_default": True},
                ]
            },
            "phone_numbers",
        ),
        ({"phone_numbers": [{"phone_number": "+14155550100", "is_default": True}]}, "phone_numbers.0"),
        (
            {"additional_email_addresses": [{"email_address": "SAME@example.com", "canonical_type": "work"}]},
            "additional_email_addresses.0.email_address",
        ),
    ],
)
async def test_create_rules_needing_the_model_fail_with_nothing_kept(engine, actors: Actors, fails, extra, field):
    info = await fails("contacts.create", {"full_name": "Rule Breaker", "email": "same@example.com", **extra})
    assert (info.code, info.details["field"]) == ("VALIDATION_ERROR", field)
    assert await count(engine, "contacts WHERE tenant = :t AND full_name = 'Rule Breaker'", t=actors.tenant) == 0
    assert await count(engine, "contact_phone_numbers WHERE tenant = :t", t=actors.tenant) == 0
    assert [r.status for r in await ledger(engine, actors.tenant, "contacts.create")] == ["FAILED"]
    assert await audits(engine, actors.tenant, "contacts.create") == []


LONG_LABEL = secrets.token_urlsafe(3000)  # incompressible: too big for the label's unique index


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"primary_email_custom_type": LONG_LABEL}, "primary_email_custom_type"),
        (
            {"phone_numbers": [{"phone_number": "+14155550100", "custom_type": LONG_LABEL, "is_default": True}]},
            "phone_numbers.0.custom_type",
        ),
        (
            {"additional_email_addresses": [{"email_address": "other@example.com", "custom_type": LONG_LABEL}]},
            "additional_email_addresses.0.custom_type",
        ),
    ],
)
async def test_create_rejects_a_custom_type_label_too_long(engine, actors: Actors, fails, extra, field):
    info = await fails("contacts.create", {"full_name": "Long Label", "email": unique_email("contact"), **extra})
    assert (info.category, info.code, info.details["field"]) == ("ValidationError", "VALIDATION_ERROR", field)
    assert await count(engine, "contacts WHERE tenant = :t AND full_name = 'Long Label'", t=actors.tenant) == 0
    assert await audits(engine, actors.tenant, "contacts.create") == []


async def test_update_rejects_a_custom_type_label_too_long(engine, actors: Actors, world: ContactWorld, fails):
    before = await get_contact(engine, actors.tenant, world.contact)
    info = await fails(
        "contacts.update", {"contact_id": str(world.contact), "patch": {"primary_email_custom_type": LONG_LABEL}}
    )
    assert (info.code, info.details["field"]) == ("VALIDATION_ERROR", "primary_email_custom_type")
    assert await get_contact(engine, actors.tenant, world.contact) == before


async def test_create_duplicate_email_names_the_field(engine, actors: Actors, world: ContactWorld, fails):
    info = await fails(
        "contacts.create", {"full_name": "Copycat", "email": world.contact_email.upper(), "tags": ["new-tag"]}
    )
    assert is_conflict(info, "email")
    assert world.contact_email in info.message
    assert await count(engine, "contacts WHERE tenant = :t AND full_name = 'Copycat'", t=actors.tenant) == 0
    assert await count(engine, "tag_definitions WHERE tenant = :t AND tag_text = 'new-tag'", t=actors.tenant) == 0
    assert await events(engine, actors.tenant, "CONTACT_CREATED") == []


async def test_create_for_a_missing_client_is_not_found(engine, actors: Actors, fails):
    info = await fails(
        "contacts.create", {"full_name": "Orphan", "email": unique_email("contact"), "client_id": str(uuid.uuid4())}
    )
    assert (info.code, info.message, info.details["field"]) == ("NOT_FOUND", "Client not found", "client_id")


# -- contacts.update ---------------------------------------------------------------------------------------------


async def test_update_patches_given_fields_and_reports_diffs(engine, actors: Actors, world: ContactWorld, invoke):
    t = actors.tenant
    await execute(
        engine,
        t,
        "UPDATE contacts SET role = 'Engineer', notes = 'keep' WHERE tenant = :t AND contact_name_id = :c",
        c=world.contact,
    )
    raw = {
        "contact_id": str(world.contact),
        "patch": {
            "role": "Admiral",
            "client_id": str(world.other_client),
            "full_name": "Grace B. Hopper",
            "phone_numbers": [{"phone_number": "+1 415 555 0177", "canonical_type": "mobile", "is_default": True}],
        },
    }
    result = await invoke("contacts.update", raw)
    assert result.output["changed_fields"] == ["full_name", "client_id", "role", "phone_numbers"]
    assert result.output["contact_before"]["full_name"] == "Grace Hopper"
    assert result.output["contact_after"] == {
        "contact_name_id": str(world.contact),
        "full_name": "Grace B. Hopper",
        "email": world.contact_email,
        "phone": "+14155550177",
        "client_id": str(world.other_client),
        "is_inactive": False,
    }
    stored = await get_contact(engine, t, world.contact)
    assert (stored.role, stored.notes) == ("Admiral", "keep")  # notes not given: kept
    [audit] = await audits(engine, t, "contacts.update")
    assert audit.changed_data == {"contact_id": str(world.contact), "changed_fields": result.output["changed_fields"]}
    [event] = await events(engine, t, "CONTACT_UPDATED")
    assert event.idempotency_key.startswith(f"contact_updated:{world.contact}:")
    assert event.idempotency_key[-1] == "Z"
    changes = event.payload["changes"]
    assert changes["role"] == {"previous": "Engineer", "new": "Admiral"}
    assert changes["clientId"] == {"previous": str(world.client), "new": str(world.other_client)}
    assert changes["defaultPhoneNumber"] == {"previous": "+14155550100", "new": "+14155550177"}
    assert set(event.payload["updatedFields"]) == {"fullName", "clientId", "role", "phoneNumbers", "defaultPhoneNumber"}
    assert event.payload["updatedByUserId"] == str(actors.admin)
    assert await events(engine, t, "CONTACT_ARCHIVED") == []


async def test_update_without_a_real_change_emits_no_event(engine, actors: Actors, world: ContactWorld, invoke):
    result = await invoke("contacts.update", {"contact_id": str(world.contact), "patch": {"full_name": "Grace Hopper"}})
    assert result.output["changed_fields"] == ["full_name"]  # listed even though unchanged (reference)
    assert await events(engine, actors.tenant, "CONTACT_UPDATED") == []
    assert len(await audits(engine, actors.tenant, "contacts.update")) == 1


async def test_update_promotes_an_additional_email(engine, actors: Actors, world: ContactWorld, invoke):
    t = actors.tenant
    extra = unique_email("contact")
    await invoke(
        "contacts.update",
        {
            "contact_id": str(world.contact),
            "patch": {"additional_email_addresses": [{"email_address": extra, "canonical_type": "personal"}]},
        },
    )
    promoted = await invoke("contacts.update", {"contact_id": str(world.contact), "patch": {"email": extra}})
    assert promoted.output["contact_after"]["email"] == extra
    stored = await get_contact(engine, t, world.contact)
    assert [e.email_address for e in stored.additional_email_addresses] == [world.contact_email]  # demoted
    assert stored.primary_email_type == "personal"  # the promoted address keeps its type
    [_, event] = await events(engine, t, "CONTACT_UPDATED")
    assert event.payload["changes"]["email"] == {"previous": world.contact_email, "new": extra}


async def test_update_accepts_a_spelled_out_primary_swap(engine, actors: Actors, world: ContactWorld, invoke):
    new = unique_email("contact")
    result = await invoke(
        "contacts.update",
        {
            "contact_id": str(world.contact),
            "patch": {
                "email": new,
                "primary_email_canonical_type": "billing",
                "additional_email_addresses": [{"email_address": world.contact_email, "canonical_type": "work"}],
            },
        },
    )
    assert result.output["contact_after"]["email"] == new
    stored = await get_contact(engine, actors.tenant, world.contact)
    assert stored.primary_email_type == "billing"
    assert [e.email_address for e in stored.additional_email_addresses] == [world.contact_email]


@pytest.mark.parametrize(
    ("patch", "path"),
    [
        ({}, "input.patch"),
        ({"email": "nope"}, "input.patch.email"),
        ({"full_name": None}, "input.patch.full_name"),
        ({"is_inactive": None}, "input.patch.is_inactive"),
        (
            {"phone_numbers": [{"phone_number": "0", "canonical_type": "work", "is_default": True}]},
            "input.patch.phone_numbers.0.phone_number",
        ),
        ({"primary_email_canonical_type": "pager"}, "input.patch.primary_email_canonical_type"),
        (
            {
                "primary_email_custom_type": "Desk",
                "primary_email_custom_type_id": "3f9c8a2e-0000-4000-8000-000000000001",
            },
            "input.patch.primary_email_custom_type_id",
        ),
    ],
)
async def test_update_rejects_bad_input_before_writing(engine, actors: Actors, world: ContactWorld, fails, patch, path):
    info = await fails("contacts.update", {"contact_id": str(world.contact), "patch": patch})
    assert is_validation(info, path), info
    await nothing_written(engine, actors.tenant, "contacts.update")


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"email": None}, "email"),
        ({"email": "fresh.address@example.com"}, "email"),  # not an additional address: promote one first
        ({"phone_numbers": [{"phone_number": "+14155550100", "canonical_type": "work"}]}, "phone_numbers"),
    ],
)
async def test_update_model_rules_fail_with_nothing_changed(
    engine, actors: Actors, world: ContactWorld, fails, patch, field
):
    before = await get_contact(engine, actors.tenant, world.contact)
    info = await fails("contacts.update", {"contact_id": str(world.contact), "patch": {"role": "Changed", **patch}})
    assert (info.code, info.details["field"]) == ("VALIDATION_ERROR", field)
    assert await get_contact(engine, actors.tenant, world.contact) == before
    assert await audits(engine, actors.tenant, "contacts.update") == []


async def test_update_to_another_contacts_email_names_the_field(engine, actors: Actors, world: ContactWorld, fails):
    taken = (await get_contact(engine, actors.tenant, world.loose)).email
    info = await fails(
        "contacts.update",
        {
            "contact_id": str(world.contact),
            "patch": {"additional_email_addresses": [{"email_address": taken, "canonical_type": "work"}]},
        },
    )
    assert is_conflict(info, "additional_email_addresses.0.email_address")
    assert (await get_contact(engine, actors.tenant, world.contact)).additional_email_addresses == []


async def test_update_to_inactive_also_archives(engine, actors: Actors, world: ContactWorld, invoke):
    await invoke("contacts.update", {"contact_id": str(world.contact), "patch": {"is_inactive": True}})
    [archived] = await events(engine, actors.tenant, "CONTACT_ARCHIVED")
    assert archived.payload["contactId"] == str(world.contact)
    assert archived.payload["clientId"] == str(world.client)
    assert archived.idempotency_key.startswith(f"contact_archived:{world.contact}:")


# -- contacts.deactivate -----------------------------------------------------------------------------------------


async def test_deactivate_is_idempotent_and_archives_once(engine, actors: Actors, world: ContactWorld, invoke):
    t = actors.tenant
    first = await invoke("contacts.deactivate", {"contact_id": str(world.contact), "reason": "left the company"})
    assert {k: first.output[k] for k in ("deactivated", "noop", "previous_is_inactive", "current_is_inactive")} == {
        "deactivated": True,
        "noop": False,
        "previous_is_inactive": False,
        "current_is_inactive": True,
    }
    assert first.output["contact"]["is_inactive"] is True
    [event] = await events(engine, t, "CONTACT_ARCHIVED")
    assert (event.payload["reason"], event.payload["archivedByUserId"]) == ("left the company", str(actors.admin))
    again = await invoke("contacts.deactivate", {"contact_id": str(world.contact)})  # a new call, not a replay
    assert (again.replayed, again.output["deactivated"], again.output["noop"]) == (False, False, True)
    assert len(await events(engine, t, "CONTACT_ARCHIVED")) == 1
    assert [a.changed_data["noop"] for a in await audits(engine, t, "contacts.deactivate")] == [False, True]
    assert (await get_contact(engine, t, world.contact)).is_inactive is True


async def test_deactivate_racing_another_deactivation_archives_once(
    engine, actors: Actors, world: ContactWorld, invoke
):
    t = actors.tenant
    async with tenant_transaction(engine, t) as conn:  # another deactivation holding the row
        await conn.execute(
            text("UPDATE contacts SET is_inactive = true WHERE tenant = :t AND contact_name_id = :c"),
            {"t": t, "c": world.contact},
        )
        racing = asyncio.ensure_future(invoke("contacts.deactivate", {"contact_id": str(world.contact)}))
        await wait_until_blocked_on_a_lock(engine)
    result = await racing
    assert (result.output["deactivated"], result.output["noop"], result.output["previous_is_inactive"]) == (
        False,
        True,
        True,
    )
    assert await events(engine, t, "CONTACT_ARCHIVED") == []


# -- contacts.delete ---------------------------------------------------------------------------------------------


async def test_delete_requires_confirm(engine, actors: Actors, world: ContactWorld, fails):
    missing = await fails("contacts.delete", {"contact_id": str(world.loose)})
    assert is_validation(missing, "input.confirm")
    refused = await fails("contacts.delete", {"contact_id": str(world.loose), "confirm": False})
    assert is_validation(refused, "input.confirm")
    assert "confirm must be true to delete a contact" in refused.message
    await nothing_written(engine, actors.tenant, "contacts.delete")
    assert await get_contact(engine, actors.tenant, world.loose) is not None


async def test_delete_cleans_up_what_the_contact_owns(engine, actors: Actors, world: ContactWorld, invoke):
    t = actors.tenant
    doomed = await new_contact(
        engine,
        t,
        world.client,
        full_name="Doomed",
        phone_numbers=[{"phone_number": "+1 415 555 0142", "canonical_type": "work", "is_default": True}],
        additional_email_addresses=[{"email_address": unique_email("contact"), "canonical_type": "other"}],
    )
    c = doomed.contact_name_id
    await tag_contact(engine, t, c, "vip", "former")
    await invoke("contacts.add_note", {"contact_id": str(c), "body": "only its own notes document"})
    await execute(
        engine,
        t,
        "INSERT INTO comments (tenant, ticket_id, contact_id, note, author_type) "
        "VALUES (:t, :k, :c, 'portal reply', 'client')",
        k=world.ticket,
        c=c,
    )
    await execute(
        engine,
        t,
        "INSERT INTO portal_invitations (tenant, contact_id, email, token_hash, expires_at) "
        "VALUES (:t, :c, :e, :h, now() + interval '7 days')",
        c=c,
        e=doomed.email,
        h=uuid.uuid4().hex,
    )
    result = await invoke("contacts.delete", {"contact_id": str(c), "confirm": True})
    assert result.output == {"deleted": True, "contact_id": str(c)}
    for table, column in (
        ("contacts", "contact_name_id"),
        ("contact_phone_numbers", "contact_name_id"),
        ("contact_additional_email_addresses", "contact_name_id"),
        ("tag_mappings", "tagged_id"),
        ("comments", "contact_id"),
        ("portal_invitations", "contact_id"),
        ("document_associations", "entity_id"),
    ):
        assert await count(engine, f"{table} WHERE tenant = :t AND {column} = :c", t=t, c=c) == 0, table
    assert await count(engine, "documents WHERE tenant = :t AND document_name = 'Doomed Notes'", t=t) == 0
    assert await count(engine, "tag_definitions WHERE tenant = :t AND tag_text = 'former'", t=t) == 1  # kept
    assert await count(engine, "tag_mappings WHERE tenant = :t AND tagged_id = :c", t=t, c=world.contact) == 1
    [audit] = await audits(engine, t, "contacts.delete")
    assert audit.changed_data == {"contact_id": str(c), "deleted": True}


async def test_delete_refuses_a_contact_with_dependencies(engine, actors: Actors, world: ContactWorld, invoke, fails):
    t, c = actors.tenant, world.contact
    await new_ticket(engine, t, client_id=world.client, contact_id=c)
    await new_ticket(engine, t, client_id=world.client, contact_id=c)
    async with tenant_transaction(engine, t) as conn:
        await interactions.create_interaction(
            conn, t, type_id=CALL_TYPE, title="Call", user_id=actors.admin, contact_id=c
        )
        await create_portal_user(conn, tenant=t, user_id=uuid.uuid4(), contact_id=c)
        other_doc = await documents.append_note_block(
            conn, t, entity_type="client", entity_id=world.client, body="shared", actor_user_id=actors.admin
        )
    await execute(
        engine,
        t,
        "INSERT INTO document_associations (tenant, document_id, entity_id, entity_type) "
        "VALUES (:t, :d, :c, 'contact')",
        d=other_doc.document_id,
        c=c,
    )
    invitation = await execute(
        engine,
        t,
        "INSERT INTO survey_invitations (tenant, contact_id, token_hash) VALUES (:t, :c, :h) RETURNING invitation_id",
        c=c,
        h=uuid.uuid4().hex,
    )
    await execute(
        engine,
        t,
        "INSERT INTO survey_responses (tenant, invitation_id, contact_id, rating) VALUES (:t, :i, :c, 5)",
        i=invitation,
        c=c,
    )
    await execute(
        engine,
        t,
        "INSERT INTO asset_associations (tenant, asset_id, entity_id, entity_type) VALUES (:t, :a, :c, 'contact')",
        a=uuid.uuid4(),
        c=c,
    )
    await invoke("contacts.add_note", {"contact_id": str(c), "body": "own notes do not count"})

    info = await fails("contacts.delete", {"contact_id": str(c), "confirm": True})
    assert (info.category, info.code) == ("ActionError", "CONFLICT")
    assert info.message == (
        "This contact has associated records that must be removed or reassigned first: 2 tickets, 1 interaction, "
        "1 document, 1 portal user account, 1 survey invitation, 1 survey response, 1 asset association"
    )
    dependencies = info.details["dependencies"]
    assert [d["type"] for d in dependencies] == [
        "ticket",
        "interaction",
        "document",
        "portal_user",
        "survey_invitation",
        "survey_response",
        "asset_association",
    ]
    assert dependencies[0] == {
        "type": "ticket",
        "count": 2,
        "label": "tickets",
        "viewUrl": f"/msp/tickets?contact_id={c}",
    }
    assert info.details["alternatives"][0]["action"] == "deactivate"
    assert await get_contact(engine, t, c) is not None
    assert await count(engine, "tag_mappings WHERE tenant = :t AND tagged_id = :c", t=t, c=c) == 1
    assert await audits(engine, t, "contacts.delete") == []


async def test_delete_refuses_a_contact_named_on_a_quote(engine, actors: Actors, world: ContactWorld, fails):
    t = actors.tenant
    async with tenant_transaction(engine, t) as conn:
        await quotes.create_quote(
            conn,
            t,
            client_id=world.client,
            contact_id=world.contact,
            title="Renewal",
            quote_date=datetime(2026, 3, 1, tzinfo=UTC),
            valid_until=datetime(2026, 3, 31, tzinfo=UTC),
            created_by=actors.admin,
        )
    info = await fails("contacts.delete", {"contact_id": str(world.contact), "confirm": True})
    assert (info.category, info.code) == ("ActionError", "CONFLICT")  # not a foreign-key INTERNAL_ERROR
    assert info.message.endswith("must be removed or reassigned first: 1 quote")
    assert info.details["dependencies"] == [{"type": "quote", "count": 1, "label": "quote"}]
    assert await get_contact(engine, t, world.contact) is not None
    assert await audits(engine, t, "contacts.delete") == []


async def test_delete_clears_the_contact_where_it_is_a_clients_billing_contact(
    engine, actors: Actors, world: ContactWorld, invoke
):
    """A billing contact is a preference of the client, not a record that depends on the contact: deleting the
    contact clears ``billing_contact_id`` of every client naming it, in the delete's transaction, and leaves
    the rest of those clients and the clients naming another contact as they were (docs/decisions.md,
    "Actions", contacts)."""
    t = actors.tenant
    set_billing = "UPDATE clients SET billing_contact_id = :c WHERE tenant = :t AND client_id = :client"
    await execute(engine, t, set_billing, c=world.contact, client=world.client)
    await execute(engine, t, set_billing, c=world.contact, client=world.other_client)  # a contact of another client
    third = await new_client(engine, t)
    await execute(engine, t, set_billing, c=world.loose, client=third.client_id)
    before = await get_client(engine, t, world.client)

    result = await invoke("contacts.delete", {"contact_id": str(world.contact), "confirm": True})
    assert result.output == {"deleted": True, "contact_id": str(world.contact)}
    billing = {
        r.client_id: r.billing_contact_id
        for r in await rows(engine, "SELECT client_id, billing_contact_id FROM clients WHERE tenant = :t", t=t)
    }
    assert billing[world.client] is None
    assert billing[world.other_client] is None
    assert billing[third.client_id] == world.loose
    assert await get_client(engine, t, world.client) == before  # only the reference changed


async def test_the_database_keeps_both_contact_references(engine, actors: Actors, world: ContactWorld):
    """Whoever deletes a contact (not only contacts.delete): the foreign key clears a client's billing contact
    and keeps the tenant, and refuses to delete the contact of a quote."""
    t = actors.tenant
    await execute(
        engine,
        t,
        "UPDATE clients SET billing_contact_id = :c WHERE tenant = :t AND client_id = :client",
        c=world.loose,
        client=world.other_client,
    )
    await execute(engine, t, "DELETE FROM contacts WHERE tenant = :t AND contact_name_id = :c", c=world.loose)
    [client] = await rows(
        engine, "SELECT tenant, billing_contact_id FROM clients WHERE client_id = :c", c=world.other_client
    )
    assert (client.tenant, client.billing_contact_id) == (t, None)

    async with tenant_transaction(engine, t) as conn:
        await quotes.create_quote(
            conn,
            t,
            client_id=world.client,
            contact_id=world.contact,
            title="Renewal",
            quote_date=datetime(2026, 3, 1, tzinfo=UTC),
            valid_until=datetime(2026, 3, 31, tzinfo=UTC),
            created_by=actors.admin,
        )
    with pytest.raises(IntegrityError, match="fk_quotes_contact"):
        await execute(engine, t, "DELETE FROM contacts WHERE tenant = :t AND contact_name_id = :c", c=world.contact)
    assert await get_contact(engine, t, world.contact) is not None


async def test_delete_sees_a_ticket_opened_concurrently(engine, actors: Actors, world: ContactWorld, fails):
    """The dependency check runs on the locked contact: a ticket committed meanwhile gives CONFLICT, not a
    foreign-key INTERNAL_ERROR."""
    t = actors.tenant
    fresh = await new_contact(engine, t, world.client, full_name="Fresh")
    async with tenant_transaction(engine, t) as conn:
        await tickets.create_ticket(conn, t, title="Opened meanwhile", contact_id=fresh.contact_name_id)
        deleting = asyncio.ensure_future(
            fails("contacts.delete", {"contact_id": str(fresh.contact_name_id), "confirm": True})
        )
        await wait_until_blocked_on_a_lock(engine)
    info = await deleting
    assert (info.code, info.details["dependencies"][0]["type"]) == ("CONFLICT", "ticket")
    assert await get_contact(engine, t, fresh.contact_name_id) is not None


async def test_delete_missing_contact_honours_on_not_found(engine, actors: Actors, invoke, fails):
    missing = str(uuid.uuid4())
    info = await fails("contacts.delete", {"contact_id": missing, "confirm": True})
    assert (info.code, info.message) == ("NOT_FOUND", "Contact not found")
    quiet = await invoke("contacts.delete", {"contact_id": missing, "confirm": True, "on_not_found": "return_false"})
    assert quiet.output == {"deleted": False, "contact_id": missing}


# -- contacts.duplicate ------------------------------------------------------------------------------------------


async def test_duplicate_copies_profile_phones_and_tags_but_no_history(
    engine, actors: Actors, world: ContactWorld, invoke
):
    t = actors.tenant
    await invoke(
        "contacts.update",
        {
            "contact_id": str(world.contact),
            "patch": {
                "role": "Admiral",
                "notes": "navy",
                "additional_email_addresses": [
                    {"email_address": unique_email("contact"), "canonical_type": "personal"}
                ],
            },
        },
    )
    await tag_contact(engine, t, world.contact, "navy")
    await invoke("contacts.add_note", {"contact_id": str(world.contact), "body": "history"})
    await new_ticket(engine, t, client_id=world.client, contact_id=world.contact)
    new = unique_email("contact")
    result = await invoke("contacts.duplicate", {"source_contact_id": str(world.contact), "email": new})
    dup = result.output["duplicate_contact"]
    assert result.output["source_contact"]["contact_name_id"] == str(world.contact)
    assert (dup["email"], dup["full_name"], dup["client_id"], dup["phone"]) == (
        new,
        "Grace Hopper",
        str(world.client),
        "+14155550100",
    )
    assert result.output["copied_tags"] == 2
    copy = await get_contact(engine, t, uuid.UUID(dup["contact_name_id"]))
    assert (copy.role, copy.notes, copy.additional_email_addresses) == ("Admiral", "navy", [])
    d = copy.contact_name_id
    assert await count(engine, "tickets WHERE tenant = :t AND contact_name_id = :d", t=t, d=d) == 0
    assert await count(engine, "document_associations WHERE tenant = :t AND entity_id = :d", t=t, d=d) == 0
    [audit] = await audits(engine, t, "contacts.duplicate")
    assert audit.changed_data == {
        "source_contact_id": str(world.contact),
        "duplicate_contact_id": str(d),
        "copied_tags": 2,
    }


async def test_duplicate_overrides(engine, actors: Actors, world: ContactWorld, invoke):
    extra = unique_email("contact")
    result = await invoke(
        "contacts.duplicate",
        {
            "source_contact_id": str(world.contact),
            "email": unique_email("contact"),
            "full_name": "Grace Copy",
            "target_client_id": None,
            "role": None,
            "copy_tags": False,
            "phone_numbers": [],
            "additional_email_addresses": [{"email_address": extra, "canonical_type": "work"}],
        },
    )
    dup = result.output["duplicate_contact"]
    assert (dup["full_name"], dup["client_id"], dup["phone"], result.output["copied_tags"]) == (
        "Grace Copy",
        None,
        None,
        0,
    )
    copy = await get_contact(engine, actors.tenant, uuid.UUID(dup["contact_name_id"]))
    assert [e.email_address for e in copy.additional_email_addresses] == [extra]


async def test_duplicate_needs_a_new_unique_email(engine, actors: Actors, world: ContactWorld, fails):
    missing = await fails("contacts.duplicate", {"source_contact_id": str(world.contact)})
    assert is_validation(missing, "input.email")
    taken = await fails("contacts.duplicate", {"source_contact_id": str(world.contact), "email": world.contact_email})
    assert is_conflict(taken, "email")
    assert await count(engine, "contacts WHERE tenant = :t AND full_name = 'Grace Hopper'", t=actors.tenant) == 1


@pytest.mark.parametrize(
    ("extra", "path"),
    [
        ({"email": "grace at example"}, "input.email"),
        (
            {"phone_numbers": [{"phone_number": "555", "canonical_type": "work", "is_default": True}]},
            "input.phone_numbers.0.phone_number",
        ),
        (
            {"additional_email_addresses": [{"email_address": "no-at-sign", "canonical_type": "work"}]},
            "input.additional_email_addresses.0.email_address",
        ),
    ],
)
async def test_duplicate_rejects_bad_input_before_writing(
    engine, actors: Actors, world: ContactWorld, fails, extra, path
):
    info = await fails(
        "contacts.duplicate", {"source_contact_id": str(world.contact), "email": unique_email("contact"), **extra}
    )
    assert is_validation(info, path), info
    await nothing_written(engine, actors.tenant, "contacts.duplicate")
    assert await count(engine, "contacts WHERE tenant = :t AND full_name = 'Grace Hopper'", t=actors.tenant) == 1


async def test_duplicate_with_another_contacts_address_names_the_field(
    engine, actors: Actors, world: ContactWorld, fails
):
    taken = (await get_contact(engine, actors.tenant, world.loose)).email
    info = await fails(
        "contacts.duplicate",
        {
            "source_contact_id": str(world.contact),
            "email": unique_email("contact"),
            "additional_email_addresses": [{"email_address": taken, "canonical_type": "work"}],
        },
    )
    assert is_conflict(info, "additional_email_addresses.0.email_address")
    assert await count(engine, "contacts WHERE tenant = :t AND full_name = 'Grace Hopper'", t=actors.tenant) == 1
    assert await audits(engine, actors.tenant, "contacts.duplicate") == []


# -- contacts.upsert ---------------------------------------------------------------------------------------------


async def test_upsert_creates_then_updates_only_given_fields(engine, actors: Actors, world: ContactWorld, invoke):
    t = actors.tenant
    address = unique_email("contact")
    created = await invoke(
        "contacts.upsert",
        {
            "email": address,
            "full_name": "Upsert Person",
            "role": "Buyer",
            "client_id": str(world.client),
            "tags": ["lead"],
        },
    )
    assert created.output["created"] is True
    contact_id = uuid.UUID(created.output["contact"]["contact_name_id"])
    assert len(await events(engine, t, "CONTACT_CREATED")) == 1

    updated = await invoke("contacts.upsert", {"email": address.upper(), "notes": "called back", "tags": ["customer"]})
    assert updated.output == {"created": False, "contact": {**created.output["contact"]}}
    stored = await get_contact(engine, t, contact_id)
    assert (stored.full_name, stored.role, stored.notes, stored.client_id) == (
        "Upsert Person",
        "Buyer",
        "called back",
        world.client,
    )  # nothing given was blanked
    async with engine.connect() as conn:
        assert [m.tag_text for m in await tags.tags_for(conn, t, contact_id, "contact")] == ["customer", "lead"]
    [event] = await events(engine, t, "CONTACT_UPDATED")
    assert event.payload["updatedFields"] == ["notes"]
    assert await count(engine, "contacts WHERE tenant = :t AND email = :e", t=t, e=address) == 1


async def test_upsert_by_additional_email_updates_that_contact(engine, actors: Actors, world: ContactWorld, invoke):
    extra = unique_email("contact")
    await invoke(
        "contacts.update",
        {
            "contact_id": str(world.contact),
            "patch": {"additional_email_addresses": [{"email_address": extra, "canonical_type": "personal"}]},
        },
    )
    result = await invoke("contacts.upsert", {"email": extra, "role": "Rear Admiral"})
    assert result.output["created"] is False
    assert result.output["contact"]["email"] == world.contact_email  # the primary address is not changed
    assert (await get_contact(engine, actors.tenant, world.contact)).role == "Rear Admiral"


async def test_upsert_rejects_bad_input(engine, actors: Actors, fails):
    contacts_before = await count(engine, "contacts WHERE tenant = :t", t=actors.tenant)
    bad = await fails("contacts.upsert", {"email": "nobody at example", "full_name": "X"})
    assert is_validation(bad, "input.email")
    await nothing_written(engine, actors.tenant, "contacts.upsert")
    nameless = await fails("contacts.upsert", {"email": unique_email("contact")})  # a new contact needs a name
    assert (nameless.code, nameless.details["field"]) == ("VALIDATION_ERROR", "full_name")
    assert await count(engine, "contacts WHERE tenant = :t", t=actors.tenant) == contacts_before


async def test_upsert_rejects_a_bad_phone_and_another_contacts_address(
    engine, actors: Actors, world: ContactWorld, fails
):
    t = actors.tenant
    contacts_before = await count(engine, "contacts WHERE tenant = :t", t=t)
    phone = await fails(
        "contacts.upsert",
        {
            "email": unique_email("contact"),
            "full_name": "X",
            "phone_numbers": [{"phone_number": "12", "canonical_type": "work", "is_default": True}],
        },
    )
    assert is_validation(phone, "input.phone_numbers.0.phone_number")
    await nothing_written(engine, t, "contacts.upsert")
    taken = await fails(
        "contacts.upsert",
        {
            "email": world.contact_email,
            "additional_email_addresses": [
                {"email_address": (await get_contact(engine, t, world.loose)).email, "canonical_type": "work"}
            ],
        },
    )
    assert is_conflict(taken, "additional_email_addresses.0.email_address")
    created = await fails(
        "contacts.upsert",
        {
            "email": unique_email("contact"),
            "full_name": "New",
            "additional_email_addresses": [{"email_address": world.contact_email, "canonical_type": "work"}],
        },
    )
    assert is_conflict(created, "additional_email_addresses.0.email_address")
    assert await count(engine, "contacts WHERE tenant = :t", t=t) == contacts_before
    assert (await get_contact(engine, t, world.contact)).additional_email_addresses == []
    assert await audits(engine, t, "contacts.upsert") == []
    assert await events(engine, t) == []


async def test_concurrent_upserts_of_one_address_make_one_contact(engine, actors: Actors, invoke):
    address = unique_email("contact")
    first, second = await asyncio.gather(
        invoke("contacts.upsert", {"email": address, "full_name": "Racer", "role": "A"}),
        invoke("contacts.upsert", {"email": address, "full_name": "Racer", "notes": "B"}),
    )
    assert sorted([first.output["created"], second.output["created"]]) == [False, True]
    assert first.output["contact"]["contact_name_id"] == second.output["contact"]["contact_name_id"]
    [row] = await rows(
        engine, "SELECT role, notes FROM contacts WHERE tenant = :t AND email = :e", t=actors.tenant, e=address
    )
    assert (row.role, row.notes) == ("A", "B")  # the second applied only its own field
    assert len(await events(engine, actors.tenant, "CONTACT_CREATED")) == 1
