"""What every request of the API shares (``app.state.api``)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from cachetools import LRUCache
from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from psa.api.problem import ApiProblem
from psa.automation.registry import ActionRegistry
from psa.config import ConfigurationError, Settings
from psa.temporal import connect

COMPLETED_CACHE_SIZE = 10_000


@dataclass
class ApiState:
    """Settings, the API-role engine, the action registry, a Temporal client connected on first use (so the API
    starts, and ``/healthz`` reports, while Temporal is down), and ``completed``: completed provisionings by
    workflow id (LRU, 10 000 entries), each a ``psa.api.tenants.CompletedProvisioning`` (the status and its JSON
    view). A completed provisioning never changes and its id is never reused (the start policy allows a re-run
    only after a failure), so its state is served from memory instead of a Temporal query, which replays the
    closed workflow's history in a worker each time."""

    settings: Settings
    engine: AsyncEngine
    registry: ActionRegistry
    completed: LRUCache = field(default_factory=lambda: LRUCache(maxsize=COMPLETED_CACHE_SIZE))
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
        """Dispose of the engine's connections (the app's shutdown)."""
        await self.engine.dispose()


async def api_state(request: Request) -> ApiState:
    """The ApiState of the running app (async: a plain ``def`` dependency would cost a thread-pool hop per
    request)."""
    return request.app.state.api
