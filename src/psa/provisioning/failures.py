"""How activity errors become Temporal failures (shared by every provisioning activity): the provisioning
boundary's one mapping of domain errors (docs/architecture.md, "Error contract")."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError
from temporalio.exceptions import ApplicationError

from psa.domain.errors import DomainError

T = TypeVar("T")


def activity_errors(fn: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
    """Map errors to Temporal failures: a DomainError becomes a non-retryable ApplicationError of the same type
    name (the workflow's NON_RETRYABLE names them) whose details carry ``DomainError.to_dict()`` (``{code,
    message, field}``); a database error becomes a retryable one carrying only the driver's message, so SQL
    parameters (a password hash, say) never reach workflow state or history. Anything else propagates and
    Temporal retries it."""

    @functools.wraps(fn)
    async def wrapper(*args, **kwargs) -> T:
        try:
            return await fn(*args, **kwargs)
        except DomainError as exc:
            raise ApplicationError(exc.message, exc.to_dict(), type=type(exc).__name__, non_retryable=True) from None
        except DBAPIError as exc:
            driver = exc.orig if exc.orig is not None else exc
            raise ApplicationError(f"{type(driver).__name__}: {driver}", type=type(exc).__name__) from None

    return wrapper
