"""Typed domain errors. Callers branch on the class, never on message prefixes."""

from __future__ import annotations

from pydantic import ValidationError as PydanticValidationError


class DomainError(Exception):
    """Base class. ``field`` names the offending input field when there is one."""

    code = "DOMAIN_ERROR"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def to_dict(self) -> dict[str, str | None]:
        """``{"code", "message", "field"}``: the shape carried in Temporal failure details."""
        return {"code": self.code, "message": self.message, "field": self.field}


class ValidationError(DomainError):
    """Input is malformed (blank, too long, wrong syntax, unknown value)."""

    code = "VALIDATION_ERROR"


class ConflictError(DomainError):
    """The write conflicts with the current state of another record (a name or email already taken,
    a record owned by someone else)."""

    code = "CONFLICT"


class DuplicateError(ConflictError):
    """The record would duplicate an existing one (e.g. an internal user email used in any tenant)."""

    code = "DUPLICATE"


class EmailExistsError(DuplicateError):
    """A contact email (primary or additional) is already used in the tenant
    (reference: ContactModel ``EMAIL_EXISTS``)."""

    code = "EMAIL_EXISTS"


class NotFoundError(DomainError):
    """A referenced record does not exist in the tenant."""

    code = "NOT_FOUND"


def validation_error_from_pydantic(exc: PydanticValidationError, *, prefix: str = "") -> ValidationError:
    """The first error of a pydantic ``ValidationError`` as our ValidationError, with the field as a dotted
    path (``phone_numbers.0.extension``) and pydantic's message, e.g. ``full_name: String should have at
    most 255 characters``. ``prefix`` is prepended to the path (``changes.``)."""
    first = exc.errors(include_url=False)[0]
    field = prefix + ".".join(str(part) for part in first["loc"]) if first["loc"] else prefix.rstrip(".") or None
    message = first["msg"]
    return ValidationError(f"{field}: {message}" if field else message, field=field)
