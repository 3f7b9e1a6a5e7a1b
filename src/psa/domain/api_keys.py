"""API keys of the HTTP API: each belongs to one internal user of a tenant, who is the actor of its requests.

A key is ``psa_`` followed by 43 URL-safe characters (32 bytes from ``secrets``: 256 bits). Only its SHA-256
(hex) is stored, with the first characters after ``psa_`` as a prefix to recognise it in listings; the key
itself is shown once, at creation. A fast hash is enough for a 256-bit random secret (nothing to brute-force,
unlike a password) and keeps every request's lookup to one indexed query.

The lookup runs before the tenant is known, through the SECURITY DEFINER function ``psa_api_authenticate``
(migration 0008): it returns the principal of exactly that hash, only while the key is not revoked and its
user is an active internal user, with the tenant's slug and which of the asked permissions the user holds, in
one statement.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID, uuid4

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from psa.domain.errors import NotFoundError, ValidationError

KEY_PREFIX = "psa_"
PREFIX_CHARS = 8
NAME_MAX = 255


def generate_key() -> str:
    """A new API key: ``psa_`` + ``secrets.token_urlsafe(32)`` (256 bits of entropy)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    """SHA-256 hex of the key as given (the stored form; also what a request's key is looked up by)."""
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class CreatedKey:
    """A key just created. ``key`` is the plaintext: show it once and never store or log it."""

    key_id: UUID
    tenant: UUID
    user_id: UUID
    name: str
    prefix: str
    key: str


@dataclass(frozen=True)
class ApiKeyRow:
    """A stored key as listings show it (never the hash)."""

    key_id: UUID
    user_id: UUID
    email: str
    name: str
    key_prefix: str
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True)
class Principal:
    """Who a request acts as: the key's tenant and user, the tenant's slug, and which of the permissions asked
    for at authentication (``resource:action``) the user's MSP roles grant."""

    tenant: UUID
    user_id: UUID
    key_id: UUID
    tenant_slug: str
    granted: frozenset[str]


async def create_api_key(conn: AsyncConnection, tenant: UUID, user_id: UUID, *, name: str = "api") -> CreatedKey:
    """Create a key for ``user_id``, an active internal user of ``tenant``; returns it with its plaintext.

    Raises ValidationError (field ``name``) for a blank or over-long name, NotFoundError (field ``user``) when
    the user is not an active internal user of the tenant.
    """
    name = (name or "").strip()
    if not name or len(name) > NAME_MAX:
        raise ValidationError(f"name must be 1 to {NAME_MAX} characters", field="name")
    key = generate_key()
    key_id = uuid4()
    prefix = key[len(KEY_PREFIX) : len(KEY_PREFIX) + PREFIX_CHARS]
    created = await conn.execute(
        text(
            """INSERT INTO api_keys (tenant, key_id, user_id, name, key_prefix, key_hash)
               SELECT :t, :id, u.user_id, :name, :prefix, :hash FROM users u
                WHERE u.tenant = :t AND u.user_id = :u AND u.user_type = 'internal' AND NOT u.is_inactive
               RETURNING key_id"""
        ),
        {"t": tenant, "id": key_id, "u": user_id, "name": name, "prefix": prefix, "hash": hash_key(key)},
    )
    if created.first() is None:
        raise NotFoundError(f"user {user_id} is not an active internal user of tenant {tenant}", field="user")
    return CreatedKey(key_id, tenant, user_id, name, prefix, key)


async def revoke_api_key(conn: AsyncConnection, tenant: UUID, key_id: UUID) -> datetime:
    """Revoke a key of ``tenant`` (idempotent: a revoked key keeps its first revocation time); returns when.

    Raises NotFoundError (field ``key_id``) when the tenant has no such key."""
    revoked = await conn.scalar(
        text(
            """UPDATE api_keys SET revoked_at = coalesce(revoked_at, now())
                WHERE tenant = :t AND key_id = :id RETURNING revoked_at"""
        ),
        {"t": tenant, "id": key_id},
    )
    if revoked is None:
        raise NotFoundError(f"API key {key_id} not found in tenant {tenant}", field="key_id")
    return revoked


async def list_api_keys(conn: AsyncConnection, tenant: UUID) -> list[ApiKeyRow]:
    """The tenant's keys with their users' emails, newest first."""
    result = await conn.execute(
        text(
            """SELECT k.key_id, k.user_id, u.email, k.name, k.key_prefix, k.created_at, k.revoked_at
                 FROM api_keys k JOIN users u ON u.tenant = k.tenant AND u.user_id = k.user_id
                WHERE k.tenant = :t ORDER BY k.created_at DESC, k.key_id"""
        ),
        {"t": tenant},
    )
    return [ApiKeyRow(**row._mapping) for row in result]


AUTHENTICATE = text(
    """SELECT tenant, user_id, key_id, tenant_slug, granted
         FROM psa_api_authenticate(:hash, CAST(:permissions AS text[]))"""
)


async def authenticate(
    conn: AsyncConnection, key: str, permissions: Sequence[tuple[str, str]] = ()
) -> Principal | None:
    """The principal of ``key`` with which of ``permissions`` (``(resource, action)`` pairs) its user holds, or
    None when the key is unknown or revoked, or its user is inactive. One statement; needs no transaction and
    sets no tenant scope (the caller scopes its own transactions to ``principal.tenant``)."""
    wanted = [f"{resource}:{action}" for resource, action in permissions]
    row = (await conn.execute(AUTHENTICATE, {"hash": hash_key(key), "permissions": wanted})).first()
    if row is None:
        return None
    return Principal(row.tenant, row.user_id, row.key_id, row.tenant_slug, frozenset(row.granted))
