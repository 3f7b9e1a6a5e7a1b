"""Client writes and reads: create (with default tax settings and email suffix), update, archive, duplicate
and delete a client, its default location and locations copied from another client, and reads by id, name and
property (reference: ClientModel and the clients.* actions).

Every function takes an explicit connection and tenant and filters every query by tenant; none needs a
logged-in user. Creates and updates run inside a SAVEPOINT or one statement, so a failure (including a unique
violation raised by a concurrent writer) leaves no partial rows and the caller's transaction usable
(docs/architecture.md, "Tenant isolation").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from psa.db.constraints import Violation, violation
from psa.domain.clients.models import (
    CLIENT_COLUMNS,
    LOCATION_FIELDS,
    Client,
    ClientInput,
    ClientUpdate,
    extract_domain,
    parse_input,
    properties_json,
    sync_website,
)
from psa.domain.documents import delete_entity_documents
from psa.domain.errors import ConflictError, DomainError, DuplicateError, NotFoundError, ValidationError
from psa.domain.values import name_key

# One statement: the client and, unless skipped, its default tax settings (a client_tax_settings row and a
# default client_tax_rates link to the tenant's first active tax rate; the reference wrote columns that do not
# exist) and its email suffix (self-registration off). ON CONFLICT DO NOTHING on the client: a
# retried step, a concurrent twin, a taken name and an already tracked tenant all return no row.
CREATE_CLIENT = text(
    f"""WITH c AS (
          INSERT INTO clients (tenant, client_id, client_name, name_key, client_type, url, properties, notes,
                               billing_email, is_inactive, default_currency_code)
          VALUES (:tenant, :client_id, :name, :key, :type, :url, CAST(:properties AS jsonb), :notes, :email,
                  :inactive, :currency)
          ON CONFLICT DO NOTHING
          RETURNING {CLIENT_COLUMNS}),
        settings AS (
          INSERT INTO client_tax_settings (tenant, client_id, is_reverse_charge_applicable)
          SELECT tenant, client_id, false FROM c WHERE :tax ON CONFLICT DO NOTHING),
        rates AS (
          INSERT INTO client_tax_rates (tenant, client_id, tax_rate_id, is_default)
          SELECT c.tenant, c.client_id, r.tax_rate_id, true FROM c
            JOIN LATERAL (SELECT tax_rate_id FROM tax_rates WHERE tenant = c.tenant AND is_active
                           ORDER BY created_at, tax_rate_id LIMIT 1) r ON true
           WHERE :tax ON CONFLICT DO NOTHING),
        suffix AS (
          INSERT INTO client_email_settings (tenant, client_id, email_suffix, self_registration_enabled)
          SELECT tenant, client_id, CAST(:suffix AS text), false FROM c WHERE CAST(:suffix AS text) IS NOT NULL
          ON CONFLICT DO NOTHING)
        SELECT * FROM c"""
)

# ClientUpdate fields that may be left out but not set to None.
_NOT_NULL_ON_UPDATE = ("client_name", "client_type", "is_inactive", "default_currency_code")
# Default-location columns that are NOT NULL: a patch that clears one stores ''.
_LOCATION_NOT_NULL = ("address_line1", "city", "country_name")
# Columns a duplicate copies beyond ClientInput (reference: clients.duplicate).
_DUPLICATED_COLUMNS = (
    "region_code",
    "tax_id_number",
    "is_tax_exempt",
    "tax_exemption_certificate",
    "payment_terms",
    "preferred_payment_method",
    "auto_invoice",
    "invoice_delivery_method",
    "billing_cycle",
    "timezone",
    "account_manager_id",
)
# Properties that identify one client and so are never copied to a duplicate (the tracked-tenant unique index).
_UNIQUE_PROPERTIES = ("tenant_id",)


async def _one(conn: AsyncConnection, where: str, params: dict[str, Any], *, lock: bool = False) -> Client | None:
    result = await conn.execute(
        text(
            f"""SELECT {CLIENT_COLUMNS} FROM clients WHERE tenant = :tenant AND {where}
                 ORDER BY created_at LIMIT 1 {"FOR UPDATE" if lock else ""}"""
        ),
        params,
    )
    row = result.first()
    return Client(**row._mapping) if row else None


async def find_client(conn: AsyncConnection, tenant: UUID, client_id: UUID) -> Client | None:
    """The client with ``client_id`` in ``tenant``, or None (also for another tenant's id)."""
    return await _one(conn, "client_id = :client_id", {"tenant": tenant, "client_id": client_id})


async def find_client_by_name(conn: AsyncConnection, tenant: UUID, client_name: str) -> Client | None:
    """The client of that name (the same name: an equal ``name_key``, which is unique per tenant; the reference
    looked clients up by ``lower(client_name) = lower(trim(name))`` over names unique only as written), or None."""
    return await _one(conn, "name_key = :key", {"tenant": tenant, "key": name_key(client_name)})


async def find_client_by_property(conn: AsyncConnection, tenant: UUID, key: str, value: str) -> Client | None:
    """The oldest client whose ``properties->>key`` equals ``value``, or None
    (reference: tenant deletion's lookup by ``properties->>'tenant_id'``)."""
    return await _one(conn, "properties ->> :key = :value", {"tenant": tenant, "key": key, "value": value})


async def create_client(
    conn: AsyncConnection,
    tenant: UUID,
    data: ClientInput | Mapping[str, Any],
    *,
    client_id: UUID | None = None,
    skip_tax_settings: bool = False,
    skip_email_suffix: bool = False,
) -> Client:
    """Create a client (reference: ClientModel.createClient) and return it.

    ``data`` is a ClientInput or a mapping validated as one. ``url`` and ``properties["website"]`` are
    synced. Unless ``skip_tax_settings``: a ``client_tax_settings`` row and a default ``client_tax_rates``
    link to the tenant's first active tax rate (by created_at), when the tenant has one (the reference
    wrote non-existent columns here). Unless ``skip_email_suffix``: when the url has a
    registered domain, a ``client_email_settings`` row with that suffix and self-registration off.

    Idempotent on ``client_id``: when that client exists in the tenant with the same name it is returned
    unchanged (a retried step). Raises ValidationError (field named), DuplicateError(field="client_name")
    for a name taken in the tenant (also by a concurrent transaction), DuplicateError(field=
    "properties.tenant_id") for a second client tracking the same tenant, ConflictError(field="client_id")
    when ``client_id`` holds a client with another name. Nothing is written on failure.
    """
    data = parse_input(ClientInput, data)
    url, properties = sync_website(data.url, data.properties, url_given=data.url is not None)
    # Insert first and sort out conflicts afterwards: a retried step, a concurrent twin, a taken name and a
    # tenant already tracked all make ON CONFLICT DO NOTHING return no row, so the happy path is one INSERT
    # and a conflict never aborts the caller's transaction.
    new_id = client_id or uuid4()
    suffix = None if skip_email_suffix else extract_domain(url)
    result = await conn.execute(
        CREATE_CLIENT,
        {
            "tenant": tenant,
            "client_id": new_id,
            "name": data.client_name,
            "key": name_key(data.client_name),
            "type": data.client_type,
            "url": url,
            "properties": properties_json(properties),
            "notes": data.notes,
            "email": data.billing_email,
            "inactive": data.is_inactive,
            "currency": data.default_currency_code,
            "tax": not skip_tax_settings,
            "suffix": suffix,
        },
    )
    row = result.first()
    if row is None:
        if client_id is not None and (existing := await _retried(conn, tenant, client_id, data.client_name)):
            return existing  # a retried step, or a concurrent twin that committed first
        raise await _conflict(conn, tenant, data.client_name, properties)
    return Client(**row._mapping)


async def _retried(conn: AsyncConnection, tenant: UUID, client_id: UUID, client_name: str) -> Client | None:
    """The existing client when ``client_id`` was already created with ``client_name`` (a retried step),
    None when the id is unused; ConflictError when the id holds another name."""
    existing = await find_client(conn, tenant, client_id)
    if existing is not None and existing.client_name != client_name:
        raise ConflictError(
            f"client {client_id} already exists with another name ('{existing.client_name}')", field="client_id"
        )
    return existing


async def _conflict(conn: AsyncConnection, tenant: UUID, name: str, properties: Mapping[str, Any]) -> DomainError:
    """Why an insert conflicted: DuplicateError for a taken name or an already tracked tenant."""
    if await find_client_by_name(conn, tenant, name) is not None:
        return DuplicateError(f"a client named '{name}' already exists", field="client_name")
    tracked = properties.get("tenant_id")
    if tracked and await find_client_by_property(conn, tenant, "tenant_id", str(tracked)) is not None:
        return DuplicateError(
            f"a client with properties.tenant_id '{tracked}' already exists", field="properties.tenant_id"
        )
    return ConflictError("the client conflicts with a concurrent change; retry", field="client_id")


async def update_client(
    conn: AsyncConnection, tenant: UUID, client_id: UUID, changes: ClientUpdate | Mapping[str, Any]
) -> Client:
    """Change the given fields of a client and return it (reference: ClientModel.updateClient).

    Same rules as ``create_client``; ``url`` and ``properties["website"]`` stay synced (a given url wins;
    new properties carrying a website set the url; new properties without one keep the current url).
    ``updated_at`` is set when any field is given. Email suffixes are not changed.
    Raises ValidationError, NotFoundError(field="client_id") (also for another tenant's client),
    DuplicateError(field="client_name") when renaming onto another client's name.
    """
    changes = parse_input(ClientUpdate, changes)
    fields = changes.model_fields_set
    for name in _NOT_NULL_ON_UPDATE:
        if name in fields and getattr(changes, name) is None:
            raise ValidationError(f"{name}: must not be null", field=name)
    current = await _one(conn, "client_id = :client_id", {"tenant": tenant, "client_id": client_id}, lock=True)
    if current is None:
        raise NotFoundError("Client not found", field="client_id")
    values = {name: getattr(changes, name) for name in fields}
    if not values:
        return current
    if "url" in fields or "properties" in fields:
        values["url"], values["properties"] = sync_website(
            values.get("url", current.url),
            values["properties"] if "properties" in fields else current.properties,
            url_given="url" in fields,
        )
    name = values.get("client_name", current.client_name)
    if "client_name" in values:
        values["name_key"] = name_key(name)
        other = await find_client_by_name(conn, tenant, name)
        if other is not None and other.client_id != client_id:
            raise DuplicateError(f"a client named '{name}' already exists", field="client_name")
    properties = values.get("properties", current.properties)
    if "properties" in values:
        values["properties"] = properties_json(values["properties"])
    assignments = ", ".join(
        f"{column} = CAST(:{column} AS jsonb)" if column == "properties" else f"{column} = :{column}"
        for column in values
    )
    try:
        async with conn.begin_nested():
            result = await conn.execute(
                text(
                    f"""UPDATE clients SET {assignments}, updated_at = now()
                         WHERE tenant = :tenant AND client_id = :client_id RETURNING {CLIENT_COLUMNS}"""
                ),
                {**values, "tenant": tenant, "client_id": client_id},
            )
    except IntegrityError as exc:
        if error := _duplicate(violation(exc), client_name=name, properties=properties):
            raise error from exc
        raise
    return Client(**result.one()._mapping)


def _duplicate(found: Violation | None, *, client_name: str, properties: Mapping[str, Any]) -> DuplicateError | None:
    """The DuplicateError a unique violation of a client's name or tracked tenant means (a concurrent writer
    took it after our check), else None."""
    if found is None or found.kind != "unique":
        return None
    if found.field == "client_name":
        return DuplicateError(f"a client named '{client_name}' already exists", field="client_name")
    if found.field == "properties.tenant_id":
        return DuplicateError(
            f"a client with properties.tenant_id '{properties.get('tenant_id')}' already exists",
            field="properties.tenant_id",
        )
    return None


async def archive_client(conn: AsyncConnection, tenant: UUID, client_id: UUID) -> Client:
    """Mark the client and all its contacts inactive and return the client (reference: the tenant
    deletion workflow deactivates client and contacts). Idempotent: ``updated_at`` only moves
    for rows that change. Raises NotFoundError(field="client_id")."""
    result = await conn.execute(
        text(
            f"""WITH contacts_archived AS (
                  UPDATE contacts SET is_inactive = true, updated_at = now()
                   WHERE tenant = :tenant AND client_id = :client_id AND NOT is_inactive)
                UPDATE clients SET is_inactive = true,
                                   updated_at = CASE WHEN is_inactive THEN updated_at ELSE now() END
                 WHERE tenant = :tenant AND client_id = :client_id RETURNING {CLIENT_COLUMNS}"""
        ),
        {"tenant": tenant, "client_id": client_id},
    )
    row = result.first()
    if row is None:
        raise NotFoundError("Client not found", field="client_id")
    return Client(**row._mapping)


async def delete_client(conn: AsyncConnection, tenant: UUID, client_id: UUID) -> int:
    """Delete a client; its locations, contacts, tax and email settings cascade, and the tag mappings and
    documents (notes documents, unless shared) of the client and its contacts are removed too (the reference
    orphaned them). Returns the number of clients deleted (0 or 1)."""
    contact_ids = await conn.scalars(
        text("SELECT contact_name_id FROM contacts WHERE tenant = :tenant AND client_id = :client_id"),
        {"tenant": tenant, "client_id": client_id},
    )
    for contact_id in list(contact_ids):
        await delete_entity_documents(conn, tenant, "contact", contact_id)
    await delete_entity_documents(conn, tenant, "client", client_id)
    result = await conn.execute(
        text(
            """WITH tags_removed AS (
                 DELETE FROM tag_mappings
                  WHERE tenant = :tenant
                    AND ((tagged_type = 'client' AND tagged_id = :client_id)
                         OR (tagged_type = 'contact' AND tagged_id IN (
                               SELECT contact_name_id FROM contacts
                                WHERE tenant = :tenant AND client_id = :client_id))))
               DELETE FROM clients WHERE tenant = :tenant AND client_id = :client_id"""
        ),
        {"tenant": tenant, "client_id": client_id},
    )
    return result.rowcount


async def duplicate_client(
    conn: AsyncConnection, tenant: UUID, source_id: UUID, client_name: str, *, client_id: UUID | None = None
) -> Client:
    """A new client named ``client_name`` copying the source's profile and return it: type, url, billing
    email, notes, properties (except ``tenant_id``, which identifies one tracked tenant), currency, and
    region, tax, payment, invoicing, billing cycle, time zone and account manager columns. It is active,
    with no notes document, contacts, tickets, locations or tags (callers copy those on purpose).
    Created through ``create_client`` (same rules, default tax settings and email suffix).
    Reference: clients.duplicate.
    Raises NotFoundError(field="source_client_id"), ValidationError, DuplicateError(field="client_name").
    """
    source = await find_client(conn, tenant, source_id)
    if source is None:
        raise NotFoundError("Client not found", field="source_client_id")
    properties = {k: v for k, v in source.properties.items() if k not in _UNIQUE_PROPERTIES}
    data = {
        "client_name": client_name,
        "client_type": source.client_type,
        "url": source.url,
        "billing_email": source.billing_email,
        "notes": source.notes,
        "properties": properties or None,
        "default_currency_code": source.default_currency_code,
    }
    created = await create_client(conn, tenant, data, client_id=client_id)
    assignments = ", ".join(
        f"{c} = coalesce(s.{c}, false)" if c in ("is_tax_exempt", "auto_invoice") else f"{c} = s.{c}"
        for c in _DUPLICATED_COLUMNS
    )
    await conn.execute(
        text(
            f"""UPDATE clients d SET {assignments}
                  FROM clients s
                 WHERE d.tenant = :tenant AND d.client_id = :new_id AND s.tenant = :tenant AND s.client_id = :source"""
        ),
        {"tenant": tenant, "new_id": created.client_id, "source": source_id},
    )
    duplicate = await find_client(conn, tenant, created.client_id)
    assert duplicate is not None  # created above, in this transaction
    return duplicate


async def copy_client_locations(conn: AsyncConnection, tenant: UUID, source_id: UUID, target_id: UUID) -> int:
    """Copy every location of the source client to the target client under new ids (same address, contact
    and flag columns). Returns the number copied. Reference: clients.duplicate ``copy_locations``."""
    columns = (
        "location_name, address_line1, address_line2, address_line3, city, state_province, postal_code, "
        "country_code, country_name, region_code, is_billing_address, is_shipping_address, is_default, "
        "phone, fax, email, notes, is_active"
    )
    result = await conn.execute(
        text(
            f"""INSERT INTO client_locations (tenant, client_id, {columns})
                SELECT tenant, :target, {columns} FROM client_locations
                 WHERE tenant = :tenant AND client_id = :source ORDER BY created_at, location_id"""
        ),
        {"tenant": tenant, "source": source_id, "target": target_id},
    )
    return result.rowcount


async def upsert_default_location(
    conn: AsyncConnection, tenant: UUID, client_id: UUID, values: Mapping[str, str | None], *, create: bool
) -> UUID | None:
    """Write the given ``values`` (keys from LOCATION_FIELDS) to the client's default location and return
    its id; None when ``values`` is empty, or when there is no default location and ``create`` is false.

    An existing default location is patched (a None for address_line1, city or country_name stores '') and
    marked default, billing, shipping and active. A missing one is created (only with ``create``) as
    'Main Office' with address_line1 and city '' when not given, country_name 'United States' when not
    given, and country_code the first two letters of the country upper-cased, else 'US'.
    Reference: clients.create / clients.update default-location upsert.
    Raises ValidationError for an unknown key.
    """
    unknown = set(values) - set(LOCATION_FIELDS)
    if unknown:
        raise ValidationError(f"unknown location fields: {', '.join(sorted(unknown))}", field="location")
    if not values:
        return None
    patch = {k: ("" if v is None and k in _LOCATION_NOT_NULL else v) for k, v in values.items()}
    params = {"tenant": tenant, "client_id": client_id, **patch}
    assignments = "".join(f"{column} = :{column}, " for column in patch)
    location_id = await conn.scalar(
        text(
            f"""UPDATE client_locations SET {assignments} is_default = true, is_billing_address = true,
                       is_shipping_address = true, is_active = true, updated_at = now()
                 WHERE tenant = :tenant AND client_id = :client_id AND is_default RETURNING location_id"""
        ),
        params,
    )
    if location_id is not None or not create:
        return location_id
    country = values.get("country_name")
    row = {
        "location_name": "Main Office",
        "address_line1": values.get("address_line1") or "",
        "address_line2": values.get("address_line2"),
        "city": values.get("city") or "",
        "state_province": values.get("state_province"),
        "postal_code": values.get("postal_code"),
        "country_code": country.strip()[:2].upper() if country and country.strip() else "US",
        "country_name": country if country is not None else "United States",
        "phone": values.get("phone"),
        "email": values.get("email"),
    }
    return await conn.scalar(
        text(
            f"""INSERT INTO client_locations (tenant, client_id, {", ".join(row)}, is_default, is_billing_address,
                                              is_shipping_address, is_active)
                VALUES (:tenant, :client_id, {", ".join(":" + k for k in row)}, true, true, true, true)
                RETURNING location_id"""
        ),
        {"tenant": tenant, "client_id": client_id, **row},
    )


async def deactivate_client_users(conn: AsyncConnection, tenant: UUID, client_id: UUID) -> int:
    """Mark every contact of the client inactive, and the client-portal users of those contacts
    (reference: deactivateClientUsersForClient). Returns the number of portal users deactivated."""
    result = await conn.execute(
        text(
            """WITH contacts_off AS (
                 UPDATE contacts SET is_inactive = true, updated_at = now()
                  WHERE tenant = :tenant AND client_id = :client_id AND NOT is_inactive)
               UPDATE users u SET is_inactive = true, updated_at = now()
                 FROM contacts c
                WHERE u.tenant = :tenant AND u.user_type = 'client' AND NOT u.is_inactive
                  AND c.tenant = u.tenant AND c.contact_name_id = u.contact_id AND c.client_id = :client_id"""
        ),
        {"tenant": tenant, "client_id": client_id},
    )
    return result.rowcount
