"""The actor of an action and its permissions (reference: spec §2.2 step 3 and §2.4; DESIGN.md: the actor is
the publisher of the run's definition version, and the run records who it was)."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from psa.automation.errors import ActionFailure


async def resolve_actor(
    conn: AsyncConnection, tenant: UUID, *, run_id: UUID | None, actor_user_id: UUID | None
) -> UUID:
    """The user whose permissions the action runs with: ``actor_user_id`` when given (direct invocation),
    else the run's recorded actor. The user must be an active user of the tenant.

    Raises ActionFailure INTERNAL_ERROR "Workflow actor user not found" otherwise (reference message).
    """
    actor = actor_user_id
    if actor is None and run_id is not None:
        actor = await conn.scalar(
            text("SELECT actor_user_id FROM workflow_runs WHERE tenant = :t AND run_id = :r"),
            {"t": tenant, "r": run_id},
        )
    if actor is not None:
        active = await conn.scalar(
            text("SELECT NOT is_inactive FROM users WHERE tenant = :t AND user_id = :u"), {"t": tenant, "u": actor}
        )
        if active:
            return actor
    raise ActionFailure.of(
        "ActionError",
        "INTERNAL_ERROR",
        "Workflow actor user not found",
        {"actor_user_id": str(actor) if actor else None},
    )


async def has_permission(conn: AsyncConnection, tenant: UUID, user_id: UUID, resource: str, action: str) -> bool:
    """Whether one of the user's MSP roles grants the MSP permission ``resource:action`` (reference
    hasPermissionByUserId: user_roles ⋈ roles ⋈ role_permissions ⋈ permissions, all tenant-scoped)."""
    found = await conn.scalar(
        text(
            """SELECT 1 FROM user_roles ur
                 JOIN roles r ON r.tenant = ur.tenant AND r.role_id = ur.role_id AND r.msp
                 JOIN role_permissions rp ON rp.tenant = ur.tenant AND rp.role_id = ur.role_id
                 JOIN permissions p ON p.tenant = rp.tenant AND p.permission_id = rp.permission_id AND p.msp
                WHERE ur.tenant = :t AND ur.user_id = :u AND p.resource = :res AND p.action = :act
                LIMIT 1"""
        ),
        {"t": tenant, "u": user_id, "res": resource, "act": action},
    )
    return found is not None


async def require(conn: AsyncConnection, tenant: UUID, user_id: UUID, resource: str, action: str) -> None:
    """Raise ActionFailure PERMISSION_DENIED ("Permission denied: resource:action") unless granted."""
    if not await has_permission(conn, tenant, user_id, resource, action):
        raise ActionFailure.of(
            "ActionError",
            "PERMISSION_DENIED",
            f"Permission denied: {resource}:{action}",
            {"resource": resource, "action": action},
        )
