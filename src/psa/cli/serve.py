"""The long-running commands: ``psa worker`` (the Temporal worker) and ``psa api`` (the HTTP API); see
docs/operations.md, "Settings" and "HTTP API"."""

from __future__ import annotations

from typing import Annotated

import typer
import uvicorn

from psa.cli.commands import CommandApp
from psa.cli.output import console, fail
from psa.cli.polling import wait_for_pollers
from psa.config import get_settings
from psa.devstack import DevStack
from psa.worker import run_worker

app = CommandApp()

POLLING_TIMEOUT = 60
"""Seconds ``psa worker --detach`` waits for the background worker to poll the task queue."""


@app.command("worker")
async def worker(
    detach: Annotated[bool, typer.Option(help="run in the background (log: .psa/worker.log)")] = False,
    metrics_port: Annotated[
        int | None, typer.Option("--metrics-port", help="serve Prometheus metrics on this port at /metrics")
    ] = None,
) -> None:
    """Run the Temporal worker with every workflow and activity."""
    settings = get_settings()
    if not detach:
        await run_worker(settings, metrics_port=metrics_port)
        return
    pid = DevStack(settings).start_worker(metrics_port=metrics_port)
    log = settings.state_path / "worker.log"
    if not await wait_for_pollers(settings, timeout=POLLING_TIMEOUT):
        fail(f"the background worker (pid {pid}) is not polling after {POLLING_TIMEOUT} s; see {log}")
    console.print(f"worker running in the background (pid {pid}, log {log})")


@app.command("api")
def api(
    host: Annotated[str | None, typer.Option(help="bind address (default: PSA_API_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="port (default: PSA_API_PORT)")] = None,
    workers: Annotated[int, typer.Option(min=1, help="server processes (uvicorn workers)")] = 1,
    access_log: Annotated[bool, typer.Option("--access-log/--no-access-log", help="log every request")] = True,
) -> None:
    """Serve the HTTP API (OpenAPI at /docs) with uvicorn on the configured database and Temporal."""
    settings = get_settings()
    uvicorn.run(
        "psa.api.app:app_from_environment",
        factory=True,
        host=host or settings.api_host,
        port=port or settings.api_port,
        workers=workers,
        access_log=access_log,
    )
