"""What a new tenant is seeded with, per product (reference: the onboarding seeds of each product, ``psa`` and
``algadesk``; docs/provisioning.md, "Seeds by product").

A seed set (``SeedSet``, one per product code in ``SEED_SETS``) is the product's roles with their grants, its
permission catalogue of ``resource:action`` pairs, whether it has the default tax region and rate, and its
default statuses. Every statement is an idempotent ``INSERT ... ON CONFLICT DO NOTHING``; unlike the reference,
grants are never wiped and re-inserted (docs/decisions.md, "Seeds"), so re-running the seeds changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from psa.domain.errors import ValidationError
from psa.domain.values import name_key

CRUD = ("create", "read", "update", "delete")
Pairs = Mapping[str, tuple[str, ...]]
"""resource -> its actions."""


@dataclass(frozen=True)
class PermissionDef:
    """One catalogue row: ``resource:action`` with the portals it applies to (``msp``, ``client``; both for a
    permission the two portals share)."""

    resource: str
    action: str
    msp: bool
    client: bool

    @property
    def description(self) -> str:
        scope = "client portal: " if self.client and not self.msp else ""
        return f"{scope}{self.action.replace('_', ' ').capitalize()} {self.resource.replace('_', ' ')}"


@dataclass(frozen=True)
class RoleDef:
    """One seeded role: name, portal (``msp`` or ``client``), description and its grants as ``(resource,
    action)`` pairs of its portal's permissions; ``grants=None`` grants every permission of its portal (the two
    Admin roles)."""

    name: str
    msp: bool
    client: bool
    description: str
    grants: tuple[tuple[str, str], ...] | None = None


@dataclass(frozen=True)
class SeedSet:
    """Everything a tenant of one product is seeded with.

    ``msp_permissions`` and ``client_permissions`` are the catalogue of each portal; ``shared_permissions`` are
    rows both portals use (``msp`` and ``client`` true). ``tax``: the default tax region and the 0 % rate.
    ``statuses``: ``(status_type, name, order_number, is_default, is_closed)`` rows.
    """

    product_code: str
    roles: tuple[RoleDef, ...]
    msp_permissions: Pairs
    client_permissions: Pairs
    shared_permissions: Pairs
    tax: bool
    statuses: tuple[tuple[str, str, int, bool, bool], ...]

    def permission_catalogue(self) -> tuple[PermissionDef, ...]:
        """The catalogue rows: MSP permissions, shared ones, then client-portal ones."""
        rows = [PermissionDef(res, act, True, False) for res, acts in self.msp_permissions.items() for act in acts]
        rows += [PermissionDef(res, act, True, True) for res, acts in self.shared_permissions.items() for act in acts]
        rows += [PermissionDef(res, act, False, True) for res, acts in self.client_permissions.items() for act in acts]
        return tuple(rows)

    def role_grants(self, role: RoleDef) -> tuple[PermissionDef, ...]:
        """The catalogue rows ``role`` is granted: each listed pair resolved among its portal's permissions, or
        every permission of its portal. Raises KeyError for a pair its portal's catalogue lacks (a seed set
        that would silently drop a grant, as the reference did, does not load)."""
        portal = [p for p in self.permission_catalogue() if (role.msp and p.msp) or (role.client and p.client)]
        if role.grants is None:
            return tuple(portal)
        by_pair = {(p.resource, p.action): p for p in portal}
        return tuple(by_pair[pair] for pair in role.grants)


def _pairs(spec: Pairs) -> tuple[tuple[str, str], ...]:
    return tuple((res, act) for res, acts in spec.items() for act in acts)


# -- psa (reference: the psa onboarding seeds 01-05 and their role grants) -------------------------------------
# Beyond the reference, which seeds no ticket or interaction statuses at provisioning: actions that log
# interactions or open tickets need a default status (reference: "No default interaction status found").
TICKET_STATUSES = (
    ("ticket", "New", 1, True, False),
    ("ticket", "In Progress", 2, False, False),
    ("ticket", "Closed", 3, False, True),
)
INTERACTION_STATUSES = (
    ("interaction", "Planned", 1, True, False),
    ("interaction", "Completed", 2, False, True),
)

PSA = SeedSet(
    product_code="psa",
    roles=(
        RoleDef("Admin", True, False, "Full system administrator access"),
        RoleDef(
            "Finance",
            True,
            False,
            "Financial operations and billing management",
            _pairs(
                {
                    "billing": CRUD,
                    "invoice": (*CRUD, "generate", "finalize", "send", "void", "credit"),
                    "credit": (*CRUD, "transfer", "reconcile"),
                    "financial": (*CRUD, "transfer"),
                    "billing_settings": CRUD,
                    "client": ("read", "update"),
                    "contact": ("read",),
                    "reports": ("read", "create"),
                    "timeentry": ("read",),
                    "timesheet": ("read", "read_all", "approve"),
                    "service": ("read",),
                    "tag": ("read",),
                    "profile": ("read", "update"),
                    "settings": ("read",),
                }
            ),
        ),
        RoleDef(
            "Technician",
            True,
            False,
            "Technical support and service delivery",
            _pairs(
                {
                    "ticket": CRUD,
                    "timeentry": CRUD,
                    "timesheet": ("read", "create", "update", "submit"),
                    "asset": ("read", "update"),
                    "client": ("read",),
                    "contact": ("read", "create", "update"),
                    "interaction": CRUD,
                    "document": ("read", "create"),
                    "project": ("read",),
                    "project_task": ("read", "update"),
                    "tag": ("read", "create"),
                    "profile": ("read", "update"),
                    "user_schedule": ("read",),
                    "settings": ("read",),
                }
            ),
        ),
        RoleDef(
            "Project Manager",
            True,
            False,
            "Project oversight and team coordination",
            _pairs(
                {
                    "project": CRUD,
                    "project_task": CRUD,
                    "ticket": CRUD,
                    "client": ("read",),
                    "contact": ("read",),
                    "timeentry": ("read",),
                    "timesheet": ("read", "read_all", "approve"),
                    "reports": ("read",),
                    "document": CRUD,
                    "user": ("read",),
                    "user_schedule": ("read", "update"),
                    "technician_dispatch": ("read",),
                    "tag": ("read", "create"),
                    "interaction": ("read", "create"),
                    "profile": ("read", "update"),
                    "settings": ("read",),
                }
            ),
        ),
        RoleDef(
            "Dispatcher",
            True,
            False,
            "Scheduling and dispatch operations",
            _pairs(
                {
                    "technician_dispatch": CRUD,
                    "user_schedule": CRUD,
                    "ticket": ("read", "update"),
                    "client": ("read",),
                    "contact": ("read",),
                    "user": ("read",),
                    "project_task": ("read",),
                    "timeentry": ("read",),
                    "tag": ("read",),
                    "interaction": ("read", "create"),
                    "profile": ("read", "update"),
                }
            ),
        ),
        RoleDef("Admin", False, True, "Client portal administrator"),
        RoleDef(
            "Finance",
            False,
            True,
            "Client billing and financial visibility",
            _pairs(
                {
                    "billing": ("read", "create", "update"),
                    "client": ("read",),
                    "project": ("read",),
                    "ticket": ("read",),
                    "time_management": ("read",),
                    "user": ("read",),
                    "document": ("read",),
                    "settings": ("read",),
                }
            ),
        ),
        RoleDef(
            "User",
            False,
            True,
            "Standard client portal user",
            _pairs(
                {
                    "client": ("read",),
                    "project": ("read",),
                    "ticket": ("read", "create", "update"),
                    "time_management": ("read", "create"),
                    "document": ("read", "create"),
                    "settings": ("read",),
                }
            ),
        ),
    ),
    msp_permissions={
        "asset": CRUD,
        "billing": CRUD,
        "client": CRUD,
        "contact": CRUD,
        "interaction": CRUD,
        "opportunities": CRUD,
        "inventory": CRUD,
        "vendor": CRUD,
        "purchase_order": CRUD,
        "sales_order": CRUD,
        "stock_transfer": CRUD,
        "stock_location": CRUD,
        "credit": (*CRUD, "transfer", "reconcile"),
        "financial": (*CRUD, "transfer"),
        "document": CRUD,
        "extension": ("read", "write"),
        "workflow": ("read", "view", "manage", "publish", "admin"),
        "rmm": ("execute_command",),
        "service": CRUD,
        "storage": ("read", "write"),
        "invoice": (*CRUD, "generate", "finalize", "send", "void", "credit"),
        "profile": CRUD,
        "project": CRUD,
        "reports": CRUD,
        "project_task": CRUD,
        "tag": CRUD,
        "technician_dispatch": CRUD,
        "ticket": (*CRUD, "close_override"),
        "timeentry": CRUD,
        "timesheet": (*CRUD, "read_all", "submit", "approve", "reverse"),
        "user": (*CRUD, "invite", "reset_password"),
        "user_schedule": CRUD,
        "ticket_settings": CRUD,
        "user_settings": CRUD,
        "system_settings": CRUD,
        "security_settings": CRUD,
        "timeentry_settings": CRUD,
        "billing_settings": CRUD,
        "account_management": ("read", "update", "delete"),
        "sla_policy": CRUD,
        # Beyond the reference: provisioning itself is a permission (used by the management tenant's API).
        "tenant": ("create", "read", "update", "delete"),
    },
    # Reference: the settings catalogue is one row per action shared by MSP and client portal users.
    shared_permissions={"settings": ("read", "create", "update", "delete")},
    client_permissions={
        "billing": ("read", "create", "update"),
        "client": CRUD,
        "project": CRUD,
        "ticket": ("read", "create", "update"),
        "time_management": CRUD,
        "user": (*CRUD, "reset_password"),
        "document": ("read", "create", "update"),
    },
    tax=True,
    statuses=TICKET_STATUSES + INTERACTION_STATUSES,
)

# -- algadesk (reference: the algadesk onboarding seeds 01-03: roles, permissions, role permissions) ----------
# No tax, ticket statuses, templates, folders, asset types or workflows, as in the reference. Beyond it: the
# default interaction statuses, because actions an AlgaDesk Admin may invoke (crm and contacts actions that log
# an interaction, under client:update or contact:update) need a default one (docs/decisions.md, "Seeds").
ALGADESK = SeedSet(
    product_code="algadesk",
    roles=(
        RoleDef("Admin", True, False, "Full Algadesk administrator access"),
        RoleDef(
            "Agent",
            True,
            False,
            "Help desk agent access for tickets, clients, contacts, and documents",
            _pairs(
                {
                    "client": ("read",),
                    "contact": ("read",),
                    "document": ("create", "read", "update"),
                    "profile": ("read", "update"),
                    "reports": ("read",),
                    "tag": ("create", "read", "update"),
                    "ticket": ("create", "read", "update"),
                    "ticket_settings": ("read",),
                    "user": ("read",),
                    "user_settings": ("read",),
                }
            ),
        ),
        RoleDef("Admin", False, True, "Client portal administrator"),
        RoleDef(
            "User",
            False,
            True,
            "Standard client portal user",
            _pairs(
                {
                    "client": ("read",),
                    "contact": ("read",),
                    "document": ("create", "read", "update"),
                    "ticket": ("create", "read", "update"),
                }
            ),
        ),
    ),
    msp_permissions={
        "account_management": ("read", "update", "delete"),
        "client": CRUD,
        "contact": CRUD,
        "document": CRUD,
        "profile": ("read", "update"),
        "reports": CRUD,
        "settings": ("read", "update"),
        "system_settings": ("read", "update"),
        "security_settings": ("read", "update"),
        "tag": CRUD,
        "ticket": CRUD,
        "ticket_settings": CRUD,
        "user": (*CRUD, "invite", "reset_password"),
        "user_settings": CRUD,
    },
    shared_permissions={},
    client_permissions={
        "client": ("read", "update"),
        "contact": ("read", "update"),
        "document": ("create", "read", "update"),
        "settings": ("read", "update"),
        "ticket": CRUD,
        "user": (*CRUD, "reset_password"),
    },
    tax=False,
    statuses=INTERACTION_STATUSES,
)

SEED_SETS: dict[str, SeedSet] = {seeds.product_code: seeds for seeds in (PSA, ALGADESK)}
"""The seed set of each product code (``psa.domain.values.PRODUCT_CODES``, which validation checks)."""


def seed_set(product_code: str) -> SeedSet:
    """The seed set of ``product_code``. Raises ValidationError(field="product_code") for an unsupported code
    (reference: "Unsupported tenant product code")."""
    found = SEED_SETS.get(product_code)
    if found is None:
        raise ValidationError(
            f"product_code must be one of {', '.join(SEED_SETS)} (got '{product_code}')", field="product_code"
        )
    return found


@dataclass(frozen=True)
class SeedResult:
    """Rows inserted by one run (0 everywhere on a re-run)."""

    roles: int
    permissions: int
    role_permissions: int
    tax_regions: int
    tax_rates: int
    statuses: int


SEEDED_TABLES = ("roles", "permissions", "role_permissions", "tax_regions", "tax_rates", "statuses")
"""The tables ``seed_tenant`` writes, at most one INSERT each: what the provisioning statement budget leaves out
as "seeds" (issue 2)."""


async def _insert(conn: AsyncConnection, sql: str, tenant: UUID, columns: Mapping[str, list]) -> int:
    """One ``INSERT ... SELECT :tenant, * FROM unnest(...)`` of the ``columns`` arrays; rows inserted."""
    result = await conn.execute(text(sql), {"tenant": tenant, **columns})
    return result.rowcount


async def seed_tenant(conn: AsyncConnection, tenant: UUID, product_code: str = "psa") -> SeedResult:
    """Seed ``tenant`` with the seed set of ``product_code`` (``SEED_SETS``): roles, the permission catalogue,
    role grants, for psa the default tax region and rate, and the default statuses.

    At most six statements, each idempotent (a seed set without tax or statuses skips those). A status is
    skipped when the tenant already has one of that name and kind, or (for a default) already has a default of
    that kind, so a tenant's own choices are kept. Raises ValidationError(field="product_code") for an
    unsupported product, and whatever the database raises (the tenant must exist).
    """
    seeds = seed_set(product_code)
    roles = await _insert(
        conn,
        """INSERT INTO roles (tenant, role_name, msp, client, description)
           SELECT :tenant, * FROM unnest(CAST(:names AS text[]), CAST(:msp AS bool[]),
                                         CAST(:client AS bool[]), CAST(:descr AS text[]))
           ON CONFLICT (tenant, role_name, msp, client) DO NOTHING""",
        tenant,
        {
            "names": [r.name for r in seeds.roles],
            "msp": [r.msp for r in seeds.roles],
            "client": [r.client for r in seeds.roles],
            "descr": [r.description for r in seeds.roles],
        },
    )
    catalogue = seeds.permission_catalogue()
    perms = await _insert(
        conn,
        """INSERT INTO permissions (tenant, resource, action, msp, client, description)
           SELECT :tenant, * FROM unnest(CAST(:res AS text[]), CAST(:act AS text[]), CAST(:msp AS bool[]),
                                         CAST(:client AS bool[]), CAST(:descr AS text[]))
           ON CONFLICT (tenant, resource, action, msp, client) DO NOTHING""",
        tenant,
        {
            "res": [p.resource for p in catalogue],
            "act": [p.action for p in catalogue],
            "msp": [p.msp for p in catalogue],
            "client": [p.client for p in catalogue],
            "descr": [p.description for p in catalogue],
        },
    )
    grants = [(role, permission) for role in seeds.roles for permission in seeds.role_grants(role)]
    granted = await _insert(
        conn,
        """INSERT INTO role_permissions (tenant, role_id, permission_id)
           SELECT r.tenant, r.role_id, p.permission_id
             FROM unnest(CAST(:role AS text[]), CAST(:rmsp AS bool[]), CAST(:rclient AS bool[]),
                         CAST(:res AS text[]), CAST(:act AS text[]), CAST(:pmsp AS bool[]),
                         CAST(:pclient AS bool[])) AS g(role, rmsp, rclient, res, act, pmsp, pclient)
             JOIN roles r ON r.tenant = :tenant AND r.role_name = g.role AND r.msp = g.rmsp
                         AND r.client = g.rclient
             JOIN permissions p ON p.tenant = :tenant AND p.resource = g.res AND p.action = g.act
                         AND p.msp = g.pmsp AND p.client = g.pclient
           ON CONFLICT DO NOTHING""",
        tenant,
        {
            "role": [r.name for r, _ in grants],
            "rmsp": [r.msp for r, _ in grants],
            "rclient": [r.client for r, _ in grants],
            "res": [p.resource for _, p in grants],
            "act": [p.action for _, p in grants],
            "pmsp": [p.msp for _, p in grants],
            "pclient": [p.client for _, p in grants],
        },
    )
    region = rate = 0
    if seeds.tax:
        region = await _insert(
            conn,
            """INSERT INTO tax_regions (tenant, region_code, region_name, is_active)
               VALUES (:tenant, 'DEFAULT', 'Default Tax Region', true) ON CONFLICT DO NOTHING""",
            tenant,
            {},
        )
        rate = await _insert(
            conn,
            """INSERT INTO tax_rates (tenant, tax_percentage, description, start_date, region_code, is_active)
               SELECT :tenant, 0, 'Non-taxable', CURRENT_DATE, 'DEFAULT', true
                WHERE NOT EXISTS (SELECT 1 FROM tax_rates WHERE tenant = :tenant
                                     AND description = 'Non-taxable' AND tax_percentage = 0)""",
            tenant,
            {},
        )
    statuses = 0
    if seeds.statuses:
        statuses = await _insert(
            conn,
            """INSERT INTO statuses (tenant, status_type, name, name_key, order_number, is_default, is_closed)
               SELECT :tenant, * FROM unnest(CAST(:kind AS text[]), CAST(:name AS text[]), CAST(:key AS text[]),
                                             CAST(:ord AS int[]), CAST(:dflt AS bool[]), CAST(:closed AS bool[]))
               ON CONFLICT DO NOTHING""",
            tenant,
            {
                "kind": [s[0] for s in seeds.statuses],
                "name": [s[1] for s in seeds.statuses],
                "key": [name_key(s[1]) for s in seeds.statuses],
                "ord": [s[2] for s in seeds.statuses],
                "dflt": [s[3] for s in seeds.statuses],
                "closed": [s[4] for s in seeds.statuses],
            },
        )
    return SeedResult(roles, perms, granted, region, rate, statuses)


async def remove_seeds(conn: AsyncConnection, tenant: UUID) -> int:
    """Delete everything ``seed_tenant`` writes for ``tenant`` (compensation). Returns rows deleted.

    Role grants and user-role links go with their roles and permissions (ON DELETE CASCADE). Every status
    of the tenant goes (a status still used by a ticket or interaction makes this fail: compensation runs
    before any exist).
    """
    deleted = 0
    for table in ("tax_rates", "tax_regions", "roles", "permissions", "statuses"):
        result = await conn.execute(text(f"DELETE FROM {table} WHERE tenant = :tenant"), {"tenant": tenant})
        deleted += result.rowcount
    return deleted
