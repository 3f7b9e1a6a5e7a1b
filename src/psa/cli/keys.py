"""``psa users`` (internal users of a tenant) and ``psa apikeys`` (the keys of the HTTP API, each acting as one
user); see docs/operations.md, "HTTP API"."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID, uuid4

import typer
from rich.table import Table

from psa.cli.commands import CommandApp
from psa.cli.deps import TenantOption, tenant_scope
from psa.cli.output import console
from psa.domain.api_keys import create_api_key, list_api_keys, revoke_api_key
from psa.domain.users import UNUSABLE_PASSWORD, create_internal_user
from psa.domain.values import normalize_email

users = CommandApp(help="Internal users of a tenant.", no_args_is_help=True)
apikeys = CommandApp(help="API keys of the HTTP API (each acts as one user of a tenant).", no_args_is_help=True)


@users.command("add")
async def users_add(
    tenant: TenantOption,
    email: Annotated[str, typer.Option("--email")],
    first_name: Annotated[str, typer.Option("--first-name")],
    last_name: Annotated[str, typer.Option("--last-name")],
    role: Annotated[str, typer.Option("--role", help="MSP role (Admin holds every MSP permission)")] = "Admin",
) -> None:
    """Add an internal user holding an MSP role, without a usable password (it signs in after a password reset,
    or acts through an API key): e.g. the management tenant's operator who provisions tenants over the API."""
    user_id = uuid4()
    async with tenant_scope(tenant) as scope, scope.transaction() as conn:
        await create_internal_user(
            conn,
            tenant=scope.id,
            user_id=user_id,
            first_name=first_name.strip(),
            last_name=last_name.strip(),
            email=normalize_email(email),
            password_hash=UNUSABLE_PASSWORD,
            role_name=role,
        )
    console.print(f"user {user_id} ({email}, {role}) added")


@apikeys.command("create")
async def apikeys_create(
    tenant: TenantOption,
    user: Annotated[str, typer.Option("--user", help="the key's user (email or id): the actor of its requests")],
    name: Annotated[str, typer.Option("--name", help="what the key is for")] = "api",
) -> None:
    """Create an API key and print it once (only its SHA-256 is stored)."""
    async with tenant_scope(tenant) as scope:
        user_id = await scope.user(user)
        async with scope.transaction() as conn:
            created = await create_api_key(conn, scope.id, user_id, name=name)
    console.print(f"API key {created.key_id} for user {created.user_id} of tenant {created.tenant}")
    console.print("store it now, it is not shown again (send it in the x-api-key header):")
    print(created.key)


@apikeys.command("revoke")
async def apikeys_revoke(
    key_id: Annotated[UUID, typer.Argument(help="the key's id (printed at creation and by `psa apikeys list`)")],
    tenant: TenantOption,
) -> None:
    """Revoke an API key: its requests get 401 from now on."""
    async with tenant_scope(tenant) as scope, scope.transaction() as conn:
        revoked_at = await revoke_api_key(conn, scope.id, key_id)
    console.print(f"API key {key_id} revoked at {revoked_at.isoformat(timespec='seconds')}")


@apikeys.command("list")
async def apikeys_list(tenant: TenantOption) -> None:
    """The tenant's API keys (prefix, user, created, revoked); never the keys themselves."""
    async with tenant_scope(tenant) as scope, scope.transaction() as conn:
        keys = await list_api_keys(conn, scope.id)
    table = Table("key id", "prefix", "user", "name", "created", "revoked")
    for row in keys:
        revoked = row.revoked_at.isoformat(timespec="seconds") if row.revoked_at else ""
        table.add_row(
            str(row.key_id),
            f"psa_{row.key_prefix}…",
            row.email,
            row.name,
            row.created_at.isoformat(timespec="seconds"),
            revoked,
        )
    console.print(table)
