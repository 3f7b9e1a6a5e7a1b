"""API keys and permissions of a request (issue 7 "Auth").

The key goes in the ``x-api-key`` header. In one transaction on the API role (row-level security on):
``psa_api_key_principal`` finds the key by its SHA-256 and scopes the transaction to its tenant, then the key's
user (the actor) must hold every permission the route needs through its MSP roles
(``psa.automation.permissions.authorize``, the same check actions use). No key, an unknown or revoked key, or
an inactive user: 401. A missing permission: 403 with ``PERMISSION_DENIED``. Routes of the management API
also require the key's tenant to be the management tenant (``resolve_management_tenant``), else 403.
"""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from fastapi import Request, Security
from fastapi.security import APIKeyHeader
from sqlalchemy.ext.asyncio import AsyncConnection

from psa.api.problem import ApiProblem
from psa.api.state import api_state
from psa.automation import permissions
from psa.config import Settings
from psa.domain.api_keys import Principal, authenticate
from psa.domain.errors import NotFoundError
from psa.provisioning.customer_tracking import resolve_management_tenant

API_KEY_HEADER = APIKeyHeader(name="x-api-key", auto_error=False, description="an API key from `psa apikeys create`")


async def _is_management(conn: AsyncConnection, settings: Settings, tenant: UUID) -> bool:
    """Whether ``tenant`` (the tenant of a valid key, so it exists) is the management tenant: by
    ``PSA_MANAGEMENT_TENANT_ID`` when set, else by name. Under row-level security only the caller's own tenant
    row is visible, so another tenant's name lookup finds nothing (NotFoundError): not the management tenant."""
    if settings.management_tenant_id is not None:
        return tenant == settings.management_tenant_id
    try:
        return await resolve_management_tenant(conn, settings) == tenant
    except NotFoundError:
        return False


class Authorized:
    """Dependency: the request's Principal, after checking its key, the ``needed`` permissions
    (``(resource, action)`` pairs, in order) and, with ``management``, that it belongs to the management
    tenant. Raises ApiProblem 401 / 403 and ActionFailure PERMISSION_DENIED (403)."""

    def __init__(self, *needed: tuple[str, str], management: bool = False) -> None:
        self.needed: Sequence[tuple[str, str]] = needed
        self.management = management

    async def __call__(self, request: Request, key: str | None = Security(API_KEY_HEADER)) -> Principal:
        if not key:
            raise ApiProblem(401, "UNAUTHENTICATED", "missing API key: send it in the x-api-key header")
        api = await api_state(request)
        if not (self.needed or self.management):  # one statement, no transaction around it
            async with api.engine.connect() as conn:
                return _known(await authenticate(await conn.execution_options(isolation_level="AUTOCOMMIT"), key))
        async with api.engine.begin() as conn:
            principal = _known(await authenticate(conn, key))
            if self.management and not await _is_management(conn, api.settings, principal.tenant):
                raise ApiProblem(403, "PERMISSION_DENIED", "only users of the management tenant may provision tenants")
            if self.needed:
                await permissions.authorize(
                    conn, principal.tenant, self.needed, run_id=None, actor_user_id=principal.user_id
                )
        return principal


def _known(principal: Principal | None) -> Principal:
    if principal is None:
        raise ApiProblem(401, "UNAUTHENTICATED", "invalid or revoked API key")
    return principal
