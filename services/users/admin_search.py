"""Which users an admin's list shows: the filters offered, and a query turned into SQL conditions.

Every read is narrowed to the caller's scope (services/identity/admin_scope.py) and leaves the
caller out.
"""

import logging
from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from db.models import (
    Group,
    Platform,
    User,
)
from schemas.users import (
    AdminFilter,
    AdminUserQuery,
    IsAdmin,
)
from services.errors import BadRequest, NotFound
from services.identity import admin_scope
from services.identity.admin_scope import Scope, Targets, administered_target
from services.kit.cache import TtlCache
from services.memberships.kinds import GROUPS, KINDS, PLATFORMS, Kind

logger = logging.getLogger("aai.admin")

AUTOMATIC = "(automatic)"  # who decided, when no person did

u = User.__table__
# Built once: an alias's column collection is costly to set up, and pages are hot.
updater = u.alias("updater")


async def filters(session: AsyncSession, scope: Scope) -> list[AdminFilter]:
    platforms = select(col(Platform.id), col(Platform.name)).where(
        col(Platform.removed_at).is_(None)
    )
    groups = select(col(Group.id), col(Group.name)).where(col(Group.removed_at).is_(None))
    if not scope.everything:
        platforms = platforms.where(col(Platform.id).in_(scope.platforms))
        groups = groups.where(col(Group.id).in_(scope.groups))
    return [
        AdminFilter(id=i, name=n, type="platform")
        for i, n in (await session.exec(platforms.order_by(col(Platform.name)))).all()
    ] + [
        AdminFilter(id=i, name=n, type="group")
        for i, n in (await session.exec(groups.order_by(col(Group.name)))).all()
    ]


async def is_platform_admin(session: AsyncSession, scope: Scope, platform_id: str) -> IsAdmin:
    platform = await session.get(Platform, platform_id)
    if platform is None or platform.removed_at is not None:
        raise NotFound(f"no platform {platform_id!r}")
    return IsAdmin(
        platform_id=platform_id, is_admin=scope.everything or platform_id in scope.platforms
    )


@dataclass(frozen=True)
class Selection:
    """A validated query: the platform and group it names, checked against the scope."""

    query: AdminUserQuery
    platform: str | None
    group: str | None


async def _known(
    session: AsyncSession, scope: Scope, cache: TtlCache[Targets] | None
) -> Scope | None:
    """Live targets a filter may name without a lookup: a platform or group admin's scope
    holds only live targets of the catalog (read at most ADMIN_SCOPE_CACHE_S ago); for a
    general admin, the live catalog cached as long. A hot read then makes no query besides
    its own (a lookup through the session cost a transaction around it: about 0.7 ms of a
    worker's CPU a request). Anything else is looked up, and refused with 404 or 403."""
    if not scope.everything:
        return scope
    if cache is None:
        return None
    return Scope(scope.caller_id, False, *await admin_scope.live_catalog(session, cache))


async def _filter_by(
    session: AsyncSession, scope: Scope, value: str, known: Scope | None
) -> tuple[Kind, str]:
    """`filter_by` takes a platform id or a group id (the portal sends an id from
    /admin/filters); a group's last path segment (the short form older portals send,
    e.g. `tsi`) is accepted too."""
    if known is not None:
        for kind in KINDS:
            if value in known.targets(kind):
                return kind, value
    if await session.get(Platform, value) is not None:
        return PLATFORMS, (await administered_target(session, scope, "platform", value)).id
    if await session.get(Group, value) is None:
        matches = (
            await session.exec(
                select(col(Group.id)).where(
                    col(Group.id).like(f"%/{like_literal(value)}", escape="\\"),
                    col(Group.removed_at).is_(None),
                )
            )
        ).all()
        if len(matches) != 1:
            raise NotFound(f"no platform or group {value!r}")
        value = matches[0]
    return GROUPS, (await administered_target(session, scope, "group", value)).id


async def _target(
    session: AsyncSession, scope: Scope, kind: Kind, value: str | None, known: Scope | None
) -> str | None:
    """The platform or group a filter names, if the caller administers it."""
    if not value:
        return None
    if known is not None and value in known.targets(kind):
        return value
    return (await administered_target(session, scope, kind.name, value)).id


async def select_users(
    session: AsyncSession,
    scope: Scope,
    query: AdminUserQuery,
    cache: TtlCache[Targets] | None = None,
) -> Selection:
    """The users a query selects, its platform and group checked against the caller's
    scope (`cache`: the API's scope cache, which also holds the live catalog)."""
    if query.approval_status and (query.platform_approval_status or query.group_approval_status):
        raise BadRequest(
            "approval_status cannot be combined with platform_approval_status or "
            "group_approval_status; use one or the other"
        )
    known = None
    if query.platform or query.group or query.filter_by:
        known = await _known(session, scope, cache)
    platform = await _target(session, scope, PLATFORMS, query.platform, known)
    group = await _target(session, scope, GROUPS, query.group, known)
    if query.filter_by:
        kind, target = await _filter_by(session, scope, query.filter_by, known)
        chosen = platform if kind is PLATFORMS else group
        if chosen is not None and chosen != target:
            raise BadRequest(f"filter_by={query.filter_by!r} contradicts {kind.name}={chosen!r}")
        if kind is PLATFORMS:
            platform = target
        else:
            group = target
    return Selection(query, platform, group)


def like_literal(term: str) -> str:
    """`term` for a LIKE pattern (escape character `\\`) in which `%`, `_` and `\\`
    match themselves: `coh%` must not find every group starting with "coh"."""
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def contains(
    column: sa.ColumnElement[str] | sa.orm.Mapped[str | None], term: str
) -> sa.ColumnElement[bool]:
    """Case-insensitive "part of" match that the trigram indexes on lower(email) and
    lower(username) answer; `%`, `_` and `\\` in the term match themselves."""
    return sa.func.lower(column).like(f"%{like_literal(term.lower())}%", escape="\\")


def where_clauses(scope: Scope, selection: Selection) -> list[sa.ColumnElement[bool]]:
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
