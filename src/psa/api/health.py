"""``/healthz`` (the database and Temporal answer) and ``/metrics`` (Prometheus, psa.metrics)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from sqlalchemy import text
from starlette.responses import Response

from psa.api.problem import ApiProblem
from psa.api.state import ApiState, api_state

router = APIRouter(tags=["health"])
CHECK_TIMEOUT_SECONDS = 5.0


class Health(BaseModel):
    """``ok`` or ``error: ...`` per check, and the overall status (``ok`` or ``unavailable``)."""

    status: str
    database: str
    temporal: str


async def _database(api: ApiState) -> str:
    async with api.engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
    return "ok"


async def _temporal(api: ApiState) -> str:
    client = await api.temporal()
    healthy = await client.service_client.check_health(timeout=timedelta(seconds=CHECK_TIMEOUT_SECONDS))
    return "ok" if healthy else "error: the Temporal frontend reports itself not serving"


async def _check(probe: Any) -> str:
    """``ok``, or ``error: <type>: <message>`` when the probe fails or takes over 5 s."""
    try:
        return await asyncio.wait_for(probe, CHECK_TIMEOUT_SECONDS)
    except ApiProblem as exc:
        return f"error: {exc.detail}"
    except Exception as exc:  # noqa: BLE001 - a health check reports any failure instead of raising
        return f"error: {type(exc).__name__}: {exc}".splitlines()[0][:300]


@router.get("/healthz", response_model=Health, responses={503: {"model": Health}}, summary="Liveness of the stack")
async def healthz(api: Annotated[ApiState, Depends(api_state)]) -> Any:
    """200 ``{"status": "ok", "database": "ok", "temporal": "ok"}`` when PostgreSQL answers a query and the
    Temporal frontend reports healthy (each within 5 s); otherwise 503 with the failing check's error."""
    database, temporal = await asyncio.gather(_check(_database(api)), _check(_temporal(api)))
    ok = database == "ok" and temporal == "ok"
    body = Health(status="ok" if ok else "unavailable", database=database, temporal=temporal)
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)


@router.get("/metrics", response_class=Response, summary="Prometheus metrics")
async def metrics() -> Response:
    """The process's Prometheus metrics in the text exposition format (API requests and latencies, plus
    whatever else this process records)."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
