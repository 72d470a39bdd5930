"""The scheduler's `email.deliver` job: records runs that did work, stays silent when idle."""

from email import message_from_bytes
from email.policy import default as default_policy
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlmodel import col

from db.models import SyncRun
from services.auth0 import Auth0Gateway
from services.email.queue import enqueue
from services.sync.jobs import JOBS_BY_NAME
from services.sync.runs import JobContext, run_job
from tests.conftest import make_settings, savepoint_sessions


def mailbox(directory: Path) -> list[str]:
    return [
        str(message_from_bytes(path.read_bytes(), policy=default_policy)["Subject"])
        for path in sorted(directory.glob("*.eml"))
    ]


async def test_the_job_sends_with_the_configured_backend_and_records_only_real_work(
    session: AsyncSession, pg_engine: AsyncEngine, tmp_path: Path
):
    settings = make_settings(pg_engine.url, email_backend="file", email_file_dir=str(tmp_path))
    sessions = savepoint_sessions(await session.connection())
    ctx = JobContext(settings, pg_engine, sessions, Auth0Gateway.from_settings(settings))
    job = JOBS_BY_NAME["email.deliver"]
    async with sessions() as s:
        for to in ("a@example.org", "b@example.org"):
            await enqueue(s, settings, "welcome", to=to, context={"name": "A"})
        await s.commit()

    busy = await run_job(ctx, job.name, job.body, quiet=job.quiet)
    idle = await run_job(ctx, job.name, job.body, quiet=job.quiet)

    assert busy.counts["sent"] == 2
    subjects = mailbox(tmp_path)
    assert subjects == ["Welcome to BioCommons Access"] * 2
    assert idle.counts == {"auth0_requests": 0}
    async with sessions() as s:
        recorded = (
            await s.execute(sa.select(col(SyncRun.id)).where(col(SyncRun.job) == "email.deliver"))
        ).all()
    assert [r.id for r in recorded] == [busy.id]  # the idle run left no row
    await ctx.auth0.aclose()
