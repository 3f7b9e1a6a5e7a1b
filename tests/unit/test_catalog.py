"""The designer action catalog (psa.automation.catalog; reference: the designer's actionCatalog)."""

from __future__ import annotations

import json

import pytest
from pydantic import BaseModel

from psa.automation.catalog import (
    BUILT_IN_SEEDS,
    AppModule,
    CatalogRecord,
    build_catalog,
    built_in_seed,
    field_names,
    is_built_in_group,
    record_for_action,
)
from psa.automation.registry import ActionDef, ActionRegistry


class Location(BaseModel):
    city: str


class FindInput(BaseModel):
    contact_id: str | None = None
    Email: str | None = None
    address: Location | None = None


class FindOutput(BaseModel):
    zeta: int
    alpha: Location
    Beta: list[Location]


class Empty(BaseModel):
    pass


async def _handler(ctx, data):
    return {}


def fake(
    action_id: str,
    label: str,
    *,
    version: int = 1,
    description: str = "",
    icon: str | None = None,
    input_model: type[BaseModel] = Empty,
    output_model: type[BaseModel] = Empty,
) -> ActionDef:
    return ActionDef(
        id=action_id,
        version=version,
        label=label,
        description=description,
        input_model=input_model,
        output_model=output_model,
        side_effectful=False,
        idempotency="engine",
        permissions=(),
        handler=_handler,
        icon=icon,
    )


@pytest.fixture
def registry() -> ActionRegistry:
    reg = ActionRegistry()
    for action in (
        fake("contacts.search", "Search Contacts"),
        fake(
            "contacts.find",
            "  Find Contact ",
            description="  Find a contact by id, email, or phone  ",
            input_model=FindInput,
            output_model=FindOutput,
        ),
        fake("contacts.add_tag", "add Tag to Contact"),  # lower-case label sorts case-insensitively
        fake("Contacts.create", "Create Contact"),  # module name is lowercased
        fake("clients.find", "Find Client"),
        fake("crm.send_quote", "Send Quote"),
        fake("crm.create_quote", "Create Quote"),
        fake("crm.create_quote_from_template", "Create Quote from Template"),
        fake("tickets.create", "Create Ticket"),
        fake("assets.find_associated_tickets", "Find Associated Tickets"),
        fake("ai.infer", "Infer"),
        fake("ai.summarize", "Summarize", icon="sparkles"),
        fake("create_ticket_from_email", "Create Ticket From Email"),
        fake("billing_sync.push", "Push Invoice", icon="invoice"),
        fake("billing_sync.pull", "Pull Payments"),
        fake("zoom.schedule", "Schedule Meeting"),
        fake("hubspot.sync", "Sync Contact"),
        fake("hubspot.sync", "Sync Contact v2", version=2),
        fake("blank.label", "   "),
    ):
        reg.register(action)
    return reg


def by_key(catalog: list[CatalogRecord]) -> dict[str, CatalogRecord]:
    return {record.group_key: record for record in catalog}


def test_built_in_records_come_first_in_seed_order_even_when_empty(registry: ActionRegistry) -> None:
    catalog = build_catalog(registry)
    keys = [record.group_key for record in catalog]
    seeds = [seed.group_key for seed in BUILT_IN_SEEDS]
    assert seeds == [
        "ticket",
        "contact",
        "client",
        "communication",
        "scheduling",
        "project",
        "time",
        "crm",
        "activities",
        "data-store",
        "transform",
        "ai",
    ]
    assert keys[: len(seeds)] == seeds
    empty = by_key(catalog)["scheduling"]
    assert empty.actions == []
    assert empty.allowed_action_ids == []
    assert empty.default_action_id == "scheduling.assign_user"
    assert by_key(catalog)["transform"].default_action_id is None
    assert by_key(catalog)["transform"].tile_kind == "transform"
    assert by_key(catalog)["ai"].tile_kind == "ai"


def test_contact_group_sorted_by_label(registry: ActionRegistry) -> None:
    contact = by_key(build_catalog(registry))["contact"]
    assert [a.label for a in contact.actions] == [
        "add Tag to Contact",
        "Create Contact",
        "Find Contact",
        "Search Contacts",
    ]
    assert contact.allowed_action_ids == ["contacts.add_tag", "Contacts.create", "contacts.find", "contacts.search"]
    assert contact.model_dump(exclude={"actions", "allowed_action_ids"}) == {
        "group_key": "contact",
        "label": "Contact",
        "icon_token": "contact",
        "tile_kind": "core-object",
        "default_action_id": "contacts.find",
        "description": "Find and search contacts for downstream workflow steps.",
        "available": None,
    }


def test_action_entries_carry_trimmed_labels_and_sorted_field_names(registry: ActionRegistry) -> None:
    contact = by_key(build_catalog(registry))["contact"]
    find = next(a for a in contact.actions if a.id == "contacts.find")
    assert find.model_dump() == {
        "id": "contacts.find",
        "version": 1,
        "label": "Find Contact",
        "description": "Find a contact by id, email, or phone",
        "input_field_names": ["address", "contact_id", "Email"],
        "output_field_names": ["alpha", "Beta", "zeta"],
    }
    search = next(a for a in contact.actions if a.id == "contacts.search")
    assert search.description is None
    assert search.input_field_names == []


def test_crm_labels_sort_like_the_reference(registry: ActionRegistry) -> None:
    crm = by_key(build_catalog(registry))["crm"]
    assert [a.label for a in crm.actions] == ["Create Quote", "Create Quote from Template", "Send Quote"]


def test_ticket_group_takes_the_extra_assets_action(registry: ActionRegistry) -> None:
    ticket = by_key(build_catalog(registry))["ticket"]
    assert ticket.allowed_action_ids == ["tickets.create", "assets.find_associated_tickets"]


def test_ai_group_only_holds_ai_infer(registry: ActionRegistry) -> None:
    catalog = by_key(build_catalog(registry))
    assert catalog["ai"].allowed_action_ids == ["ai.infer"]
    assert catalog["app:ai"].allowed_action_ids == ["ai.summarize"]
    assert catalog["app:ai"].icon_token == "sparkles"


def test_automatic_app_records(registry: ActionRegistry) -> None:
    catalog = build_catalog(registry)
    apps = [r for r in catalog if r.group_key.startswith("app:")]
    assert [(r.group_key, r.label) for r in apps] == [
        ("app:ai", "Ai"),
        ("app:billing_sync", "Billing Sync"),
        ("app:blank", "Blank"),
        ("app:create_ticket_from_email", "Create Ticket From Email"),
        ("app:hubspot", "Hubspot"),
        ("app:zoom", "Zoom"),
    ]
    billing = by_key(catalog)["app:billing_sync"]
    assert billing.tile_kind == "app"
    assert billing.icon_token == "invoice"  # the first registered action's icon
    assert billing.description == "App actions exposed by Billing Sync."
    assert billing.allowed_action_ids == ["billing_sync.pull", "billing_sync.push"]  # by id
    assert [a.label for a in billing.actions] == ["Pull Payments", "Push Invoice"]  # by label
    assert by_key(catalog)["app:zoom"].icon_token == "app"
    hubspot = by_key(catalog)["app:hubspot"]
    assert hubspot.allowed_action_ids == ["hubspot.sync"]
    assert [(a.id, a.version) for a in hubspot.actions] == [("hubspot.sync", 1), ("hubspot.sync", 2)]
    assert by_key(catalog)["app:blank"].actions[0].label == "blank.label"  # blank label -> id


def test_configured_app_modules_claim_their_actions(registry: ActionRegistry) -> None:
    module = AppModule(
        group_key="app:meetings",
        label="Meetings",
        icon_token="calendar",
        description="Video meetings",
        default_action_id="zoom.schedule",
        allowed_action_ids=["zoom.schedule", "hubspot.sync", "zoom.schedule", "unknown.action", "contacts.find"],
        available=True,
    )
    catalog = build_catalog(registry, [module])
    keys = [r.group_key for r in catalog]
    assert "app:zoom" not in keys  # claimed: no automatic records
    assert "app:hubspot" not in keys
    meetings = by_key(catalog)["app:meetings"]
    assert meetings.allowed_action_ids == ["contacts.find", "hubspot.sync", "zoom.schedule"]  # deduped, known, by id
    assert [a.label for a in meetings.actions] == [
        "Find Contact",
        "Schedule Meeting",
        "Sync Contact",
        "Sync Contact v2",
    ]
    assert (meetings.icon_token, meetings.tile_kind, meetings.available) == ("calendar", "app", True)
    # an id listed by a module can also be in a built-in record; lookups find the first record
    assert "contacts.find" in by_key(catalog)["contact"].allowed_action_ids
    assert record_for_action(catalog, "contacts.find").group_key == "contact"
    app_labels = [r.label for r in catalog if r.group_key.startswith("app:")]
    assert app_labels == sorted(app_labels, key=str.casefold)


def test_record_for_action(registry: ActionRegistry) -> None:
    catalog = build_catalog(registry)
    assert record_for_action(catalog, "crm.send_quote").group_key == "crm"
    assert record_for_action(catalog, "assets.find_associated_tickets").group_key == "ticket"
    assert record_for_action(catalog, "create_ticket_from_email").group_key == "app:create_ticket_from_email"
    assert record_for_action(catalog, "nope.nothing") is None


def test_helpers() -> None:
    assert built_in_seed("Contacts").group_key == "contact"
    assert built_in_seed("links").group_key == "data-store"
    assert built_in_seed("billing") is None
    assert is_built_in_group("crm")
    assert not is_built_in_group("app:crm")


def test_field_names_resolve_refs_and_nullable_variants() -> None:
    schema = {
        "$defs": {"Inner": {"type": "object", "properties": {"b": {}, "A": {}}}},
        "anyOf": [{"type": "null"}, {"$ref": "#/$defs/Inner"}],
    }
    assert field_names(schema) == ["A", "b"]
    assert field_names({"oneOf": [{"properties": {"x": {}}}, {"properties": {"y": {}}}]}) == ["x"]
    assert field_names({"definitions": {"D": {"properties": {"q": {}}}}, "$ref": "#/definitions/D"}) == ["q"]
    assert field_names({"type": "string"}) == []
    assert field_names(None) == []


def test_catalog_dumps_to_plain_data(registry: ActionRegistry) -> None:
    dumped = [record.model_dump() for record in build_catalog(registry)]
    assert json.loads(json.dumps(dumped)) == dumped
    assert all("input_schema" not in action for record in dumped for action in record["actions"])
