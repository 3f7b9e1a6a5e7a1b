"""The actor of an action and its permissions (reference: hasPermissionByUserId; docs/automation.md, "Action
contract": the actor is the publisher of the run's definition version, and the run records who it was).

Failures are domain errors (psa.domain.errors), which the action contract and the API convert like any other:
PermissionDenied, and InternalError when the actor is not an active user of the tenant."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from psa.domain.errors import InternalError, PermissionDenied

# One round trip: resolve the actor (given, else the run's) among the tenant's active users, and list which of
# the wanted MSP permissions its MSP roles grant
# (reference hasPermissionByUserId: user_roles ⋈ roles ⋈ role_permissions ⋈ permissions, tenant-scoped).
# The API's psa_api_authenticate (migration 0008) applies the same rule: a change to one is a change to both.
AUTHORIZE = text(
    """SELECT u.user_id AS actor,
              ARRAY(SELECT p.resource || ':' || p.action
                      FROM user_roles ur
                      JOIN roles r ON r.tenant = ur.tenant AND r.role_id = ur.role_id AND r.msp
                      JOIN role_permissions rp ON rp.tenant = ur.tenant AND rp.role_id = ur.role_id
                      JOIN permissions p ON p.tenant = rp.tenant AND p.permission_id = rp.permission_id AND p.msp
                     WHERE ur.tenant = :t AND ur.user_id = u.user_id
                       AND p.resource = ANY(CAST(:res AS text[])) AND p.action = ANY(CAST(:act AS text[]))) AS granted
         FROM (SELECT 1) AS one
         LEFT JOIN users u ON u.tenant = :t AND NOT u.is_inactive
               AND u.user_id = coalesce(CAST(:actor AS uuid),
                                        (SELECT r.actor_user_id FROM workflow_runs r
                                          WHERE r.tenant = :t AND r.run_id = CAST(:run AS uuid)))"""
)


async def authorize(
    conn: AsyncConnection,
    tenant: UUID,
    needed: Sequence[tuple[str, str]],
    *,
    run_id: UUID | None,
    actor_user_id: UUID | None,
) -> UUID:
    """Resolve the actor and check ``needed`` permissions in order; returns the actor. ``conn`` is a transaction
    already scoped to ``tenant`` (``tenant_transaction``): under row-level security the rows read here are
    visible only then. The actor is ``actor_user_id`` when given (direct invocation), else the run's
    recorded actor, and must be an active user of the tenant.

    Raises InternalError "Workflow actor user not found" ``{actor_user_id}`` (reference message) or
    PermissionDenied "Permission denied: resource:action" for the first permission missing.
    """
    params = {
        "t": tenant,
        "actor": actor_user_id,
        "run": run_id,
        "res": [r for r, _ in needed],
        "act": [a for _, a in needed],
    }
    row = (await conn.execute(AUTHORIZE, params)).one()
    if row.actor is None:
        who = str(actor_user_id) if actor_user_id else None
        raise InternalError("Workflow actor user not found", details={"actor_user_id": who})
    require_granted(row.granted, needed)
    return row.actor


def require_granted(granted: Collection[str], needed: Sequence[tuple[str, str]]) -> None:
    """Check ``needed`` ``(resource, action)`` pairs in order against the ``resource:action`` strings granted.

    Raises PermissionDenied "Permission denied: resource:action" (details ``resource``, ``action``) for the
    first one missing (reference hasPermission)."""
    for resource, action in needed:
        if f"{resource}:{action}" not in granted:
            raise PermissionDenied(resource, action)
