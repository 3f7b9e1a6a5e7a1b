"""``psa`` command line: the Typer app and its command groups, one module each (docs/operations.md).

Every command has one shape: a function of ``CommandApp`` (``cli.commands``, which runs ``async def`` commands
and maps the errors they expect to a red message and an exit code), taking its tenant and actor from
``cli.deps`` (``--tenant`` and ``--actor`` resolved, and the one engine a command opens).
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
import warnings

import typer

from psa.cli import automation, dev, keys, serve, tenants

# The embedded PostgreSQL wheel warns on every start when XDG_RUNTIME_DIR is unset; nothing depends on it.
warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")

app = typer.Typer(help="psa: multi-tenant PSA back end.", no_args_is_help=True, pretty_exceptions_show_locals=False)
app.add_typer(serve.app)  # worker, api: commands of psa itself
app.add_typer(dev.app, name="dev")
app.add_typer(dev.db, name="db")
app.add_typer(tenants.app, name="tenants")
app.add_typer(tenants.customers, name="customers")
app.add_typer(automation.app, name="automation")
app.add_typer(keys.users, name="users")
app.add_typer(keys.apikeys, name="apikeys")


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
