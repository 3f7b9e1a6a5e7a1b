"""Tenants: the tenant row, its default (MSP) client and location, and tenant settings.

Every write is ``INSERT ... ON CONFLICT DO NOTHING`` on caller-supplied ids, so a retried or replayed
step writes nothing twice (docs/provisioning.md, "Idempotency"); the caller derives the ids from its business key.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from psa.config import Settings
from psa.domain import clients
from psa.domain.errors import DuplicateError, NotFoundError, ValidationError
from psa.domain.values import TENANT_EMAIL_PROVIDERS, tenant_slug, zone_or_utc


@dataclass(frozen=True)
class TenantRow:
    """Summary of one tenant (``psa tenants list``, customer reconcile) with its first internal admin user."""

    tenant: UUID
    client_name: str
    slug: str
    email: str
    product_code: str
    created_at: datetime
    admin_email: str | None
    admin_first_name: str | None = None
    admin_last_name: str | None = None


async def get_tenant(conn: AsyncConnection, id_or_slug: str) -> TenantRow | None:
    """The tenant given by id (when ``id_or_slug`` parses as a UUID) or else by slug, or None."""
    try:
        tenant = UUID(id_or_slug)
    except ValueError:
        return await get_tenant_by_slug(conn, id_or_slug)
    rows = await _tenants(conn, "WHERE t.tenant = :tenant", {"tenant": tenant})
    return rows[0] if rows else None


async def get_tenant_by_slug(conn: AsyncConnection, slug: str) -> TenantRow | None:
    """The tenant with ``slug``, or None."""
    rows = await _tenants(conn, "WHERE t.slug = :slug", {"slug": slug})
    return rows[0] if rows else None


async def tenant_exists(conn: AsyncConnection, tenant: UUID) -> bool:
    """Whether a tenant row with this id exists."""
    row = await conn.execute(text("SELECT 1 FROM tenants WHERE tenant = :t"), {"t": tenant})
    return row.first() is not None


@dataclass(frozen=True)
class TenantKey:
    """A tenant's id, slug and company name (``client_name``)."""

    tenant: UUID
    slug: str
    client_name: str


async def tenants_with_slug_or_id(conn: AsyncConnection, slug: str, tenant: UUID) -> list[TenantKey]:
    """The tenants holding ``slug`` or the id ``tenant`` (at most two: both are unique), in one query."""
    rows = await conn.execute(
        text("SELECT tenant, slug, client_name FROM tenants WHERE slug = :slug OR tenant = :tenant"),
        {"slug": slug, "tenant": tenant},
    )
    return [TenantKey(**row._mapping) for row in rows]


async def list_tenants(conn: AsyncConnection, *, limit: int | None = 100) -> list[TenantRow]:
    """Tenants, newest first (``limit`` None: all of them)."""
    return await _tenants(conn, "", {}, limit=limit)


async def _tenants(conn: AsyncConnection, where: str, params: dict, *, limit: int | None = 1) -> list[TenantRow]:
    """Tenant rows with their first active internal user holding the MSP Admin role (by creation time)."""
    result = await conn.execute(
        text(
            f"""SELECT t.tenant, t.client_name, t.slug, t.email, t.product_code, t.created_at,
                       a.email AS admin_email, a.first_name AS admin_first_name, a.last_name AS admin_last_name
                  FROM tenants t
                  LEFT JOIN LATERAL (
                    SELECT u.email, u.first_name, u.last_name FROM users u
                      JOIN user_roles ur ON ur.tenant = u.tenant AND ur.user_id = u.user_id
                      JOIN roles r ON r.tenant = ur.tenant AND r.role_id = ur.role_id
                     WHERE u.tenant = t.tenant AND u.user_type = 'internal' AND NOT u.is_inactive
                       AND r.role_name = 'Admin' AND r.msp AND NOT r.client
                     ORDER BY u.created_at, u.user_id LIMIT 1) a ON true
                  {where} ORDER BY t.created_at DESC, t.tenant LIMIT :limit"""
        ),
        {**params, "limit": limit},
    )
    return [TenantRow(**row._mapping) for row in result]


async def create_tenant(
    conn: AsyncConnection,
    *,
    tenant: UUID,
    slug: str,
    company_name: str,
    email: str,
    product_code: str = "psa",
    billing_source: str = "manual",
    plan: str | None = None,
    licensed_user_count: int | None = None,
) -> None:
    """Insert the tenant row (reference: createTenantInDB; ``client_name`` = company name).

    Idempotent for the same (tenant, slug): only when the insert met a conflict are the owners of the slug and
    the id read. Raises DuplicateError when the slug or the id belongs to another tenant.
    """
    inserted = await conn.execute(
        text(
            """INSERT INTO tenants (tenant, client_name, slug, email, product_code, billing_source, plan,
                                    licensed_user_count, last_license_update)
               VALUES (:tenant, :name, :slug, lower(:email), :product, :billing, :plan, CAST(:licenses AS integer),
                       CASE WHEN CAST(:licenses AS integer) IS NULL THEN NULL ELSE now() END)
               ON CONFLICT DO NOTHING RETURNING tenant"""
        ),
        {
            "tenant": tenant,
            "name": company_name,
            "slug": slug,
            "email": email,
            "product": product_code,
            "billing": billing_source,
            "plan": plan,
            "licenses": licensed_user_count,
        },
    )
    if inserted.first() is not None:  # ours, with this id and slug
        return
    owners = await tenants_with_slug_or_id(conn, slug, tenant)
    if {(row.tenant, row.slug) for row in owners} != {(tenant, slug)}:
        raise DuplicateError(f"a tenant with slug '{slug}' or id {tenant} already exists", field="tenant_name")


async def create_default_client(
    conn: AsyncConnection, *, tenant: UUID, client_id: UUID, location_id: UUID, client_name: str, email: str
) -> None:
    """The tenant's own MSP client, its 'Main Office' location and the default ``tenant_companies`` row.

    Reference: createTenantInDB creates the client with ``properties.type = 'msp'`` (here through
    ``clients.create_client`` without tax settings or email suffix); placeholders 'N/A' / 'XX' / 'Unknown'
    stand in for an unknown address. Idempotent on the given ids; raises ConflictError(field="client_id")
    when ``client_id`` already holds a client with another name.
    """
    await clients.create_client(
        conn,
        tenant,
        {
            "client_name": client_name,
            "properties": {"type": "msp", "is_system_client": True, "created_by": "tenant_setup"},
        },
        client_id=client_id,
        skip_tax_settings=True,
        skip_email_suffix=True,
    )
    await conn.execute(
        text(
            """WITH l AS (
                 INSERT INTO client_locations (tenant, location_id, client_id, location_name, email, phone,
                        address_line1, city, country_code, country_name, is_default, is_active)
                 VALUES (:tenant, :location_id, :client_id, 'Main Office', lower(:email), '', 'N/A', 'N/A', 'XX',
                        'Unknown', true, true)
                 ON CONFLICT DO NOTHING)
               INSERT INTO tenant_companies (tenant, client_id, is_default)
               VALUES (:tenant, :client_id, true) ON CONFLICT DO NOTHING"""
        ),
        {"tenant": tenant, "client_id": client_id, "location_id": location_id, "email": email},
    )


async def setup_tenant_settings(conn: AsyncConnection, *, tenant: UUID, email_provider: str) -> None:
    """``tenant_email_settings`` with a disabled provider config for ``email_provider``, and ``tenant_settings``.

    Reference: setupTenantData, minus its silent-rollback try/catch blocks. Idempotent.
    Raises ValidationError for a provider outside smtp, resend, hybrid, microsoft.
    """
    if email_provider not in TENANT_EMAIL_PROVIDERS:
        raise ValidationError(
            f"email_provider must be one of {', '.join(TENANT_EMAIL_PROVIDERS)} (got '{email_provider}')",
            field="email_provider",
        )
    config = {
        "smtp": {"host": "", "port": 587, "username": "", "password": "", "from": ""},
        "resend": {"apiKey": "", "from": ""},
    }.get(email_provider, {})
    provider_configs = [
        {
            "providerId": f"{email_provider}-provider",
            "providerType": email_provider,
            "isEnabled": False,
            "config": config,
        }
    ]
    await conn.execute(
        text(
            """WITH e AS (
                 INSERT INTO tenant_email_settings (tenant, email_provider, provider_configs, fallback_enabled,
                                                    tracking_enabled)
                 VALUES (:tenant, :provider, CAST(:configs AS jsonb), true, false) ON CONFLICT DO NOTHING)
               INSERT INTO tenant_settings (tenant, onboarding_completed, onboarding_skipped)
               VALUES (:tenant, false, false) ON CONFLICT DO NOTHING"""
        ),
        {"tenant": tenant, "provider": email_provider, "configs": json.dumps(provider_configs)},
    )


async def tenant_setting(conn: AsyncConnection, tenant: UUID, *path: str) -> Any:
    """The value at ``path`` in ``tenant_settings.settings`` (a JSON string holding the settings object is read
    too), or None: no row, no such key, or something other than an object on the way. Reference: the
    settings reads of crm.send_quote."""
    settings = (
        await conn.execute(text("SELECT settings FROM tenant_settings WHERE tenant = :tenant"), {"tenant": tenant})
    ).scalar()
    if isinstance(settings, str):  # parsed here: a string that is not JSON must not fail the caller
        try:
            settings = json.loads(settings)
        except ValueError:
            return None
    for key in path:
        settings = settings.get(key) if isinstance(settings, dict) else None
    return settings


async def tenant_zone(conn: AsyncConnection, tenant: UUID) -> ZoneInfo:
    """The tenant's time zone: the IANA name in ``tenant_settings.settings.timezone`` (e.g. ``Europe/Berlin``),
    UTC when unset or unknown. It gives calendar days in action inputs their meaning (docs/automation.md,
    "Dates")."""
    name = await tenant_setting(conn, tenant, "timezone")
    return zone_or_utc(name if isinstance(name, str) else None)


async def remove_tenant_settings(conn: AsyncConnection, tenant: UUID) -> int:
    """Compensation of ``setup_tenant_settings``. Returns rows deleted."""
    result = await conn.execute(
        text(
            """WITH e AS (DELETE FROM tenant_email_settings WHERE tenant = :t RETURNING 1),
                    s AS (DELETE FROM tenant_settings WHERE tenant = :t RETURNING 1)
               SELECT (SELECT count(*) FROM e) + (SELECT count(*) FROM s)"""
        ),
        {"t": tenant},
    )
    return int(result.scalar_one())


async def delete_tenant(conn: AsyncConnection, *, tenant: UUID, slug: str) -> int:
    """Delete the tenant row and, through ON DELETE CASCADE, every row the tenant owns.

    Compensation of ``create_tenant``: it only deletes a tenant whose slug matches, so a pre-existing
    tenant that merely shares an id is never touched. Returns 1 if a tenant was deleted, else 0.
    """
    result = await conn.execute(
        text("DELETE FROM tenants WHERE tenant = :t AND slug = :slug"), {"t": tenant, "slug": slug}
    )
    return result.rowcount


@functools.lru_cache(maxsize=8)
def management_slug(name: str) -> str:
    """The slug of the configured management tenant name (``tenant_slug``, computed once per name)."""
    return tenant_slug(name)


def is_management_tenant(settings: Settings, tenant: UUID, slug: str) -> bool:
    """Whether the tenant ``tenant`` (slug ``slug``) is the management tenant: by ``PSA_MANAGEMENT_TENANT_ID``
    when set, else by the slug of ``PSA_MANAGEMENT_TENANT_NAME``. ``resolve_management_tenant`` applies the same
    rule against the database (docs/provisioning.md, "Customer tracking")."""
    if settings.management_tenant_id is not None:
        return tenant == settings.management_tenant_id
    return slug == management_slug(settings.management_tenant_name)


async def resolve_management_tenant(conn: AsyncConnection, settings: Settings) -> UUID:
    """The management tenant's id: ``PSA_MANAGEMENT_TENANT_ID`` (alias ``NINEMINDS_TENANT_ID``) when set,
    else the tenant whose slug is that of ``PSA_MANAGEMENT_TENANT_NAME``.

    Raises NotFoundError with a message saying what to set or run when that tenant does not exist.
    """
    if settings.management_tenant_id is not None:
        if not await tenant_exists(conn, settings.management_tenant_id):
            raise NotFoundError(
                f"management tenant {settings.management_tenant_id} (PSA_MANAGEMENT_TENANT_ID) does not exist",
                field="management_tenant_id",
            )
        return settings.management_tenant_id
    name = settings.management_tenant_name
    found = await get_tenant_by_slug(conn, management_slug(name))
    if found is None:
        raise NotFoundError(
            f"management tenant '{name}' not found: run `psa tenants bootstrap-management --name \"{name}\"` "
            "or set PSA_MANAGEMENT_TENANT_ID",
            field="management_tenant_name",
        )
    return found.tenant
