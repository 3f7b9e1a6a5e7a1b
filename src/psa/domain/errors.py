"""Typed domain errors: what domain code and action handlers raise (docs/architecture.md, "Error contract").

Callers branch on the class, never on message prefixes. Each error carries a class-level ``code``, its
``message``, an optional ``field`` (the dotted input path it is about) and optional ``details`` (extra data for
the caller: the id that was not found, the records that block a delete, the permission missing). The
boundaries convert them, each in one place and by ``code``: psa.automation.errors.from_domain (to an action
error; the API answers with the same), psa.provisioning.failures (to a Temporal failure).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError as PydanticValidationError


class DomainError(Exception):
    """Base class. ``field`` names the offending input field when there is one; ``details`` is extra data
    (JSON-ready) that the action error carries as its ``details``."""

    code = "DOMAIN_ERROR"

    def __init__(self, message: str, *, field: str | None = None, details: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.details = dict(details) if details else None

    def field_errors(self) -> list[dict[str, Any]]:
        """``[{path, message}]``, one entry per offending input field (none without a field): the ``fields`` of
        the action error and the ``errors`` of the HTTP problem."""
        return [{"path": self.field, "message": self.message}] if self.field else []

    def to_dict(self) -> dict[str, Any]:
        """``{"code", "message", "field"}`` (and ``details`` when there are any): the shape carried in Temporal
        failure details."""
        shape: dict[str, Any] = {"code": self.code, "message": self.message, "field": self.field}
        if self.details:
            shape["details"] = self.details
        return shape


class ValidationError(DomainError):
    """Input is malformed (blank, too long, wrong syntax, unknown value) or breaks a business rule about
    the records it names (a contact of another client, a quote in the wrong status)."""

    code = "VALIDATION_ERROR"


class ConflictError(DomainError):
    """The write conflicts with the current state of another record (a name or email already taken,
    a record owned by someone else)."""

    code = "CONFLICT"


class DuplicateError(ConflictError):
    """The record would duplicate an existing one (e.g. an internal user email used in any tenant)."""

    code = "DUPLICATE"


class EmailExistsError(DuplicateError):
    """A contact email (primary or additional) is already used in the tenant (reference: ContactModel
    ``EMAIL_EXISTS``; actions and the API answer CONFLICT, as every duplicate). The message starts with the field
    (``email: A contact with email ... already exists in the tenant``); the field entry carries the message
    without it."""

    code = "EMAIL_EXISTS"

    def field_errors(self) -> list[dict[str, Any]]:
        prefix = f"{self.field}:"
        if self.field and self.message.startswith(prefix):
            return [{"path": self.field, "message": self.message.split(": ", 1)[-1]}]
        return super().field_errors()


class NotFoundError(DomainError):
    """A referenced record does not exist in the tenant."""

    code = "NOT_FOUND"


class PermissionDenied(DomainError):
    """The actor lacks a permission: "Permission denied: resource:action" with ``details {resource, action}``
    (reference hasPermission)."""

    code = "PERMISSION_DENIED"

    def __init__(self, resource: str, action: str) -> None:
        super().__init__(f"Permission denied: {resource}:{action}", details={"resource": resource, "action": action})
        self.resource, self.action = resource, action


class InternalError(DomainError):
    """The stored data breaks an invariant the code relies on (a seeded system row is missing, the actor of a
    run is no longer a user): not the caller's fault, and not fixed by changing the input."""

    code = "INTERNAL_ERROR"


DELETE_ALTERNATIVES = (
    {
        "action": "deactivate",
        "label": "Mark as Inactive",
        "description": "Deactivates the record without deleting its data.",
        "warning": "Inactive records will no longer be selectable in new workflows.",
    },
)
"""What a delete refused for its dependencies offers instead (reference: clients.delete / contacts.delete)."""


@dataclasses.dataclass(frozen=True)
class Dependency:
    """``count`` records of ``type`` that keep an entity from being deleted; ``label`` is the type's singular
    or plural label as the count needs it; ``view_url`` where to see them, when there is such a page."""

    type: str
    count: int
    label: str
    view_url: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """``{type, count, label, viewUrl?}``."""
        shape: dict[str, Any] = {"type": self.type, "count": self.count, "label": self.label}
        if self.view_url is not None:
            shape["viewUrl"] = self.view_url
        return shape


class DependencyConflict(ConflictError):
    """A delete refused because other records depend on the entity: "This {entity} has associated records
    that must be removed or reassigned first: 2 tickets, 1 interaction" with ``details {dependencies:
    [{type, count, label, viewUrl?}], alternatives}`` (reference: the clients.delete / contacts.delete
    dependency validation)."""

    def __init__(self, entity: str, dependencies: Sequence[Dependency]) -> None:
        listed = ", ".join(f"{d.count} {d.label}" for d in dependencies)
        super().__init__(
            f"This {entity} has associated records that must be removed or reassigned first: {listed}",
            details={"dependencies": [d.to_dict() for d in dependencies], "alternatives": list(DELETE_ALTERNATIVES)},
        )
        self.entity, self.dependencies = entity, tuple(dependencies)

    @classmethod
    def of_counts(
        cls,
        entity: str,
        counts: Mapping[str, int],
        labels: Mapping[str, tuple[str, str]],
        view_urls: Mapping[str, str] | None = None,
    ) -> DependencyConflict:
        """From ``counts`` (type -> count > 0, in the order to list them), ``labels`` (type -> (singular,
        plural)) and the optional ``view_urls`` (type -> URL)."""
        return cls(
            entity,
            [
                Dependency(kind, n, labels[kind][0 if n == 1 else 1], (view_urls or {}).get(kind))
                for kind, n in counts.items()
            ],
        )


def validation_error_from_pydantic(exc: PydanticValidationError, *, prefix: str = "") -> ValidationError:
    """The first error of a pydantic ``ValidationError`` as our ValidationError, with the field as a dotted
    path (``phone_numbers.0.extension``) and pydantic's message, e.g. ``full_name: String should have at
    most 255 characters``. ``prefix`` is prepended to the path (``changes.``)."""
    first = exc.errors(include_url=False)[0]
    field = prefix + ".".join(str(part) for part in first["loc"]) if first["loc"] else prefix.rstrip(".") or None
    message = first["msg"]
    return ValidationError(f"{field}: {message}" if field else message, field=field)


def violation_error(kind: str, field: str | None, *, constraint: str | None, table: str | None) -> DomainError:
    """The domain error a database constraint violation stands for (psa.db.constraints.Violation: its ``kind``,
    ``field``, ``constraint`` and ``table``), naming the field: a unique violation is ConflictError "<field>: a
    record with this value already exists" (a duplicate is a conflict); a foreign-key violation NotFoundError
    "<field>: the referenced record does not exist"; a NOT NULL or CHECK violation ValidationError; any other
    (exclusion, restrict) ConflictError. ``details`` are ``{constraint, table}``, never the values, which may be
    secrets (a token's hash). Reference: none (its unique violations surfaced as raw database errors)."""
    details = {"constraint": constraint, "table": table}
    prefix = f"{field}: " if field else ""
    if kind == "unique":
        return ConflictError(f"{prefix}a record with this value already exists", field=field, details=details)
    if kind == "foreign_key":
        return NotFoundError(f"{prefix}the referenced record does not exist", field=field, details=details)
    if kind == "not_null":
        return ValidationError(f"{prefix}a value is required", field=field, details=details)
    if kind == "check":
        return ValidationError(f"{prefix}the value is not allowed ({constraint})", field=field, details=details)
    return ConflictError(f"{prefix}the write conflicts with other records", field=field, details=details)
