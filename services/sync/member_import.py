"""Job `sync.memberships`: Auth0 role members → approved platform and group memberships.

Auth0 is the truth for "approved". For every platform and group role, its members are read
by checkpoint paging (no per-user calls), staged, and compared in SQL:
- holding the role → the membership is approved (created, restored or upgraded; history row,
  `updated_by` empty meaning automatic);
- approved here but the role is gone → revoked, reason "role removed in Auth0", history row;
- pending/rejected/revoked memberships without the role are left alone.

Never a mass revocation by accident: a role whose revocations would exceed
SYNC_MAX_REVOKE_FRACTION of its approved members (beyond SYNC_REVOKE_FLOOR) keeps them all,
and the run is reported failed; so does a role whose member list looks cut short (a last page
as full as asked for, not confirmed by a second read in other-sized pages), whose approvals
are applied but nothing revoked.

A membership is never flipped while an outbox operation for that user and role is pending,
nor when it changed (or its outbox operation completed) after the role's members were read:
that snapshot is older than the change and must not undo it.
"""

import asyncio
import hashlib
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel.ext.asyncio.session import AsyncSession

from db.base import UTCDateTime, utcnow
from db.bulk import (
    StageLoader,
    affected,
    analyze,
    bulk_load,
    create_stage,
    dialect_insert,
    drop_stage,
)
from db.models import (
    Auth0OutboxEntry,
    User,
)
from db.types import ApprovalStatus, OutboxStatus
from services.auth0.gateway import RolePages
from services.errors import AppError
from services.memberships.kinds import KINDS, Kind, kind_named
from services.sync.runs import JobContext, Progress, SyncAborted

ROLE_REMOVED = "role removed in Auth0"
ANALYZE_AFTER = 1000  # rows written before refreshing the planner's statistics
STAGE_CHUNK = 5000  # members loaded into the stage per COPY


class MemberIds:
    """A role's member ids as they are read, kept as one run of bytes (~30 bytes a member)
    rather than a set of strings (~100): a 700,000-member role is 21 MB, not 70, and it
    is never copied into a list of rows to load (it goes into the stage chunk by chunk).
    The multiset of ids has a digest, to compare two readings without holding both."""

    def __init__(self, ids: Iterable[str] = ()) -> None:
        self._data = bytearray()
        self._count = 0
        self._digest = 0
        for user_id in ids:
            self.add(user_id)

    def add(self, user_id: str) -> None:
        encoded = user_id.encode()
        self._data += encoded + b"\n"
        self._count += 1
        hashed = int.from_bytes(hashlib.blake2b(encoded, digest_size=8).digest(), "big")
        self._digest = (self._digest + hashed) % (1 << 64)

    def __len__(self) -> int:
        return self._count

    def same_as(self, other: "MemberIds") -> bool:
        return (self._count, self._digest) == (other._count, other._digest)

    def chunks(self, size: int) -> Iterator[list[str]]:
        chunk: list[str] = []
        start = 0
        while start < len(self._data):
            end = self._data.index(b"\n", start)
            chunk.append(self._data[start:end].decode())
            start = end + 1
            if len(chunk) >= size:
                yield chunk
                chunk = []
        if chunk:
            yield chunk


@dataclass
class Target:
    kind: str  # "platform" or "group"
    id: str
    role_id: str
    members: MemberIds | None = None  # None: the read failed, so nothing may be revoked
    read_at: datetime | None = None
    complete: bool = True  # False: the list may be cut short, so nothing may be revoked
    # Set: only these users' memberships are in question (the role of a few users was
    # re-read, not the role's members): nobody else is approved or revoked.
    only_users: set[str] | None = None


async def load_targets(session: AsyncSession) -> list[Target]:
    targets: list[Target] = []
    for kind in KINDS:
        catalog = kind.catalog
        rows = (
            await session.execute(
                sa.select(catalog.c.id, catalog.c.access_role_id).where(
                    catalog.c.removed_at.is_(None), catalog.c.access_role_id.is_not(None)
                )
            )
        ).all()
        targets.extend(Target(kind.name, row[0], row[1]) for row in rows)
    return sorted(targets, key=lambda t: (t.kind, t.id))


async def read_members(ctx: JobContext, target: Target, progress: Progress) -> None:
    read_at = utcnow()
    members = MemberIds()
    pages = RolePages()
    try:
        async for member in ctx.auth0.iter_role_members(target.role_id, take=100, pages=pages):
            members.add(member["user_id"])
            progress.advance()
    except AppError as exc:
        ctx.count("roles_unreadable")
        ctx.counts.setdefault("errors", []).append(f"{target.kind} {target.id}: {exc.detail}")
        return
    if pages.suspect and await _confirmed(ctx, target.role_id, members):
        pages.suspect = False
    target.members, target.read_at = members, read_at
    if pages.suspect:
        target.complete = False
        ctx.count("roles_incomplete")
        ctx.counts.setdefault("errors", []).append(
            f"{target.kind} {target.id}: the last page of members was full but named no next "
            "page; approvals applied, nothing revoked"
        )


async def _confirmed(ctx: JobContext, role_id: str, members: MemberIds) -> bool:
    """A last page as full as asked for, naming no next page, is what Auth0 answers both
    when the role's members fill whole pages exactly and when it cut the list short. Read
    again in pages of 99: the page ends then fall elsewhere, so a whole list ends on a
    short page with the same members, and a cut one does not."""
    again = MemberIds()
    pages = RolePages()
    try:
        async for member in ctx.auth0.iter_role_members(role_id, take=99, pages=pages):
            again.add(member["user_id"])
    except AppError:
        return False
    return not pages.suspect and again.same_as(members)


def _outbox_blocks(membership: sa.Table, role_id: str, read_at: datetime) -> sa.ColumnElement[bool]:
    """An outbox operation for this membership's user and role, pending or completed after
    the read. The membership is named as SQL text: in an upsert's ON CONFLICT … WHERE no
    enclosing SELECT has the table, so SQLAlchemy would give the subquery a membership
    table of its own, and then any user's pending operation blocked every upgrade of the
    role. By name, it is the row in question (the conflicting one, or the one updated)."""
    outbox = Auth0OutboxEntry.__table__
    member: sa.ColumnElement[str] = sa.literal_column(f"{membership.name}.user_id")
    return sa.exists().where(
        outbox.c.user_id == member,
        outbox.c.role_id == role_id,
        sa.or_(
            outbox.c.status.in_([OutboxStatus.PENDING, OutboxStatus.IN_PROGRESS]),
            outbox.c.completed_at >= read_at,
        ),
    )


async def _with_history(
    session: AsyncSession,
    tables: Kind,
    target: Target,
    statement: Any,
    now: datetime,
    reason: str | None,
) -> int:
    """Run `statement` (an INSERT or UPDATE … RETURNING id, user_id, approval_status) and
    add a history row for each membership it wrote; returns how many. On Postgres in one
    statement (a data-modifying CTE), so no row comes back to Python: a first sync at a
    million users approves 700,000 memberships of one role. SQLite reads them back."""
    if session.get_bind().dialect.name != "postgresql":
        rows = (await session.execute(statement)).all()
        await _history(session, tables, target, rows, now, reason)
        return len(rows)
    written = statement.cte("written")
    history = sa.insert(tables.history).from_select(
        [
            "membership_id",
            tables.column,
            "user_id",
            "approval_status",
            "reason",
            "updated_by_id",
            "created_at",
        ],
        sa.select(
            written.c.id,
            sa.literal(target.id),
            written.c.user_id,
            written.c.approval_status,
            sa.literal(reason, sa.String()),
            sa.null(),
            sa.literal(now, UTCDateTime()),
        ),
    )
    return affected(await session.execute(history))


async def _history(
    session: AsyncSession,
    tables: Kind,
    target: Target,
    rows: Sequence[sa.Row[Any]],
    now: datetime,
    reason: str | None,
) -> None:
    await bulk_load(
        session,
        tables.history,
        [
            {
                "membership_id": row.id,
                tables.column: target.id,
                "user_id": row.user_id,
                "approval_status": row.approval_status,
                "reason": reason,
                "updated_by_id": None,
                "created_at": now,
            }
            for row in rows
        ],
    )


async def _revocations_held(
    ctx: JobContext, session: AsyncSession, target: Target, revocable: sa.ColumnElement[bool]
) -> bool:
    """True (and reported) when this role would lose more approved members at once than
    SYNC_MAX_REVOKE_FRACTION allows beyond SYNC_REVOKE_FLOOR: then none are revoked."""
    membership = kind_named(target.kind).memberships
    candidates = (
        await session.execute(sa.select(sa.func.count()).select_from(membership).where(revocable))
    ).scalar_one()
    settings = ctx.settings
    if candidates <= settings.sync_revoke_floor:
        return False
    approved = (
        await session.execute(
            sa.select(sa.func.count())
            .select_from(membership)
            .where(
                membership.c[kind_named(target.kind).column] == target.id,
                membership.c.approval_status == ApprovalStatus.APPROVED,
            )
        )
    ).scalar_one()
    if candidates <= settings.sync_max_revoke_fraction * approved:
        return False
    ctx.count("revocations_held", candidates)
    ctx.counts.setdefault("errors", []).append(
        f"{target.kind} {target.id}: {candidates} of {approved} approved members are missing "
        f"from the role, more than SYNC_MAX_REVOKE_FRACTION="
        f"{settings.sync_max_revoke_fraction:.0%}; nobody was revoked"
    )
    return True


MEMBER_STAGE = sa.Table(
    "sync_member_stage",
    sa.MetaData(),
    sa.Column("user_id", sa.String(255), primary_key=True),
    sa.Column("new_id", sa.Uuid, nullable=False),
    # Already approved here: marked before the upsert, which then leaves these out.
    sa.Column("held", sa.Boolean, nullable=False, server_default=sa.false()),
    prefixes=["TEMPORARY"],
)


async def apply_target(ctx: JobContext, session: AsyncSession, target: Target) -> None:
    assert target.members is not None
    assert target.read_at is not None
    tables = kind_named(target.kind)
    membership, users, stage = tables.memberships, User.__table__, MEMBER_STAGE
    now = utcnow()
    read_at = sa.literal(target.read_at, UTCDateTime())
    at_now = sa.literal(now, UTCDateTime())
    await create_stage(session, stage, [])
    try:
        loader = StageLoader(session, stage, key="user_id")
        for chunk in target.members.chunks(STAGE_CHUNK):
            for user_id in chunk:
                await loader.add({"user_id": user_id, "new_id": uuid.uuid4()})
            await loader.flush()
        await analyze(session, stage)
        unknown = (
            await session.execute(
                sa.select(sa.func.count())
                .select_from(stage)
                .where(~sa.exists().where(users.c.id == stage.c.user_id))
            )
        ).scalar_one()
        ctx.count("members_without_user", unknown)
        # Members already approved need nothing; only the rest reach the upsert. Marked in a
        # statement of its own: an upsert that anti-joins the table it inserts into scans it
        # once per row when the planner thinks it empty (a first sync), and the rows it
        # adds make every scan longer (minutes at 70,000 members).
        await session.execute(
            sa.update(stage)
            .where(
                sa.exists().where(
                    membership.c[tables.column] == target.id,
                    membership.c.user_id == stage.c.user_id,
                    membership.c.approval_status == ApprovalStatus.APPROVED,
                )
            )
            .values(held=True)
        )

        insert = dialect_insert(session, membership).from_select(
            ["id", tables.column, "user_id", "approval_status", "created_at", "updated_at"],
            sa.select(
                stage.c.new_id,
                sa.literal(target.id),
                stage.c.user_id,
                sa.literal(ApprovalStatus.APPROVED, membership.c.approval_status.type),
                at_now,
                at_now,
            )
            .join(users, users.c.id == stage.c.user_id)
            .where(sa.not_(stage.c.held)),
        )
        insert = insert.on_conflict_do_update(
            index_elements=[tables.column, "user_id"],
            set_={
                "approval_status": ApprovalStatus.APPROVED,
                "updated_by_id": None,
                "updated_at": now,
                "revocation_reason": None,
            },
            where=sa.and_(
                membership.c.approval_status != ApprovalStatus.APPROVED,
                membership.c.updated_at < read_at,
                ~_outbox_blocks(membership, target.role_id, target.read_at),
            ),
        ).returning(membership.c.id, membership.c.user_id, membership.c.approval_status)
        async with ctx.timed("apply.approve"):
            approved = await _with_history(session, tables, target, insert, now, None)
        ctx.count(f"{target.kind}_approved", approved)

        revocable = sa.and_(
            membership.c[tables.column] == target.id,
            membership.c.approval_status == ApprovalStatus.APPROVED,
            membership.c.updated_at < read_at,
            ~sa.exists().where(stage.c.user_id == membership.c.user_id),
            ~_outbox_blocks(membership, target.role_id, target.read_at),
            sa.true()
            if target.only_users is None
            else membership.c.user_id.in_(sorted(target.only_users)),
        )
        if not target.complete or await _revocations_held(ctx, session, target, revocable):
            return
        async with ctx.timed("apply.revoke"):
            revoked = await _with_history(
                session,
                tables,
                target,
                sa.update(membership)
                .where(revocable)
                .values(
                    approval_status=ApprovalStatus.REVOKED,
                    revocation_reason=ROLE_REMOVED,
                    updated_by_id=None,
                    updated_at=now,
                )
                .returning(membership.c.id, membership.c.user_id, membership.c.approval_status),
                now,
                ROLE_REMOVED,
            )
        ctx.count(f"{target.kind}_revoked", revoked)
        if approved + revoked > ANALYZE_AFTER:
            # Autovacuum analyzes later; the next role's anti-joins need the statistics now.
            await analyze(session, membership)
    finally:
        await drop_stage(session, stage)


async def sync_memberships(ctx: JobContext) -> None:
    """Each role is applied in its own transaction as soon as its members are read, so
    the database work overlaps the (rate-limited) reading of the other roles."""
    async with ctx.sessions() as session:
        targets = await load_targets(session)
    ctx.count("roles", len(targets))
    semaphore = asyncio.Semaphore(ctx.settings.sync_role_concurrency)
    writer = asyncio.Lock()
    progress = Progress("role members read")

    async def handle(target: Target) -> None:
        async with semaphore, ctx.timed("read"):
            await read_members(ctx, target, progress)
        if target.members is None:
            return
        async with writer, ctx.timed("apply"), ctx.transaction() as session:
            await apply_target(ctx, session, target)

    await asyncio.gather(*(handle(target) for target in targets))
    progress.close()
    if ctx.counts.get("roles_unreadable"):
        raise SyncAborted(
            f"{ctx.counts['roles_unreadable']} role(s) could not be read; their memberships were left as they were"
        )
    if ctx.counts.get("revocations_held") or ctx.counts.get("roles_incomplete"):
        raise SyncAborted(
            f"revocations held back: {ctx.counts.get('revocations_held', 0)} over the limit, "
            f"{ctx.counts.get('roles_incomplete', 0)} role(s) read incompletely; see errors"
        )
