"""RFC 7807 problem details (``application/problem+json``) for every error the API returns.

Body: ``{type, title, status, detail, code, errors?, category?, details?, node_path?}``. ``code`` is the action
error code (``VALIDATION_ERROR``, ``NOT_FOUND``, ``CONFLICT``, ``PERMISSION_DENIED``, ...; psa.automation.errors)
or one of the API's own (``UNAUTHENTICATED``, ``PAYLOAD_TOO_LARGE``, ``TEMPORAL_UNAVAILABLE``, ...). ``errors``
lists ``{path, message}`` per offending field (dotted paths, e.g. ``admin_user.email``; ``in`` says where:
body, query, path or header) and, for a rejected workflow definition, the publish codes with their step paths.

One mapping (docs/architecture.md, "Error contract"): a structured action error passes through unchanged
(category, details, node_path) and only its HTTP status is chosen here, by code (``STATUS_BY_CODE``), never by
message text. A domain error that reaches a route is first converted as the action contract converts it
(``psa.automation.errors.from_domain``), then answered the same way; so is a database constraint violation
(psa.automation.invocation.from_database: a duplicate is 409 naming its field, never a 500).
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from temporalio.client import RPCTimeoutOrCancelledError
from temporalio.service import RPCError

from psa.automation.errors import ActionFailure, from_domain
from psa.automation.invocation import from_database
from psa.domain.errors import DomainError

MEDIA_TYPE = "application/problem+json"
log = logging.getLogger("psa.api")

# HTTP status of each action error code (psa.automation.errors.Code).
STATUS_BY_CODE: dict[str, int] = {
    "VALIDATION_ERROR": 422,
    "INVALID_EXPR": 422,
    "NOT_FOUND": 404,
    "CONFLICT": 409,
    "PERMISSION_DENIED": 403,
    "RATE_LIMITED": 429,
    "TRANSIENT_FAILURE": 503,
    "INTERNAL_ERROR": 500,
}


class FieldError(BaseModel):
    """One offending field: dotted ``path``, where it was (``in``), the message; for definitions, the publish
    ``code`` and ``step_id``."""

    path: str | None = None
    message: str
    code: str | None = None
    step_id: str | None = None

    model_config = {"extra": "allow"}


class Problem(BaseModel):
    """An RFC 7807 problem document (the schema of every error response)."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    code: str
    errors: list[FieldError] | None = None
    category: str | None = None
    details: dict[str, Any] | None = None
    node_path: str | None = None


class ApiProblem(Exception):
    """Raise to answer with a problem: ``status``, ``code``, ``detail`` and optional field ``errors``."""

    def __init__(self, status: int, code: str, detail: str, *, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail, self.errors = status, code, detail, errors


def problem_response(
    status: int, code: str, detail: str | None, *, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    """A ``application/problem+json`` response; ``extra`` adds members (errors, category, details, node_path)."""
    body = Problem(title=HTTPStatus(status).phrase, status=status, detail=detail, code=code, **extra)
    return JSONResponse(body.model_dump(exclude_none=True), status_code=status, media_type=MEDIA_TYPE, headers=headers)


def action_failure_response(failure: ActionFailure) -> JSONResponse:
    """A structured action error as a problem: status by code (by category when it has none), its fields
    (``details.fields``: path, message and any more keys, such as a publish issue's ``code``) as ``errors``, and
    category, details and node_path unchanged."""
    info = failure.info
    code = info.code or ("VALIDATION_ERROR" if info.category == "ValidationError" else "INTERNAL_ERROR")
    fields = (info.details or {}).get("fields")
    errors = [{**f, "message": f.get("message", ""), "in": "body"} for f in fields or ()] or None
    return problem_response(
        STATUS_BY_CODE.get(code, 500),
        code,
        info.message,
        errors=errors,
        category=info.category,
        details=info.details,
        node_path=info.node_path,
    )


def domain_error_response(exc: DomainError) -> JSONResponse:
    """A domain error as a problem: converted by ``from_domain``, then answered as that action error (so a
    DuplicateError is CONFLICT 409, a rejected definition VALIDATION_ERROR 422 listing its publish issues)."""
    return action_failure_response(from_domain(exc))


def _location(loc: tuple[Any, ...]) -> tuple[str | None, str | None]:
    """FastAPI's error location ``("body", "admin_user", "email")`` as (``in``, dotted path)."""
    where = str(loc[0]) if loc else None
    path = ".".join(str(part) for part in loc[1:]) or None
    return where, path


def install_problem_handlers(app: FastAPI) -> None:
    """Answer every error with a problem document: request validation (422 with every field path), API
    problems, action failures, domain errors, HTTP errors (404 unknown route, 405, ...), database outages (503),
    constraint violations (as ``from_database`` converts them),
    Temporal refusing or timing out a call (503 ``TEMPORAL_UNAVAILABLE``) and anything unexpected (500, logged
    with its traceback, no detail leaked)."""

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = []
        for err in exc.errors():
            where, path = _location(tuple(err.get("loc", ())))
            errors.append({"path": path, "message": err.get("msg", "invalid"), "in": where})
        summary = "; ".join(f"{e['path'] or e['in']}: {e['message']}" for e in errors)
        return problem_response(422, "VALIDATION_ERROR", summary, errors=errors)

    @app.exception_handler(ApiProblem)
    async def _api_problem(_: Request, exc: ApiProblem) -> JSONResponse:
        headers = {"WWW-Authenticate": "ApiKey"} if exc.status == 401 else None
        return problem_response(exc.status, exc.code, exc.detail, errors=exc.errors, headers=headers)

    @app.exception_handler(ActionFailure)
    async def _action_failure(_: Request, exc: ActionFailure) -> JSONResponse:
        return action_failure_response(exc)

    @app.exception_handler(DomainError)
    async def _domain_error(_: Request, exc: DomainError) -> JSONResponse:
        return domain_error_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(exc.status_code, "HTTP_ERROR")
        return problem_response(exc.status_code, code, str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(DBAPIError)
    async def _database_error(request: Request, exc: DBAPIError) -> JSONResponse:
        # A dropped connection, or none could be opened (OperationalError: connection failures, shutdowns,
        # resource exhaustion; not a disconnect SQLAlchemy would flag as invalidating one).
        if exc.connection_invalidated or isinstance(exc, OperationalError):
            log.warning("database unavailable on %s %s: %s", request.method, request.url.path, exc.orig)
            return problem_response(503, "TRANSIENT_FAILURE", "the database is unavailable; retry later")
        converted = from_database(exc)  # a constraint violation or an unstorable value: the caller's error
        if converted.info.code != "INTERNAL_ERROR":
            return action_failure_response(converted)
        log.exception("database error on %s %s", request.method, request.url.path, exc_info=exc)
        return problem_response(500, "INTERNAL_ERROR", "internal error")

    @app.exception_handler(RPCError)
    @app.exception_handler(RPCTimeoutOrCancelledError)
    async def _temporal_error(request: Request, exc: RPCError | RPCTimeoutOrCancelledError) -> JSONResponse:
        log.warning("Temporal refused %s %s: %s", request.method, request.url.path, exc)
        return problem_response(503, "TEMPORAL_UNAVAILABLE", f"Temporal could not answer: {exc}")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return problem_response(500, "INTERNAL_ERROR", "internal error")


PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": Problem, "content": {MEDIA_TYPE: {}}, "description": HTTPStatus(status).phrase}
    for status in (401, 403, 404, 409, 413, 422, 503)
}
"""OpenAPI documentation of the problem responses every authenticated route may give."""
