"""The scheduler's recorded runs, as admins read them (the scheduler writes them)."""

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from db.models import (
    SyncRun,
)
from schemas.sync import SyncRunPublic


async def sync_runs(session: AsyncSession, *, job: str | None, limit: int) -> list[SyncRunPublic]:
    statement = (
        select(SyncRun)
        .order_by(col(SyncRun.started_at).desc(), col(SyncRun.id).desc())
        .limit(limit)
    )
    if job:
        statement = statement.where(col(SyncRun.job) == job)
    return [
        SyncRunPublic(
            id=run.id or 0,
            job=run.job,
            status=run.status,
            dry_run=run.dry_run,
            started_at=run.started_at,
            finished_at=run.finished_at,
            duration_s=(run.finished_at - run.started_at).total_seconds()
            if run.finished_at
            else None,
            counts=run.counts,
            error=run.error,
            host=run.host,
        )
        for run in (await session.exec(statement)).all()
    ]
