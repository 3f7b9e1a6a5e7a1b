"""What a new PSA tenant is seeded with (reference: the PSA onboarding seeds 01-05; docs/provisioning.md,
"Steps and progress").

Roles, the permission catalogue of ``resource:action`` pairs, role grants (MSP Admin gets every MSP
permission), the default tax region and rate, and default ticket and interaction statuses. Every statement
is an idempotent ``INSERT ... ON CONFLICT DO NOTHING``; unlike the reference, grants are never wiped and
re-inserted (docs/decisions.md, "Provisioning"), so re-running the seeds changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from psa.domain.values import name_key

CRUD = ("create", "read", "update", "delete")

# (role_name, msp, client, description) -- reference: 01_roles.cjs
ROLES: tuple[tuple[str, bool, bool, str], ...] = (
    ("Admin", True, False, "Full system administrator access"),
    ("Finance", True, False, "Financial operations and billing management"),
    ("Technician", True, False, "Technical support and service delivery"),
    ("Project Manager", True, False, "Project oversight and team coordination"),
    ("Dispatcher", True, False, "Scheduling and dispatch operations"),
    ("Admin", False, True, "Client portal administrator"),
    ("Finance", False, True, "Client billing and financial visibility"),
    ("User", False, True, "Standard client portal user"),
)

_MSP_RESOURCES: dict[str, tuple[str, ...]] = {
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
    # Reference: the settings catalogue is one row per action shared by MSP and client portal users.
    "settings": ("read", "create", "update", "delete"),
    # Beyond the reference: provisioning itself is a permission (used by the management tenant's API).
    "tenant": ("create", "read", "update", "delete"),
}

_CLIENT_RESOURCES: dict[str, tuple[str, ...]] = {
    "billing": ("read", "create", "update"),
    "client": CRUD,
    "project": CRUD,
    "ticket": ("read", "create", "update"),
    "time_management": CRUD,
    "user": (*CRUD, "reset_password"),
    "document": ("read", "create", "update"),
}


@dataclass(frozen=True)
class PermissionDef:
    """One catalogue row: ``resource:action`` with the portals it applies to."""

    resource: str
    action: str
    msp: bool
    client: bool

    @property
    def description(self) -> str:
        scope = "client portal: " if self.client and not self.msp else ""
        return f"{scope}{self.action.replace('_', ' ').capitalize()} {self.resource.replace('_', ' ')}"


def permission_catalogue() -> tuple[PermissionDef, ...]:
    """The full catalogue: MSP permissions, client-portal permissions, and ``settings:*`` for both."""
    rows = [PermissionDef(res, act, True, res == "settings") for res, acts in _MSP_RESOURCES.items() for act in acts]
    rows += [PermissionDef(res, act, False, True) for res, acts in _CLIENT_RESOURCES.items() for act in acts]
    return tuple(rows)


def _grants(spec: dict[str, tuple[str, ...]]) -> tuple[tuple[str, str], ...]:
    return tuple((res, act) for res, acts in spec.items() for act in acts)


# (role_name, msp, client) -> [(resource, action)] resolved against the catalogue of the same portal.
# MSP Admin is not listed: it gets every MSP permission. Reference: lib/roleGrants.cjs.
ROLE_GRANTS: dict[tuple[str, bool, bool], tuple[tuple[str, str], ...]] = {
    ("Finance", True, False): _grants(
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
    ("Technician", True, False): _grants(
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
    ("Project Manager", True, False): _grants(
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
    ("Dispatcher", True, False): _grants(
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
    ("Admin", False, True): tuple((p.resource, p.action) for p in permission_catalogue() if p.client),
    ("Finance", False, True): _grants(
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
    ("User", False, True): _grants(
        {
            "client": ("read",),
            "project": ("read",),
            "ticket": ("read", "create", "update"),
            "time_management": ("read", "create"),
            "document": ("read", "create"),
            "settings": ("read",),
        }
    ),
}


# (status_type, name, order_number, is_default, is_closed). Beyond the reference, which seeds no ticket or
# interaction statuses at provisioning: actions that log interactions or open tickets
# need a default status (reference: "No default interaction status found").
STATUSES: tuple[tuple[str, str, int, bool, bool], ...] = (
    ("ticket", "New", 1, True, False),
    ("ticket", "In Progress", 2, False, False),
    ("ticket", "Closed", 3, False, True),
    ("interaction", "Planned", 1, True, False),
    ("interaction", "Completed", 2, False, True),
)


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
"""The tables ``seed_tenant`` writes, one INSERT each: what the provisioning statement budget leaves out as
"seeds" (issue 2)."""


async def seed_tenant(conn: AsyncConnection, tenant: UUID) -> SeedResult:
    """Seed roles, permissions, grants, the default tax region and rate, and the default ticket and
    interaction statuses (STATUSES) for ``tenant``.

    Six statements, each idempotent. A status is skipped when the tenant already has one of that name and
    kind, or (for a default) already has a default of that kind, so a tenant's own choices are kept.
    Raises whatever the database raises (the tenant must exist).
    """
    roles = await conn.execute(
        text(
            """INSERT INTO roles (tenant, role_name, msp, client, description)
               SELECT :tenant, * FROM unnest(CAST(:names AS text[]), CAST(:msp AS bool[]),
                                             CAST(:client AS bool[]), CAST(:descr AS text[]))
               ON CONFLICT (tenant, role_name, msp, client) DO NOTHING"""
        ),
        {
            "tenant": tenant,
            "names": [r[0] for r in ROLES],
            "msp": [r[1] for r in ROLES],
            "client": [r[2] for r in ROLES],
            "descr": [r[3] for r in ROLES],
        },
    )
    catalogue = permission_catalogue()
    perms = await conn.execute(
        text(
            """INSERT INTO permissions (tenant, resource, action, msp, client, description)
               SELECT :tenant, * FROM unnest(CAST(:res AS text[]), CAST(:act AS text[]), CAST(:msp AS bool[]),
                                             CAST(:client AS bool[]), CAST(:descr AS text[]))
               ON CONFLICT (tenant, resource, action, msp, client) DO NOTHING"""
        ),
        {
            "tenant": tenant,
            "res": [p.resource for p in catalogue],
            "act": [p.action for p in catalogue],
            "msp": [p.msp for p in catalogue],
            "client": [p.client for p in catalogue],
            "descr": [p.description for p in catalogue],
        },
    )
    grant_rows = [
        (role, msp, client, res, act) for (role, msp, client), pairs in ROLE_GRANTS.items() for res, act in pairs
    ]
    grants = await conn.execute(
        text(
            """INSERT INTO role_permissions (tenant, role_id, permission_id)
               SELECT r.tenant, r.role_id, p.permission_id
                 FROM roles r JOIN permissions p ON p.tenant = r.tenant AND p.msp
                WHERE r.tenant = :tenant AND r.role_name = 'Admin' AND r.msp AND NOT r.client
               UNION
               SELECT r.tenant, r.role_id, p.permission_id
                 FROM unnest(CAST(:role AS text[]), CAST(:rmsp AS bool[]), CAST(:rclient AS bool[]),
                             CAST(:res AS text[]), CAST(:act AS text[])) AS g(role, rmsp, rclient, res, act)
                 JOIN roles r ON r.tenant = :tenant AND r.role_name = g.role AND r.msp = g.rmsp
                             AND r.client = g.rclient
                 JOIN permissions p ON p.tenant = :tenant AND p.resource = g.res AND p.action = g.act
                             AND ((g.rmsp AND p.msp) OR (g.rclient AND p.client))
               ON CONFLICT DO NOTHING"""
        ),
        {
            "tenant": tenant,
            "role": [g[0] for g in grant_rows],
            "rmsp": [g[1] for g in grant_rows],
            "rclient": [g[2] for g in grant_rows],
            "res": [g[3] for g in grant_rows],
            "act": [g[4] for g in grant_rows],
        },
    )
    region = await conn.execute(
        text(
            """INSERT INTO tax_regions (tenant, region_code, region_name, is_active)
               VALUES (:tenant, 'DEFAULT', 'Default Tax Region', true) ON CONFLICT DO NOTHING"""
        ),
        {"tenant": tenant},
    )
    rate = await conn.execute(
        text(
            """INSERT INTO tax_rates (tenant, tax_percentage, description, start_date, region_code, is_active)
               SELECT :tenant, 0, 'Non-taxable', CURRENT_DATE, 'DEFAULT', true
                WHERE NOT EXISTS (SELECT 1 FROM tax_rates WHERE tenant = :tenant
                                     AND description = 'Non-taxable' AND tax_percentage = 0)"""
        ),
        {"tenant": tenant},
    )
    statuses = await conn.execute(
        text(
            """INSERT INTO statuses (tenant, status_type, name, name_key, order_number, is_default, is_closed)
               SELECT :tenant, * FROM unnest(CAST(:kind AS text[]), CAST(:name AS text[]), CAST(:key AS text[]),
                                             CAST(:ord AS int[]), CAST(:dflt AS bool[]), CAST(:closed AS bool[]))
               ON CONFLICT DO NOTHING"""
        ),
        {
            "tenant": tenant,
            "kind": [s[0] for s in STATUSES],
            "name": [s[1] for s in STATUSES],
            "key": [name_key(s[1]) for s in STATUSES],
            "ord": [s[2] for s in STATUSES],
            "dflt": [s[3] for s in STATUSES],
            "closed": [s[4] for s in STATUSES],
        },
    )
    return SeedResult(
        roles.rowcount, perms.rowcount, grants.rowcount, region.rowcount, rate.rowcount, statuses.rowcount
    )


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
