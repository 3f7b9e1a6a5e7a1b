"""Real SMTP servers on loopback (aiosmtpd) for tests: collecting, rejecting, and gated (holds DATA)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator

from aiosmtpd.controller import Controller

from tests.helpers import free_port


class CollectingHandler:
    """Accepts every message and keeps its envelope."""

    def __init__(self) -> None:
        self.envelopes = []

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"


class RejectingHandler:
    """Refuses every recipient with 550."""

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        return "550 mailbox unavailable"


class GatedHandler(CollectingHandler):
    """Holds each DATA command to ``recipient`` until ``gate`` is set; ``entered`` is set when one arrives. Mail to
    anyone else (another test's email that a worker's email sender delivers meanwhile) passes at once."""

    def __init__(self, recipient: str) -> None:
        super().__init__()
        self.recipient = recipient.lower()
        self.entered = threading.Event()
        self.gate = threading.Event()

    async def handle_DATA(self, server, session, envelope):
        if self.recipient in (r.lower() for r in envelope.rcpt_tos):
            self.entered.set()
            while not self.gate.is_set():
                await asyncio.sleep(0.05)
        return await super().handle_DATA(server, session, envelope)


@contextlib.contextmanager
def smtp_server(handler, port: int | None = None) -> Iterator[Controller]:
    """Run ``handler`` on 127.0.0.1 at ``port`` (default: a free one) for the duration of the block."""
    controller = Controller(handler, hostname="127.0.0.1", port=port or free_port())
    controller.start()
    try:
        yield controller
    finally:
        controller.stop()
