from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from db.models import GroupMembership, PlatformMembership, SyncRun, User
from db.types import ApprovalStatus
from services.sync.jobs import JOBS_BY_NAME
from services.sync.runs import JobContext, run_job


async def sync(ctx: JobContext, *jobs: str) -> list[SyncRun]:
    return [await run_job(ctx, job, JOBS_BY_NAME[job].body) for job in jobs]


async def full_sync(ctx: JobContext) -> list[SyncRun]:
    return await sync(ctx, "sync.roles", "sync.users.full", "sync.memberships")


async def live_users(session: AsyncSession) -> dict[str, dict[str, Any]]:
    session.expire_all()
    users = (await session.exec(select(User).where(sa.not_(col(User.is_deleted))))).all()
    return {u.id: {"email": u.email, "username": u.username, "blocked": u.blocked} for u in users}


async def memberships_in(session: AsyncSession, status: ApprovalStatus) -> set[tuple[str, str]]:
    """(role name, user id) for every membership in `status`."""
    session.expire_all()
    platforms = (
        await session.exec(
            select(col(PlatformMembership.platform_id), col(PlatformMembership.user_id)).where(
                col(PlatformMembership.approval_status) == status
            )
        )
    ).all()
    groups = (
        await session.exec(
            select(col(GroupMembership.group_id), col(GroupMembership.user_id)).where(
                col(GroupMembership.approval_status) == status
            )
        )
    ).all()
    return {(f"biocommons/platform/{p}", u) for p, u in platforms} | {(g, u) for g, u in groups}


async def approved(session: AsyncSession) -> set[tuple[str, str]]:
    return await memberships_in(session, ApprovalStatus.APPROVED)


async def revoked(session: AsyncSession) -> set[tuple[str, str]]:
    return await memberships_in(session, ApprovalStatus.REVOKED)
