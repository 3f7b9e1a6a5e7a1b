"""``psa automation``: the action catalog, one action under the full contract, publishing definitions, starting
runs and reading them back; see docs/automation.md, "Action contract", "Publish validation codes" and "Runs"."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated
from uuid import UUID

import typer
from rich.table import Table

from psa.automation.actions import builtin_registry
from psa.automation.catalog import build_catalog
from psa.automation.definitions import publish_definition
from psa.automation.invocation import invoke_action
from psa.automation.run.records import RunView, get_run
from psa.automation.run.starter import launch_run
from psa.cli.commands import CommandApp
from psa.cli.deps import TenantOption, TenantScope, json_option, tenant_scope
from psa.cli.output import USAGE_ERROR, console, err, fail
from psa.config import get_settings
from psa.temporal import connect

app = CommandApp(help="Workflow automation: actions, definitions and runs.", no_args_is_help=True)
runs = CommandApp(help="Workflow runs.", no_args_is_help=True)
app.add_typer(runs, name="runs")


@app.command("actions")
def actions(as_json: Annotated[bool, typer.Option("--json", help="the catalog as JSON")] = False) -> None:
    """The designer catalog of registered actions, grouped by area."""
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


@app.command("publish")
async def publish(
    file: Annotated[typer.FileText, typer.Argument(help="definition JSON file")],
    tenant: TenantOption,
    key: Annotated[str | None, typer.Option("--key", help="stable key to address the workflow by")] = None,
    actor: Annotated[str | None, typer.Option("--actor", help="publisher (email or id); runs act as them")] = None,
) -> None:
    """Validate and publish a workflow definition as its next version."""
    raw = json_option(file.read(), "the definition")
    async with tenant_scope(tenant) as scope:
        publisher = await scope.user(actor)
        async with scope.transaction() as conn:
            published = await publish_definition(
                conn, scope.id, raw, registry=builtin_registry(), published_by=publisher, key=key
            )
    console.print(f"published workflow {published.workflow_id} version {published.version}")


@app.command("run")
async def run(
    workflow: Annotated[str, typer.Argument(help="workflow id or key")],
    tenant: TenantOption,
    payload: Annotated[str, typer.Option("--payload", help="run payload (JSON object)")] = "{}",
    version: Annotated[int | None, typer.Option("--version", help="default: the latest published")] = None,
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="follow the steps until the run ends")] = True,
) -> None:
    """Start a run of a published workflow; with --wait, print each step as it finishes."""
    data = json_option(payload, "--payload")
    if not isinstance(data, dict):
        fail("--payload must be a JSON object", code=USAGE_ERROR)
    settings = get_settings()
    async with tenant_scope(tenant) as scope:
        launched = await launch_run(
            scope.engine,
            await connect(settings),
            tenant=scope.id,
            workflow=workflow,
            payload=data,
            task_queue=settings.task_queue,
            action_timeout_seconds=settings.automation_action_timeout_seconds,
            version=version,
        )
        console.print(f"run [bold]{launched.run_id}[/] of workflow {launched.workflow_id} v{launched.workflow_version}")
        if not wait:
            return
        view = await _follow(scope, launched.run_id)
    console.print(f"run {view.status}" + (f": {view.error_json.get('message')}" if view.error_json else ""))
    if view.status != "SUCCEEDED":
        raise typer.Exit(1)


async def _follow(scope: TenantScope, run_id: UUID) -> RunView:
    """Print each step of the run once it has finished (or failed), until the run is no longer RUNNING."""
    shown: set[tuple[str, int]] = set()
    while True:
        async with scope.transaction() as conn:
            view = await get_run(conn, scope.id, run_id)
        for step in view.steps:
            ident = (step["step_path"], step["attempt"])
            if step["status"] != "STARTED" and ident not in shown:
                shown.add(ident)
                took = f"{step['duration_ms']} ms" if step["duration_ms"] is not None else ""
                console.print(f"  {step['status']:<9} {step['step_path']} ({step['definition_step_id']}) {took}")
        if view.status != "RUNNING":
            return view
        await asyncio.sleep(0.2)


@runs.command("show")
async def runs_show(
    run_id: Annotated[UUID, typer.Argument(help="run id")],
    tenant: TenantOption,
) -> None:
    """A run's status, actor and steps."""
    async with tenant_scope(tenant) as scope, scope.transaction() as conn:
        view = await get_run(conn, scope.id, run_id)
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


@app.command("invoke")
async def invoke(
    action: Annotated[str, typer.Argument(help="action id, e.g. clients.create (optionally id@version)")],
    tenant: TenantOption,
    input_json: Annotated[str, typer.Option("--input", help="action input (JSON object)")] = "{}",
    actor: Annotated[str | None, typer.Option("--actor", help="acting user (email or id); default: the admin")] = None,
    idempotency_key: Annotated[str | None, typer.Option("--idempotency-key")] = None,
) -> None:
    """Run one action under the full contract (permissions, ledger, audit, events) and print its output."""
    action_id, _, version = action.partition("@")
    data = json_option(input_json, "--input")
    async with tenant_scope(tenant) as scope:
        actor_id = await scope.user(actor)
        invocation = await invoke_action(
            scope.engine,
            builtin_registry(),
            tenant=scope.id,
            action_id=action_id,
            version=int(version or 1),
            raw_input=data if isinstance(data, dict) else {"value": data},
            actor_user_id=actor_id,
            idempotency_key=idempotency_key,
        )
    print(json.dumps(invocation.output, indent=2, default=str))
    if invocation.replayed:
        err.print(f"(replayed from the idempotency ledger: attempt {invocation.attempt})")
