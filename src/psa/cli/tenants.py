"""``psa tenants`` (provision, follow, cancel, update and list tenants; create the management tenant) and
``psa customers`` (the tenants recorded as customers of the management tenant); see docs/provisioning.md,
"Steps and progress", "Cancel and update" and "Customer tracking"."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

import typer
from pydantic import JsonValue
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from temporalio.client import WorkflowFailureError, WorkflowHandle

from psa.cli.commands import CommandApp
from psa.cli.deps import database
from psa.cli.output import console, err, fail
from psa.cli.polling import has_pollers
from psa.config import get_settings
from psa.db.engine import tenant_transaction
from psa.domain.tenants import list_tenants
from psa.domain.values import tenant_slug
from psa.provisioning.customer_tracking import bootstrap_management_tenant, reconcile
from psa.provisioning.preflight import check_before_start
from psa.provisioning.starter import (
    TenantAlreadyProvisioned,
    cancel_provisioning,
    provisioning_status,
    provisioning_workflow_id,
    start_tenant_creation,
    update_provisioning,
)
from psa.provisioning.types import (
    AdminUser,
    CustomerTracking,
    TenantCreationInput,
    TenantCreationResult,
    TenantCreationState,
)
from psa.provisioning.validation import normalize_request
from psa.temporal import connect

app = CommandApp(help="Provision and inspect tenants.", no_args_is_help=True)
customers = CommandApp(help="Tenants recorded as customers of the management tenant.", no_args_is_help=True)

Identifier = Annotated[str, typer.Argument(help="workflow id, slug or tenant name")]


@app.command("create")
async def create(
    name: Annotated[str, typer.Option("--name", help="tenant display name")],
    admin_email: Annotated[str, typer.Option("--admin-email")],
    admin_first_name: Annotated[str, typer.Option("--admin-first-name")],
    admin_last_name: Annotated[str, typer.Option("--admin-last-name")],
    company_name: Annotated[str | None, typer.Option("--company-name")] = None,
    client_name: Annotated[str | None, typer.Option("--client-name")] = None,
    email_provider: Annotated[str, typer.Option("--email-provider", help="smtp|resend|hybrid|microsoft")] = "resend",
    product: Annotated[str, typer.Option("--product", help="psa|algadesk: the seed set and welcome email")] = "psa",
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="follow progress until the end")] = True,
) -> None:
    """Provision a tenant and follow it with a progress bar. The temporary password is shown once. A request the
    workflow would refuse (bad input, a slug, tenant id or admin email another tenant holds) starts nothing."""
    request = TenantCreationInput(
        tenant_name=name,
        company_name=company_name,
        client_name=client_name,
        email_provider=email_provider,
        product_code=product,
        admin_user=AdminUser(first_name=admin_first_name, last_name=admin_last_name, email=admin_email),
    )
    normalize_request(request)  # bad input is refused before the database is opened
    async with database() as engine, tenant_transaction(engine, None) as conn:
        await check_before_start(conn, request)
    settings = get_settings()
    client = await connect(settings)
    if not await has_pollers(client, settings):
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
    try:
        result = await _follow(handle)
    except WorkflowFailureError as exc:
        fail(f"provisioning failed: {getattr(exc.cause, 'message', None) or exc.cause}")
    console.print(_result_table(request, result))
    if result.email_location:
        console.print(f"welcome email written to: {result.email_location}", soft_wrap=True)


async def _follow(handle: WorkflowHandle) -> TenantCreationResult:
    """Show the run's step and progress in a bar until it ends; return its result. Raises WorkflowFailureError
    when the run failed or was cancelled."""
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
    return outcome.result()


def _result_table(request: TenantCreationInput, result: TenantCreationResult) -> Table:
    """The provisioned tenant: ids, admin email, the temporary password (shown once), email and tracking."""
    table = Table(title=f"Tenant '{request.tenant_name}' provisioned", show_header=False)
    table.add_row("tenant_id", result.tenant_id)
    table.add_row("admin_user_id", result.admin_user_id)
    table.add_row("client_id", result.client_id)
    table.add_row("admin email", request.admin_user.email)
    table.add_row("temporary password", f"[bold]{result.temporary_password}[/] (temporary: change it at first login)")
    table.add_row("email_sent", str(result.email_sent) + (f" ({result.email_error})" if result.email_error else ""))
    table.add_row("customer tracking", _tracking_summary(result.customer_tracking))
    table.add_row("created_at", result.created_at)
    return table


def _tracking_summary(tracking: CustomerTracking) -> str:
    """One line on customer tracking: status, then the client (and why it was renamed) or the error."""
    if tracking.status == "ok":
        renamed = " (renamed: the name was taken)" if tracking.client_renamed else ""
        reused = ", existing contact reused" if tracking.contact_reused else ""
        return f"ok: client '{tracking.customer_client_name}'{renamed}{reused}"
    return f"{tracking.status}: {tracking.error}" if tracking.error else tracking.status


@app.command("status")
async def status(identifier: Identifier) -> None:
    """Live state of a provisioning run."""
    run = await provisioning_status(await connect(get_settings()), provisioning_workflow_id(identifier))
    console.print(f"workflow [bold]{run.workflow_id}[/]: {run.status}")
    console.print(_state_table(run.state))


def _state_table(state: TenantCreationState) -> Table:
    """Every field of the state that has a value, then the steps entered with their progress."""
    table = Table("field", "value", show_header=False)
    for key, value in state.model_dump(exclude={"history"}).items():
        if value not in (None, [], {}):
            table.add_row(key, json.dumps(value) if isinstance(value, dict | list) else str(value))
    table.add_row("history", " → ".join(f"{t.step} {t.progress}%" for t in state.history))
    return table


@app.command("cancel")
async def cancel(
    identifier: Identifier,
    reason: Annotated[str, typer.Option("--reason")],
    cancelled_by: Annotated[str, typer.Option("--by")] = "cli",
) -> None:
    """Cancel a provisioning run: it stops and removes every row written so far."""
    workflow_id = provisioning_workflow_id(identifier)
    await cancel_provisioning(await connect(get_settings()), workflow_id, reason=reason, cancelled_by=cancelled_by)
    console.print(f"cancel sent to {workflow_id}")


@app.command("update")
async def update(
    identifier: Identifier,
    field: Annotated[str, typer.Option("--field")],
    value: Annotated[str, typer.Option("--value", help="JSON value, or a plain string")],
) -> None:
    """Change an input field the run has not used yet (validated Temporal Update)."""
    try:
        parsed: JsonValue = json.loads(value)
    except json.JSONDecodeError:
        parsed = value
    client = await connect(get_settings())
    result = await update_provisioning(client, provisioning_workflow_id(identifier), field, parsed)
    console.print(f"{result.field} updated at step {result.applied_at_step}")


@app.command("list")
async def list_(limit: int = 100) -> None:
    """Tenants in the database, newest first."""
    async with database() as engine, engine.connect() as conn:
        rows = await list_tenants(conn, limit=limit)
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


@app.command("bootstrap-management")
async def bootstrap_management(
    name: Annotated[
        str | None, typer.Option("--name", help="management tenant name (default: PSA_MANAGEMENT_TENANT_NAME)")
    ] = None,
    email: Annotated[
        str, typer.Option("--email", help="the management tenant's contact email")
    ] = "operations@example.com",
) -> None:
    """Create the management tenant that records every provisioned tenant as a customer. Idempotent."""
    settings = get_settings()
    async with database() as engine:
        mgmt = await bootstrap_management_tenant(engine, name or settings.management_tenant_name, email=email)
    verb = "created" if mgmt.created else "already exists"
    console.print(f"management tenant '{mgmt.name}' {verb}: {mgmt.tenant} (slug {mgmt.slug})")
    if settings.management_tenant_id is None and mgmt.slug != tenant_slug(settings.management_tenant_name):
        err.print(
            f"[yellow]warning:[/] customer tracking looks for '{settings.management_tenant_name}'; set "
            f"PSA_MANAGEMENT_TENANT_NAME='{mgmt.name}' or PSA_MANAGEMENT_TENANT_ID={mgmt.tenant} for the worker"
        )


# A DomainError here is the missing management tenant: a configuration problem, not refused input (exit 1).
@customers.command("reconcile", domain_error_exit=1)
async def customers_reconcile(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="report what would be done; write nothing")] = False,
    tenant: Annotated[
        list[str] | None, typer.Option("--tenant", help="only this tenant (id or slug); repeatable")
    ] = None,
) -> None:
    """Record every tenant without a customer record, and repair incomplete ones. Idempotent."""
    async with database() as engine:
        rows = await reconcile(engine, get_settings(), dry_run=dry_run, only=tenant or None)
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
