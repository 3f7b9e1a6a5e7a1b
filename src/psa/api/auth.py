"""API keys and permissions of a request (issue 7 "Auth").

The key goes in the ``x-api-key`` header. One statement on the API role, outside any transaction:
``psa_api_authenticate`` finds the key by its SHA-256 and returns its tenant, its user (the actor), the tenant's
slug and which of the route's permissions the user's MSP roles grant (the rule actions use,
``psa.automation.permissions``). No key, an unknown or revoked key, or an inactive user: 401. A missing
permission: 403 with ``PERMISSION_DENIED``. Routes of the management API also require the key's tenant to be
the management tenant, else 403. Every route then runs its own queries in transactions scoped to the key's
tenant (``app.current_tenant``, row-level security).
"""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import Request, Security
from fastapi.security import APIKeyHeader

from psa.api.problem import ApiProblem
from psa.api.state import api_state
from psa.automation.permissions import require_granted
from psa.domain.api_keys import Principal, authenticate
from psa.domain.tenants import is_management_tenant

API_KEY_HEADER = APIKeyHeader(name="x-api-key", auto_error=False, description="an API key from `psa apikeys create`")


class Authorized:
    """Dependency: the request's Principal, after checking its key, the ``needed`` permissions
    (``(resource, action)`` pairs, in order) and, with ``management``, that it belongs to the management
    tenant. Raises ApiProblem 401 / 403 and PermissionDenied (403 PERMISSION_DENIED)."""

    def __init__(self, *needed: tuple[str, str], management: bool = False) -> None:
        self.needed: Sequence[tuple[str, str]] = needed
        self.management = management

    async def __call__(self, request: Request, key: str | None = Security(API_KEY_HEADER)) -> Principal:
        if not key:
            raise ApiProblem(401, "UNAUTHENTICATED", "missing API key: send it in the x-api-key header")
        api = await api_state(request)
        async with api.engine.connect() as conn:
            principal = await authenticate(await conn.execution_options(isolation_level="AUTOCOMMIT"), key, self.needed)
        if principal is None:
            raise ApiProblem(401, "UNAUTHENTICATED", "invalid or revoked API key")
        if self.management and not is_management_tenant(api.settings, principal.tenant, principal.tenant_slug):
            raise ApiProblem(403, "PERMISSION_DENIED", "only users of the management tenant may provision tenants")
        require_granted(principal.granted, self.needed)
        return principal
