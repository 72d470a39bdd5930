"""/metrics and the request id: what Prometheus and the logs get from a running API."""

import json
import logging
import re
import sys
from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlmodel.ext.asyncio.session import AsyncSession

from db.base import utcnow
from db.models import EmailNotification, SyncRun
from db.types import EmailStatus, SyncRunStatus
from services.kit.observability import JsonFormatter, request_id
from services.settings import Settings
from tests.conftest import emulator_settings, make_settings


@pytest.fixture
async def metrics_client(
    app_factory: Callable[[Settings], FastAPI], pg_url, emulator
) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(pg_url, **emulator_settings(emulator), enable_prometheus_metrics=True)
    async with LifespanManager(app_factory(settings)) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            yield client


def sample(text: str, name: str, **labels: str) -> float | None:
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split(" ")[0]))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


async def test_request_latency_by_route_template_not_by_url(metrics_client: httpx.AsyncClient):
    before = (
        sample(
            (await metrics_client.get("/metrics")).text,
            "aai_http_request_duration_seconds_count",
            route="/admin/users/{user_id}",
            status="401",
        )
        or 0
    )
    for user in ("a", "b", "c"):
        assert (await metrics_client.get(f"/admin/users/{user}")).status_code == 401
    text = (await metrics_client.get("/metrics")).text
    after = sample(
        text,
        "aai_http_request_duration_seconds_count",
        route="/admin/users/{user_id}",
        status="401",
    )
    assert after == before + 3
    assert "/admin/users/a" not in text
    assert sample(text, "aai_db_pool_connections_open") is not None


async def test_scheduler_jobs_and_queues_come_from_the_database(
    metrics_client: httpx.AsyncClient, session: AsyncSession
):
    now = utcnow()
    session.add(
        SyncRun(
            job="sync.users.full",
            status=SyncRunStatus.SUCCEEDED,
            started_at=now - timedelta(seconds=90),
            finished_at=now - timedelta(seconds=30),
            counts={"auth0_requests": 12},
        )
    )
    session.add(
        SyncRun(
            job="sync.memberships",
            status=SyncRunStatus.FAILED,
            started_at=now - timedelta(seconds=20),
            finished_at=now - timedelta(seconds=10),
            error="boom",
            counts={"auth0_requests": 3},
        )
    )
    for status in (EmailStatus.PENDING, EmailStatus.PENDING, EmailStatus.FAILED):
        session.add(
            EmailNotification(
                to_address="x@example.org",
                subject="s",
                body_html="h",
                template="welcome",
                status=status,
            )
        )
    await session.flush()

    text = (await metrics_client.get("/metrics")).text

    assert sample(text, "aai_job_last_run_succeeded", job="sync.users.full") == 1
    assert sample(text, "aai_job_last_run_succeeded", job="sync.memberships") == 0
    assert sample(
        text, "aai_job_last_run_duration_seconds", job="sync.users.full"
    ) == pytest.approx(60, abs=1)
    assert sample(
        text, "aai_job_last_success_timestamp_seconds", job="sync.users.full"
    ) == pytest.approx((now - timedelta(seconds=30)).timestamp(), abs=1)
    assert sample(text, "aai_job_last_success_timestamp_seconds", job="sync.memberships") is None
    assert sample(text, "aai_job_runs_last_day", job="sync.memberships", status="failed") == 1
    assert sample(text, "aai_job_auth0_requests_last_hour", job="sync.users.full") == 12
    assert sample(text, "aai_email_queue_messages", status="pending") == 2
    assert sample(text, "aai_email_queue_messages", status="failed") == 1


async def test_auth0_responses_are_counted_by_status(
    metrics_client: httpx.AsyncClient, emulator, app_factory, pg_url
):
    from services.auth0 import Auth0Gateway

    settings = make_settings(pg_url, **emulator_settings(emulator))
    before = (
        sample(
            (await metrics_client.get("/metrics")).text, "aai_auth0_responses_total", status="200"
        )
        or 0
    )
    gateway = Auth0Gateway.from_settings(settings)
    try:
        await gateway.list_roles()
    finally:
        await gateway.aclose()
    after = sample(
        (await metrics_client.get("/metrics")).text, "aai_auth0_responses_total", status="200"
    )
    assert after is not None
    assert after >= before + 1


async def test_not_served_unless_enabled(client: httpx.AsyncClient):
    assert (await client.get("/metrics")).status_code == 404


class TestRequestId:
    async def test_made_up_returned_and_on_the_access_line(
        self, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
    ):
        with caplog.at_level(logging.INFO, logger="aai.access"):
            response = await client.get("/me/profile")
        rid = response.headers["x-request-id"]
        assert re.fullmatch(r"[0-9a-f]{32}", rid)
        [line] = [r for r in caplog.records if r.name == "aai.access"]
        assert line.request_id == rid  # type: ignore[attr-defined]  # fields the access log adds
        assert (line.method, line.path, line.status) == ("GET", "/me/profile", 401)  # type: ignore[attr-defined]  # as above

    async def test_a_sane_incoming_id_is_kept_and_a_hostile_one_replaced(
        self, client: httpx.AsyncClient
    ):
        kept = await client.get("/health/live", headers={"X-Request-ID": "lb-1234.abc"})
        assert kept.headers["x-request-id"] == "lb-1234.abc"
        replaced = await client.get(
            "/health/live", headers={"X-Request-ID": 'x" injected=1' + "a" * 200}
        )
        assert re.fullmatch(r"[0-9a-f]{32}", replaced.headers["x-request-id"])


def test_json_log_lines_carry_the_request_id_and_the_error():
    token = request_id.set("req-42")
    try:
        try:
            raise ValueError("bad thing")
        except ValueError:
            record = logging.getLogger("aai.test").makeRecord(
                "aai.test",
                logging.ERROR,
                __file__,
                1,
                "failed for %s",
                ("x",),
                exc_info=sys.exc_info(),
            )

            record.exc_info = sys.exc_info()
        record.request_id = request_id.get()
        line = json.loads(JsonFormatter("api").format(record))
    finally:
        request_id.reset(token)
    assert line["request_id"] == "req-42"
    assert line["message"] == "failed for x"
    assert line["level"] == "error"
    assert line["process"] == "api"
    assert "ValueError: bad thing" in line["exception"]
    assert line["time"].endswith("Z")


async def test_the_event_inbox_shows_its_depth_lag_and_parked_events(
    metrics_client: httpx.AsyncClient, session: AsyncSession
):
    from datetime import timedelta

    import sqlalchemy as sa

    from db.base import utcnow
    from db.models import Auth0Event
    from db.types import EventSource, EventStatus

    for index, (status, ago) in enumerate(
        [(EventStatus.PENDING, 90), (EventStatus.PENDING, 5), (EventStatus.PARKED, 300)]
    ):
        await session.execute(
            sa.insert(Auth0Event.__table__).values(
                source=EventSource.LOG_STREAM,
                event_id=f"metrics{index}",
                type="sapi",
                body={},
                status=status,
                attempts=0,
                received_at=utcnow() - timedelta(seconds=ago),
            )
        )
    await session.commit()
    text = (await metrics_client.get("/metrics")).text
    assert sample(text, "aai_events_inbox_pending", source="log_stream") == 2
    lag = sample(text, "aai_events_inbox_lag_seconds", source="log_stream")
    assert lag is not None
    assert lag >= 90
    assert sample(text, "aai_events_parked", source="log_stream") == 1
    assert sample(text, "aai_events_inbox_pending", source="event_stream") == 0
    assert sample(text, "aai_events_last_delivery_timestamp_seconds", source="log_stream")
