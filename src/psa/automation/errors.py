"""Structured action and runtime errors (reference: spec §2.3, with DESIGN.md's fix: structured errors pass
through unchanged and are never re-mapped from message text)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field
from pydantic import ValidationError as PydanticValidationError

from psa.domain.errors import ConflictError, DomainError, NotFoundError
from psa.timeutil import utc_now_iso

Category = Literal[
    "ValidationError", "ActionError", "TransientError", "ExpressionError", "TimeoutError", "Cancellation"
]
Code = Literal[
    "VALIDATION_ERROR",
    "NOT_FOUND",
    "CONFLICT",
    "PERMISSION_DENIED",
    "RATE_LIMITED",
    "TRANSIENT_FAILURE",
    "INTERNAL_ERROR",
    "INVALID_EXPR",
]


class ActionErrorInfo(BaseModel):
    """``{category, code, message, details, node_path, at}``: the shape every failure carries, through the
    ledger, the Temporal activity boundary and into ``captureErrorAs``."""

    category: Category
    code: Code | None = None
    message: str
    details: dict[str, Any] | None = None
    node_path: str | None = None
    at: str = Field(default_factory=utc_now_iso)


class ActionFailure(Exception):
    """Raised by actions and the runtime; carries an ActionErrorInfo unchanged."""

    def __init__(self, info: ActionErrorInfo) -> None:
        super().__init__(f"{info.code or info.category}: {info.message}")
        self.info = info

    @classmethod
    def of(
        cls, category: Category, code: Code | None, message: str, details: dict[str, Any] | None = None
    ) -> ActionFailure:
        return cls(ActionErrorInfo(category=category, code=code, message=message, details=details))


def validation_failure(exc: PydanticValidationError, *, prefix: str = "") -> ActionFailure:
    """VALIDATION_ERROR naming every invalid field path (``details.fields``: ``[{path, message}]``)."""
    fields = [
        {"path": (prefix + ".".join(str(p) for p in err["loc"])).rstrip(".") or "input", "message": err["msg"]}
        for err in exc.errors(include_url=False)
    ]
    summary = "; ".join(f"{f['path']}: {f['message']}" for f in fields)
    return ActionFailure.of("ValidationError", "VALIDATION_ERROR", summary, {"fields": fields})


def from_domain(exc: DomainError) -> ActionFailure:
    """A typed domain error as a structured action error (by class, never by message text). ``details`` has the
    same ``fields`` list as an input validation error, plus ``field``."""
    details = {"field": exc.field, "fields": [{"path": exc.field, "message": exc.message}]} if exc.field else None
    if isinstance(exc, NotFoundError):
        return ActionFailure.of("ActionError", "NOT_FOUND", exc.message, details)
    if isinstance(exc, ConflictError):
        return ActionFailure.of("ActionError", "CONFLICT", exc.message, details)
    return ActionFailure.of("ValidationError", "VALIDATION_ERROR", exc.message, details)
