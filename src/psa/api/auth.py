"""API keys and permissions of a request (issue 7 "Auth").

The key goes in the ``x-api-key`` header. In one transaction on the API role (row-level security on):
``psa_api_key_principal`` finds the key by its SHA-256 and scopes the transaction to its tenant, then the key's
user (the actor) must hold every permission the route needs through its MSP roles
(``psa.automation.permissions.authorize``, the same check actions use). No key, an unknown or revoked key, or
an inactive user: 401. A missing permission: 403 with ``PERMISSION_DENIED``. Routes of the management API
also require the key's tenant to be the management tenant (``resolve_management_tenant``), else 403.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

from fastapi import Request, Security
from fastapi.security import APIKeyHeader
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from temporalio.client import Client

from psa.api.problem import ApiProblem
from psa.automation import permissions
from psa.automation.registry import ActionRegistry
from psa.config import ConfigurationError, Settings
from psa.domain.api_keys import Principal, authenticate
from psa.domain.errors import NotFoundError
from psa.provisioning.customer_tracking import resolve_management_tenant
from psa.temporal import connect

API_KEY_HEADER = APIKeyHeader(name="x-api-key", auto_error=False, description="an API key from `psa apikeys create`")


@dataclass
class ApiState:
    """What every request shares: settings, the API-role engine, the action registry and a Temporal client
    connected on first use (so the API starts, and ``/healthz`` reports, while Temporal is down)."""

    settings: Settings
    engine: AsyncEngine
    registry: ActionRegistry
    _temporal: Client | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def temporal(self) -> Client:
        """The Temporal client. Raises ApiProblem 503 ``TEMPORAL_UNAVAILABLE`` when it cannot connect."""
        async with self._lock:
            if self._temporal is None:
                try:
                    self._temporal = await connect(self.settings)
                except (RuntimeError, ConfigurationError) as exc:
                    raise ApiProblem(503, "TEMPORAL_UNAVAILABLE", f"Temporal is unavailable: {exc}") from None
            return self._temporal

    async def close(self) -> None:
        await self.engine.dispose()


def api_state(request: Request) -> ApiState:
    """The ApiState of the running app."""
    return request.app.state.api


async def _is_management(conn: AsyncConnection, settings: Settings, tenant) -> bool:
    """Whether ``tenant`` is the management tenant. Under row-level security only the caller's own tenant row
    is visible, so another tenant's lookup finds nothing (NotFoundError): not the management tenant."""
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
        api = api_state(request)
        async with api.engine.begin() as conn:
            principal = await authenticate(conn, key)
            if principal is None:
                raise ApiProblem(401, "UNAUTHENTICATED", "invalid or revoked API key")
            if self.management and not await _is_management(conn, api.settings, principal.tenant):
                raise ApiProblem(403, "PERMISSION_DENIED", "only users of the management tenant may provision tenants")
            if self.needed:
                await permissions.authorize(
                    conn, principal.tenant, self.needed, run_id=None, actor_user_id=principal.user_id
                )
        return principal
