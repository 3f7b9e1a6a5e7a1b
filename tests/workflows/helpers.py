"""Test harness for workflow tests: activity hooks (run test code when a given activity starts) and
request builders. Hooks inject real faults (stop PostgreSQL, send a signal); they never fake results."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

from temporalio import activity
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor

from psa.provisioning.types import AdminUser, TenantCreationInput

Hook = Callable[[activity.Info], Awaitable[None]]


class ActivityHooks(Interceptor):
    """Calls ``hooks[activity_type](info)`` before that activity runs (every attempt)."""

    def __init__(self, hooks: dict[str, Hook]) -> None:
        self.hooks = hooks

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _Inbound(next, self.hooks)


class _Inbound(ActivityInboundInterceptor):
    def __init__(self, next: ActivityInboundInterceptor, hooks: dict[str, Hook]) -> None:
        super().__init__(next)
        self.hooks = hooks

    async def execute_activity(self, input: ExecuteActivityInput):
        info = activity.info()
        hook = self.hooks.get(info.activity_type)
        if hook is not None:
            await hook(info)
        return await self.next.execute_activity(input)


def make_request(**overrides) -> TenantCreationInput:
    """A valid request with a unique tenant name and admin email."""
    token = uuid.uuid4().hex[:10]
    admin = overrides.pop("admin_user", None) or AdminUser(
        first_name="John", last_name="Doe", email=f"john.doe.{token}@acme.example.com"
    )
    data = {"tenant_name": f"Acme {token}", "company_name": f"Acme {token} Corporation", "admin_user": admin}
    data.update(overrides)
    return TenantCreationInput(**data)
