"""Structured action and runtime errors, and the one conversion from domain errors to them
(docs/architecture.md, "Error contract"; docs/automation.md, "Errors").

Every failure in the automation runtime is an ``ActionFailure`` carrying an ``ActionErrorInfo``. Handlers and
domain code raise domain errors (psa.domain.errors); the action contract (psa.automation.invocation) converts
them here, once, with ``from_domain`` (a database constraint violation too, as the domain error it stands for:
psa.automation.invocation.from_database); the API answers a domain error the same way (psa.api.problem). From
then on a structured error passes through unchanged (ledger, Temporal activity boundary, ``captureErrorAs``)
and is never re-mapped from its message text. The interpreter imports this module, so it imports no database
module (the workflow sandbox; docs/architecture.md, "Layers").
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field
from pydantic import ValidationError as PydanticValidationError

from psa.domain.errors import DomainError
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

ACTION_CODE_BY_DOMAIN_CODE: dict[str, Code] = {
    "VALIDATION_ERROR": "VALIDATION_ERROR",
    "NOT_FOUND": "NOT_FOUND",
    "CONFLICT": "CONFLICT",
    "DUPLICATE": "CONFLICT",
    "EMAIL_EXISTS": "CONFLICT",
    "PERMISSION_DENIED": "PERMISSION_DENIED",
    "INTERNAL_ERROR": "INTERNAL_ERROR",
}
"""The action error code of each domain error code; any other code is VALIDATION_ERROR."""


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
    """Raised by the runtime; carries an ActionErrorInfo unchanged."""

    def __init__(self, info: ActionErrorInfo) -> None:
        super().__init__(f"{info.code or info.category}: {info.message}")
        self.info = info

    @classmethod
    def of(
        cls, category: Category, code: Code | None, message: str, details: dict[str, Any] | None = None
    ) -> ActionFailure:
        """A failure of ``category`` and ``code``."""
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
    """A domain error as a structured action error, by its ``code`` (``ACTION_CODE_BY_DOMAIN_CODE``; category
    ``ValidationError`` for VALIDATION_ERROR, else ``ActionError``) and its own data, never by message text.

    ``details`` are the error's ``details``, plus, when it names fields, ``field`` (when it has one) and
    ``fields``: ``[{path, message, ...}]``, the list an input validation error has."""
    code = ACTION_CODE_BY_DOMAIN_CODE.get(exc.code, "VALIDATION_ERROR")
    category: Category = "ValidationError" if code == "VALIDATION_ERROR" else "ActionError"
    details = dict(exc.details or {})
    fields = exc.field_errors()
    if exc.field:
        details["field"] = exc.field
    if fields:
        details["fields"] = fields
    return ActionFailure.of(category, code, exc.message, details or None)
