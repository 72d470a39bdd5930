"""Job `sync.memberships`: Auth0 role members → approved platform and group memberships.

Auth0 is the truth for "approved". For every platform and group role, its members are read
by checkpoint paging (no per-user calls), staged, and compared in SQL:
- holding the role → the membership is approved (created, restored or upgraded; history row,
  `updated_by` empty meaning automatic);
- approved here but the role is gone → revoked, reason "role removed in Auth0", history row;
- pending/rejected/revoked memberships without the role are left alone.

A membership is never flipped while an outbox operation for that user and role is pending,
nor when it changed (or its outbox operation completed) after the role's members were read:
that snapshot is older than the change and must not undo it.
"""

import asyncio
import uuid
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from db.base import UTCDateTime, utcnow
from db.models import (
    Auth0OutboxEntry,
    Group,
    GroupMembership,
    GroupMembershipHistory,
    Platform,
    PlatformMembership,
    PlatformMembershipHistory,
    User,
)
from db.types import ApprovalStatus, OutboxStatus
from services.errors import AppError
from services.sync.runs import JobContext, Progress, SyncAborted
from services.sync.sql import dialect_insert, insert_rows

ROLE_REMOVED = "role removed in Auth0"


@dataclass
class Target:
    kind: str  # "platform" or "group"
    id: str
    role_id: str
    members: set[str] | None = None  # None: the read failed, so nothing may be revoked
    read_at: datetime | None = None


@dataclass(frozen=True)
class Tables:
    membership: sa.Table
    history: sa.Table
    target_column: str


TABLES = {
    "platform": Tables(
        PlatformMembership.__table__, PlatformMembershipHistory.__table__, "platform_id"
    ),
    "group": Tables(GroupMembership.__table__, GroupMembershipHistory.__table__, "group_id"),
}


async def load_targets(session: AsyncSession) -> list[Target]:
    targets = []
    for kind, model in (("platform", Platform), ("group", Group)):
        rows = (
            await session.exec(
                select(model.id, model.access_role_id).where(
                    model.removed_at.is_(None), model.access_role_id.is_not(None)
                )
            )
        ).all()
        targets.extend(Target(kind, row[0], row[1]) for row in rows)
    return sorted(targets, key=lambda t: (t.kind, t.id))


async def read_members(ctx: JobContext, targets: list[Target]) -> None:
    semaphore = asyncio.Semaphore(ctx.settings.sync_role_concurrency)
    progress = Progress("role members read")

    async def read(target: Target) -> None:
        async with semaphore:
            read_at = utcnow()
            members: set[str] = set()
            try:
                async for member in ctx.auth0.iter_role_members(target.role_id, take=100):
                    members.add(member["user_id"])
                    progress.advance()
            except AppError as exc:
                ctx.count("roles_unreadable")
                ctx.counts.setdefault("errors", []).append(
                    f"{target.kind} {target.id}: {exc.detail}"
                )
                return
            target.members, target.read_at = members, read_at

    await asyncio.gather(*(read(target) for target in targets))
    progress.close()


def _outbox_blocks(membership: sa.Table, role_id: str, read_at: datetime) -> sa.ColumnElement[bool]:
    outbox = Auth0OutboxEntry.__table__
    return sa.exists().where(
        outbox.c.user_id == membership.c.user_id,
        outbox.c.role_id == role_id,
        sa.or_(
            outbox.c.status.in_([OutboxStatus.PENDING, OutboxStatus.IN_PROGRESS]),
            outbox.c.completed_at >= read_at,
        ),
    )


async def _history(
    session: AsyncSession,
    tables: Tables,
    target: Target,
    rows: list[sa.Row],
    now: datetime,
    reason: str | None,
) -> None:
    await insert_rows(
        session,
        tables.history,
        [
            {
                "membership_id": row.id,
                tables.target_column: target.id,
                "user_id": row.user_id,
                "approval_status": row.approval_status,
                "reason": reason,
                "updated_by_id": None,
                "created_at": now,
            }
            for row in rows
        ],
    )


async def apply_target(
    ctx: JobContext, session: AsyncSession, target: Target, known_users: set[str]
) -> None:
    assert target.members is not None
    assert target.read_at is not None
    tables = TABLES[target.kind]
    membership = tables.membership
    now = utcnow()
    unknown = target.members - known_users
    ctx.count("members_without_user", len(unknown))
    members = sorted(target.members & known_users)

    approved: list[sa.Row] = []
    for start in range(0, len(members), 5000):
        values = [
            {
                "id": uuid.uuid4(),
                tables.target_column: target.id,
                "user_id": user_id,
                "approval_status": ApprovalStatus.APPROVED,
                "created_at": now,
                "updated_at": now,
            }
            for user_id in members[start : start + 5000]
        ]
        insert = dialect_insert(session, membership).values(values)
        insert = insert.on_conflict_do_update(
            index_elements=[tables.target_column, "user_id"],
            set_={
                "approval_status": ApprovalStatus.APPROVED,
                "updated_by_id": None,
                "updated_at": now,
                "revocation_reason": None,
            },
            where=sa.and_(
                membership.c.approval_status != ApprovalStatus.APPROVED,
                membership.c.updated_at < sa.literal(target.read_at, UTCDateTime()),
                ~_outbox_blocks(membership, target.role_id, target.read_at),
            ),
        ).returning(membership.c.id, membership.c.user_id, membership.c.approval_status)
        approved.extend((await session.execute(insert)).all())
    await _history(session, tables, target, approved, now, None)
    ctx.count(f"{target.kind}_approved", len(approved))

    # The members are staged so the revoke is one statement, not a query per user.
    stage = sa.Table(
        f"sync_member_stage_{target.kind}",
        sa.MetaData(),
        sa.Column("user_id", sa.String(255), primary_key=True),
        prefixes=["TEMPORARY"],
    )
    connection = await session.connection()
    await connection.run_sync(lambda sync: stage.drop(sync, checkfirst=True))
    await connection.run_sync(lambda sync: stage.create(sync))
    try:
        await insert_rows(session, stage, [{"user_id": user_id} for user_id in members])
        revoked = (
            await session.execute(
                sa.update(membership)
                .where(
                    membership.c[tables.target_column] == target.id,
                    membership.c.approval_status == ApprovalStatus.APPROVED,
                    membership.c.updated_at < sa.literal(target.read_at, UTCDateTime()),
                    ~sa.exists().where(stage.c.user_id == membership.c.user_id),
                    ~_outbox_blocks(membership, target.role_id, target.read_at),
                )
                .values(
                    approval_status=ApprovalStatus.REVOKED,
                    revocation_reason=ROLE_REMOVED,
                    updated_by_id=None,
                    updated_at=now,
                )
                .returning(membership.c.id, membership.c.user_id, membership.c.approval_status)
            )
        ).all()
    finally:
        await connection.run_sync(lambda sync: stage.drop(sync, checkfirst=True))
    await _history(session, tables, target, revoked, now, ROLE_REMOVED)
    ctx.count(f"{target.kind}_revoked", len(revoked))


async def sync_memberships(ctx: JobContext) -> None:
    async with ctx.sessions() as session:
        targets = await load_targets(session)
    ctx.count("roles", len(targets))
    await read_members(ctx, targets)
    async with ctx.transaction() as session:
        known_users = set((await session.exec(select(User.id))).all())
        for target in targets:
            if target.members is not None:
                await apply_target(ctx, session, target, known_users)
    if ctx.counts.get("roles_unreadable"):
        raise SyncAborted(
            f"{ctx.counts['roles_unreadable']} role(s) could not be read; their memberships were left as they were"
        )
