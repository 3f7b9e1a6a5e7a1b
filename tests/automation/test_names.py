"""One key per unique name (psa.domain.values.name_key; docs/decisions.md, "One key per unique name"), through the
actions that find or create by name: creating a name twice is an idempotent re-read or a clean CONFLICT, never a
database error, whatever characters it holds (the separators U+001C..U+001F, NEL, NO-BREAK SPACE, final sigma,
dotted capital I, ...), concurrent creates converge on one row, and lookups find what the creates stored."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from psa.automation.errors import ActionFailure
from psa.automation.invocation import Invocation
from psa.db.engine import tenant_transaction
from psa.domain import clients, interactions, tags
from psa.domain.errors import DuplicateError
from psa.domain.values import name_key
from tests.factories import CALL_TYPE, Actors, new_client
from tests.helpers import count, examples, rows, wait_until_blocked_on_a_lock

# The characters where the three old normalisations (Python split()/lower(), SQL \s/lower(), lower() in the index)
# disagreed, and their neighbours.
TROUBLESOME = "\x1c\x1d\x1e\x1f\x85\xa0\u2028\u3000\u200b\ufeff \tΣσςİiIıßẞﬁ"
NAMES = st.text(alphabet=TROUBLESOME + "aAsS", min_size=1, max_size=12)
# Tag texts: the reference's character set (ASCII, JavaScript whitespace) with some of the troublesome ones.
TAG_TEXTS = st.text(alphabet="\x1c\x1f\x85\xa0\u2028\u3000\ufeff \tΣİiIaAsS-", min_size=1, max_size=12)
# Derandomised under `make test` like every property test (the "ci" profile), random and deep under `make fuzz`.
PROPERTY = settings(
    database=None,
    deadline=None,
    max_examples=examples(40),
    suppress_health_check=[HealthCheck.function_scoped_fixture],  # one tenant for all examples, on purpose
)


def variants(name: str) -> list[str]:
    """Spellings that may or may not be the same name as ``name``."""
    return [name.upper(), name.lower(), f" {name.swapcase()}\xa0", name.replace(" ", "\x1f\x85")]


async def attempt(invoke, action_id: str, raw_input: dict[str, Any]) -> Invocation | ActionFailure:
    """A new direct call (its own idempotency key, never a replay): the Invocation, or the ActionFailure."""
    try:
        return await invoke(action_id, raw_input, idempotency_key=f"names:{uuid.uuid4()}")
    except ActionFailure as failure:
        return failure


@pytest.mark.parametrize("name", ["ΣΑΣ repro", "σας\x1crepro", "İstanbul\x85Office", "a\xa0b\x1fc", "Straße"])
async def test_creating_an_interaction_type_twice_returns_the_first(engine, actors: Actors, invoke, name):
    first = (await invoke("crm.create_interaction_type", {"type_name": name})).output["interaction_type"]
    again = (await attempt(invoke, "crm.create_interaction_type", {"type_name": name})).output["interaction_type"]
    assert (again["type_id"], again["created"], first["created"]) == (first["type_id"], False, True)
    [stored] = await rows(
        engine, "SELECT type_name, name_key FROM interaction_types WHERE tenant = :t", t=actors.tenant
    )
    assert (stored.type_name, stored.name_key) == (name.strip(), name_key(name))


@PROPERTY
@example(name="ΣΑΣ repro")
@example(name="σας")
@example(name="σασ")
@example(name="İi")
@example(name="\x1c\x1d\x1e\x1fa")
@example(name="a\x85\xa0b")
@example(name="\u200b")
@given(name=NAMES)
async def test_interaction_type_names_never_fail_but_as_conflicts(engine, actors: Actors, invoke, name):
    stored = await rows(engine, "SELECT name_key, type_id FROM interaction_types WHERE tenant = :t", t=actors.tenant)
    seen = {r.name_key: r.type_id for r in stored}
    first = await attempt(invoke, "crm.create_interaction_type", {"type_name": name})
    key = name_key(name)
    if not key:  # blank: refused before anything is written
        assert isinstance(first, ActionFailure) and first.info.code == "VALIDATION_ERROR", first
        return
    assert isinstance(first, Invocation), first.info
    created = first.output["interaction_type"]
    assert created["created"] == (key not in seen)
    assert created["type_id"] == str(seen.get(key, created["type_id"]))
    for spelling in [name, *variants(name)]:
        again = await attempt(invoke, "crm.create_interaction_type", {"type_name": spelling})
        if name_key(spelling) == key:  # the same name: the stored type, found again
            assert isinstance(again, Invocation), again.info
            assert (again.output["interaction_type"]["type_id"], again.output["interaction_type"]["created"]) == (
                created["type_id"],
                False,
            )
    conflict = await attempt(invoke, "crm.create_interaction_type", {"type_name": name, "if_exists": "error"})
    assert isinstance(conflict, ActionFailure)
    assert (conflict.info.code, conflict.info.details["field"]) == ("CONFLICT", "type_name")
    assert await count(engine, "interaction_types WHERE tenant = :t AND name_key = :k", t=actors.tenant, k=key) == 1


@PROPERTY
@example(text="VIP")
@example(text="vip\xa0")
@example(text="\x1cvip")
@example(text="a\u2028b")
@example(text="a\ufeffb")
@example(text="ΣΑΣ")
@given(text=TAG_TEXTS)
async def test_tag_texts_never_fail_but_as_validation_and_are_found_again(engine, actors: Actors, invoke, text):
    client = await new_client(engine, actors.tenant)
    first = await attempt(invoke, "clients.add_tag", {"client_id": str(client.client_id), "tags": [text]})
    again = await attempt(invoke, "clients.add_tag", {"client_id": str(client.client_id), "tags": [text]})
    if isinstance(first, ActionFailure):  # outside the tag character set, or blank: refused both times alike
        assert first.info.code == "VALIDATION_ERROR", first.info
        assert isinstance(again, ActionFailure) and again.info.details == first.info.details
        return
    if not text.strip():  # blank: dropped, as the reference drops blank tags
        assert (first.output["added"], first.output["existing"]) == ([], [])
        return
    [tag] = first.output["added"] or first.output["existing"]
    assert isinstance(again, Invocation), again.info
    assert [t["tag_id"] for t in again.output["existing"]] == [tag["tag_id"]]
    async with engine.connect() as conn:
        for spelling in [text, *variants(text)]:
            found = await tags.find_tag_definition(conn, actors.tenant, spelling, "client")
            if name_key(spelling) == name_key(text):
                assert found is not None and str(found.tag_id) == tag["tag_id"], spelling
    mapped = await count(
        engine, "tag_mappings WHERE tenant = :t AND tagged_id = :c", t=actors.tenant, c=client.client_id
    )
    assert mapped == 1


async def test_concurrent_creates_of_one_interaction_type_converge(engine, actors: Actors, invoke):
    """A second create of the same name, by another spelling, waits for the first and returns its row."""
    async with tenant_transaction(engine, actors.tenant) as conn:
        mine, created = await interactions.create_interaction_type(
            conn, actors.tenant, type_name="Site Visit", created_by=actors.admin
        )
        twin = asyncio.ensure_future(attempt(invoke, "crm.create_interaction_type", {"type_name": "SITE\xa0visit"}))
        await wait_until_blocked_on_a_lock(engine)
    result = await twin
    assert isinstance(result, Invocation), result.info
    assert (result.output["interaction_type"]["type_id"], result.output["interaction_type"]["created"]) == (
        str(mine.type_id),
        False,
    )
    assert created
    assert await count(engine, "interaction_types WHERE tenant = :t", t=actors.tenant) == 1


async def test_concurrent_definitions_of_one_tag_converge(engine, actors: Actors, invoke):
    client = await new_client(engine, actors.tenant)
    async with tenant_transaction(engine, actors.tenant) as conn:
        mine = await tags.ensure_tag_definition(conn, actors.tenant, "Hot Deal", "client")
        twin = asyncio.ensure_future(
            attempt(invoke, "clients.add_tag", {"client_id": str(client.client_id), "tags": ["hot\u3000DEAL"]})
        )
        await wait_until_blocked_on_a_lock(engine)
    result = await twin
    assert isinstance(result, Invocation), result.info
    assert [(t["tag_id"], t["tag_text"]) for t in result.output["added"]] == [(str(mine.tag_id), "Hot Deal")]
    assert await count(engine, "tag_definitions WHERE tenant = :t", t=actors.tenant) == 1


async def test_concurrent_clients_of_one_name_conflict(engine, actors: Actors, invoke):
    """Client names are unique by their key: a concurrent create of another spelling waits and is CONFLICT."""
    async with tenant_transaction(engine, actors.tenant) as conn:
        await clients.create_client(conn, actors.tenant, {"client_name": "Acme Corp"})
        twin = asyncio.ensure_future(attempt(invoke, "clients.create", {"client_name": "ACME\x1fcorp"}))
        await wait_until_blocked_on_a_lock(engine)
    result = await twin
    assert isinstance(result, ActionFailure)
    assert (result.info.code, result.info.details["field"]) == ("CONFLICT", "client_name")
    assert await count(engine, "clients WHERE tenant = :t", t=actors.tenant) == 1
    async with tenant_transaction(engine, actors.tenant) as conn:
        with pytest.raises(DuplicateError) as exc:
            await clients.create_client(conn, actors.tenant, {"client_name": "acme  corp"})
    assert exc.value.field == "client_name"


async def test_a_status_is_found_by_any_spelling_of_its_name(engine, actors: Actors, invoke):
    client = await new_client(engine, actors.tenant)
    async with tenant_transaction(engine, actors.tenant) as conn:
        activity = await interactions.create_interaction(
            conn, actors.tenant, user_id=actors.admin, type_id=CALL_TYPE, title="Call", client_id=client.client_id
        )
    for spelling in ("\xa0cOMPLETED\x1f", "\u200bComp\u00adleted"):  # a zero-width space, a soft hyphen
        moved = await attempt(
            invoke, "crm.update_activity_status", {"activity_id": str(activity.interaction_id), "status_name": spelling}
        )
        assert isinstance(moved, Invocation), moved.info
        assert moved.output["current_status_name"] == "Completed"


async def test_custom_contact_type_labels_are_one_per_key(engine, actors: Actors, invoke):
    def contact(label: str) -> dict[str, Any]:
        return {
            "full_name": "Label Test",
            "email": f"label.{uuid.uuid4().hex[:8]}@example.com",
            "phone_numbers": [{"phone_number": "+14155550100", "custom_type": label, "is_default": True}],
        }

    for label in ("Σας γραμμη", "ΣΑΣ\xa0ΓΡΑΜΜΗ", "σασ\x1cγραμμη"):
        await invoke("contacts.create", contact(label))
    labels = await rows(
        engine, "SELECT label, normalized_label FROM contact_phone_type_definitions WHERE tenant = :t", t=actors.tenant
    )
    assert [(r.label, r.normalized_label) for r in labels] == [("Σας γραμμη", "σασ γραμμη")]
