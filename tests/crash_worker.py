"""A real worker process, ``psa.worker.run_worker`` with the settings of the environment (as ``psa worker``), that
kills itself with ``os._exit`` at one point of the email path. The crash tests run it as a subprocess::

    python -m tests.crash_worker after-send RECIPIENT
        exits right after the provider delivered a message to RECIPIENT (the .eml written, or the SMTP server's
        250 received), before the outbox row is marked sent;
    python -m tests.crash_worker after-activity ACTIVITY
        exits right after ACTIVITY returned (for send_welcome_email: its outbox row marked sent), before Temporal
        hears of its completion.

Messages to other recipients and other activities run normally. The exit code is ``CRASH_EXIT_CODE``.
"""

from __future__ import annotations

import asyncio
import os
import sys
from email.message import EmailMessage
from typing import Any

from temporalio import activity
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor

from psa.config import get_settings
from psa.email import EmailProvider, EmailResult, build_provider
from psa.worker import run_worker

CRASH_EXIT_CODE = 86


class ExitAfterSend:
    """The real provider, then ``os._exit`` when the message went to ``recipient``."""

    def __init__(self, provider: EmailProvider, recipient: str) -> None:
        self.provider = provider
        self.name = provider.name
        self.recipient = recipient.lower()

    async def send(self, message: EmailMessage) -> EmailResult:
        result = await self.provider.send(message)
        if self.recipient in (address.addr_spec.lower() for address in message["To"].addresses):
            os._exit(CRASH_EXIT_CODE)
        return result


class ExitAfterActivity(Interceptor):
    """Runs every activity, then ``os._exit`` once ``activity_type`` has returned."""

    def __init__(self, activity_type: str) -> None:
        self.activity_type = activity_type

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _ExitAfter(next, self.activity_type)


class _ExitAfter(ActivityInboundInterceptor):
    def __init__(self, next: ActivityInboundInterceptor, activity_type: str) -> None:
        super().__init__(next)
        self.activity_type = activity_type

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        result = await self.next.execute_activity(input)
        if activity.info().activity_type == self.activity_type:
            os._exit(CRASH_EXIT_CODE)
        return result


def main(mode: str, target: str) -> None:
    settings = get_settings()
    provider = build_provider(settings)
    if mode == "after-send":
        asyncio.run(run_worker(settings, provider=ExitAfterSend(provider, target)))
    elif mode == "after-activity":
        asyncio.run(run_worker(settings, provider=provider, interceptors=[ExitAfterActivity(target)]))
    else:
        raise SystemExit(f"unknown mode {mode!r}: after-send RECIPIENT | after-activity ACTIVITY")


if __name__ == "__main__":
    main(*sys.argv[1:])
