"""Platforms and groups: the one registry of how the two kinds of target differ.

They differ only in their tables and in the name of the column that points at the target
(`platform_id` / `group_id`); every rule is the same. Code that needs "the platform or
the group version" asks `kind_named(name)` (or iterates `KINDS`) instead of comparing strings.
"""

from dataclasses import dataclass
from typing import Any, Literal, cast, get_args

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from db.models import (
    Group,
    GroupAdminRole,
    GroupMembership,
    GroupMembershipHistory,
    Platform,
    PlatformAdminRole,
    PlatformMembership,
    PlatformMembershipHistory,
)
from services.errors import NotFound

KindName = Literal["platform", "group"]
Membership = PlatformMembership | GroupMembership
MembershipHistory = PlatformMembershipHistory | GroupMembershipHistory
Target = Platform | Group


@dataclass(frozen=True)
class Kind:
    name: KindName
    membership_model: type[PlatformMembership] | type[GroupMembership]
    history_model: type[PlatformMembershipHistory] | type[GroupMembershipHistory]
    catalog_model: type[Platform] | type[Group]
    link_model: type[PlatformAdminRole] | type[GroupAdminRole]
    column: str  # the target's id column in memberships, their history and admin links

    @property
    def memberships(self) -> sa.Table:
        return self.membership_model.__table__

    @property
    def history(self) -> sa.Table:
        return self.history_model.__table__

    @property
    def catalog(self) -> sa.Table:
        return self.catalog_model.__table__

    @property
    def links(self) -> sa.Table:
        return self.link_model.__table__

    @property
    def target(self) -> sa.Column[str]:
        """The membership table's target column."""
        return self.memberships.c[self.column]

    @property
    def link_target(self) -> sa.Column[str]:
        return self.links.c[self.column]

    @property
    def history_target(self) -> sa.Column[str]:
        return self.history.c[self.column]

    def target_of(self, row: Any) -> str:
        """The target id of a membership, history row or admin link of this kind."""
        return str(getattr(row, self.column))

    # The models differ per kind, so a type checker sees their common base in a plain
    # `session.get`/`select`; these say what comes back.

    async def find_target(
        self, session: AsyncSession, target_id: str, *, populate_existing: bool = False
    ) -> Target | None:
        found = await session.get(
            self.catalog_model, target_id, populate_existing=populate_existing
        )
        return cast(Target | None, found)

    async def locked_membership(
        self, session: AsyncSession, target_id: str, user_id: str
    ) -> Membership | None:
        """The user's membership of the target, locked for the rest of the transaction."""
        model = self.membership_model
        statement = (
            select(model)
            .where(col(getattr(model, self.column)) == target_id, col(model.user_id) == user_id)
            .with_for_update()
        )
        return cast(Membership | None, (await session.exec(statement)).first())


PLATFORMS = Kind(
    "platform",
    PlatformMembership,
    PlatformMembershipHistory,
    Platform,
    PlatformAdminRole,
    "platform_id",
)
GROUPS = Kind("group", GroupMembership, GroupMembershipHistory, Group, GroupAdminRole, "group_id")
KINDS = (PLATFORMS, GROUPS)
_BY_NAME: dict[str, Kind] = {k.name: k for k in KINDS}
_BY_MEMBERSHIP: dict[type, Kind] = {k.membership_model: k for k in KINDS}
assert set(_BY_NAME) == set(get_args(KindName))


def kind_named(name: str) -> Kind:
    try:
        return _BY_NAME[name]
    except KeyError:
        raise NotFound(f"no kind {name!r}: platform or group") from None


def kind_of(membership: Membership) -> Kind:
    return _BY_MEMBERSHIP[type(membership)]
