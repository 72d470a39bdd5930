"""Which users an admin may see and act on.

A general admin (a role in ADMIN_ROLES) sees everyone. Any other admin sees the users
with a membership (in any state) of a platform or group they administer; the catalog
in the database decides which of the admin roles they hold name real platforms and
groups.

Writes are held to more than the token says (`confirmed_scope`): the caller's admin
roles are confirmed with Auth0, so a removed role stops working within a minute.
Account actions (delete, restore, email, username, verification and password-reset
emails) by a platform or group admin reach only *plain* users with a pending or
approved membership they administer (`manageable_user`): anyone holding an
ADMIN_ROLES role, a `{ns}/role/*/admin` role or a role linked as some platform's or
group's admin role is out of their reach, judged by the target's roles in Auth0 now.
Otherwise a Galaxy admin could move a general admin's email to their own address and
have Auth0 send them the password reset. General admins act on anyone but themselves.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from db.models import (
    Auth0Role,
    Group,
    GroupAdminRole,
    Platform,
    PlatformAdminRole,
    User,
)
from db.types import ApprovalStatus
from services.errors import Forbidden, NotFound
from services.identity.live_roles import LiveRoles
from services.identity.role_scheme import RoleScheme, permissions_for
from services.identity.tokens import CurrentUser
from services.kit.cache import TtlCache
from services.memberships.kinds import GROUPS, KINDS, PLATFORMS, Kind, kind_named
from services.settings import Settings


@dataclass(frozen=True)
class Scope:
    caller_id: str
    everything: bool
    platforms: frozenset[str]  # administered platforms that exist
    groups: frozenset[str]  # administered groups that exist (full ids)

    def targets(self, kind: Kind) -> frozenset[str]:
        return self.platforms if kind is PLATFORMS else self.groups

    def covers(self, kind: Kind) -> bool:
        return self.everything or bool(self.targets(kind))

    def administers(self, of: Kind, target_id: str) -> bool:
        return self.everything or target_id in self.targets(of)

    @property
    def is_admin(self) -> bool:
        return self.everything or bool(self.platforms or self.groups)

    def members(
        self,
        kind: Kind,
        *,
        targets: Sequence[str] | None = None,
        status: ApprovalStatus | Sequence[ApprovalStatus] | None = None,
    ) -> sa.Select[tuple[str]]:
        """User ids with a membership of `kind`: of `targets` if given, else any this scope
        covers; in `status` (one or several) if given."""
        statement = sa.select(kind.memberships.c.user_id)
        if targets is None and not self.everything:
            targets = list(self.targets(kind))
        if targets is not None:
            statement = statement.where(kind.target.in_(targets))
        if isinstance(status, ApprovalStatus):
            statement = statement.where(kind.memberships.c.approval_status == status.value)
        elif status is not None:
            statement = statement.where(
                kind.memberships.c.approval_status.in_([s.value for s in status])
            )
        return statement

    def has_membership(
        self,
        user_id: sa.ColumnElement[str],
        kind: Kind,
        *,
        targets: Sequence[str] | None = None,
        status: ApprovalStatus | Sequence[ApprovalStatus] | None = None,
    ) -> sa.ColumnElement[bool]:
        if targets is None and not self.covers(kind):
            return sa.false()
        members = self.members(kind, targets=targets, status=status)
        return members.where(kind.memberships.c.user_id == user_id).exists()

    def membership_clause(
        self,
        user_id: sa.ColumnElement[str],
        *,
        status: Sequence[ApprovalStatus] | None = None,
    ) -> sa.ColumnElement[bool]:
        """True for users with any membership inside this scope (in `status`, if given)."""
        return sa.or_(*(self.has_membership(user_id, kind, status=status) for kind in KINDS))


Targets = tuple[frozenset[str], frozenset[str]]


async def administered(
    session: AsyncSession, caller: CurrentUser, cache: TtlCache[Targets] | None = None
) -> Scope:
    """What the caller administers; empty sets for someone who administers nothing.

    A platform or group is administered by the `{ns}/role/{id}/admin` role named after
    it, and by any other role a general admin linked to it (`/biocommons-admin`). The
    answer depends on the token's roles and the catalog only, so each API process may
    reuse it for ADMIN_SCOPE_CACHE_S seconds: it is asked on every admin request.
    """
    if caller.permissions.general_admin:
        return Scope(caller.id, True, frozenset(), frozenset())

    async def lookup() -> Targets:
        return await _administered_targets(session, caller)

    platforms, groups = await (cache.get(caller.roles, lookup) if cache else lookup())
    return Scope(caller.id, False, platforms, groups)


async def _administered_targets(session: AsyncSession, caller: CurrentUser) -> Targets:
    permissions = caller.permissions
    roles = list(caller.roles)
    linked_platforms = (
        select(col(PlatformAdminRole.platform_id))
        .join(Auth0Role, col(Auth0Role.id) == col(PlatformAdminRole.role_id))
        .where(col(Auth0Role.name).in_(roles), col(Auth0Role.removed_at).is_(None))
    )
    linked_groups = (
        select(col(GroupAdminRole.group_id))
        .join(Auth0Role, col(Auth0Role.id) == col(GroupAdminRole.role_id))
        .where(col(Auth0Role.name).in_(roles), col(Auth0Role.removed_at).is_(None))
    )
    # One round trip for both kinds: this runs on every admin request.
    statement = sa.union_all(
        sa.select(sa.literal("platform").label("kind"), col(Platform.id)).where(
            col(Platform.removed_at).is_(None),
            sa.or_(
                col(Platform.id).in_(permissions.admin_of_platforms),
                col(Platform.id).in_(linked_platforms),
            ),
        ),
        sa.select(sa.literal("group").label("kind"), col(Group.id)).where(
            col(Group.removed_at).is_(None),
            sa.or_(
                col(Group.id).in_(permissions.admin_of_groups), col(Group.id).in_(linked_groups)
            ),
        ),
    )
    rows = (await session.execute(statement)).all()
    return (
        frozenset(target for name, target in rows if name == PLATFORMS.name),
        frozenset(target for name, target in rows if name == GROUPS.name),
    )


async def scope_for(
    session: AsyncSession, caller: CurrentUser, cache: TtlCache[Targets] | None = None
) -> Scope:
    """The caller's scope; only admins get one."""
    scope = await administered(session, caller, cache)
    if not scope.is_admin:
        raise Forbidden("only platform, group and general admins may use the admin API")
    return scope


# The scope cache's entry for the whole live catalog (a general admin's targets); its other
# keys are token role sets. Cleared with the rest on any catalog write in this process.
LIVE_CATALOG = "live catalog"


async def live_catalog(session: AsyncSession, cache: TtlCache[Targets] | None) -> Targets:
    """Every live platform and group id, read at most ADMIN_SCOPE_CACHE_S ago (as a
    platform admin's scope is)."""

    async def lookup() -> Targets:
        platforms = await session.exec(
            select(col(Platform.id)).where(col(Platform.removed_at).is_(None))
        )
        groups = await session.exec(select(col(Group.id)).where(col(Group.removed_at).is_(None)))
        return frozenset(platforms.all()), frozenset(groups.all())

    return await (cache.get(LIVE_CATALOG, lookup) if cache else lookup())


async def administered_target(
    session: AsyncSession, scope: Scope, kind_name: str, target_id: str
) -> Platform | Group:
    """The live platform or group, if the caller administers it: 404 when there is no such
    thing, 403 when it is someone else's."""
    of = kind_named(kind_name)
    target = await of.find_target(session, target_id)
    if target is None or target.removed_at is not None:
        raise NotFound(f"no {kind_name} {target_id!r}")
    if not scope.administers(of, target_id):
        raise Forbidden(f"you do not administer {kind_name} {target_id!r}")
    return target


async def visible_user(session: AsyncSession, scope: Scope, user_id: str) -> User:
    """The user, if the caller may see them."""
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound(f"no user {user_id!r}")
    if scope.everything:
        return user
    inside = await session.scalar(sa.select(scope.membership_clause(sa.literal(user_id))))
    if not inside:
        raise Forbidden(f"user {user_id!r} has no membership of a platform or group you administer")
    return user


async def confirmed_scope(
    session: AsyncSession,
    caller: CurrentUser,
    live_roles: LiveRoles,
    settings: Settings,
    cache: TtlCache[Targets] | None = None,
) -> Scope:
    """The caller's scope for a write: only the roles the token names *and* Auth0 says
    the caller still holds count. Non-admins are refused before Auth0 is asked."""
    scope = await scope_for(session, caller, cache)
    held = caller.roles & await live_roles.of(caller.id)
    if held == caller.roles:
        return scope
    still = CurrentUser(
        id=caller.id,
        roles=held,
        permissions=permissions_for(
            held, RoleScheme(settings.auth0_role_namespace), frozenset(settings.admin_roles)
        ),
        access_token=caller.access_token,
    )
    scope = await administered(session, still, cache)
    if not scope.is_admin:
        raise Forbidden("your admin role has been removed; sign in again")
    return scope


# A membership that makes a user someone the target's admins answer for.
LIVE_MEMBERSHIP = (ApprovalStatus.PENDING, ApprovalStatus.APPROVED)


async def manageable_user(
    session: AsyncSession,
    scope: Scope,
    user_id: str,
    *,
    live_roles: LiveRoles,
    settings: Settings,
) -> User:
    """The user, if the caller may change their account. Admins change their own account
    through /me; a general admin may change anyone else's; a platform or group admin only
    a plain user with a pending or approved membership they administer."""
    user = await visible_user(session, scope, user_id)
    if user_id == scope.caller_id:
        raise Forbidden("use /me to change your own account")
    if scope.everything:
        return user
    inside = await session.scalar(
        sa.select(scope.membership_clause(sa.literal(user_id), status=LIVE_MEMBERSHIP))
    )
    if not inside:
        raise Forbidden(
            "only general admins, and admins of a platform or group the user has a pending "
            "or approved membership of, may change their account"
        )
    if await privileged_roles(session, settings, await live_roles.of(user_id)):
        raise Forbidden("this user is an admin: only general admins may change their account")
    return user


async def privileged_roles(
    session: AsyncSession, settings: Settings, roles: frozenset[str]
) -> frozenset[str]:
    """Which of `roles` make their holder an admin of anything: ADMIN_ROLES, any
    `{ns}/role/*/admin` (whether or not its platform or group exists yet) and any role
    linked as a platform's or group's admin role."""
    scheme = RoleScheme(settings.auth0_role_namespace)
    found = {r for r in roles if r in settings.admin_roles or scheme.is_admin_role(r)}
    rest = list(roles - found)
    if rest:
        found.update(row.name for row in (await session.execute(admin_links(rest))).all())
    return frozenset(found)


def admin_links(role_names: Sequence[str]) -> sa.CompoundSelect:
    """Rows (name, kind, target) for each live role among `role_names` that a general
    admin linked as a platform's or group's admin role."""
    return sa.union_all(
        *(
            sa.select(
                col(Auth0Role.name).label("name"),
                sa.literal(kind.name).label("kind"),
                kind.link_target.label("target"),
            )
            .join(kind.links, kind.links.c.role_id == col(Auth0Role.id))
            .where(col(Auth0Role.name).in_(role_names), col(Auth0Role.removed_at).is_(None))
            for kind in KINDS
        )
    )
