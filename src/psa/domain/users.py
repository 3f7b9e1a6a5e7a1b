"""Users: internal users (the tenant admin), client-portal users linked to contacts, the service user,
temporary passwords, bcrypt hashing and email normalisation."""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass
from uuid import UUID, uuid5

import bcrypt
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from psa.domain.errors import DuplicateError, NotFoundError

PASSWORD_LENGTH = 16
PASSWORD_CLASSES = (string.ascii_uppercase, string.ascii_lowercase, string.digits, "!@#$%^&*-_=+")
UNUSABLE_PASSWORD = "!"  # not a bcrypt hash: verify_password is always False (the Unix locked-account convention)
SERVICE_USER_NAMESPACE = UUID("3b0e7c0e-5d1a-4a59-8d0c-5e6b8f1f2a77")


def generate_temporary_password(length: int = PASSWORD_LENGTH) -> str:
    """A ``length``-character password from ``secrets`` with at least one upper-case letter, lower-case
    letter, digit and symbol (reference: generateSecurePassword, minus its modulo bias and missing classes)."""
    if length < len(PASSWORD_CLASSES):
        raise ValueError(f"length must be at least {len(PASSWORD_CLASSES)}")
    alphabet = "".join(PASSWORD_CLASSES)
    chars = [secrets.choice(cls) for cls in PASSWORD_CLASSES]
    chars += [secrets.choice(alphabet) for _ in range(length - len(chars))]
    secrets.SystemRandom().shuffle(chars)
    return "".join(chars)


def hash_password(password: str, *, rounds: int = 12) -> str:
    """bcrypt hash (``$2b$<rounds>$...``, 60 characters). CPU-bound: call it off the event loop."""
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds)).decode()


def verify_password(password: str, hashed: str) -> bool:
    """Whether ``password`` matches the bcrypt ``hashed``; False for malformed hashes."""
    try:
        return bcrypt.checkpw(password.encode(), hashed.encode())
    except ValueError:
        return False


async def find_internal_user_tenant(conn: AsyncConnection, email: str) -> UUID | None:
    """The tenant of an internal user with ``email`` in *any* tenant, or None.

    Deliberately unscoped: reference rule "each internal user email must be unique across all tenants"
    (docs/provisioning.md, "Validation"). ``email`` must already be normalised.
    """
    row = await conn.execute(
        text("SELECT tenant FROM users WHERE lower(email) = :email AND user_type = 'internal' LIMIT 1"),
        {"email": email},
    )
    found = row.first()
    return found.tenant if found else None


async def create_internal_user(
    conn: AsyncConnection,
    *,
    tenant: UUID,
    user_id: UUID,
    first_name: str,
    last_name: str,
    email: str,
    password_hash: str,
    role_name: str = "Admin",
    must_change_password: bool = True,
) -> UUID:
    """Create an internal (MSP) user and grant it the MSP role ``role_name`` (the tenant's admin: "Admin").

    Idempotent on ``user_id``: a retry keeps the row and stores the new ``password_hash`` (so the
    password the caller returns always works). Concurrent creations of the same email are serialised by
    a transaction advisory lock. ``email`` must already be normalised. Returns the role id.

    Raises DuplicateError when an internal user with ``email`` exists in any tenant under another id
    (reference rule: internal user emails are unique across tenants; docs/provisioning.md, "Validation"),
    NotFoundError when the tenant has no MSP role ``role_name`` (its seeds have not run).
    """
    await conn.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": "user:" + email})
    clash = await conn.execute(
        text(
            """SELECT tenant, user_id FROM users
                WHERE lower(email) = :email AND user_type = 'internal'
                  AND NOT (tenant = :tenant AND user_id = :user_id) LIMIT 1"""
        ),
        {"email": email, "tenant": tenant, "user_id": user_id},
    )
    if clash.first() is not None:
        raise DuplicateError(
            "an internal user with this email already exists; internal user emails are unique across tenants",
            field="admin_user.email",
        )
    result = await conn.execute(
        text(
            """WITH r AS (SELECT role_id FROM roles
                           WHERE tenant = :tenant AND role_name = :role AND msp AND NOT client),
               u AS (
                 INSERT INTO users (tenant, user_id, username, email, first_name, last_name, hashed_password,
                                    user_type, must_change_password)
                 SELECT :tenant, :user_id, :email, :email, :first, :last, :hash, 'internal', :must_change
                  WHERE EXISTS (SELECT 1 FROM r)
                 ON CONFLICT (tenant, user_id) DO UPDATE SET hashed_password = EXCLUDED.hashed_password,
                                                             updated_at = now()
                 RETURNING user_id),
               ur AS (INSERT INTO user_roles (tenant, user_id, role_id)
                      SELECT :tenant, u.user_id, r.role_id FROM u, r ON CONFLICT DO NOTHING)
               SELECT role_id FROM r"""
        ),
        {
            "tenant": tenant,
            "user_id": user_id,
            "email": email,
            "first": first_name,
            "last": last_name,
            "hash": password_hash,
            "role": role_name,
            "must_change": must_change_password,
        },
    )
    role_id = result.scalar_one_or_none()
    if role_id is None:
        raise NotFoundError(f"MSP role '{role_name}' not found: the tenant's seeds have not run", field="tenant_id")
    return role_id


@dataclass(frozen=True)
class PortalUser:
    """A client-portal user: its id, role id, and whether this call created it (False: it existed)."""

    user_id: UUID
    role_id: UUID
    created: bool


async def create_portal_user(
    conn: AsyncConnection,
    *,
    tenant: UUID,
    user_id: UUID,
    contact_id: UUID,
    password_hash: str = UNUSABLE_PASSWORD,
    is_client_admin: bool | None = None,
) -> PortalUser:
    """Create a client-portal user for a contact, with the client portal role "Admin" or "User".

    Email, username and names come from the contact (reference: createPortalUserInDB).
    ``is_client_admin`` None reads ``contacts.is_client_admin``. ``password_hash`` defaults to an unusable
    marker: the user sets a password through a reset, and no credential is shared with another user
    (the reference reused the tenant admin's temporary password; docs/decisions.md, "Provisioning").

    Idempotent: a client user with the contact's email that is linked to the same contact is returned with
    ``created=False``. Raises NotFoundError when the contact is not in the tenant or the tenant has no client
    portal role, DuplicateError (field ``email``) when a client user with that email belongs to another contact.
    """
    contact = (
        await conn.execute(
            text(
                """SELECT c.email, c.full_name, c.is_client_admin FROM contacts c
                    WHERE c.tenant = :tenant AND c.contact_name_id = :contact"""
            ),
            {"tenant": tenant, "contact": contact_id},
        )
    ).first()
    if contact is None:
        raise NotFoundError(f"contact {contact_id} not found", field="contact_id")
    await conn.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": f"portal:{tenant}:{contact.email}"}
    )
    existing = (
        await conn.execute(
            text(
                """SELECT u.user_id, u.contact_id, ur.role_id FROM users u
                     LEFT JOIN user_roles ur ON ur.tenant = u.tenant AND ur.user_id = u.user_id
                    WHERE u.tenant = :tenant AND u.user_type = 'client' AND lower(u.email) = :email
                    ORDER BY ur.created_at LIMIT 1"""
            ),
            {"tenant": tenant, "email": contact.email},
        )
    ).first()
    if existing is not None:
        if existing.contact_id != contact_id:
            raise DuplicateError("a client portal user with this email already exists", field="email")
        return PortalUser(existing.user_id, existing.role_id, created=False)
    admin = contact.is_client_admin if is_client_admin is None else is_client_admin
    role_name = "Admin" if admin else "User"
    first, _, last = (contact.full_name or "").partition(" ")
    result = await conn.execute(
        text(
            """WITH r AS (SELECT role_id FROM roles
                           WHERE tenant = :tenant AND role_name = :role AND client AND NOT msp),
               u AS (
                 INSERT INTO users (tenant, user_id, username, email, first_name, last_name, hashed_password,
                                    user_type, contact_id, must_change_password)
                 SELECT :tenant, :user_id, :email, :email, :first, :last, :hash, 'client', :contact, true
                  WHERE EXISTS (SELECT 1 FROM r)
                 RETURNING user_id),
               ur AS (INSERT INTO user_roles (tenant, user_id, role_id) SELECT :tenant, u.user_id, r.role_id FROM u, r)
               SELECT role_id FROM r"""
        ),
        {
            "tenant": tenant,
            "user_id": user_id,
            "email": contact.email,
            "first": first or None,
            "last": last or None,
            "hash": password_hash,
            "contact": contact_id,
            "role": role_name,
        },
    )
    role_id = result.scalar_one_or_none()
    if role_id is None:
        raise NotFoundError(f"client portal role '{role_name}' not found: the tenant's seeds have not run")
    return PortalUser(user_id, role_id, created=True)


async def find_internal_user(conn: AsyncConnection, tenant: UUID, email: str) -> UUID | None:
    """The id of the tenant's internal user with ``email`` (normalised), or None."""
    return await conn.scalar(
        text("SELECT user_id FROM users WHERE tenant = :t AND lower(email) = :e AND user_type = 'internal'"),
        {"t": tenant, "e": email.strip().lower()},
    )


async def find_portal_user(conn: AsyncConnection, tenant: UUID, contact_id: UUID) -> UUID | None:
    """The id of the client-portal user linked to ``contact_id``, or None."""
    return await conn.scalar(
        text(
            """SELECT user_id FROM users WHERE tenant = :t AND contact_id = :c AND user_type = 'client'
                ORDER BY created_at, user_id LIMIT 1"""
        ),
        {"t": tenant, "c": contact_id},
    )


async def ensure_service_user(conn: AsyncConnection, tenant: UUID) -> UUID:
    """The tenant's inactive "PSA Automation" internal user, created on first use; returns its id.

    System actions (customer tracking, say) record it as ``created_by``, so audit columns name an actor
    instead of NULL. It has no role, cannot log in (inactive, unusable password), and its id is derived from
    the tenant id, so concurrent calls converge on one row.
    """
    user_id = uuid5(SERVICE_USER_NAMESPACE, str(tenant))
    await conn.execute(
        text(
            """INSERT INTO users (tenant, user_id, username, email, first_name, last_name, hashed_password,
                                  user_type, is_inactive)
               VALUES (:tenant, :user_id, :username, :email, 'PSA', 'Automation', :hash, 'internal', true)
               ON CONFLICT DO NOTHING"""
        ),
        {
            "tenant": tenant,
            "user_id": user_id,
            "username": f"psa-automation-{tenant}",
            "email": f"automation+{tenant}@psa.invalid",
            "hash": UNUSABLE_PASSWORD,
        },
    )
    return user_id


async def delete_user(conn: AsyncConnection, *, tenant: UUID, user_id: UUID) -> int:
    """Delete a user and its role links (compensation of ``create_internal_user`` and
    ``create_portal_user``). Returns rows deleted."""
    result = await conn.execute(
        text("DELETE FROM users WHERE tenant = :tenant AND user_id = :user_id"), {"tenant": tenant, "user_id": user_id}
    )
    return result.rowcount
