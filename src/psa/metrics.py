"""Prometheus metrics (prometheus-client): the worker's, served by ``psa worker --metrics-port``, and the HTTP
API's, served by ``psa api`` at ``/metrics``.

Provisioning metrics are recorded by the ``record_provisioning_metrics`` local activity at the end of every
provisioning, so a replayed workflow never counts twice (a local activity's result is kept in history). Email
metrics are recorded by the email outbox's sender, once per delivery attempt.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram, start_http_server

TRACKING_STATUSES = ("ok", "failed", "skipped")
OUTCOMES = ("completed", "failed", "cancelled")

CUSTOMER_TRACKING = Counter(
    "psa_customer_tracking",
    "Customer-tracking outcomes of tenant provisionings, by status (ok, failed, skipped).",
    ["status"],
)
PROVISIONING_DURATION = Histogram(
    "psa_provisioning_duration_seconds",
    "Wall-clock duration of tenant provisionings in seconds, from workflow start, by outcome.",
    ["outcome"],
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800),
)
for _status in TRACKING_STATUSES:
    CUSTOMER_TRACKING.labels(status=_status)
for _outcome in OUTCOMES:
    PROVISIONING_DURATION.labels(outcome=_outcome)


def record_provisioning(outcome: str, duration_seconds: float, tracking_status: str) -> None:
    """Count one provisioning: its duration under ``outcome`` and, when tracking finished (ok, failed or
    skipped), its tracking status. A tracking still pending (the run stopped earlier) is not counted."""
    PROVISIONING_DURATION.labels(outcome=outcome).observe(duration_seconds)
    if tracking_status in TRACKING_STATUSES:
        CUSTOMER_TRACKING.labels(status=tracking_status).inc()


EMAIL_OUTCOMES = ("sent", "failed")
EMAILS = Counter(
    "psa_emails",
    "Email delivery attempts of the email outbox, by kind (tenant_welcome, quote, ...) and outcome (sent, failed).",
    ["kind", "outcome"],
)


def record_email(kind: str, outcome: str) -> None:
    """Count one delivery attempt of an email of ``kind`` whose ``outcome`` is ``sent`` or ``failed``."""
    EMAILS.labels(kind=kind, outcome=outcome).inc()


def serve_metrics(port: int, address: str = "0.0.0.0") -> None:
    """Serve ``/metrics`` on ``address:port`` from a daemon thread (prometheus-client's HTTP server)."""
    start_http_server(port, addr=address)


API_REQUESTS = Counter(
    "psa_api_requests",
    "HTTP API requests, by method, route template and status code.",
    ["method", "route", "status"],
)
API_LATENCY = Histogram(
    "psa_api_request_duration_seconds",
    "HTTP API request latency in seconds (until the response starts), by method and route template.",
    ["method", "route"],
    buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
)


def record_api_request(method: str, route: str, status: int, duration_seconds: float) -> None:
    """Count one API request and observe its latency (``route`` is the template, e.g. /api/v1/tenants/{id})."""
    API_REQUESTS.labels(method=method, route=route, status=str(status)).inc()
    API_LATENCY.labels(method=method, route=route).observe(duration_seconds)
