"""The designer's action catalog: registered actions grouped into tiles (reference: the designer catalog;
designer/actionCatalog.ts).

Built-in groups are always emitted, in the seed order below, even when empty; an action lands in the group of
its module (the id's first dot-separated segment, trimmed and lowercased) or of an extra id listed in a seed.
Actions of other modules go to a configured app module that lists them, else to an automatic
``app:<module>`` record. Within built-in records actions are sorted by label; app records sort their
``allowed_action_ids`` by id, their actions by label, and themselves by label, after the built-ins. Labels
sort case-insensitively (the reference used JavaScript ``localeCompare``; docs/decisions.md, "Automation
runtime"). Records never carry schemas: only the top-level input and output field names, sorted.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Literal

from pydantic import BaseModel, Field

from psa.automation.registry import ActionDef, ActionRegistry, resolve_schema

TileKind = Literal["core-object", "transform", "app", "ai"]


class CatalogAction(BaseModel):
    """One action in a tile: ``label`` is the trimmed UI label (else the id), ``description`` the trimmed UI
    description (None when blank)."""

    id: str
    version: int
    label: str
    description: str | None = None
    input_field_names: list[str] = Field(default_factory=list)
    output_field_names: list[str] = Field(default_factory=list)


class CatalogRecord(BaseModel):
    """One designer tile (reference WorkflowDesignerCatalogRecord)."""

    group_key: str
    label: str
    icon_token: str
    tile_kind: TileKind
    allowed_action_ids: list[str] = Field(default_factory=list)
    default_action_id: str | None = None
    description: str | None = None
    actions: list[CatalogAction] = Field(default_factory=list)
    available: bool | None = None


class BuiltInSeed(BaseModel):
    group_key: str
    label: str
    icon_token: str
    tile_kind: TileKind
    default_action_id: str | None
    modules: tuple[str, ...]
    action_ids: tuple[str, ...] = ()
    description: str


class AppModule(BaseModel):
    """A configured app module (``group_key`` ``app:<x>``): the listed action ids, unknown ones dropped."""

    group_key: str
    label: str
    icon_token: str = "app"
    description: str | None = None
    default_action_id: str | None = None
    allowed_action_ids: list[str]
    available: bool | None = None


BUILT_IN_SEEDS: tuple[BuiltInSeed, ...] = (
    BuiltInSeed(
        group_key="ticket",
        label="Ticket",
        icon_token="ticket",
        tile_kind="core-object",
        default_action_id="tickets.create",
        modules=("tickets",),
        action_ids=("assets.find_associated_tickets",),
        description="Create, find, update, assign, and manage tickets.",
    ),
    BuiltInSeed(
        group_key="contact",
        label="Contact",
        icon_token="contact",
        tile_kind="core-object",
        default_action_id="contacts.find",
        modules=("contacts",),
        description="Find and search contacts for downstream workflow steps.",
    ),
    BuiltInSeed(
        group_key="client",
        label="Client",
        icon_token="client",
        tile_kind="core-object",
        default_action_id="clients.find",
        modules=("clients",),
        description="Find and search clients from the PSA client directory.",
    ),
    BuiltInSeed(
        group_key="communication",
        label="Communication",
        icon_token="communication",
        tile_kind="core-object",
        default_action_id="email.send",
        modules=("email", "notifications"),
        description="Send customer-facing or internal communications.",
    ),
    BuiltInSeed(
        group_key="scheduling",
        label="Scheduling",
        icon_token="scheduling",
        tile_kind="core-object",
        default_action_id="scheduling.assign_user",
        modules=("scheduling",),
        description="Assign and update scheduled work.",
    ),
    BuiltInSeed(
        group_key="project",
        label="Project",
        icon_token="project",
        tile_kind="core-object",
        default_action_id="projects.create_task",
        modules=("projects",),
        description="Create and manage project work items.",
    ),
    BuiltInSeed(
        group_key="time",
        label="Time",
        icon_token="time",
        tile_kind="core-object",
        default_action_id="time.create_entry",
        modules=("time",),
        description="Create and manage time tracking entries.",
    ),
    BuiltInSeed(
        group_key="crm",
        label="CRM",
        icon_token="crm",
        tile_kind="core-object",
        default_action_id="crm.create_activity_note",
        modules=("crm",),
        description="Create and track CRM activity records.",
    ),
    BuiltInSeed(
        group_key="activities",
        label="Activities",
        icon_token="activities",
        tile_kind="core-object",
        default_action_id="activities.find_group",
        modules=("activities",),
        description="Resolve user activity groups and file activities like tickets into them.",
    ),
    BuiltInSeed(
        group_key="data-store",
        label="Data Store",
        icon_token="data-store",
        tile_kind="core-object",
        default_action_id="store.get",
        modules=("store", "links"),
        description="Read and write durable workflow state across runs.",
    ),
    BuiltInSeed(
        group_key="transform",
        label="Transform",
        icon_token="transform",
        tile_kind="transform",
        default_action_id=None,
        modules=("transform",),
        description="Shape and normalize workflow data without raw expressions.",
    ),
    BuiltInSeed(
        group_key="ai",
        label="AI",
        icon_token="ai",
        tile_kind="ai",
        default_action_id="ai.infer",
        modules=(),
        action_ids=("ai.infer",),
        description="Infer structured workflow data with the configured AI provider.",
    ),
)
"""The reference's built-in groups, in emission order (reference: the designer catalog's group table)."""


def module_name(action_id: str) -> str:
    """``contacts.create`` -> ``contacts``; an id without a dot is its own module."""
    return action_id.split(".")[0].strip().lower()


def label_key(label: str) -> tuple[str, str]:
    """Case-insensitive sort key with a stable tie-break (stands in for JavaScript ``localeCompare``)."""
    return (label.casefold(), label)


def built_in_seed(module: str) -> BuiltInSeed | None:
    """The built-in group that holds ``module``'s actions, or None."""
    module = module.strip().lower()
    return next((seed for seed in BUILT_IN_SEEDS if module in seed.modules), None)


def is_built_in_group(group_key: str) -> bool:
    return any(seed.group_key == group_key for seed in BUILT_IN_SEEDS)


def _seed_for_action(action_id: str) -> BuiltInSeed | None:
    for seed in BUILT_IN_SEEDS:
        if action_id in seed.action_ids:
            return seed
    return built_in_seed(module_name(action_id))


def field_names(schema: dict[str, Any] | None) -> list[str]:
    """Top-level property names of a JSON Schema, sorted case-insensitively."""
    resolved = resolve_schema(schema or {}, schema or {})
    properties = resolved.get("properties")
    return sorted(properties, key=label_key) if isinstance(properties, dict) else []


def catalog_action(action: ActionDef) -> CatalogAction:
    label = (action.label or "").strip() or action.id
    description = (action.description or "").strip() or None
    return CatalogAction(
        id=action.id,
        version=action.version,
        label=label,
        description=description,
        input_field_names=field_names(action.input_schema()),
        output_field_names=field_names(action.output_schema()),
    )


def _sorted_by_label(actions: Iterable[CatalogAction]) -> list[CatalogAction]:
    return sorted(actions, key=lambda a: (*label_key(a.label), a.id, a.version))


def _title(module: str) -> str:
    words = [w for w in module.replace(".", " ").replace("_", " ").replace("-", " ").split(" ") if w]
    return " ".join(w[:1].upper() + w[1:] for w in words) or module


def build_catalog(registry: ActionRegistry, app_modules: Sequence[AppModule] = ()) -> list[CatalogRecord]:
    """The designer catalog of ``registry``'s actions (every version of an id is listed): the built-in
    records in seed order, then app records (configured ``app_modules`` and automatic ``app:<module>``
    records) sorted by label. See the module doc for the rules (reference: buildWorkflowDesignerActionCatalog).
    """
    actions = registry.list()
    built_in: dict[str, list[ActionDef]] = {seed.group_key: [] for seed in BUILT_IN_SEEDS}
    remaining: list[ActionDef] = []
    for action in actions:
        seed = _seed_for_action(action.id)
        if seed is not None:
            built_in[seed.group_key].append(action)
        else:
            remaining.append(action)
    records: list[CatalogRecord] = []
    for seed in BUILT_IN_SEEDS:
        members = _sorted_by_label(catalog_action(a) for a in built_in[seed.group_key])
        records.append(
            CatalogRecord(
                group_key=seed.group_key,
                label=seed.label,
                icon_token=seed.icon_token,
                tile_kind=seed.tile_kind,
                allowed_action_ids=_unique(a.id for a in members),
                default_action_id=seed.default_action_id,
                description=seed.description,
                actions=members,
            )
        )

    app_records: list[CatalogRecord] = []
    claimed: set[str] = set()
    by_id: dict[str, list[ActionDef]] = {}
    for action in actions:
        by_id.setdefault(action.id, []).append(action)
    for module in app_modules:
        ids = sorted(_unique(i for i in module.allowed_action_ids if i in by_id))
        claimed.update(ids)
        members = _sorted_by_label(catalog_action(a) for i in ids for a in by_id[i])
        app_records.append(
            CatalogRecord(
                group_key=module.group_key,
                label=module.label,
                icon_token=module.icon_token,
                tile_kind="app",
                allowed_action_ids=ids,
                default_action_id=module.default_action_id,
                description=module.description,
                actions=members,
                available=module.available,
            )
        )
    auto: dict[str, list[ActionDef]] = {}
    for action in remaining:
        if action.id not in claimed:
            auto.setdefault(module_name(action.id), []).append(action)
    for module, members_defs in auto.items():
        label = _title(module)
        members = _sorted_by_label(catalog_action(a) for a in members_defs)
        app_records.append(
            CatalogRecord(
                group_key=f"app:{module}",
                label=label,
                icon_token=members_defs[0].icon or "app",
                tile_kind="app",
                allowed_action_ids=sorted(_unique(a.id for a in members_defs)),
                description=f"App actions exposed by {label}.",
                actions=members,
            )
        )
    app_records.sort(key=lambda r: (*label_key(r.label), r.group_key))
    return records + app_records


def _unique(ids: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(ids))


def record_for_action(catalog: Sequence[CatalogRecord], action_id: str) -> CatalogRecord | None:
    """The first record whose ``allowed_action_ids`` contains ``action_id``."""
    return next((record for record in catalog if action_id in record.allowed_action_ids), None)
