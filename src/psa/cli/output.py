"""Where commands write: results to ``console`` (stdout), warnings and errors to ``err`` (stderr), and
``fail`` for a red error message followed by the exit code."""

from __future__ import annotations

from typing import NoReturn

import typer
from rich.console import Console

console = Console()
err = Console(stderr=True)

USAGE_ERROR = 2
"""Exit code when the input given is refused: invalid JSON, an unknown tenant or user, a DomainError. Any other
failure exits with 1."""


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``error: message`` in red on stderr and exit with ``code``."""
    err.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)
