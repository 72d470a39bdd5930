"""Polling as the net: a healthy stream stands in for the syncs between net runs; a silent or
lagging one sends them back to polling, and the run says why."""

import dataclasses
from datetime import timedelta

import pytest
import sqlalchemy as sa
from pydantic import SecretStr
from sqlmodel.ext.asyncio.session import AsyncSession

from db.base import utcnow
from db.models import Auth0Event, SyncRun
from db.types import EventSource, EventStatus, SyncRunStatus
from services.sync.jobs import JOBS_BY_NAME
from services.sync.net import net_decision
from services.sync.runs import JobContext

SECRET = "s" * 40


def streaming(ctx: JobContext, **overrides: object) -> JobContext:
    settings = ctx.settings.model_copy(
        update={
            "events_stream_secret": SecretStr(SECRET),
            "log_stream_secret": SecretStr(SECRET),
            **overrides,
        }
    )
    return dataclasses.replace(ctx, settings=settings)


async def delivered(session: AsyncSession, *, ago_s: float, status: EventStatus) -> None:
    await session.execute(
        sa.insert(Auth0Event.__table__).values(
            source=EventSource.EVENT_STREAM,
            event_id=f"evt_{ago_s}_{status.value}",
            type="user.updated",
            body={},
            status=status,
            attempts=0,
            received_at=utcnow() - timedelta(seconds=ago_s),
        )
    )
    await session.commit()


async def succeeded(session: AsyncSession, job: str, *, ago_s: float) -> None:
    session.add(
        SyncRun(
            job=job,
            status=SyncRunStatus.SUCCEEDED,
            started_at=utcnow() - timedelta(seconds=ago_s),
            finished_at=utcnow() - timedelta(seconds=ago_s),
        )
    )
    await session.commit()


async def test_without_a_stream_the_syncs_poll_as_before(sync_ctx: JobContext):
    job = JOBS_BY_NAME["sync.users.incremental"]
    assert job.net is not None
    assert await net_decision(sync_ctx, job.name, job.net) == (None, {})


async def test_a_healthy_stream_stands_in_between_net_runs(
    sync_ctx: JobContext, session: AsyncSession
):
    ctx = streaming(sync_ctx)
    job = JOBS_BY_NAME["sync.users.incremental"]
    assert job.net is not None
    await delivered(session, ago_s=30, status=EventStatus.APPLIED)
    await succeeded(session, "sync.users.full", ago_s=600)
    deferred, preset = await net_decision(ctx, job.name, job.net)
    assert deferred is not None
    assert "healthy" in deferred
    assert preset == {}
    # Once the net interval has passed, the run goes ahead as a net run.
    ctx = streaming(sync_ctx, events_net_incremental_interval_s=300)
    deferred, preset = await net_decision(ctx, job.name, job.net)
    assert deferred is None
    assert preset["mode"] == "net"


async def test_a_silent_or_lagging_stream_sends_the_syncs_back_to_polling(
    sync_ctx: JobContext, session: AsyncSession, caplog: pytest.LogCaptureFixture
):
    job = JOBS_BY_NAME["sync.users.full"]
    assert job.net is not None
    await succeeded(session, "sync.users.full", ago_s=10)
    await delivered(session, ago_s=7200, status=EventStatus.APPLIED)
    deferred, preset = await net_decision(streaming(sync_ctx), job.name, job.net)
    assert deferred is None
    assert preset["mode"] == "polling"
    assert "silent for" in preset["why"]
    assert any(getattr(r, "event", None) == "stream_fallback" for r in caplog.records)
    await delivered(session, ago_s=120, status=EventStatus.PENDING)
    _deferred, preset = await net_decision(streaming(sync_ctx), job.name, job.net)
    assert "inbox lags" in preset["why"]
