"""``psa dev`` (the embedded PostgreSQL and Temporal dev server under ``.psa/``) and ``psa db`` (migrations);
see docs/operations.md, "Dev stack"."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from psa.cli.commands import CommandApp
from psa.cli.output import console
from psa.config import get_settings
from psa.db.migrate import upgrade
from psa.devstack import ComponentStatus, DevStack

app = CommandApp(help="Embedded PostgreSQL + Temporal dev server under .psa/.", no_args_is_help=True)
db = CommandApp(help="Database migrations.", no_args_is_help=True)


@app.command("up")
def up(ui: Annotated[bool, typer.Option(help="serve the Temporal web UI")] = True) -> None:
    """Start embedded PostgreSQL and the Temporal dev server (idempotent)."""
    urls = DevStack(get_settings(), temporal_ui=ui).up()
    console.print(f"postgres  [green]{urls['database_url']}[/]")
    console.print(f"temporal  [green]{urls['temporal_address']}[/]")


@app.command("down")
def down() -> None:
    """Stop the worker, Temporal and PostgreSQL started by `psa dev up` (data is kept)."""
    DevStack(get_settings()).down()
    console.print("stack stopped")


@app.command("status")
def status() -> None:
    """Show what runs and where."""
    table = Table("component", "state", "address", "pid")
    for component in DevStack(get_settings()).status():
        table.add_row(component.name, _state(component), component.address or "", str(component.pid or ""))
    console.print(table)


def _state(component: ComponentStatus) -> str:
    if component.external:
        return "external"
    return "[green]running[/]" if component.running else "[red]stopped[/]"


@db.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Apply Alembic migrations up to REVISION (default head)."""
    upgrade(get_settings().resolved_database_url(), revision)
    console.print(f"database at revision [green]{revision}[/]")
