"""Logs and metrics for both processes.

Logs: JSON lines in production (LOG_FORMAT=json, the production default), readable text
elsewhere; each line of a request carries its request id (taken from a sane incoming
X-Request-ID, else made up, and returned in the response).

Metrics (ENABLE_PROMETHEUS_METRICS): `/metrics` in Prometheus text format.
- Per API process, summed over uvicorn workers (prometheus_client's multiprocess mode
  when PROMETHEUS_MULTIPROC_DIR is set, as the entrypoint does): request latency by route
  and status, database pool connections in use, Auth0 Management API responses by status
  (429s included).
- Read from the database at scrape time, so they are the same whichever worker answers
  and cover the scheduler process too: per job the last run's outcome and duration, the
  last success time and recent Auth0 requests; email queue and Auth0 outbox rows by status.
"""

import contextvars
import json
import logging
import os
import re
import sys
import time
import uuid
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as prometheus_multiprocess
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from db.base import utcnow
from db.models import Auth0Event, Auth0OutboxEntry, EmailNotification, SyncRun
from db.types import EventSource, EventStatus, SyncRunStatus

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
access_logger = logging.getLogger("aai.access")

# ---------------------------------------------------------------------------- logs


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        return True


class JsonFormatter(logging.Formatter):
    def __init__(self, process: str) -> None:
        super().__init__()
        self.process = process

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "process": self.process,
            "message": record.getMessage(),
        }
        if getattr(record, "request_id", None):
            line["request_id"] = record.request_id  # type: ignore[attr-defined]  # set by the request-id filter
        for key in ("event", "method", "path", "status", "duration_ms", "job", "outcome"):
            if hasattr(record, key):
                line[key] = getattr(record, key)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s [%(name)s]%(rid)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        rid = getattr(record, "request_id", None)
        record.rid = f" [{rid}]" if rid else ""
        return super().format(record)


def configure_logging(log_format: str, level: str, *, process: str) -> None:
    """One handler on the root logger (stderr); uvicorn's own loggers go through it too."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_RequestIdFilter())
    handler.setFormatter(JsonFormatter(process) if log_format == "json" else TextFormatter())
    formatter = handler.formatter
    if isinstance(formatter, logging.Formatter):
        formatter.converter = time.gmtime
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # Chatty at INFO, or said better by our own lines: uvicorn's access log (aai.access
    # has the request id and route), httpx's per-request lines (URLs can carry email
    # addresses), the scheduler's every-5-seconds executions, per-check Alembic context
    # lines and the dashboard's start-up inventory.
    for name in (
        "uvicorn.access",
        "httpx",
        "apscheduler.executors.default",
        "apscheduler.scheduler",
        "alembic.runtime.migration",
        "starlette_admin",
    ):
        logging.getLogger(name).setLevel(logging.WARNING)


# ---------------------------------------------------------------------------- metrics

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
REQUESTS = Histogram(
    "aai_http_request_duration_seconds",
    "API request latency by route template, method and status code",
    ["method", "route", "status"],
    buckets=BUCKETS,
)
DB_POOL_IN_USE = Gauge(
    "aai_db_pool_connections_in_use",
    "Database connections checked out of the API pools",
    multiprocess_mode="livesum",
)
DB_POOL_SIZE = Gauge(
    "aai_db_pool_connections_open",
    "Database connections held open by the API pools",
    multiprocess_mode="livesum",
)
AUTH0_RESPONSES = Counter(
    "aai_auth0_responses_total",
    "Auth0 Management API responses to this service's API process, by status (429 = throttled)",
    ["status"],
)


def record_auth0_response(status: int) -> None:
    AUTH0_RESPONSES.labels(status=str(status)).inc()


class ObservabilityMiddleware:
    """Pure ASGI: request id in, request id out, one access line and one latency sample
    per request (health checks and scrapes are timed but not logged)."""

    def __init__(self, app: ASGIApp, *, metrics: bool) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        rid = incoming if REQUEST_ID.match(incoming) else uuid.uuid4().hex
        token = request_id.set(rid)
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            path = scope.get("path", "")
            route = getattr(scope.get("route"), "path", None) or _unrouted(path)
            if self.metrics:
                REQUESTS.labels(scope["method"], route, str(status)).observe(elapsed)
                engine = scope.get("state", {}).get("engine")
                if engine is not None and hasattr(engine.pool, "checkedout"):
                    DB_POOL_IN_USE.set(engine.pool.checkedout())
                    DB_POOL_SIZE.set(engine.pool.checkedin() + engine.pool.checkedout())
            if not path.startswith(("/health", "/metrics")):
                access_logger.info(
                    "%s %s %s %.1fms",
                    scope["method"],
                    path,
                    status,
                    elapsed * 1000,
                    extra={
                        "event": "request",
                        "request_id": rid,
                        "method": scope["method"],
                        "path": path,
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 1),
                    },
                )
            request_id.reset(token)


def _unrouted(path: str) -> str:
    # Unmatched paths (404s, the mounted dashboard) must not make a label per URL.
    return "/db-admin" if path.startswith("/db-admin") else "(unmatched)"


async def render_metrics(session: AsyncSession) -> bytes:
    """This process's (or, in multiprocess mode, every worker's) metrics, then the
    database-derived ones."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        process_registry = CollectorRegistry()
        prometheus_multiprocess.MultiProcessCollector(process_registry)
        body = generate_latest(process_registry)
    else:
        from prometheus_client import REGISTRY

        body = generate_latest(REGISTRY)
    return body + generate_latest(await _database_registry(session))


async def _database_registry(session: AsyncSession) -> CollectorRegistry:
    registry = CollectorRegistry()
    last_status = Gauge(
        "aai_job_last_run_succeeded",
        "1 if the job's latest finished run succeeded, 0 if it failed",
        ["job"],
        registry=registry,
    )
    last_duration = Gauge(
        "aai_job_last_run_duration_seconds",
        "Duration of the job's latest finished run",
        ["job"],
        registry=registry,
    )
    last_success = Gauge(
        "aai_job_last_success_timestamp_seconds",
        "When the job last finished successfully (Unix time)",
        ["job"],
        registry=registry,
    )
    recent = Gauge(
        "aai_job_runs_last_day",
        "Finished runs in the last 24 hours by outcome",
        ["job", "status"],
        registry=registry,
    )
    auth0 = Gauge(
        "aai_job_auth0_requests_last_hour",
        "Auth0 Management API requests made by the job's runs in the last hour",
        ["job"],
        registry=registry,
    )
    emails = Gauge(
        "aai_email_queue_messages",
        "Email queue rows by status (failed = given up, with the last error kept)",
        ["status"],
        registry=registry,
    )
    outbox = Gauge(
        "aai_auth0_outbox_entries",
        "Auth0 outbox rows by status",
        ["status"],
        registry=registry,
    )
    runs = SyncRun.__table__
    now = utcnow()
    finished = runs.c.status.in_([SyncRunStatus.SUCCEEDED, SyncRunStatus.FAILED])
    latest = (
        sa.select(runs.c.job, sa.func.max(runs.c.id).label("id"))
        .where(finished)
        .group_by(runs.c.job)
        .subquery()
    )
    for row in (
        await session.execute(
            sa.select(runs.c.job, runs.c.status, runs.c.started_at, runs.c.finished_at).join(
                latest, latest.c.id == runs.c.id
            )
        )
    ).all():
        last_status.labels(row.job).set(1 if row.status == SyncRunStatus.SUCCEEDED else 0)
        if row.finished_at and row.started_at:
            last_duration.labels(row.job).set((row.finished_at - row.started_at).total_seconds())
    for job, when in (
        await session.execute(
            sa.select(runs.c.job, sa.func.max(runs.c.finished_at))
            .where(runs.c.status == SyncRunStatus.SUCCEEDED)
            .group_by(runs.c.job)
        )
    ).all():
        if when is not None:
            last_success.labels(job).set(when.timestamp())
    for job, status, count in (
        await session.execute(
            sa.select(runs.c.job, runs.c.status, sa.func.count())
            .where(finished, runs.c.started_at > now - timedelta(days=1))
            .group_by(runs.c.job, runs.c.status)
        )
    ).all():
        recent.labels(job, SyncRunStatus(status).value).set(count)
    hourly: dict[str, int] = {}
    for job, counts in (
        await session.execute(
            sa.select(runs.c.job, runs.c.counts).where(runs.c.started_at > now - timedelta(hours=1))
        )
    ).all():
        if isinstance(counts, dict):
            hourly[job] = hourly.get(job, 0) + int(counts.get("auth0_requests") or 0)
    for job, total in hourly.items():
        auth0.labels(job).set(total)
    for table, gauge in (
        (EmailNotification.__table__, emails),
        (Auth0OutboxEntry.__table__, outbox),
    ):
        for status, count in (
            await session.execute(
                sa.select(table.c.status, sa.func.count()).group_by(table.c.status)
            )
        ).all():
            gauge.labels(getattr(status, "value", status)).set(count)
    await _inbox_metrics(session, registry, now)
    return registry


async def _inbox_metrics(session: AsyncSession, registry: CollectorRegistry, now: datetime) -> None:
    """The inbox of Auth0's pushes (services/events): depth and lag, what became of the last
    hour's events, and when each stream last delivered."""
    depth = Gauge(
        "aai_events_inbox_pending", "Events waiting to be applied", ["source"], registry=registry
    )
    lag = Gauge(
        "aai_events_inbox_lag_seconds",
        "Age of the oldest event waiting to be applied (0 when none waits)",
        ["source"],
        registry=registry,
    )
    outcomes = Gauge(
        "aai_events_last_hour",
        "Events received in the last hour by what became of them",
        ["source", "status"],
        registry=registry,
    )
    parked = Gauge(
        "aai_events_parked", "Parked events (need a look)", ["source"], registry=registry
    )
    last = Gauge(
        "aai_events_last_delivery_timestamp_seconds",
        "When the stream last delivered (Unix time)",
        ["source"],
        registry=registry,
    )
    table = Auth0Event.__table__
    for source in EventSource:
        depth.labels(source.value).set(0)
        lag.labels(source.value).set(0)
        parked.labels(source.value).set(0)
    pending = table.c.status == EventStatus.PENDING
    for source, count, oldest in (
        await session.execute(
            sa.select(table.c.source, sa.func.count(), sa.func.min(table.c.received_at))
            .where(pending)
            .group_by(table.c.source)
        )
    ).all():
        depth.labels(EventSource(source).value).set(count)
        if oldest is not None:
            lag.labels(EventSource(source).value).set((now - oldest).total_seconds())
    for source, status, count in (
        await session.execute(
            sa.select(table.c.source, table.c.status, sa.func.count())
            .where(table.c.received_at > now - timedelta(hours=1))
            .group_by(table.c.source, table.c.status)
        )
    ).all():
        outcomes.labels(EventSource(source).value, EventStatus(status).value).set(count)
    for source, count in (
        await session.execute(
            sa.select(table.c.source, sa.func.count())
            .where(table.c.status == EventStatus.PARKED)
            .group_by(table.c.source)
        )
    ).all():
        parked.labels(EventSource(source).value).set(count)
    for source, when in (
        await session.execute(
            sa.select(table.c.source, sa.func.max(table.c.received_at)).group_by(table.c.source)
        )
    ).all():
        if when is not None:
            last.labels(EventSource(source).value).set(when.timestamp())
