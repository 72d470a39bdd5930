import asyncio
import logging

import pytest
from sqlalchemy.engine import URL
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from db.engine import create_engine, create_session_factory
from db.models import SyncRun, User
from db.types import SyncRunStatus
from scripts.auth0_emulator.server import EmulatorServer
from services.sync.jobs import JOBS_BY_NAME, select_jobs
from services.sync.runs import JobContext, job_lock, lock_key, run_job
from tests.factories import auth0_user, make_gateway
from tests.services.sync.conftest import sync_settings
from tests.services.sync.helpers import sync


async def test_a_failing_job_is_recorded_not_raised(
    sync_ctx: JobContext,
    session: AsyncSession,
    tenant_server: EmulatorServer,
    caplog: pytest.LogCaptureFixture,
):
    await sync_ctx.auth0.list_roles()  # a management token is already held
    tenant_server.state.faults.down = True
    with caplog.at_level(logging.INFO, logger="aai.sync"):
        (run,) = await sync(sync_ctx, "sync.roles")
    # The line the deployment's failed-run alarm matches.
    [finished] = [r for r in caplog.records if getattr(r, "event", None) == "job_finished"]
    assert (finished.job, finished.outcome) == ("sync.roles", "failed")  # type: ignore[attr-defined]  # fields the JSON log line adds
    assert run.status is SyncRunStatus.FAILED
    assert "unavailable" in (run.error or "")
    assert run.finished_at is not None
    assert run.counts["auth0_requests"] == sync_ctx.auth0.max_retries + 1
    stored = (await session.exec(select(SyncRun).where(col(SyncRun.id) == run.id))).one()
    assert stored.status is SyncRunStatus.FAILED


async def test_dry_run_reports_and_writes_nothing(
    sync_ctx: JobContext, session: AsyncSession, tenant_server: EmulatorServer
):
    auth0_user(tenant_server.tenant, "dry")
    sync_ctx.dry_run = True
    (run,) = await sync(sync_ctx, "sync.users.full")
    assert run.counts["created"] == 1
    assert run.dry_run is True
    assert (await session.exec(select(User))).all() == []


def test_job_selection():
    assert [j.name for j in select_jobs(immediate=True)] == [
        "sync.roles",
        "sync.users.full",
        "sync.memberships",
        "sync.outbox",
        "email.deliver",
        "otp.cleanup",
        "users.expire_unverified",
        "events.apply",
        "events.cleanup",
    ]
    assert [j.name for j in select_jobs(immediate=True, skip_full_sync=True)] == [
        "sync.roles",
        "sync.outbox",
        "email.deliver",
        "otp.cleanup",
        "events.apply",
        "events.cleanup",
    ]
    assert [j.name for j in select_jobs(email_only=True)] == ["email.deliver", "otp.cleanup"]
    assert "sync.users.incremental" in [j.name for j in select_jobs()]
    with pytest.raises(KeyError, match="unknown job"):
        select_jobs(only="nope")


def test_lock_keys_are_stable_and_distinct():
    names = [job.name for job in select_jobs()]
    assert len({lock_key(name) for name in names}) == len(names)
    assert lock_key("sync.roles") == lock_key("sync.roles")


async def test_lock_is_exclusive_across_connections_and_released(scratch_db: URL):
    first, second = create_engine(scratch_db, process="a"), create_engine(scratch_db, process="b")
    try:
        async with job_lock(first, "sync.roles") as held, job_lock(second, "sync.roles") as also:
            assert (held, also) == (True, False)
        async with job_lock(second, "sync.roles") as after:
            assert after is True
    finally:
        await first.dispose()
        await second.dispose()


async def test_two_schedulers_run_each_job_body_once(
    scratch_db: URL, tenant_server: EmulatorServer
):
    for index in range(30):
        auth0_user(tenant_server.tenant, f"twin{index}", roles=["biocommons/platform/galaxy"])
    tenant_server.state.faults.latency_ms = 20  # long enough for the runs to overlap
    contexts = []
    for process in ("scheduler-a", "scheduler-b"):
        engine = create_engine(scratch_db, process=process)
        contexts.append(
            JobContext(
                sync_settings(scratch_db, tenant_server),
                engine,
                create_session_factory(engine),
                make_gateway(tenant_server, jobs=True),
            )
        )
    try:
        for job in ("sync.roles", "sync.users.full", "sync.memberships"):
            before = sum(
                tenant_server.state.requests.get(k, 0)
                for k in tenant_server.state.requests
                if " /api/v2/" in k
            )
            runs = await asyncio.gather(
                *(run_job(ctx, job, JOBS_BY_NAME[job].body) for ctx in contexts)
            )
            statuses = sorted(run.status.value for run in runs)
            assert statuses == ["skipped", "succeeded"], [(r.status, r.error) for r in runs]
            used = (
                sum(
                    tenant_server.state.requests.get(k, 0)
                    for k in tenant_server.state.requests
                    if " /api/v2/" in k
                )
                - before
            )
            done = next(run for run in runs if run.status is SyncRunStatus.SUCCEEDED)
            assert used == done.counts["auth0_requests"]
    finally:
        for ctx in contexts:
            await ctx.auth0.aclose()
            await ctx.engine.dispose()
