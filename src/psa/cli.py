"""``psa`` command line: dev stack, migrations, worker, tenant provisioning."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import traceback
import warnings
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from psa.config import ConfigurationError, Settings, get_settings

warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")

app = typer.Typer(help="psa: multi-tenant PSA back end.", no_args_is_help=True, pretty_exceptions_show_locals=False)
dev_app = typer.Typer(help="Embedded PostgreSQL + Temporal dev server under .psa/.", no_args_is_help=True)
db_app = typer.Typer(help="Database migrations.", no_args_is_help=True)
tenants_app = typer.Typer(help="Provision and inspect tenants.", no_args_is_help=True)
customers_app = typer.Typer(help="Tenants recorded as customers of the management tenant.", no_args_is_help=True)
app.add_typer(dev_app, name="dev")
app.add_typer(db_app, name="db")
app.add_typer(tenants_app, name="tenants")
app.add_typer(customers_app, name="customers")

console = Console()
err = Console(stderr=True)


def _fail(message: str, code: int = 1) -> None:
    err.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)


# -- dev stack ------------------------------------------------------------------------------------
@dev_app.command("up")
def dev_up(ui: Annotated[bool, typer.Option(help="serve the Temporal web UI")] = True) -> None:
    """Start embedded PostgreSQL and the Temporal dev server (idempotent)."""
    from psa.devstack import DevStack

    urls = DevStack(get_settings(), temporal_ui=ui).up()
    console.print(f"postgres  [green]{urls['database_url']}[/]")
    console.print(f"temporal  [green]{urls['temporal_address']}[/]")


@dev_app.command("down")
def dev_down() -> None:
    """Stop the worker, Temporal and PostgreSQL started by `psa dev up` (data is kept)."""
    from psa.devstack import DevStack

    DevStack(get_settings()).down()
    console.print("stack stopped")


@dev_app.command("status")
def dev_status() -> None:
    """Show what runs and where."""
    from psa.devstack import DevStack

    table = Table("component", "state", "address", "pid")
    for comp in DevStack(get_settings()).status():
        state = "external" if comp.external else ("[green]running[/]" if comp.running else "[red]stopped[/]")
        table.add_row(comp.name, state, comp.address or "", str(comp.pid or ""))
    console.print(table)


# -- database -------------------------------------------------------------------------------------
@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Apply Alembic migrations up to REVISION (default head)."""
    from psa.db.migrate import upgrade

    upgrade(get_settings().resolved_database_url(), revision)
    console.print(f"database at revision [green]{revision}[/]")


# -- worker ---------------------------------------------------------------------------------------
@app.command("worker")
def worker(
    detach: Annotated[bool, typer.Option(help="run in the background (log: .psa/worker.log)")] = False,
    metrics_port: Annotated[
        int | None, typer.Option("--metrics-port", help="serve Prometheus metrics on this port at /metrics")
    ] = None,
) -> None:
    """Run the Temporal worker with every workflow and activity."""
    settings = get_settings()
    if detach:
        from psa.devstack import DevStack

        pid = DevStack(settings).start_worker(metrics_port=metrics_port)
        log = settings.state_path / "worker.log"
        if asyncio.run(_wait_for_pollers(settings, timeout=60)):
            console.print(f"worker running in the background (pid {pid}, log {log})")
        else:
            _fail(f"the background worker (pid {pid}) is not polling after 60 s; see {log}")
        return
    from psa.worker import run_worker

    asyncio.run(run_worker(settings, metrics_port=metrics_port))


# -- tenants --------------------------------------------------------------------------------------
def _workflow_id(identifier: str) -> str:
    from psa.domain.tenants import tenant_slug
    from psa.provisioning.workflow import WORKFLOW_ID_PREFIX, workflow_id_for

    if identifier.startswith(WORKFLOW_ID_PREFIX):
        return identifier
    return workflow_id_for(tenant_slug(identifier))


def _state_table(state: Any) -> Table:
    table = Table("field", "value", show_header=False)
    for key, value in state.model_dump(exclude={"history"}).items():
        if value not in (None, [], {}):
            table.add_row(key, json.dumps(value) if isinstance(value, dict | list) else str(value))
    table.add_row("history", " → ".join(f"{t.step} {t.progress}%" for t in state.history))
    return table


async def _has_pollers(client: Any, settings: Settings) -> bool:
    """Whether any worker polls the workflow task queue right now."""
    from temporalio.api.enums.v1 import TaskQueueType
    from temporalio.api.taskqueue.v1 import TaskQueue
    from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

    response = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=settings.temporal_namespace,
            task_queue=TaskQueue(name=settings.task_queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
        )
    )
    return len(response.pollers) > 0


async def _wait_for_pollers(settings: Settings, *, timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for a worker to poll the task queue."""
    from psa.temporal import connect

    client = await connect(settings)
    deadline = asyncio.get_running_loop().time() + timeout
    while not await _has_pollers(client, settings):
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.25)
    return True


async def _create(settings: Settings, request: Any, wait: bool) -> None:
    from temporalio.client import WorkflowFailureError

    from psa.provisioning.client import TenantAlreadyProvisioned, start_tenant_creation
    from psa.provisioning.types import TenantCreationState
    from psa.temporal import connect

    client = await connect(settings)
    if not await _has_pollers(client, settings):
        err.print(
            f"[yellow]warning:[/] no worker polls task queue '{settings.task_queue}'; the run waits until one "
            "does (start it with `psa worker`)"
        )
    try:
        handle = await start_tenant_creation(client, request, task_queue=settings.task_queue)
    except TenantAlreadyProvisioned as exc:
        console.print(f"[yellow]tenant already exists[/]: '{request.tenant_name}' was provisioned by {exc.workflow_id}")
        return
    console.print(f"workflow [bold]{handle.id}[/]")
    if not wait:
        return
    outcome = asyncio.ensure_future(handle.result())
    with Progress(
        TextColumn("[bold blue]{task.fields[step]:<22}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(), console=console,
    ) as progress:  # fmt: skip
        bar = progress.add_task("provisioning", total=100, step="starting")
        while not outcome.done():
            try:
                state = await handle.query("get_state", result_type=TenantCreationState)
                progress.update(bar, completed=state.progress, step=state.step)
            except Exception:  # noqa: BLE001 - the first query may race the first workflow task
                pass
            await asyncio.wait({outcome}, timeout=0.2)
        state = await handle.query("get_state", result_type=TenantCreationState)
        progress.update(bar, completed=state.progress, step=state.step)
    try:
        result = outcome.result()
    except WorkflowFailureError as exc:
        cause = exc.cause
        _fail(f"provisioning failed: {getattr(cause, 'message', None) or cause}")
        return
    table = Table(title=f"Tenant '{request.tenant_name}' provisioned", show_header=False)
    table.add_row("tenant_id", result.tenant_id)
    table.add_row("admin_user_id", result.admin_user_id)
    table.add_row("client_id", result.client_id)
    table.add_row("admin email", request.admin_user.email)
    table.add_row("temporary password", f"[bold]{result.temporary_password}[/] (temporary: change it at first login)")
    table.add_row("email_sent", str(result.email_sent) + (f" ({result.email_error})" if result.email_error else ""))
    table.add_row("customer tracking", _tracking_summary(result.customer_tracking))
    table.add_row("created_at", result.created_at)
    console.print(table)
    if result.email_location:
        console.print(f"welcome email written to: {result.email_location}", soft_wrap=True)


def _tracking_summary(tracking: Any) -> str:
    """One line on customer tracking: status, then the client (and why it was renamed) or the error."""
    if tracking.status == "ok":
        renamed = " (renamed: the name was taken)" if tracking.client_renamed else ""
        reused = ", existing contact reused" if tracking.contact_reused else ""
        return f"ok: client '{tracking.customer_client_name}'{renamed}{reused}"
    return f"{tracking.status}: {tracking.error}" if tracking.error else tracking.status


@tenants_app.command("create")
def tenants_create(
    name: Annotated[str, typer.Option("--name", help="tenant display name")],
    admin_email: Annotated[str, typer.Option("--admin-email")],
    admin_first_name: Annotated[str, typer.Option("--admin-first-name")],
    admin_last_name: Annotated[str, typer.Option("--admin-last-name")],
    company_name: Annotated[str | None, typer.Option("--company-name")] = None,
    client_name: Annotated[str | None, typer.Option("--client-name")] = None,
    email_provider: Annotated[str, typer.Option("--email-provider", help="smtp|resend|hybrid|microsoft")] = "resend",
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="follow progress until the end")] = True,
) -> None:
    """Provision a tenant and follow it with a progress bar. The temporary password is shown once."""
    from psa.domain.errors import DomainError
    from psa.provisioning.types import AdminUser, TenantCreationInput
    from psa.provisioning.validation import normalize_request

    request = TenantCreationInput(
        tenant_name=name,
        company_name=company_name,
        client_name=client_name,
        email_provider=email_provider,
        admin_user=AdminUser(first_name=admin_first_name, last_name=admin_last_name, email=admin_email),
    )
    try:
        normalize_request(request)
    except DomainError as exc:
        _fail(f"{exc.field}: {exc.message}", code=2)
    try:
        asyncio.run(_create(get_settings(), request, wait))
    except ConfigurationError as exc:
        _fail(str(exc))


@tenants_app.command("status")
def tenants_status(identifier: Annotated[str, typer.Argument(help="workflow id, slug or tenant name")]) -> None:
    """Live state of a provisioning run."""
    from psa.provisioning.types import TenantCreationState
    from psa.temporal import connect

    async def run() -> None:
        handle = (await connect(get_settings())).get_workflow_handle(_workflow_id(identifier))
        description = await handle.describe()
        state = await handle.query("get_state", result_type=TenantCreationState)
        console.print(f"workflow [bold]{handle.id}[/]: {description.status.name if description.status else '?'}")
        console.print(_state_table(state))

    asyncio.run(run())


@tenants_app.command("cancel")
def tenants_cancel(
    identifier: Annotated[str, typer.Argument(help="workflow id, slug or tenant name")],
    reason: Annotated[str, typer.Option("--reason")],
    cancelled_by: Annotated[str, typer.Option("--by")] = "cli",
) -> None:
    """Cancel a provisioning run: it stops and removes every row written so far."""
    from psa.provisioning.types import CancelSignal
    from psa.temporal import connect

    async def run() -> None:
        handle = (await connect(get_settings())).get_workflow_handle(_workflow_id(identifier))
        await handle.signal("cancel", CancelSignal(reason=reason, cancelled_by=cancelled_by))
        console.print(f"cancel sent to {handle.id}")

    asyncio.run(run())


@tenants_app.command("update")
def tenants_update(
    identifier: Annotated[str, typer.Argument(help="workflow id, slug or tenant name")],
    field: Annotated[str, typer.Option("--field")],
    value: Annotated[str, typer.Option("--value", help="JSON value, or a plain string")],
) -> None:
    """Change an input field the run has not used yet (validated Temporal Update)."""
    from temporalio.client import WorkflowUpdateFailedError

    from psa.provisioning.types import UpdateRequest, UpdateResult
    from psa.temporal import connect

    try:
        parsed: Any = json.loads(value)
    except json.JSONDecodeError:
        parsed = value

    async def run() -> None:
        handle = (await connect(get_settings())).get_workflow_handle(_workflow_id(identifier))
        try:
            result = await handle.execute_update(
                "update", UpdateRequest(field=field, value=parsed), result_type=UpdateResult
            )
        except WorkflowUpdateFailedError as exc:
            _fail(f"update rejected: {getattr(exc.cause, 'message', exc.cause)}")
            return
        console.print(f"{result.field} updated at step {result.applied_at_step}")

    asyncio.run(run())


@tenants_app.command("list")
def tenants_list(limit: int = 100) -> None:
    """Tenants in the database, newest first."""
    from psa.db.engine import make_engine, tenant_transaction
    from psa.domain.tenants import list_tenants

    async def run() -> None:
        engine = make_engine(get_settings())
        try:
            async with tenant_transaction(engine, None) as conn:
                rows = await list_tenants(conn, limit=limit)
        finally:
            await engine.dispose()
        table = Table("tenant", "name", "slug", "admin", "product", "created")
        for row in rows:
            table.add_row(
                str(row.tenant),
                row.client_name,
                row.slug,
                row.admin_email or "",
                row.product_code,
                row.created_at.isoformat(timespec="seconds"),
            )
        console.print(table)

    asyncio.run(run())


@tenants_app.command("bootstrap-management")
def tenants_bootstrap_management(
    name: Annotated[
        str | None, typer.Option("--name", help="management tenant name (default: PSA_MANAGEMENT_TENANT_NAME)")
    ] = None,
    email: Annotated[
        str, typer.Option("--email", help="the management tenant's contact email")
    ] = "operations@example.com",
) -> None:
    """Create the management tenant that records every provisioned tenant as a customer. Idempotent."""
    from psa.db.engine import make_engine
    from psa.domain.errors import DomainError
    from psa.provisioning.customer_tracking import bootstrap_management_tenant

    settings = get_settings()
    name = name or settings.management_tenant_name

    async def run() -> Any:
        engine = make_engine(settings)
        try:
            return await bootstrap_management_tenant(engine, name, email=email)
        finally:
            await engine.dispose()

    try:
        mgmt = asyncio.run(run())
    except DomainError as exc:
        _fail(f"{exc.field}: {exc.message}", code=2)
    except ConfigurationError as exc:
        _fail(str(exc))
    verb = "created" if mgmt.created else "already exists"
    console.print(f"management tenant '{mgmt.name}' {verb}: {mgmt.tenant} (slug {mgmt.slug})")
    if settings.management_tenant_id is None and mgmt.slug != _slug(settings.management_tenant_name):
        err.print(
            f"[yellow]warning:[/] customer tracking looks for '{settings.management_tenant_name}'; set "
            f"PSA_MANAGEMENT_TENANT_NAME='{mgmt.name}' or PSA_MANAGEMENT_TENANT_ID={mgmt.tenant} for the worker"
        )


def _slug(name: str) -> str:
    from psa.domain.tenants import tenant_slug

    return tenant_slug(name)


# -- customers ------------------------------------------------------------------------------------
@customers_app.command("reconcile")
def customers_reconcile(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="report what would be done; write nothing")] = False,
    tenant: Annotated[
        list[str] | None, typer.Option("--tenant", help="only this tenant (id or slug); repeatable")
    ] = None,
) -> None:
    """Record every tenant without a customer record, and repair incomplete ones. Idempotent."""
    from psa.db.engine import make_engine
    from psa.domain.errors import DomainError
    from psa.provisioning.customer_tracking import reconcile

    settings = get_settings()

    async def run() -> Any:
        engine = make_engine(settings)
        try:
            return await reconcile(engine, settings, dry_run=dry_run, only=tenant or None)
        finally:
            await engine.dispose()

    try:
        rows = asyncio.run(run())
    except DomainError as exc:
        _fail(exc.message)
    except ConfigurationError as exc:
        _fail(str(exc))
    table = Table("tenant", "company", "action", "missing", "customer client", "detail", title="customer reconcile")
    for row in rows:
        detail = row.tracking.error or ("renamed: the name was taken" if row.tracking.client_renamed else "")
        table.add_row(
            row.slug, row.company_name, row.action, ", ".join(row.missing), row.tracking.customer_client_name or "",
            detail,
        )  # fmt: skip
    console.print(table)
    counts = {action: sum(r.action == action for r in rows) for action in dict.fromkeys(r.action for r in rows)}
    console.print(", ".join(f"{n} {action}" for action, n in counts.items()) or "no tenants to track")
    if any(r.action == "failed" for r in rows):
        raise typer.Exit(1)


def main() -> None:
    """Console entry point. Exits with ``os._exit`` after flushing: the Temporal SDK's native runtime
    threads can otherwise call into a finalising interpreter and abort the process (SIGABRT,
    "PyGILState_Release ... finalizing") after the command has already succeeded."""
    code = 0
    try:
        app()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        traceback.print_exc()
        code = 1
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
