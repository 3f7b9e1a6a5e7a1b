"""Tags (psa.domain.tags) against the real PostgreSQL test database."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from psa.db.engine import tenant_transaction
from psa.domain import tags
from psa.domain.errors import NotFoundError, ValidationError
from psa.domain.users import create_internal_user, hash_password
from tests.factories import NewTenant, make_tenant, new_client
from tests.helpers import rows, table_count, unique_email


async def new_user(engine: AsyncEngine, t: NewTenant) -> uuid.UUID:
    user_id = uuid.uuid4()
    async with tenant_transaction(engine, t.tenant) as conn:
        await create_internal_user(
            conn,
            tenant=t.tenant,
            user_id=user_id,
            first_name="Ada",
            last_name="Lovelace",
            email=unique_email(),
            password_hash=hash_password("a-password", rounds=4),
        )
    return user_id


async def apply(engine: AsyncEngine, t: NewTenant, **kwargs) -> tags.TagMapping:
    async with tenant_transaction(engine, t.tenant) as conn:
        return await tags.apply_tag(conn, t.tenant, **kwargs)


async def ensure(engine: AsyncEngine, t: NewTenant, tag_text: str, tagged_type: str, **kwargs) -> tags.TagDefinition:
    async with tenant_transaction(engine, t.tenant) as conn:
        return await tags.ensure_tag_definition(conn, t.tenant, tag_text, tagged_type, **kwargs)


@pytest.fixture
async def tenant(engine) -> NewTenant:
    return await make_tenant(engine, seeded=True)


# -- definitions -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tag_text", "background"),
    [("PSA Customer", "#BEC5F4"), ("AlgaDesk Customer", "#BEC5F4"), ("Test Tag", "#BEECF4"), ("VIP", "#F4D8BE")],
)
async def test_new_definition_gets_the_reference_colours(engine, tenant, tag_text, background):
    definition = await ensure(engine, tenant, f"  {tag_text} ", "client")
    assert (definition.tag_text, definition.tagged_type) == (tag_text, "client")
    assert (definition.background_color, definition.text_color) == (background, "#2C3E50")
    assert definition.board_id is None
    [row] = await rows(
        engine, "SELECT tag_text, background_color, text_color FROM tag_definitions WHERE tenant = :t", t=tenant.tenant
    )
    assert tuple(row) == (tag_text, background, "#2C3E50")


async def test_definition_is_get_or_create_and_keeps_its_first_colours(engine, tenant):
    board = uuid.uuid4()
    first = await ensure(
        engine, tenant, "Hot", "ticket", background_color="#ff0000", text_color="#00ff00", board_id=board
    )
    assert (first.background_color, first.text_color, first.board_id) == ("#FF0000", "#00FF00", board)
    again = await ensure(engine, tenant, "Hot", "ticket", background_color="#0000FF")
    assert again == first
    assert await table_count(engine, "tag_definitions", tenant.tenant) == 1


async def test_definition_matches_the_texts_name_key_per_type(engine, tenant):
    hot = await ensure(engine, tenant, "Hot  Deal", "client")
    same = await ensure(engine, tenant, " hot\xa0DEAL", "client")  # the same name: case and spaces aside
    assert (same.tag_id, same.tag_text) == (hot.tag_id, "Hot  Deal")  # the first spelling stays
    async with engine.connect() as conn:
        assert await tags.find_tag_definition(conn, tenant.tenant, "HOT DEAL", "client") == hot
        assert await tags.find_tag_definition(conn, tenant.tenant, "Hot Deals", "client") is None
    assert (await ensure(engine, tenant, "Hot Deal", "contact")).tag_id != hot.tag_id
    other = await make_tenant(engine)
    assert (await ensure(engine, other, "Hot Deal", "client")).tag_id != hot.tag_id
    assert await table_count(engine, "tag_definitions", tenant.tenant) == 2


async def test_only_a_missing_colour_is_generated(engine, tenant):
    background_only = await ensure(engine, tenant, "VIP", "client", background_color="#123456")
    assert (background_only.background_color, background_only.text_color) == ("#123456", "#2C3E50")
    text_only = await ensure(engine, tenant, "VIP", "contact", text_color="#FFFFFF")
    assert (text_only.background_color, text_only.text_color) == ("#F4D8BE", "#FFFFFF")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"tag_text": "   "}, "tag_text"),
        ({"tag_text": "x" * 51}, "tag_text"),
        ({"tag_text": "café"}, "tag_text"),
        ({"tagged_type": "invoice"}, "tagged_type"),
        ({"tagged_type": "Client"}, "tagged_type"),
        ({"background_color": "red"}, "background_color"),
        ({"background_color": "#12345"}, "background_color"),
        ({"text_color": "#GGGGGG"}, "text_color"),
        ({"text_color": "#1234567"}, "text_color"),
    ],
)
async def test_invalid_definition_input_writes_nothing(engine, tenant, kwargs, field):
    args = {"tag_text": "Fine", "tagged_type": "client", **kwargs}
    with pytest.raises(ValidationError) as exc:
        await ensure(engine, tenant, args.pop("tag_text"), args.pop("tagged_type"), **args)
    assert exc.value.field == field
    assert await table_count(engine, "tag_definitions", tenant.tenant) == 0


async def test_concurrent_ensures_make_one_definition(engine, tenant):
    both_open = asyncio.Barrier(2)

    async def attempt() -> tags.TagDefinition:
        async with tenant_transaction(engine, tenant.tenant) as conn:
            await conn.execute(text("SELECT 1"))
            await both_open.wait()
            return await tags.ensure_tag_definition(conn, tenant.tenant, "Race", "document")

    first, second = await asyncio.wait_for(asyncio.gather(attempt(), attempt()), timeout=30)
    assert first == second
    assert await table_count(engine, "tag_definitions", tenant.tenant) == 1


# -- mappings --------------------------------------------------------------------------------------


async def test_apply_tag_maps_the_client_and_records_the_user(engine, tenant):
    client_id, user_id = (await new_client(engine, tenant.tenant)).client_id, await new_user(engine, tenant)
    mapping = await apply(
        engine, tenant, tag_text="PSA Customer", tagged_id=client_id, tagged_type="client", created_by=user_id
    )
    assert (mapping.tenant, mapping.tag_text, mapping.tagged_id, mapping.tagged_type) == (
        tenant.tenant,
        "PSA Customer",
        client_id,
        "client",
    )
    assert (mapping.background_color, mapping.text_color, mapping.created_by) == ("#BEC5F4", "#2C3E50", user_id)
    [row] = await rows(
        engine, "SELECT mapping_id, tag_id, tagged_id, created_by FROM tag_mappings WHERE tenant = :t", t=tenant.tenant
    )
    assert tuple(row) == (mapping.mapping_id, mapping.tag_id, client_id, user_id)


async def test_apply_tag_twice_returns_the_first_mapping(engine, tenant):
    client_id, user_id = (await new_client(engine, tenant.tenant)).client_id, await new_user(engine, tenant)
    first = await apply(engine, tenant, tag_text="VIP", tagged_id=client_id, tagged_type="client")
    again = await apply(
        engine,
        tenant,
        tag_text=" VIP ",
        tagged_id=client_id,
        tagged_type="client",
        created_by=user_id,
        background_color="#000000",
    )
    assert again == first
    assert again.created_by is None
    assert await table_count(engine, "tag_mappings", tenant.tenant) == 1
    assert await table_count(engine, "tag_definitions", tenant.tenant) == 1


async def test_concurrent_apply_of_one_tag_makes_one_definition_and_one_mapping(engine, tenant):
    client_id = (await new_client(engine, tenant.tenant)).client_id
    both_open = asyncio.Barrier(2)

    async def attempt() -> tags.TagMapping:
        async with tenant_transaction(engine, tenant.tenant) as conn:
            await conn.execute(text("SELECT 1"))
            await both_open.wait()
            return await tags.apply_tag(
                conn, tenant.tenant, tag_text="PSA Customer", tagged_id=client_id, tagged_type="client"
            )

    first, second = await asyncio.wait_for(asyncio.gather(attempt(), attempt()), timeout=30)
    assert first == second
    assert await table_count(engine, "tag_definitions", tenant.tenant) == 1
    assert await table_count(engine, "tag_mappings", tenant.tenant) == 1


async def test_concurrent_apply_to_two_clients_shares_one_definition(engine, tenant):
    a, b = (
        (await new_client(engine, tenant.tenant, "A")).client_id,
        (await new_client(engine, tenant.tenant, "B")).client_id,
    )
    results = await asyncio.gather(
        apply(engine, tenant, tag_text="Shared", tagged_id=a, tagged_type="client"),
        apply(engine, tenant, tag_text="Shared", tagged_id=b, tagged_type="client"),
    )
    assert results[0].tag_id == results[1].tag_id
    assert results[0].mapping_id != results[1].mapping_id
    assert await table_count(engine, "tag_definitions", tenant.tenant) == 1


async def test_created_by_from_another_tenant_is_rejected(engine, tenant):
    other = await make_tenant(engine, seeded=True)
    client_id, stranger = (await new_client(engine, tenant.tenant)).client_id, await new_user(engine, other)
    for created_by in (stranger, uuid.uuid4()):
        with pytest.raises(NotFoundError) as exc:
            await apply(
                engine, tenant, tag_text="VIP", tagged_id=client_id, tagged_type="client", created_by=created_by
            )
        assert exc.value.field == "created_by"
    assert await table_count(engine, "tag_definitions", tenant.tenant) == 0
    assert await table_count(engine, "tag_mappings", tenant.tenant) == 0


async def test_tagged_client_or_contact_must_exist_in_the_tenant(engine, tenant):
    other = await make_tenant(engine, seeded=True)
    foreign_client = (await new_client(engine, other.tenant)).client_id
    for tagged_id, tagged_type in ((foreign_client, "client"), (uuid.uuid4(), "client"), (uuid.uuid4(), "contact")):
        with pytest.raises(NotFoundError) as exc:
            await apply(engine, tenant, tag_text="VIP", tagged_id=tagged_id, tagged_type=tagged_type)
        assert exc.value.field == "tagged_id"
    assert await table_count(engine, "tag_mappings", tenant.tenant) == 0


async def test_contacts_and_unchecked_types_can_be_tagged(engine, tenant):
    contact_id = uuid.uuid4()
    async with tenant_transaction(engine, tenant.tenant) as conn:
        await conn.execute(
            text("INSERT INTO contacts (tenant, contact_name_id, full_name, email) VALUES (:t, :c, 'Grace', :e)"),
            {"t": tenant.tenant, "c": contact_id, "e": f"{contact_id.hex}@example.com"},
        )
    contact_tag = await apply(engine, tenant, tag_text="Decision maker", tagged_id=contact_id, tagged_type="contact")
    assert contact_tag.tagged_type == "contact"
    ticket_id = uuid.uuid4()  # tickets are not checked for existence
    ticket_tag = await apply(engine, tenant, tag_text="Urgent", tagged_id=ticket_id, tagged_type="ticket")
    assert ticket_tag.tagged_id == ticket_id


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"tag_text": "a|b"}, "tag_text"),
        ({"tagged_type": "asset"}, "tagged_type"),
        ({"text_color": "#FFF"}, "text_color"),
    ],
)
async def test_invalid_apply_input_is_rejected(engine, tenant, kwargs, field):
    client_id = (await new_client(engine, tenant.tenant)).client_id
    with pytest.raises(ValidationError) as exc:
        await apply(engine, tenant, **{"tag_text": "VIP", "tagged_id": client_id, "tagged_type": "client", **kwargs})
    assert exc.value.field == field


async def test_tags_for_lists_a_records_tags_in_text_order_within_the_tenant(engine, tenant):
    client_id, other_client = (
        (await new_client(engine, tenant.tenant, "One")).client_id,
        (await new_client(engine, tenant.tenant, "Two")).client_id,
    )
    for tag_text in ("Zulu", "Alpha", "Mike"):
        await apply(engine, tenant, tag_text=tag_text, tagged_id=client_id, tagged_type="client")
    await apply(engine, tenant, tag_text="Other", tagged_id=other_client, tagged_type="client")
    other = await make_tenant(engine)
    async with engine.connect() as conn:
        listed = await tags.tags_for(conn, tenant.tenant, client_id, "client")
        assert await tags.tags_for(conn, other.tenant, client_id, "client") == []
        assert await tags.tags_for(conn, tenant.tenant, client_id, "contact") == []
        with pytest.raises(ValidationError):
            await tags.tags_for(conn, tenant.tenant, client_id, "nope")
    assert [m.tag_text for m in listed] == ["Alpha", "Mike", "Zulu"]


async def test_remove_tag_deletes_the_mapping_and_keeps_the_definition(engine, tenant):
    client_id = (await new_client(engine, tenant.tenant)).client_id
    mapping = await apply(engine, tenant, tag_text="VIP", tagged_id=client_id, tagged_type="client")
    other = await make_tenant(engine)
    async with tenant_transaction(engine, other.tenant) as conn:
        assert await tags.remove_tag(conn, other.tenant, tag_id=mapping.tag_id, tagged_id=client_id) == 0
    async with tenant_transaction(engine, tenant.tenant) as conn:
        assert await tags.remove_tag(conn, tenant.tenant, tag_id=mapping.tag_id, tagged_id=client_id) == 1
        assert await tags.remove_tag(conn, tenant.tenant, tag_id=mapping.tag_id, tagged_id=client_id) == 0
        assert await tags.tags_for(conn, tenant.tenant, client_id, "client") == []
    assert await table_count(engine, "tag_definitions", tenant.tenant) == 1
    again = await apply(engine, tenant, tag_text="VIP", tagged_id=client_id, tagged_type="client")
    assert (again.tag_id, again.mapping_id != mapping.mapping_id) == (mapping.tag_id, True)
