"""The FastAPI application (``psa api``, ``make api``): provisioning, automation, health and metrics, with
OpenAPI at ``/docs`` (Swagger UI) and ``/redoc`` (ReDoc), schema at ``/openapi.json``. The docs pages load their
scripts, stylesheets and icon from the app itself (``/static-offline-docs``, fastapi-offline), never from a CDN,
so they work on a network without internet (docs/operations.md, "HTTP API").

Every database statement runs on the API role (``make_api_engine``: row-level security by
``app.current_tenant``); every error is an RFC 7807 problem (psa.api.problem); request bodies over
``PSA_API_MAX_BODY_BYTES`` are refused with 413 before they are read whole.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from psa.api import automation, health, tenants
from psa.api.problem import install_problem_handlers, problem_response
from psa.api.state import ApiState
from psa.automation.actions import builtin_registry
from psa.automation.registry import ActionRegistry
from psa.config import Settings, get_settings
from psa.db.engine import make_api_engine
from psa.metrics import record_api_request


class BodyLimit:
    """ASGI middleware: 413 ``PAYLOAD_TOO_LARGE`` for a request body over ``max_bytes``. A declared
    Content-Length is checked before anything is read (the server enforces that framing); a body without one
    (chunked) is read up to the limit first, then handed to the app whole, so memory stays bounded. (FastAPI's own
    ``max_body_size`` answers ``text/plain``, replacing whatever the app sent, where we answer problem+json.)"""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None:
            if length.isdigit() and int(length) > self.max_bytes:
                await self._too_large(scope, receive, send)
                return
            await self.app(scope, receive, send)
            return
        body, more = b"", True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_bytes:
                await self._too_large(scope, receive, send)
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        detail = f"request body exceeds the limit of {self.max_bytes} bytes"
        await problem_response(413, "PAYLOAD_TOO_LARGE", detail)(scope, receive, send)


METRIC_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class RequestMetrics:
    """ASGI middleware: counts requests and observes latency until the response starts (psa.metrics), labelled
    with the matched route's template so ids do not explode the label space, and with the method, any method
    outside ``METRIC_METHODS`` as ``OTHER`` (the server accepts any token as a method: each would add series)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()

        async def timed_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                route = getattr(scope.get("route"), "path", "unmatched")
                method = scope["method"] if scope["method"] in METRIC_METHODS else "OTHER"
                record_api_request(method, route, message["status"], time.perf_counter() - began)
            await send(message)

        await self.app(scope, receive, timed_send)


def create_app(settings: Settings, *, registry: ActionRegistry | None = None) -> FastAPI:
    """The API for ``settings``' database and Temporal, with every action of ``registry`` (default: the
    built-in registry). ``app.state.api`` holds the shared ApiState; its engine is disposed on shutdown."""
    api = ApiState(settings=settings, engine=make_api_engine(settings), registry=registry or builtin_registry())

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await api.close()

    app = FastAPIOffline(
        title="psa API",
        version="1",
        description="Tenant provisioning and workflow automation of the psa back end. Authenticate with an API "
        "key (`psa apikeys create --tenant --user`) in the `x-api-key` header. Errors are RFC 7807 "
        "`application/problem+json` documents carrying the action error code.",
        lifespan=lifespan,
        # Swagger UI's default validator badge would send the schema to an outside service.
        swagger_ui_parameters={"validatorUrl": None},
    )
    app.state.api = api
    install_problem_handlers(app)
    app.include_router(tenants.router)
    app.include_router(automation.router)
    app.include_router(health.router)
    app.add_middleware(BodyLimit, max_bytes=settings.api_max_body_bytes)
    app.add_middleware(RequestMetrics)
    return app


def app_from_environment() -> FastAPI:
    """``create_app`` with the settings of the environment: the factory ``psa api`` hands uvicorn, so each of its
    worker processes builds its own app (engine, Temporal client)."""
    return create_app(get_settings())
