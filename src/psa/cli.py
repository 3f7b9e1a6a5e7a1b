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
automation_app = typer.Typer(help="Workflow automation: actions, definitions and runs.", no_args_is_help=True)
runs_app = typer.Typer(help="Workflow runs.", no_args_is_help=True)
users_app = typer.Typer(help="Internal users of a tenant.", no_args_is_help=True)
apikeys_app = typer.Typer(help="API keys of the HTTP API (each acts as one user of a tenant).", no_args_is_help=True)
automation_app.add_typer(runs_app, name="runs")
app.add_typer(dev_app, name="dev")
app.add_typer(db_app, name="db")
app.add_typer(tenants_app, name="tenants")
app.add_typer(customers_app, name="customers")
app.add_typer(automation_app, name="automation")
app.add_typer(users_app, name="users")
app.add_typer(apikeys_app, name="apikeys")

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

    from psa.provisioning.starter import TenantAlreadyProvisioned, start_tenant_creation
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
        TextColumn("[bold blue]{task.fields[step]:<22}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
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
    from psa.provisioning.starter import provisioning_status, provisioning_workflow_id
    from psa.temporal import connect

    async def run() -> None:
        run = await provisioning_status(await connect(get_settings()), provisioning_workflow_id(identifier))
        console.print(f"workflow [bold]{run.workflow_id}[/]: {run.status}")
        console.print(_state_table(run.state))

    asyncio.run(run())


@tenants_app.command("cancel")
def tenants_cancel(
    identifier: Annotated[str, typer.Argument(help="workflow id, slug or tenant name")],
    reason: Annotated[str, typer.Option("--reason")],
    cancelled_by: Annotated[str, typer.Option("--by")] = "cli",
) -> None:
    """Cancel a provisioning run: it stops and removes every row written so far."""
    from psa.provisioning.starter import cancel_provisioning, provisioning_workflow_id
    from psa.temporal import connect

    async def run() -> None:
        workflow_id = provisioning_workflow_id(identifier)
        await cancel_provisioning(await connect(get_settings()), workflow_id, reason=reason, cancelled_by=cancelled_by)
        console.print(f"cancel sent to {workflow_id}")

    asyncio.run(run())


@tenants_app.command("update")
def tenants_update(
    identifier: Annotated[str, typer.Argument(help="workflow id, slug or tenant name")],
    field: Annotated[str, typer.Option("--field")],
    value: Annotated[str, typer.Option("--value", help="JSON value, or a plain string")],
) -> None:
    """Change an input field the run has not used yet (validated Temporal Update)."""
    from psa.provisioning.starter import UpdateRejected, provisioning_workflow_id, update_provisioning
    from psa.temporal import connect

    try:
        parsed: Any = json.loads(value)
    except json.JSONDecodeError:
        parsed = value

    async def run() -> None:
        client = await connect(get_settings())
        try:
            result = await update_provisioning(client, provisioning_workflow_id(identifier), field, parsed)
        except UpdateRejected as exc:
            _fail(f"update rejected: {exc.message}")
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
    from psa.domain.values import tenant_slug

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
            row.slug,
            row.company_name,
            row.action,
            ", ".join(row.missing),
            row.tracking.customer_client_name or "",
            detail,
        )
    console.print(table)
    counts = {action: sum(r.action == action for r in rows) for action in dict.fromkeys(r.action for r in rows)}
    console.print(", ".join(f"{n} {action}" for action, n in counts.items()) or "no tenants to track")
    if any(r.action == "failed" for r in rows):
        raise typer.Exit(1)


# -- automation -----------------------------------------------------------------------------------
def _json_option(value: str, name: str) -> Any:
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        _fail(f"{name} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})", code=2)


async def _tenant(conn: Any, tenant: str) -> tuple[Any, Any]:
    """Resolve ``--tenant`` (id or slug): (tenant id, its TenantRow when found by slug, else None)."""
    from uuid import UUID

    from psa.domain import tenants

    row = None
    try:
        found = await tenants.tenant_exists(conn, UUID(tenant))
        tenant_id = UUID(tenant) if found else None
    except ValueError:
        row = await tenants.get_tenant_by_slug(conn, tenant)
        tenant_id = row.tenant if row else None
    if tenant_id is None:
        _fail(f"tenant '{tenant}' not found (give its id or slug)", code=2)
    return tenant_id, row


async def _tenant_and_actor(conn: Any, tenant: str, actor: str | None) -> tuple[Any, Any]:
    """Resolve ``--tenant`` (id or slug) and ``--actor`` (email or id; default: the tenant's first admin)."""
    from uuid import UUID

    from psa.domain import tenants, users

    tenant_id, row = await _tenant(conn, tenant)
    email = actor
    if email is None:
        row = row or next(r for r in await tenants.list_tenants(conn, limit=None) if r.tenant == tenant_id)
        email = row.admin_email
    try:
        return tenant_id, UUID(email or "")
    except ValueError:
        user_id = await users.find_internal_user(conn, tenant_id, email or "")
        if user_id is None:
            _fail(f"actor '{email}' is not an internal user of the tenant", code=2)
        return tenant_id, user_id


def _engine_run(fn: Any) -> Any:
    """Run ``fn(engine)`` with an engine on the configured database, disposing it afterwards."""
    from psa.db.engine import make_engine

    async def run() -> Any:
        engine = make_engine(get_settings())
        try:
            return await fn(engine)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(run())
    except ConfigurationError as exc:
        _fail(str(exc))


def _print_failure(failure: Any) -> None:
    info = failure.info
    err.print(f"[bold red]{info.code or info.category}[/]: {info.message}")
    if info.details:
        err.print(json.dumps(info.details, indent=2, default=str))


@automation_app.command("actions")
def automation_actions(as_json: Annotated[bool, typer.Option("--json", help="the catalog as JSON")] = False) -> None:
    """The designer catalog of registered actions, grouped by area."""
    from psa.automation.actions import builtin_registry
    from psa.automation.catalog import build_catalog

    catalog = build_catalog(builtin_registry())
    if as_json:
        print(json.dumps([record.model_dump(mode="json") for record in catalog], indent=2))
        return
    table = Table("group", "action", "version", "label", "inputs")
    for record in catalog:
        for action in record.actions:
            table.add_row(
                record.label, action.id, str(action.version), action.label, ", ".join(action.input_field_names)
            )
    console.print(table)


@automation_app.command("publish")
def automation_publish(
    file: Annotated[typer.FileText, typer.Argument(help="definition JSON file")],
    tenant: Annotated[str, typer.Option("--tenant", help="tenant id or slug")],
    key: Annotated[str | None, typer.Option("--key", help="stable key to address the workflow by")] = None,
    actor: Annotated[str | None, typer.Option("--actor", help="publisher (email or id); runs act as them")] = None,
) -> None:
    """Validate and publish a workflow definition as its next version."""
    from psa.automation.actions import builtin_registry
    from psa.automation.definitions import DefinitionInvalid, publish_definition
    from psa.db.engine import tenant_transaction

    raw = _json_option(file.read(), "the definition")

    async def publish(engine: Any) -> Any:
        async with tenant_transaction(engine, None) as conn:
            tenant_id, publisher = await _tenant_and_actor(conn, tenant, actor)
        async with tenant_transaction(engine, tenant_id) as conn:
            return await publish_definition(
                conn, tenant_id, raw, registry=builtin_registry(), published_by=publisher, key=key
            )

    try:
        published = _engine_run(publish)
    except DefinitionInvalid as exc:
        table = Table("code", "step path", "message", title="definition rejected")
        for issue in exc.report.errors:
            table.add_row(
                issue.code, issue.step_path, issue.message + (f" ({issue.suggestion})" if issue.suggestion else "")
            )
        err.print(table)
        raise typer.Exit(1) from None
    console.print(f"published workflow {published.workflow_id} version {published.version}")


@automation_app.command("run")
def automation_run(
    workflow: Annotated[str, typer.Argument(help="workflow id or key")],
    tenant: Annotated[str, typer.Option("--tenant", help="tenant id or slug")],
    payload: Annotated[str, typer.Option("--payload", help="run payload (JSON object)")] = "{}",
    version: Annotated[int | None, typer.Option("--version", help="default: the latest published")] = None,
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="follow the steps until the run ends")] = True,
) -> None:
    """Start a run of a published workflow; with --wait, print each step as it finishes."""
    from psa.automation.run.records import get_run
    from psa.automation.run.starter import launch_run
    from psa.db.engine import tenant_transaction
    from psa.temporal import connect

    data = _json_option(payload, "--payload")
    if not isinstance(data, dict):
        _fail("--payload must be a JSON object", code=2)
    settings = get_settings()

    async def run(engine: Any) -> Any:
        async with tenant_transaction(engine, None) as conn:
            tenant_id, _ = await _tenant_and_actor(conn, tenant, None)
        client = await connect(settings)
        launched = await launch_run(
            engine,
            client,
            tenant=tenant_id,
            workflow=workflow,
            payload=data,
            task_queue=settings.task_queue,
            version=version,
        )
        console.print(f"run [bold]{launched.run_id}[/] of workflow {launched.workflow_id} v{launched.workflow_version}")
        if not wait:
            return None
        shown: set[tuple[str, int]] = set()
        while True:
            async with tenant_transaction(engine, tenant_id) as conn:
                view = await get_run(conn, tenant_id, launched.run_id)
            for step in view.steps:
                ident = (step["step_path"], step["attempt"])
                if step["status"] != "STARTED" and ident not in shown:
                    shown.add(ident)
                    took = f"{step['duration_ms']} ms" if step["duration_ms"] is not None else ""
                    console.print(f"  {step['status']:<9} {step['step_path']} ({step['definition_step_id']}) {took}")
            if view.status != "RUNNING":
                return view
            await asyncio.sleep(0.2)

    try:
        view = _engine_run(run)
    except Exception as exc:
        from psa.domain.errors import DomainError

        if isinstance(exc, DomainError):
            _fail(exc.message, code=2)
        raise
    if view is not None:
        console.print(f"run {view.status}" + (f": {view.error_json.get('message')}" if view.error_json else ""))
        if view.status != "SUCCEEDED":
            raise typer.Exit(1)


@runs_app.command("show")
def automation_runs_show(
    run_id: Annotated[str, typer.Argument(help="run id")],
    tenant: Annotated[str, typer.Option("--tenant", help="tenant id or slug")],
) -> None:
    """A run's status, actor and steps."""
    from uuid import UUID

    from psa.automation.run.records import get_run
    from psa.db.engine import tenant_transaction
    from psa.domain.errors import DomainError

    async def show(engine: Any) -> Any:
        async with tenant_transaction(engine, None) as conn:
            tenant_id, _ = await _tenant_and_actor(conn, tenant, None)
        async with tenant_transaction(engine, tenant_id) as conn:
            return await get_run(conn, tenant_id, UUID(run_id))

    try:
        view = _engine_run(show)
    except (DomainError, ValueError) as exc:
        _fail(str(getattr(exc, "message", exc)), code=2)
    console.print(
        f"run {view.run_id}: [bold]{view.status}[/] (workflow {view.workflow_id} v{view.workflow_version}, "
        f"actor {view.actor_user_id})"
    )
    if view.error_json:
        console.print(json.dumps(view.error_json, indent=2))
    table = Table("step path", "step id", "status", "attempt", "ms", "error")
    for step in view.steps:
        error = (step["error_json"] or {}).get("message", "")
        table.add_row(
            step["step_path"],
            step["definition_step_id"],
            step["status"],
            str(step["attempt"]),
            str(step["duration_ms"] or ""),
            error,
        )
    console.print(table)


@automation_app.command("invoke")
def automation_invoke(
    action: Annotated[str, typer.Argument(help="action id, e.g. clients.create (optionally id@version)")],
    tenant: Annotated[str, typer.Option("--tenant", help="tenant id or slug")],
    input_json: Annotated[str, typer.Option("--input", help="action input (JSON object)")] = "{}",
    actor: Annotated[str | None, typer.Option("--actor", help="acting user (email or id); default: the admin")] = None,
    idempotency_key: Annotated[str | None, typer.Option("--idempotency-key")] = None,
) -> None:
    """Run one action under the full contract (permissions, ledger, audit, events) and print its output."""
    from psa.automation.actions import builtin_registry
    from psa.automation.errors import ActionFailure
    from psa.automation.invocation import invoke_action
    from psa.db.engine import tenant_transaction

    action_id, _, version = action.partition("@")
    data = _json_option(input_json, "--input")

    async def invoke(engine: Any) -> Any:
        async with tenant_transaction(engine, None) as conn:
            tenant_id, actor_id = await _tenant_and_actor(conn, tenant, actor)
        return await invoke_action(
            engine,
            builtin_registry(),
            tenant=tenant_id,
            action_id=action_id,
            version=int(version or 1),
            raw_input=data if isinstance(data, dict) else {"value": data},
            actor_user_id=actor_id,
            idempotency_key=idempotency_key,
        )

    try:
        invocation = _engine_run(invoke)
    except ActionFailure as failure:
        _print_failure(failure)
        raise typer.Exit(1) from None
    print(json.dumps(invocation.output, indent=2, default=str))
    if invocation.replayed:
        err.print(f"(replayed from the idempotency ledger: attempt {invocation.attempt})")


# -- HTTP API -------------------------------------------------------------------------------------
@app.command("api")
def api(
    host: Annotated[str | None, typer.Option(help="bind address (default: PSA_API_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="port (default: PSA_API_PORT)")] = None,
    workers: Annotated[int, typer.Option(min=1, help="server processes (uvicorn workers)")] = 1,
    access_log: Annotated[bool, typer.Option("--access-log/--no-access-log", help="log every request")] = True,
) -> None:
    """Serve the HTTP API (OpenAPI at /docs) with uvicorn on the configured database and Temporal."""
    import uvicorn

    settings = get_settings()
    uvicorn.run(
        "psa.api.app:app_from_environment",
        factory=True,
        host=host or settings.api_host,
        port=port or settings.api_port,
        workers=workers,
        access_log=access_log,
    )


@users_app.command("add")
def users_add(
    tenant: Annotated[str, typer.Option("--tenant", help="tenant id or slug")],
    email: Annotated[str, typer.Option("--email")],
    first_name: Annotated[str, typer.Option("--first-name")],
    last_name: Annotated[str, typer.Option("--last-name")],
    role: Annotated[str, typer.Option("--role", help="MSP role (Admin holds every MSP permission)")] = "Admin",
) -> None:
    """Add an internal user holding an MSP role, without a usable password (it signs in after a password reset,
    or acts through an API key): e.g. the management tenant's operator who provisions tenants over the API."""
    from uuid import uuid4

    from psa.db.engine import tenant_transaction
    from psa.domain import users, values
    from psa.domain.errors import DomainError

    async def add(engine: Any) -> Any:
        async with tenant_transaction(engine, None) as conn:
            tenant_id, _ = await _tenant(conn, tenant)
        user_id = uuid4()
        async with tenant_transaction(engine, tenant_id) as conn:
            await users.create_internal_user(
                conn,
                tenant=tenant_id,
                user_id=user_id,
                first_name=first_name.strip(),
                last_name=last_name.strip(),
                email=values.normalize_email(email),
                password_hash=users.UNUSABLE_PASSWORD,
                role_name=role,
            )
        return user_id

    try:
        user_id = _engine_run(add)
    except DomainError as exc:
        _fail(f"{exc.field or 'user'}: {exc.message}", code=2)
    console.print(f"user {user_id} ({email}, {role}) added")


@apikeys_app.command("create")
def apikeys_create(
    tenant: Annotated[str, typer.Option("--tenant", help="tenant id or slug")],
    user: Annotated[str, typer.Option("--user", help="the key's user (email or id): the actor of its requests")],
    name: Annotated[str, typer.Option("--name", help="what the key is for")] = "api",
) -> None:
    """Create an API key and print it once (only its SHA-256 is stored)."""
    from psa.db.engine import tenant_transaction
    from psa.domain.api_keys import create_api_key
    from psa.domain.errors import DomainError

    async def create(engine: Any) -> Any:
        async with tenant_transaction(engine, None) as conn:
            tenant_id, user_id = await _tenant_and_actor(conn, tenant, user)
        async with tenant_transaction(engine, tenant_id) as conn:
            return await create_api_key(conn, tenant_id, user_id, name=name)

    try:
        created = _engine_run(create)
    except DomainError as exc:
        _fail(f"{exc.field}: {exc.message}", code=2)
    console.print(f"API key {created.key_id} for user {created.user_id} of tenant {created.tenant}")
    console.print("store it now, it is not shown again (send it in the x-api-key header):")
    print(created.key)


@apikeys_app.command("revoke")
def apikeys_revoke(
    key_id: Annotated[str, typer.Argument(help="the key's id (printed at creation and by `psa apikeys list`)")],
    tenant: Annotated[str, typer.Option("--tenant", help="tenant id or slug")],
) -> None:
    """Revoke an API key: its requests get 401 from now on."""
    from uuid import UUID

    from psa.db.engine import tenant_transaction
    from psa.domain.api_keys import revoke_api_key
    from psa.domain.errors import DomainError

    async def revoke(engine: Any) -> Any:
        async with tenant_transaction(engine, None) as conn:
            tenant_id, _ = await _tenant(conn, tenant)
        async with tenant_transaction(engine, tenant_id) as conn:
            return await revoke_api_key(conn, tenant_id, UUID(key_id))

    try:
        revoked_at = _engine_run(revoke)
    except (DomainError, ValueError) as exc:
        _fail(str(getattr(exc, "message", exc)), code=2)
    console.print(f"API key {key_id} revoked at {revoked_at.isoformat(timespec='seconds')}")


@apikeys_app.command("list")
def apikeys_list(tenant: Annotated[str, typer.Option("--tenant", help="tenant id or slug")]) -> None:
    """The tenant's API keys (prefix, user, created, revoked); never the keys themselves."""
    from psa.db.engine import tenant_transaction
    from psa.domain.api_keys import list_api_keys

    async def listing(engine: Any) -> Any:
        async with tenant_transaction(engine, None) as conn:
            tenant_id, _ = await _tenant(conn, tenant)
        async with tenant_transaction(engine, tenant_id) as conn:
            return await list_api_keys(conn, tenant_id)

    table = Table("key id", "prefix", "user", "name", "created", "revoked")
    for row in _engine_run(listing):
        revoked = row.revoked_at.isoformat(timespec="seconds") if row.revoked_at else ""
        table.add_row(
            str(row.key_id),
            f"psa_{row.key_prefix}…",
            row.email,
            row.name,
            row.created_at.isoformat(timespec="seconds"),
            revoked,
        )
    console.print(table)


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
