"""Job `events.apply`: the inbox of Auth0's pushes (services/events/inbox.py), applied.

Every EVENTS_APPLY_INTERVAL_S the scheduler claims the oldest pending events (`FOR UPDATE
SKIP LOCKED`, so two schedulers never take the same row) and applies them in the same
transaction that marks them done: a scheduler killed mid-batch applies nothing and marks
nothing, and the next run takes the batch again.

- **User events** (Event Streams `user.created`/`user.updated`) carry the whole user. Auth0
  delivers them at least once and in no guaranteed order, and its docs say to compare the
  object's `updated_at` with the data held ("Handle out-of-sequence events",
  https://auth0.com/docs/customize/events/events-best-practices). So an event is applied
  only when its `updated_at` is newer than the row's `auth0_updated_at` (Auth0's clock; a
  change made here stamps the row when it is written, db/models/user.py): duplicates and
  late deliveries change nothing. The newest event per user in a batch is applied through
  the users sync's own writer (`apply_users`), so renames, conflicts, blocks and restores
  follow the same rules and history as the polled sync; a block deletes at once, and the
  user's tokens are refused from the next request (`is_deactivated` reads the row).
- **`user.deleted`** deletes at once ("deleted in Auth0"), and outranks every update about
  that user, whenever delivered: its row stays in the inbox for good.
- **Log Stream entries are hints, not truth.** A role granted or removed through the
  Management API (`sapi`: `POST|DELETE /api/v2/users/{id}/roles`, `POST /api/v2/roles/{id}/users`)
  re-reads that user's roles (one call) and reconciles their memberships through the
  membership sync's writer (`apply_target`, with its outbox and read-time guards); a role
  created, changed or deleted runs the roles sync. Without an Event Stream, user log
  entries (`ss` sign-up, `sdu`/`du` deletion, `sce`/`scu` email and username changes, `sapi`
  on `/api/v2/users/{id}`) re-read that user (one call). This service's own Management API
  calls come back as `sapi` entries too: they are ignored, as the change was applied when
  it was made. Anything else is recorded and ignored.
- **A bad event** is parked with the reason (never lost, never retried forever): a batch
  that fails is retried one event at a time, and an event that fails EVENTS_MAX_ATTEMPTS
  times (with growing pauses) is parked; the rest of the batch is applied.
"""

import logging
import re
import time
from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import unquote

import sqlalchemy as sa
from sqlmodel.ext.asyncio.session import AsyncSession

from db.base import UTCDateTime, utcnow
from db.models import Auth0Event, User
from db.types import EventSource, EventStatus
from services.errors import AppError, NotFound
from services.events.inbox import parse_timestamp
from services.events.stream_health import configured
from services.sync.member_import import (
    MemberIds,
    Target,
    apply_target,
    load_targets,
    read_members,
)
from services.sync.role_import import sync_roles
from services.sync.runs import JobContext, Progress, run_job
from services.sync.user_import import PROFILE_COLUMNS, apply_users
from services.users.auth0_records import GONE_REASON, user_row

logger = logging.getLogger("aai.sync.events")

APPLY_JOB = "events.apply"
CLEANUP_JOB = "events.cleanup"
RUN_BUDGET_S = 10.0  # a run drains for at most this long; the next one continues
USER_EVENTS = ("user.created", "user.updated")
# Log entry types about a user's account (Auth0's log event type codes).
USER_LOG_TYPES = {"ss", "sdu", "du", "sce", "scu", "sv", "sui"}
_USER_ROLES = re.compile(r"^/api/v2/users/([^/]+)/roles/?$")
_ROLE_USERS = re.compile(r"^/api/v2/roles/([^/]+)/users/?$")
_ROLES = re.compile(r"^/api/v2/roles(/[^/]+)?/?$")
_USER = re.compile(r"^/api/v2/users/([^/]+)/?$")


@dataclass
class Decision:
    status: EventStatus
    outcome: str


@dataclass
class Hint:
    """What a log entry asks for: re-read a user's roles, a role's members, a user, or the
    role catalog; or nothing (with the reason)."""

    kind: str  # "user_roles" | "role_members" | "user" | "catalog" | "ignore"
    keys: tuple[str, ...] = ()
    reason: str = ""


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _request(log: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
    request = _object(_object(log.get("details")).get("request"))
    path = str(request.get("path") or "").split("?", 1)[0]
    return str(request.get("method") or "").upper(), path, _object(request.get("body"))


def classify_log(log: dict[str, Any], ctx: JobContext, catalog_roles: set[str]) -> Hint:
    settings = ctx.settings
    kind = log.get("type")
    own = log.get("client_id") == settings.auth0_management_id
    streaming_users = configured(settings, EventSource.EVENT_STREAM)
    if kind == "sapi":
        method, path, body = _request(log)
        if own:
            return Hint(
                "ignore", reason="this service's own Management API call, applied when made"
            )
        if (match := _USER_ROLES.match(path)) and method in ("POST", "DELETE"):
            roles = body.get("roles")
            if isinstance(roles, list) and not set(map(str, roles)) & catalog_roles:
                return Hint("ignore", reason="no platform or group role in the change")
            return Hint("user_roles", (unquote(match.group(1)),))
        if (match := _ROLE_USERS.match(path)) and method == "POST":
            role_id = unquote(match.group(1))
            if role_id not in catalog_roles:
                return Hint("ignore", reason="not a platform or group role")
            users = body.get("users")
            if isinstance(users, list) and users:
                return Hint("user_roles", tuple(str(u) for u in users))
            return Hint("role_members", (role_id,))
        if _ROLES.match(path) and method in ("POST", "PATCH", "DELETE"):
            return Hint("catalog")
        user_id = None
        if (match := _USER.match(path)) and method in ("PATCH", "DELETE"):
            user_id = unquote(match.group(1))
        elif path.rstrip("/") == "/api/v2/users" and method == "POST":
            user_id = log.get("user_id")  # a user created through the Management API
        if isinstance(user_id, str) and user_id:
            if streaming_users:
                return Hint("ignore", reason="Event Streams deliver user changes")
            return Hint("user", (user_id,))
        return Hint("ignore", reason=f"{method} {path}: nothing this service mirrors")
    if kind in USER_LOG_TYPES and isinstance(log.get("user_id"), str) and log["user_id"]:
        if streaming_users:
            return Hint("ignore", reason="Event Streams deliver user changes")
        return Hint("user", (log["user_id"],))
    return Hint("ignore", reason=f"log type {kind!r}: nothing this service mirrors")


def _mirrored(obj: dict[str, Any]) -> dict[str, Any]:
    """What an event says of the columns the users sync writes (compared when its version
    ties the row's)."""
    row = user_row(obj) or {}
    return {name: row.get(name) for name in PROFILE_COLUMNS}


async def apply_events(ctx: JobContext) -> None:
    started = time.monotonic()
    while time.monotonic() - started < RUN_BUDGET_S:
        claimed, catalog = await _drain_once(ctx)
        if catalog:
            # A role was created, changed or deleted: the catalog follows Auth0 now.
            await run_job(replace(ctx, counts={}), "sync.roles", sync_roles)
            ctx.count("roles_synced")
        if claimed < ctx.settings.events_apply_batch:
            return


async def _drain_once(ctx: JobContext) -> tuple[int, bool]:
    now = utcnow()
    table = Auth0Event.__table__
    async with ctx.transaction() as session:
        rows = list(
            (
                await session.execute(
                    sa.select(table)
                    .where(
                        table.c.status == EventStatus.PENDING,
                        sa.or_(table.c.next_attempt_at.is_(None), table.c.next_attempt_at <= now),
                    )
                    .order_by(table.c.id)
                    .limit(ctx.settings.events_apply_batch)
                    .with_for_update(skip_locked=True)
                )
            ).all()
        )
        if not rows:
            return 0, False
        decisions: dict[int, Decision] = {}
        catalog = False
        try:
            async with session.begin_nested():
                decisions, catalog = await _apply(ctx, session, rows)
        except Exception:  # one bad event must not hold the batch back
            logger.warning("events.apply: a batch of %d failed; applying one by one", len(rows))
            decisions, catalog = {}, False
            for row in rows:
                try:
                    async with session.begin_nested():
                        one, wants_catalog = await _apply(ctx, session, [row])
                    decisions.update(one)
                    catalog = catalog or wants_catalog
                except Exception as exc:  # recorded on the event
                    decisions[row.id] = _failure(ctx, row, exc)
        for name, value in (await _record(session, rows, decisions, utcnow())).items():
            ctx.count(name, value)
    return len(rows), catalog


def _failure(ctx: JobContext, row: sa.Row[Any], exc: Exception) -> Decision:
    """Auth0 or the database failing may pass: the event is tried again later, up to
    EVENTS_MAX_ATTEMPTS times. Anything else is the event itself (a user object of the
    wrong shape): parked at once."""
    attempts = row.attempts + 1
    reason = f"{type(exc).__name__}: {exc}"[:2000]
    transient = isinstance(exc, (AppError, sa.exc.OperationalError, sa.exc.InterfaceError, OSError))
    if not transient or attempts >= ctx.settings.events_max_attempts:
        logger.error("events.apply: event %s (%s) parked: %s", row.event_id, row.type, reason)
        return Decision(EventStatus.PARKED, f"parked after {attempts} attempt(s): {reason}")
    return Decision(EventStatus.PENDING, f"attempt {attempts} failed: {reason}")


async def _record(
    session: AsyncSession, rows: list[sa.Row[Any]], decisions: dict[int, Decision], now: datetime
) -> dict[str, int]:
    """Mark the claimed events, one UPDATE per (status, outcome) rather than per event;
    returns how many ended in each state."""
    table = Auth0Event.__table__
    groups: dict[tuple[EventStatus, str], list[int]] = defaultdict(list)
    for row in rows:
        decision = decisions.get(row.id) or Decision(EventStatus.APPLIED, "applied")
        groups[(decision.status, decision.outcome)].append(row.id)
    counted: dict[str, int] = defaultdict(int)
    for (status, outcome), ids in groups.items():
        values: dict[str, Any] = {
            "status": status,
            "outcome": outcome,
            "attempts": table.c.attempts + 1,
        }
        if status is EventStatus.PENDING:
            # Retried after 2, 4, 8 … seconds, at most five minutes apart: the pause
            # follows each event's own attempts, so it is one expression for all of them.
            values["next_attempt_at"] = sa.case(
                *(
                    (
                        table.c.attempts == n,
                        sa.literal(now + timedelta(seconds=min(2 ** (n + 1), 300)), UTCDateTime()),
                    )
                    for n in range(9)
                ),
                else_=sa.literal(now + timedelta(seconds=300), UTCDateTime()),
            )
            counted["retrying"] += len(ids)
        else:
            values["finished_at"] = now
            counted[status.value] += len(ids)
        await session.execute(sa.update(table).where(table.c.id.in_(ids)).values(**values))
    return counted


async def _apply(
    ctx: JobContext, session: AsyncSession, rows: list[sa.Row[Any]]
) -> tuple[dict[int, Decision], bool]:
    decisions: dict[int, Decision] = {}
    newest: dict[str, tuple[datetime, dict[str, Any], int]] = {}
    deleted: dict[str, list[int]] = defaultdict(list)
    role_users: dict[str, list[int]] = defaultdict(list)
    role_members: dict[str, list[int]] = defaultdict(list)
    rereads: dict[str, list[int]] = defaultdict(list)
    ambiguous: set[str] = set()
    catalog = False
    targets = await load_targets(session)
    catalog_roles = {t.role_id for t in targets}

    def supersede(row_id: int, why: str) -> None:
        decisions[row_id] = Decision(EventStatus.IGNORED, why)

    def offer(user_id: str, version: datetime, obj: dict[str, Any], row_id: int) -> None:
        held = newest.get(user_id)
        if held is not None and version == held[0] and _mirrored(obj) != _mirrored(held[1]):
            # Two changes within one millisecond (Auth0's resolution): which came last
            # cannot be told from the events, so Auth0 is asked.
            ambiguous.add(user_id)
        if held is None or version > held[0]:
            if held is not None:
                supersede(held[2], "superseded by a newer event in the same batch")
            newest[user_id] = (version, obj, row_id)
        else:
            supersede(row_id, "superseded by a newer event in the same batch")

    for row in rows:
        body = row.body
        if row.source == EventSource.EVENT_STREAM:
            if row.type in USER_EVENTS:
                obj = body["data"]["object"]
                version = parse_timestamp(obj.get("updated_at")) or row.occurred_at
                offer(row.user_id, version, obj, row.id)
            elif row.type == "user.deleted":
                deleted[row.user_id].append(row.id)
            else:
                supersede(row.id, f"event type {row.type!r}: nothing this service mirrors")
            continue
        hint = classify_log(body, ctx, catalog_roles)
        if hint.kind == "ignore":
            supersede(row.id, hint.reason)
        elif hint.kind == "user_roles":
            for user_id in hint.keys:
                role_users[user_id].append(row.id)
        elif hint.kind == "role_members":
            role_members[hint.keys[0]].append(row.id)
        elif hint.kind == "user":
            rereads[hint.keys[0]].append(row.id)
        else:
            catalog = True
            decisions[row.id] = Decision(EventStatus.APPLIED, "the roles sync ran")

    # Without an Event Stream a user log entry re-reads the user: one call, then the
    # answer is applied like an event.
    for user_id, row_ids in rereads.items():
        try:
            obj = await ctx.auth0.get_user(user_id)
        except NotFound:
            deleted[user_id].extend(row_ids)
            continue
        ctx.count("users_reread")
        version = parse_timestamp(obj.get("updated_at")) or utcnow()
        for row_id in row_ids[:-1]:
            supersede(row_id, "the user was read once for several entries")
        offer(user_id, version, obj, row_ids[-1])

    await _apply_users(ctx, session, targets, newest, deleted, ambiguous, decisions)
    await _apply_roles(ctx, session, targets, role_users, role_members, decisions)
    return decisions, catalog


async def _apply_users(
    ctx: JobContext,
    session: AsyncSession,
    targets: list[Target],
    newest: dict[str, tuple[datetime, dict[str, Any], int]],
    deleted: dict[str, list[int]],
    ambiguous: set[str],
    decisions: dict[int, Decision],
) -> None:
    if not newest and not deleted:
        return
    users, events = User.__table__, Auth0Event.__table__
    candidates = sorted(set(newest) | set(deleted))
    held = {
        row.id: row
        for row in (
            await session.execute(
                sa.select(
                    users.c.id,
                    users.c.auth0_updated_at,
                    users.c.updated_at,
                    users.c.deletion_reason,
                    *(users.c[name] for name in PROFILE_COLUMNS),
                ).where(users.c.id.in_(candidates))
            )
        ).all()
    }
    # A deletion outranks every update, whenever it was delivered.
    tombstones = set(deleted) | set(
        (
            await session.execute(
                sa.select(events.c.user_id).where(
                    events.c.type == "user.deleted",
                    events.c.status.in_([EventStatus.APPLIED, EventStatus.IGNORED]),
                    events.c.user_id.in_(sorted(newest)),
                )
            )
        ).scalars()
    )
    rows = []
    for user_id, (version, obj, row_id) in newest.items():
        row = held.get(user_id)
        if user_id in tombstones or (row is not None and row.deletion_reason == GONE_REASON):
            decisions[row_id] = Decision(EventStatus.IGNORED, "the user was deleted in Auth0")
            continue
        current = (row.auth0_updated_at or row.updated_at) if row is not None else None
        if (
            row is not None
            and version == current
            and _mirrored(obj) != {name: row._mapping[name] for name in PROFILE_COLUMNS}
        ):
            ambiguous.add(user_id)
        if user_id in ambiguous:
            try:
                obj = await ctx.auth0.get_user(user_id)
            except NotFound:
                decisions[row_id] = Decision(EventStatus.IGNORED, "the user is gone from Auth0")
                continue
            ctx.count("users_reread")
            decisions[row_id] = Decision(
                EventStatus.APPLIED, "changes within one millisecond: the user was re-read"
            )
        elif current is not None and version <= current:
            decisions[row_id] = Decision(
                EventStatus.IGNORED,
                f"not newer than the row (event {version.isoformat()}, row {current.isoformat()})",
            )
            continue
        else:
            decisions[row_id] = Decision(EventStatus.APPLIED, "user written")
        converted = user_row(obj)
        if converted is None:
            raise ValueError("the user object has no user_id")
        rows.append(converted)
    gone = [user_id for user_id in deleted if user_id in held]
    for user_id, row_ids in deleted.items():
        for row_id in row_ids:
            decisions[row_id] = Decision(
                EventStatus.APPLIED if user_id in held else EventStatus.IGNORED,
                "user deleted" if user_id in held else "the user was never stored here",
            )
    if rows or gone:
        await apply_users(ctx, session, rows, gone)
        skipped = {
            example.split(":", 1)[0]: example for example in ctx.counts.get("conflict_examples", [])
        }
        for user_id, (_version, _obj, row_id) in newest.items():
            if user_id in skipped:
                decisions[row_id] = Decision(
                    EventStatus.IGNORED, f"not applied: {skipped[user_id]}"
                )
    if gone:
        # Auth0 deletes a user's role assignments with the user: their approved memberships
        # are revoked as the membership sync would (its guards included), with no call.
        now = utcnow()
        for target in targets:
            await apply_target(
                ctx,
                session,
                replace(target, members=MemberIds(), read_at=now, only_users=set(gone)),
            )


async def _apply_roles(
    ctx: JobContext,
    session: AsyncSession,
    targets: list[Target],
    role_users: dict[str, list[int]],
    role_members: dict[str, list[int]],
    decisions: dict[int, Decision],
) -> None:
    if role_users:
        await _users_first(ctx, session, sorted(role_users))
        read_at = utcnow()
        roles: dict[str, set[str]] = {}
        for user_id, row_ids in role_users.items():
            try:
                roles[user_id] = {r["id"] for r in await ctx.auth0.user_roles(user_id)}
            except NotFound:
                for row_id in row_ids:
                    decisions[row_id] = Decision(EventStatus.IGNORED, "the user is gone from Auth0")
                continue
            ctx.count("user_roles_read")
            for row_id in row_ids:
                decisions[row_id] = Decision(EventStatus.APPLIED, "the user's roles were re-read")
        if roles:
            readable = set(roles)
            for target in targets:
                scoped = replace(
                    target,
                    members=MemberIds(u for u, held in roles.items() if target.role_id in held),
                    read_at=read_at,
                    only_users=readable,
                )
                await apply_target(ctx, session, scoped)
    for role_id, row_ids in role_members.items():
        known = next((t for t in targets if t.role_id == role_id), None)
        if known is None:
            continue
        target = replace(known)
        await read_members(ctx, target, Progress("role members read"))
        if target.members is None:
            raise RuntimeError(f"the members of role {role_id} could not be read")
        await apply_target(ctx, session, target)
        for row_id in row_ids:
            decisions[row_id] = Decision(EventStatus.APPLIED, "the role's members were re-read")


async def _users_first(ctx: JobContext, session: AsyncSession, user_ids: list[str]) -> None:
    """A role hint can arrive before the user's own event (two streams, no order between
    them): a user not stored yet is read (one call) and written first, so the membership
    has its user."""
    users = User.__table__
    stored = set(
        (await session.execute(sa.select(users.c.id).where(users.c.id.in_(user_ids)))).scalars()
    )
    rows = []
    for user_id in user_ids:
        if user_id in stored:
            continue
        try:
            obj = await ctx.auth0.get_user(user_id)
        except NotFound:
            continue
        ctx.count("users_read_for_roles")
        if (row := user_row(obj)) is not None:
            rows.append(row)
    if rows:
        await apply_users(ctx, session, rows, [])


async def cleanup_events(ctx: JobContext) -> None:
    """Applied and ignored events older than EVENTS_RETENTION_DAYS go; parked events and
    deletions stay (a deletion outranks any update delivered after it)."""
    table = Auth0Event.__table__
    cutoff = utcnow() - timedelta(days=ctx.settings.events_retention_days)
    async with ctx.transaction() as session:
        result = await session.execute(
            sa.delete(table).where(
                table.c.status.in_([EventStatus.APPLIED, EventStatus.IGNORED]),
                table.c.received_at < cutoff,
                table.c.type != "user.deleted",
            )
        )
        ctx.count("deleted", result.rowcount or 0)  # type: ignore[attr-defined]  # CursorResult of a DELETE
