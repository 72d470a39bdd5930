"""Jobs `sync.users.full` and `sync.users.incremental`: Auth0 users → `app_user`.

Writes are set-based: the fetched users go into a temporary stage table and a handful
of statements compare, report conflicts, write history, soft-delete, restore and upsert.

Order matters for the case-insensitive unique indexes (live users only):
1. users confirmed gone from Auth0 (404) are soft-deleted, freeing their email/username;
2. newly blocked users are soft-deleted (history `blocked`);
3. a live user whose email or username another live user holds is skipped and reported;
4. email/username changes get history rows, then the upsert writes only changed rows;
5. unblocked users are restored (history `unblocked`).

No run writes an older snapshot over a newer row: a user changed here (by the API, which
writes Auth0 and Postgres together) after Auth0 was read keeps its row this run; the next
run reads Auth0 again (counted as `newer_here`).
"""

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from db.base import UTCDateTime, utcnow
from db.bulk import (
    StageLoader,
    affected,
    analyze,
    changed,
    create_stage,
    dialect_insert,
    drop_stage,
    insert_rows,
)
from db.models import SyncRun, User, UserHistory, UsernameClaim
from db.types import SyncRunStatus, UserChange
from services.auth0.gateway import USERS_LIST_CAP, ExportUnavailable
from services.errors import AppError, NotFound, UpstreamError
from services.sync.runs import JobContext, Progress, SyncAborted
from services.users.auth0_records import BLOCKED_REASON, GONE_REASON, user_row

EXPORT_FIELDS = [
    "user_id",
    "email",
    "email_verified",
    "username",
    "name",
    "given_name",
    "family_name",
    "picture",
    "blocked",
    "created_at",
    "last_login",
    "updated_at",
    "identities[0].connection",
    "app_metadata.registration_from",
]
PROFILE_COLUMNS = [
    "email",
    "email_verified",
    "username",
    "name",
    "given_name",
    "family_name",
    "picture",
    "connection",
    "registration_from",
    "blocked",
    "last_login",
]
# Users staged per COPY while the export streams in: the most the full sync holds.
STAGE_CHUNK = 5000
FULL_JOB = "sync.users.full"
INCREMENTAL_JOB = "sync.users.incremental"

_stage_metadata = sa.MetaData()
USER_STAGE = sa.Table(
    "sync_user_stage",
    _stage_metadata,
    sa.Column("id", sa.String(255), primary_key=True),
    sa.Column("email", sa.String(320)),
    sa.Column("email_verified", sa.Boolean, nullable=False),
    sa.Column("username", sa.String(128)),
    sa.Column("name", sa.String(255)),
    sa.Column("given_name", sa.String(255)),
    sa.Column("family_name", sa.String(255)),
    sa.Column("picture", sa.Text),
    sa.Column("connection", sa.String(128)),
    sa.Column("registration_from", sa.String(64)),
    sa.Column("blocked", sa.Boolean, nullable=False),
    sa.Column("created_at", UTCDateTime()),
    sa.Column("last_login", UTCDateTime()),
    sa.Column("auth0_updated_at", UTCDateTime()),
    sa.Column("skip_reason", sa.String(255)),
    sa.Column("state", sa.String(8)),  # new | changed | NULL (same as in app_user)
    prefixes=["TEMPORARY"],
)
# Conflict checks compare values case-insensitively against the stage itself.
sa.Index("ix_sync_user_stage_email", sa.func.lower(USER_STAGE.c.email))
sa.Index("ix_sync_user_stage_username", sa.func.lower(USER_STAGE.c.username))


# ---- fetching --------------------------------------------------------------------------


async def all_users(ctx: JobContext) -> AsyncIterator[dict[str, Any]]:
    """Every Auth0 user, one at a time as the answer streams in: by export job (the fewest
    requests), or by paged listing when the tenant refuses exports (Free plan) or
    SYNC_USER_SOURCE=list. Raises SyncAborted if the answer cannot be complete, so nothing
    is deleted on a partial answer. Sets counts["source"]."""
    source = ctx.settings.sync_user_source
    if source in ("auto", "export"):
        try:
            async for raw in ctx.auth0.export_users(EXPORT_FIELDS):
                ctx.counts["source"] = "export"
                yield raw
        except ExportUnavailable:
            if source == "export":
                raise SyncAborted(
                    "SYNC_USER_SOURCE=export but this tenant refuses export jobs"
                ) from None
            source = "list"
        except UpstreamError as exc:
            raise SyncAborted(
                f"the user export is unavailable ({exc.detail}); nothing was changed"
            ) from exc
        else:
            ctx.counts["source"] = "export"
            return
    ctx.counts["source"] = "list"
    try:
        async for raw in ctx.auth0.iter_users():
            yield raw
    except UpstreamError as exc:
        raise SyncAborted(
            f"the user listing cannot be complete: {exc.detail}; nothing was changed"
        ) from exc


async def fetch_changed_users(ctx: JobContext, since: datetime) -> dict[str, dict[str, Any]]:
    """Users updated since `since`, splitting windows that exceed Auth0's 1000-result cap."""
    rows: dict[str, dict[str, Any]] = {}
    now = utcnow()

    def stamp(moment: datetime) -> str:
        return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")

    async def window(low: datetime, high: datetime | None) -> None:
        query = f"updated_at:[{stamp(low)} TO {stamp(high) if high else '*'}]"
        first, total = await ctx.auth0.list_users_page(
            page=0, per_page=100, q=query, sort="updated_at:1"
        )
        upper = high or now
        # A total at the cap means "this many or more" (Auth0 reports at most 1000): the
        # window may hold more than can be paged, so it is halved until it does not.
        if total >= USERS_LIST_CAP and upper - low > timedelta(milliseconds=2):
            middle = low + (upper - low) / 2
            ctx.count("windows_split")
            await window(low, middle)
            await window(middle, high)
            return
        if total >= USERS_LIST_CAP:
            # 1000 or more changes within 2 ms: the rest waits for the full sync.
            ctx.count("window_overflow")
        batch = list(first)
        page = 1
        while len(batch) < min(total, USERS_LIST_CAP) and page * 100 < USERS_LIST_CAP:
            more, _ = await ctx.auth0.list_users_page(
                page=page, per_page=100, q=query, sort="updated_at:1"
            )
            if not more:
                break
            batch.extend(more)
            page += 1
        for raw in batch:
            row = user_row(raw)
            if row:
                rows[row["id"]] = row

    await window(since, None)
    ctx.count("fetched", len(rows))
    return rows


async def confirm_gone(ctx: JobContext, candidates: list[str]) -> list[str]:
    """Absent from the export is not proof: only a 404 from Auth0 is."""
    semaphore = asyncio.Semaphore(ctx.settings.sync_role_concurrency)
    gone: list[str] = []

    async def check(user_id: str) -> None:
        async with semaphore:
            try:
                await ctx.auth0.get_user(user_id)
            except NotFound:
                gone.append(user_id)
            except AppError:
                ctx.count("absent_unconfirmed")
            else:
                ctx.count("absent_but_present")

    await asyncio.gather(*(check(user_id) for user_id in candidates))
    return gone


# ---- applying --------------------------------------------------------------------------


async def _mark_states(session: AsyncSession, read_at: datetime | None) -> int:
    """Mark staged rows new or changed; returns how many changed rows were left alone as
    the row here changed after Auth0 was read (`read_at`)."""
    stage, users = USER_STAGE, User.__table__
    # Most rows of a full sync are unchanged; marking the others lets every later
    # statement touch only what differs.
    await session.execute(
        sa.update(stage).where(~sa.exists().where(users.c.id == stage.c.id)).values(state="new")
    )
    differs = sa.or_(*(users.c[c].is_distinct_from(stage.c[c]) for c in PROFILE_COLUMNS))
    await session.execute(
        sa.update(stage)
        .where(sa.exists().where(users.c.id == stage.c.id, differs))
        .values(state="changed")
    )
    if read_at is None:
        return 0
    newer = await session.execute(
        sa.update(stage)
        .where(
            stage.c.state == "changed",
            sa.exists().where(
                users.c.id == stage.c.id,
                users.c.updated_at >= sa.literal(read_at, UTCDateTime()),
            ),
        )
        .values(state=None)
    )
    return affected(newer)


def history_row(user_id: str, change: UserChange, now: datetime, **values: Any) -> dict[str, Any]:
    """A `user_history` row for set-based inserts (`insert_rows`)."""
    return {
        "user_id": user_id,
        "change": change,
        "created_at": now,
        "email": None,
        "username": None,
        "previous_value": None,
        "new_value": None,
        "changed_by_id": None,
        "reason": None,
        **values,
    }


async def _soft_delete(
    session: AsyncSession, ids: list[str], reason: str, change: UserChange, now: datetime
) -> int:
    users = User.__table__
    deleted: list[str] = []
    for start in range(0, len(ids), 5000):
        result = await session.execute(
            sa.update(users)
            .where(users.c.id.in_(ids[start : start + 5000]), sa.not_(users.c.is_deleted))
            .values(
                is_deleted=True,
                deleted_at=now,
                deleted_by_id=None,
                deletion_reason=reason,
                updated_at=now,
            )
            .returning(users.c.id)
        )
        deleted.extend(result.scalars().all())
    await insert_rows(
        session,
        UserHistory.__table__,
        [history_row(i, change, now, reason=reason) for i in deleted],
    )
    return len(deleted)


async def _mark_conflicts(session: AsyncSession, column: str) -> None:
    stage, users, claims = USER_STAGE, User.__table__, UsernameClaim.__table__
    value = sa.func.lower(stage.c[column])
    live = (
        stage.c.state.is_not(None)
        & stage.c.skip_reason.is_(None)
        & sa.not_(stage.c.blocked)
        & stage.c[column].is_not(None)
    )
    other_stage = USER_STAGE.alias("other_stage")

    def same_scope(other: sa.FromClause) -> sa.ColumnElement[bool]:
        # Emails are unique per connection (as in Auth0), usernames across all of them.
        if column != "email":
            return sa.true()
        return sa.func.coalesce(other.c.connection, "") == sa.func.coalesce(stage.c.connection, "")

    holder = (
        sa.select(users.c.id)
        .where(
            sa.func.lower(users.c[column]) == value,
            users.c.id != stage.c.id,
            sa.not_(users.c.is_deleted),
            same_scope(users),
        )
        .limit(1)
        .scalar_subquery()
    )
    await session.execute(
        sa.update(stage)
        .where(
            live,
            sa.exists().where(
                sa.func.lower(users.c[column]) == value,
                users.c.id != stage.c.id,
                sa.not_(users.c.is_deleted),
                same_scope(users),
            ),
        )
        .values(skip_reason=sa.literal(f"{column} held by ") + holder)
    )
    if column == "username":
        # A username someone else ever held stays theirs (services/registration
        # .username_taken): a rename in Auth0 to such a name is reported, never applied.
        claimed_by = (
            sa.select(claims.c.user_id)
            .where(claims.c.username == value, claims.c.user_id != stage.c.id)
            .scalar_subquery()
        )
        await session.execute(
            sa.update(stage)
            .where(
                live,
                sa.exists().where(claims.c.username == value, claims.c.user_id != stage.c.id),
            )
            .values(skip_reason=sa.literal("username held before by ") + claimed_by)
        )
    # Several Auth0 users sharing a value: the one already holding it here keeps it;
    # if none does, all of them wait and are reported.
    holds_it = sa.exists().where(
        sa.func.lower(users.c[column]) == value,
        users.c.id == stage.c.id,
        sa.not_(users.c.is_deleted),
    )
    await session.execute(
        sa.update(stage)
        .where(
            live,
            ~holds_it,
            sa.exists().where(
                sa.func.lower(other_stage.c[column]) == value,
                other_stage.c.id != stage.c.id,
                sa.not_(other_stage.c.blocked),
                same_scope(other_stage),
            ),
        )
        .values(skip_reason=f"{column} shared with another Auth0 user")
    )


async def apply_users(
    ctx: JobContext,
    session: AsyncSession,
    rows: list[dict[str, Any]],
    gone: list[str],
    read_at: datetime | None = None,
) -> None:
    """Write the fetched users, in the order the module docstring gives. `read_at`: when
    Auth0 was read (rows changed here since are not overwritten)."""
    async with ctx.timed("stage"):
        await create_stage(session, USER_STAGE, rows)
    await apply_stage(ctx, session, gone, read_at)


async def apply_stage(
    ctx: JobContext, session: AsyncSession, gone: list[str], read_at: datetime | None
) -> None:
    """Write the users in USER_STAGE (filled by `apply_users` or streamed in by the full
    sync); drops the stage."""
    now = utcnow()
    try:
        if gone:
            ctx.count(
                "deleted",
                await _soft_delete(session, gone, GONE_REASON, UserChange.USER_DELETION, now),
            )
        async with ctx.timed("stage"):
            newer_here = await _mark_states(session, read_at)
            if newer_here:
                ctx.count("newer_here", newer_here)
        ctx.count("blocked", await _block_newly_blocked(session, now))
        await _report_conflicts(ctx, session)
        await _record_renames(session, now)
        await _upsert_profiles(ctx, session, now)
        ctx.count("restored", await _restore_unblocked(session, now))
    finally:
        await drop_stage(session, USER_STAGE)


# Staged rows that may be written: no conflict, and new or changed.
_WRITABLE = USER_STAGE.c.skip_reason.is_(None) & USER_STAGE.c.state.is_not(None)


async def _block_newly_blocked(session: AsyncSession, now: datetime) -> int:
    users, stage = User.__table__, USER_STAGE
    blocked_ids = list(
        (
            await session.execute(
                sa.select(stage.c.id)
                .join(users, users.c.id == stage.c.id)
                .where(stage.c.blocked, sa.not_(users.c.is_deleted))
            )
        ).scalars()
    )
    return await _soft_delete(session, blocked_ids, BLOCKED_REASON, UserChange.BLOCKED, now)


async def _report_conflicts(ctx: JobContext, session: AsyncSession) -> None:
    """Skip (and report) users whose email or username another live user holds."""
    stage = USER_STAGE
    for column in ("email", "username"):
        await _mark_conflicts(session, column)
    skipped = (
        await session.execute(
            sa.select(stage.c.id, stage.c.skip_reason)
            .where(stage.c.skip_reason.is_not(None))
            .order_by(stage.c.id)
        )
    ).all()
    ctx.count("conflicts", len(skipped))
    if skipped:
        ctx.counts["conflict_examples"] = [f"{row.id}: {row.skip_reason}" for row in skipped[:20]]


async def _record_renames(session: AsyncSession, now: datetime) -> None:
    """A history row for every email or username the upsert is about to change."""
    users, stage, history = User.__table__, USER_STAGE, UserHistory.__table__
    joined = stage.join(users, users.c.id == stage.c.id)
    for column, change in (
        ("email", UserChange.EMAIL_UPDATE),
        ("username", UserChange.USERNAME_UPDATE),
    ):
        await session.execute(
            sa.insert(history).from_select(
                [
                    "user_id",
                    "change",
                    "email",
                    "username",
                    "previous_value",
                    "new_value",
                    "reason",
                    "created_at",
                ],
                sa.select(
                    stage.c.id,
                    sa.literal(change.value),
                    stage.c.email,
                    stage.c.username,
                    users.c[column],
                    stage.c[column],
                    sa.literal("auth0 sync"),
                    sa.literal(now, UTCDateTime()),
                )
                .select_from(joined)
                .where(_WRITABLE, users.c[column].is_distinct_from(stage.c[column])),
            )
        )


async def _upsert_profiles(ctx: JobContext, session: AsyncSession, now: datetime) -> None:
    """Insert new users and update changed ones; rows that did not change are not touched."""
    users, stage = User.__table__, USER_STAGE
    new_count = (
        await session.execute(
            sa.select(sa.func.count())
            .select_from(stage)
            .where(_WRITABLE, ~sa.exists().where(users.c.id == stage.c.id))
        )
    ).scalar_one()
    at_now = sa.literal(now, UTCDateTime())
    source = sa.select(
        stage.c.id,
        *(stage.c[c] for c in PROFILE_COLUMNS),
        sa.func.coalesce(stage.c.created_at, at_now),
        at_now,
        at_now,
        stage.c.blocked,
        sa.case((stage.c.blocked, at_now), else_=sa.null()),
        sa.case((stage.c.blocked, sa.literal(BLOCKED_REASON)), else_=sa.null()),
        stage.c.auth0_updated_at,
    ).where(_WRITABLE)
    insert = dialect_insert(session, users).from_select(
        [
            "id",
            *PROFILE_COLUMNS,
            "created_at",
            "updated_at",
            "last_synced_at",
            "is_deleted",
            "deleted_at",
            "deletion_reason",
            "auth0_updated_at",
        ],
        source,
    )
    # Auth0's own `updated_at` goes with every write but causes none: events older than it
    # are stale (services/sync/event_apply.py).
    insert = insert.on_conflict_do_update(
        index_elements=["id"],
        set_={
            **{c: insert.excluded[c] for c in PROFILE_COLUMNS},
            "auth0_updated_at": insert.excluded.auth0_updated_at,
            "updated_at": now,
            "last_synced_at": now,
        },
        where=changed(users, insert.excluded, PROFILE_COLUMNS),
    )
    written = affected(await session.execute(insert))
    ctx.count("created", new_count)
    ctx.count("updated", written - new_count)
    if written > 1000:
        # Autovacuum analyzes later; the next statements need the statistics now.
        await analyze(session, users)


async def _restore_unblocked(session: AsyncSession, now: datetime) -> int:
    """Users blocked before and unblocked in Auth0 now come back, with a history row."""
    users, stage = User.__table__, USER_STAGE
    restored = list(
        (
            await session.execute(
                sa.update(users)
                .where(
                    users.c.is_deleted,
                    users.c.deletion_reason == BLOCKED_REASON,
                    users.c.id.in_(
                        sa.select(stage.c.id).where(
                            stage.c.skip_reason.is_(None), sa.not_(stage.c.blocked)
                        )
                    ),
                )
                .values(
                    is_deleted=False,
                    deleted_at=None,
                    deleted_by_id=None,
                    deletion_reason=None,
                    updated_at=now,
                )
                .returning(users.c.id)
            )
        ).scalars()
    )
    await insert_rows(
        session,
        UserHistory.__table__,
        [history_row(i, UserChange.UNBLOCKED, now, reason="unblocked in Auth0") for i in restored],
    )
    return len(restored)


async def sync_users_full(ctx: JobContext) -> None:
    """Every Auth0 user into the stage as the export streams in (STAGE_CHUNK rows held at
    a time), then the same writes as any sync. Memory stays flat with the tenant's size:
    neither the users nor the ids of those here are ever all in memory."""
    read_at = utcnow()  # before the export job is created: its snapshot is no older
    users = all_users(ctx)
    progress = Progress("users fetched")
    async with ctx.timed("fetch"):
        # The export job is waited for before a transaction is opened.
        first = await anext(users, None)
    async with ctx.transaction() as session:
        async with ctx.timed("fetch"):
            await create_stage(session, USER_STAGE, [])
            loader = StageLoader(session, USER_STAGE, key="id", chunk=STAGE_CHUNK)
            raw = first
            while raw is not None:
                row = user_row(raw)
                if row:
                    await loader.add(row)
                progress.advance()
                raw = await anext(users, None)
            await loader.flush()
            await analyze(session, USER_STAGE)
        progress.close()
        stage, app_user = USER_STAGE, User.__table__
        fetched = await session.scalar(sa.select(sa.func.count()).select_from(stage))
        ctx.count("fetched", fetched or 0)
        live = await session.scalar(
            sa.select(sa.func.count()).select_from(app_user).where(~app_user.c.is_deleted)
        )
        absent_here = sa.and_(
            ~app_user.c.is_deleted, ~sa.exists().where(stage.c.id == app_user.c.id)
        )
        absent = await session.scalar(
            sa.select(sa.func.count()).select_from(app_user).where(absent_here)
        )
        ctx.count("absent", absent or 0)
        limit = ctx.settings.sync_max_delete_fraction * max(live or 0, 1)
        aborted: str | None = None
        gone: list[str] = []
        if absent and absent > limit:
            aborted = (
                f"{absent} of {live} users are missing from Auth0's answer, more than "
                f"SYNC_MAX_DELETE_FRACTION={ctx.settings.sync_max_delete_fraction:.0%}; "
                "nobody was deleted"
            )
        elif absent:
            candidates = (
                await session.scalars(
                    sa.select(app_user.c.id).where(absent_here).order_by(app_user.c.id)
                )
            ).all()
            gone = await confirm_gone(ctx, list(candidates))
        await apply_stage(ctx, session, gone, read_at)
    if aborted:
        raise SyncAborted(aborted)


async def last_success(session: AsyncSession, jobs: list[str]) -> datetime | None:
    statement = select(sa.func.max(col(SyncRun.started_at))).where(
        col(SyncRun.job).in_(jobs),
        col(SyncRun.status) == SyncRunStatus.SUCCEEDED,
        sa.not_(col(SyncRun.dry_run)),
    )
    return (await session.exec(statement)).one()


async def sync_users_incremental(ctx: JobContext) -> None:
    async with ctx.sessions() as session:
        since = await last_success(session, [FULL_JOB, INCREMENTAL_JOB])
    if since is None:
        ctx.counts["note"] = "no successful user sync yet; waiting for the full sync"
        return
    read_at = utcnow()
    changed = await fetch_changed_users(
        ctx, since - timedelta(seconds=ctx.settings.sync_search_lag_s)
    )
    if not changed:
        return
    async with ctx.transaction() as session:
        await apply_users(ctx, session, list(changed.values()), [], read_at)
