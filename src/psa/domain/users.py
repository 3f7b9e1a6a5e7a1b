"""Users: admin user creation, temporary passwords, bcrypt hashing, email normalisation."""

from __future__ import annotations

import secrets
import string
from uuid import UUID

import bcrypt
from email_validator import EmailNotValidError, validate_email
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from psa.domain.errors import DuplicateError, NotFoundError, ValidationError

PASSWORD_LENGTH = 16
PASSWORD_CLASSES = (string.ascii_uppercase, string.ascii_lowercase, string.digits, "!@#$%^&*-_=+")
EMAIL_MAX = 254


def normalize_email(email: str | None, *, field: str = "email") -> str:
    """Syntax-check ``email`` with email-validator (no DNS) and return it lower-cased.

    Raises ValidationError (with ``field``) for blank or invalid addresses.
    """
    candidate = (email or "").strip()
    if not candidate:
        raise ValidationError(f"{field} is required", field=field)
    if len(candidate) > EMAIL_MAX:
        raise ValidationError(f"{field} must be at most {EMAIL_MAX} characters", field=field)
    try:
        info = validate_email(candidate, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValidationError(f"{field} is not a valid email address: {exc}", field=field) from exc
    return info.normalized.lower()


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
    (spec §1.12-2). ``email`` must already be normalised.
    """
    row = await conn.execute(
        text("SELECT tenant FROM users WHERE lower(email) = :email AND user_type = 'internal' LIMIT 1"),
        {"email": email},
    )
    found = row.first()
    return found.tenant if found else None


async def create_admin_user(
    conn: AsyncConnection,
    *,
    tenant: UUID,
    user_id: UUID,
    first_name: str,
    last_name: str,
    email: str,
    password_hash: str,
) -> UUID:
    """Create the tenant's internal admin user and grant it the MSP ``Admin`` role.

    Idempotent on ``user_id``: a retry keeps the row and stores the new ``password_hash`` (so the
    password the caller returns always works). Concurrent creations of the same email are serialised by
    a transaction advisory lock. Returns the Admin role id.

    Raises DuplicateError when an internal user with ``email`` exists in another tenant (or under another
    id), NotFoundError when the tenant has not been seeded with the Admin role.
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
            """WITH u AS (
                 INSERT INTO users (tenant, user_id, username, email, first_name, last_name, hashed_password,
                                    user_type, must_change_password)
                 VALUES (:tenant, :user_id, :email, :email, :first, :last, :hash, 'internal', true)
                 ON CONFLICT (tenant, user_id) DO UPDATE SET hashed_password = EXCLUDED.hashed_password,
                                                             updated_at = now()
                 RETURNING user_id),
               r AS (SELECT role_id FROM roles WHERE tenant = :tenant AND role_name = 'Admin' AND msp AND NOT client),
               ur AS (INSERT INTO user_roles (tenant, user_id, role_id)
                      SELECT :tenant, u.user_id, r.role_id FROM u, r ON CONFLICT DO NOTHING)
               SELECT role_id FROM r"""
        ),
        {
            "tenant": tenant, "user_id": user_id, "email": email, "first": first_name, "last": last_name,
            "hash": password_hash,
        },
    )  # fmt: skip
    role_id = result.scalar_one_or_none()
    if role_id is None:
        raise NotFoundError("Admin role not found: the tenant's seeds have not run", field="tenant_id")
    return role_id


async def delete_user(conn: AsyncConnection, *, tenant: UUID, user_id: UUID) -> int:
    """Delete a user and its role links (compensation of ``create_admin_user``). Returns rows deleted."""
    result = await conn.execute(
        text("DELETE FROM users WHERE tenant = :tenant AND user_id = :user_id"), {"tenant": tenant, "user_id": user_id}
    )
    return result.rowcount
