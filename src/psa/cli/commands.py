"""How a command runs. ``CommandApp`` is a Typer app whose commands may be ``async def`` (each runs under
``asyncio.run``), and ``reported_errors`` is the one place where the errors a command expects become a red
message and an exit code; anything else propagates as a traceback (exit 1).

Typer has no async commands of its own yet (fastapi/typer#950); this is the ``AsyncTyper`` recipe discussed
there, plus the error mapping.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import typer
from rich.table import Table
from temporalio.service import RPCError

from psa.automation.definitions import DefinitionInvalid
from psa.automation.errors import ActionFailure
from psa.cli.output import USAGE_ERROR, err, fail
from psa.config import ConfigurationError
from psa.domain.errors import DomainError, ValidationError
from psa.provisioning.starter import UpdateRejected

Command = TypeVar("Command", bound=Callable[..., Any])


@contextmanager
def reported_errors(domain_error_exit: int = USAGE_ERROR) -> Iterator[None]:
    """Report the errors a command expects and exit:

    - DefinitionInvalid (publish): the table of validation issues, exit 1;
    - a DomainError, exit ``domain_error_exit``: ``field: message`` for a ValidationError (the input field it
      refuses), the message alone for the others (it names the record: ``run … not found``);
    - ActionFailure (invoke): ``code: message`` and the details as JSON, exit 1;
    - UpdateRejected (a provisioning update): ``update rejected: reason``, exit 1;
    - ConfigurationError (no database, Temporal or codec key) and a Temporal RPCError: the message, exit 1.
    """
    try:
        yield
    except DefinitionInvalid as exc:
        table = Table("code", "step path", "message", title="definition rejected")
        for issue in exc.report.errors:
            suggestion = f" ({issue.suggestion})" if issue.suggestion else ""
            table.add_row(issue.code, issue.step_path, issue.message + suggestion)
        err.print(table)
        raise typer.Exit(1) from None
    except ValidationError as exc:
        fail(f"{exc.field}: {exc.message}" if exc.field else exc.message, code=domain_error_exit)
    except DomainError as exc:
        fail(exc.message, code=domain_error_exit)
    except ActionFailure as failure:
        info = failure.info
        err.print(f"[bold red]{info.code or info.category}[/]: {info.message}")
        if info.details:
            err.print(json.dumps(info.details, indent=2, default=str))
        raise typer.Exit(1) from None
    except UpdateRejected as exc:
        fail(f"update rejected: {exc.message}")
    except (ConfigurationError, RPCError) as exc:
        fail(str(exc))


class CommandApp(typer.Typer):
    """A Typer app for psa's commands: ``async def`` commands run under ``asyncio.run``, and every command runs
    inside ``reported_errors``."""

    def command(
        self, name: str | None = None, *, domain_error_exit: int = USAGE_ERROR, **options: Any
    ) -> Callable[[Command], Command]:
        """Register a command like ``Typer.command``; a DomainError it raises exits with ``domain_error_exit``."""
        register = super().command(name, **options)

        def decorator(command: Command) -> Command:
            register(_reporting(command, domain_error_exit))
            return command

        return decorator


def _reporting(command: Callable[..., Any], domain_error_exit: int) -> Callable[..., Any]:
    """``command`` (run to completion under ``asyncio.run`` when it is a coroutine function) inside
    ``reported_errors``, with its signature, which Typer reads its options from."""
    is_async = inspect.iscoroutinefunction(command)

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        with reported_errors(domain_error_exit):
            return asyncio.run(command(*args, **kwargs)) if is_async else command(*args, **kwargs)

    return run
