"""One Temporal worker process that registers every workflow and activity (``psa worker``) and runs the two
after-commit deliverers: the automation event outbox's dispatcher and the email outbox's sender
(docs/architecture.md, "Events and the outbox", "Email outbox")."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta

from temporalio.client import Client
from temporalio.worker import Interceptor, Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from psa.automation import crash_injection
from psa.automation.actions import builtin_registry
from psa.automation.outbox import dispatch_pending, event_trigger
from psa.automation.run.activities import AutomationActivities
from psa.automation.run.workflow import AutomationRunWorkflow
from psa.config import Settings
from psa.db.engine import make_engine
from psa.email import EmailProvider, build_provider
from psa.metrics import serve_metrics
from psa.provisioning.activities import ProvisioningActivities
from psa.provisioning.workflow import TenantCreationWorkflow
from psa.temporal import connect

WORKFLOWS = [TenantCreationWorkflow, AutomationRunWorkflow]
# Pure, deterministic libraries the workflows use (input rules, JSONata); imported once outside the sandbox.
PASSTHROUGH_MODULES = ("pydantic", "email_validator", "idna", "slugify", "text_unidecode", "jsonata")
POLL_SECONDS = 0.5
"""How often the event dispatcher and the email sender look for work."""
log = logging.getLogger("psa.worker")


def build_worker(
    client: Client,
    activities: ProvisioningActivities,
    *,
    task_queue: str,
    interceptors: Sequence[Interceptor] = (),
) -> Worker:
    """A worker for ``task_queue`` running every psa workflow and activity (async activities): provisioning,
    customer tracking and the automation runtime (with every built-in action). Its sticky queue timeout is the
    setting ``worker_sticky_timeout_seconds`` of ``activities.settings``."""
    automation = AutomationActivities(activities.engine, builtin_registry())
    return Worker(
        client,
        task_queue=task_queue,
        workflows=WORKFLOWS,
        activities=[*activities.all(), *automation.all()],
        interceptors=interceptors,
        workflow_runner=SandboxedWorkflowRunner(
            restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH_MODULES)
        ),
        max_concurrent_activities=50,
        sticky_queue_schedule_to_start_timeout=timedelta(seconds=activities.settings.worker_sticky_timeout_seconds),
    )


async def poll(stop: asyncio.Event, work: Callable[[], Awaitable[object]], what: str) -> None:
    """Run ``work`` every ``POLL_SECONDS`` until ``stop`` is set; a failing pass (a database outage) is logged and
    the next one runs as usual."""
    while not stop.is_set():
        try:
            await work()
        except Exception:  # noqa: BLE001 - keep polling
            log.exception("%s failed", what)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=POLL_SECONDS)


async def run_worker(
    settings: Settings,
    *,
    metrics_port: int | None = None,
    provider: EmailProvider | None = None,
    interceptors: Sequence[Interceptor] = (),
) -> None:
    """Run until SIGINT/SIGTERM, then drain and stop: the Temporal worker, the event dispatcher and the email
    sender. ``provider`` (default ``build_provider(settings)``; an outbox provider removes stale temporary files
    when it is built) is shared by the welcome email activity and the sender; ``interceptors`` go to the Temporal
    worker. With ``metrics_port``, serve Prometheus metrics (psa.metrics) on that port at ``/metrics``. Runs
    started by the dispatcher get the setting ``automation_action_timeout_seconds``. ``PSA_TEST_CRASH_AT`` (tests
    only) installs a crash point (psa.automation.crash_injection); a malformed one raises ConfigurationError before
    anything starts."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log = logging.getLogger("psa.worker")
    if metrics_port is not None:
        serve_metrics(metrics_port)
        log.info("metrics on port %s at /metrics", metrics_port)
    engine = make_engine(settings)
    injection = crash_injection.from_settings(settings, engine)
    if settings.test_crash_at is not None:
        log.warning("PSA_TEST_CRASH_AT=%s: this worker stops itself at that point (tests only)", settings.test_crash_at)
    client = await connect(settings)
    activities = ProvisioningActivities(engine, settings, provider or build_provider(settings))
    worker = build_worker(
        client, activities, task_queue=settings.task_queue, interceptors=[*injection.interceptors, *interceptors]
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    trigger = event_trigger(
        engine,
        client,
        task_queue=settings.task_queue,
        action_timeout_seconds=settings.automation_action_timeout_seconds,
    )
    handlers = [trigger, *injection.handlers]
    async with worker:
        log.info("worker polling task queue %s", settings.task_queue)
        await asyncio.gather(
            poll(stop, lambda: dispatch_pending(engine, handlers), "event dispatch"),
            poll(stop, activities.sender.deliver_due, "email delivery"),
        )
    await engine.dispose()
