"""A user's own platform and group memberships: reading them and requesting groups.

Reads come from Postgres only (no Auth0 call). A group request inserts with
`ON CONFLICT DO NOTHING`, so two identical requests at once make one row.
"""

import logging
import uuid

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from db.base import utcnow
from db.bulk import dialect_insert
from db.models import (
    Group,
    GroupMembership,
    Platform,
    PlatformMembership,
    User,
)
from db.types import ApprovalStatus
from schemas.memberships import (
    GroupMembershipBrief,
    GroupRequestItem,
    GroupRequestResult,
    PlatformMembershipBrief,
)
from schemas.users import AdminGroup, AdminPlatform
from services.auth0 import Auth0Gateway
from services.errors import Conflict, NotFound
from services.identity.admin_scope import Scope
from services.kit.cache import TtlCache
from services.memberships.kinds import GROUPS, MembershipHistory
from services.memberships.notices import notify_request
from services.memberships.records import record_history
from services.settings import Settings
from services.users.signed_in import ensure_user

logger = logging.getLogger("aai.memberships")

CONFLICT_MESSAGES = {
    ApprovalStatus.PENDING: "a request for this group is already waiting for approval",
    ApprovalStatus.APPROVED: "you are already a member of this group",
    ApprovalStatus.REVOKED: "your access to this group was revoked; contact support to have it restored",
}


async def platform_memberships(
    session: AsyncSession, user_id: str, *, statuses: set[ApprovalStatus] | None = None
) -> list[PlatformMembershipBrief]:
    statement = (
        select(
            col(PlatformMembership.platform_id),
            col(Platform.name),
            col(PlatformMembership.approval_status),
        )
        .join(Platform, col(Platform.id) == col(PlatformMembership.platform_id))
        .where(col(PlatformMembership.user_id) == user_id)
        .order_by(col(PlatformMembership.platform_id))
    )
    if statuses is not None:
        statement = statement.where(col(PlatformMembership.approval_status).in_(statuses))
    rows = (await session.exec(statement)).all()
    return [
        PlatformMembershipBrief(platform_id=p, platform_name=n, approval_status=s)
        for p, n, s in rows
    ]


async def group_memberships(
    session: AsyncSession, user_id: str, *, statuses: set[ApprovalStatus] | None = None
) -> list[GroupMembershipBrief]:
    statement = (
        select(
            col(GroupMembership.group_id),
            col(Group.name),
            col(Group.short_name),
            col(GroupMembership.approval_status),
        )
        .join(Group, col(Group.id) == col(GroupMembership.group_id))
        .where(col(GroupMembership.user_id) == user_id)
        .order_by(col(GroupMembership.group_id))
    )
    if statuses is not None:
        statement = statement.where(col(GroupMembership.approval_status).in_(statuses))
    rows = (await session.exec(statement)).all()
    return [
        GroupMembershipBrief(group_id=g, group_name=n, group_short_name=s, approval_status=a)
        for g, n, s, a in rows
    ]


VISIBLE = {ApprovalStatus.PENDING, ApprovalStatus.APPROVED, ApprovalStatus.REJECTED}


async def administered_platforms(session: AsyncSession, scope: Scope) -> list[AdminPlatform]:
    statement = (
        select(col(Platform.id), col(Platform.name))
        .where(col(Platform.removed_at).is_(None))
        .order_by(col(Platform.id))
    )
    if not scope.everything:
        statement = statement.where(col(Platform.id).in_(scope.platforms))
    return [AdminPlatform(id=i, name=n) for i, n in (await session.exec(statement)).all()]


async def administered_groups(session: AsyncSession, scope: Scope) -> list[AdminGroup]:
    statement = (
        select(col(Group.id), col(Group.name), col(Group.short_name))
        .where(col(Group.removed_at).is_(None))
        .order_by(col(Group.id))
    )
    if not scope.everything:
        statement = statement.where(col(Group.id).in_(scope.groups))
    return [
        AdminGroup(id=i, name=n, short_name=s) for i, n, s in (await session.exec(statement)).all()
    ]


async def request_groups(
    session: AsyncSession,
    auth0: Auth0Gateway,
    settings: Settings,
    user_id: str,
    items: list[GroupRequestItem],
    admins_cache: TtlCache[frozenset[str]],
) -> list[GroupRequestResult]:
    """Request each group; raises when none of them could be requested."""
    user = await ensure_user(session, auth0, user_id)
    results, requested = [], []
    for item in items:
        result, entry = await _request_group(session, user, item)
        results.append(result)
        if entry is not None:
            requested.append((result.group_id, item.request_reason, entry.id))
    if requested:
        await notify_request(session, auth0, settings, user, GROUPS, requested, admins_cache)
        return results
    detail = "; ".join(f"{r.group_id}: {r.message}" for r in results)
    body = [r.model_dump() for r in results]
    if all(result.status == "not_found" for result in results):
        raise NotFound(detail, results=body)
    raise Conflict(detail, results=body)


async def _request_group(
    session: AsyncSession, user: User, item: GroupRequestItem
) -> tuple[GroupRequestResult, MembershipHistory | None]:
    """The outcome, and the history row of the pending request it made (if it made one)."""
    group = await session.get(Group, item.group_id)
    if group is None or group.removed_at is not None:
        return GroupRequestResult(
            group_id=item.group_id, status="not_found", message="no such group"
        ), None
    now = utcnow()
    table = GroupMembership.__table__
    inserted = (
        await session.execute(
            dialect_insert(session, table)
            .values(
                id=uuid.uuid4(),
                group_id=group.id,
                user_id=user.id,
                approval_status=ApprovalStatus.PENDING,
                request_reason=item.request_reason,
                updated_by_id=user.id,
                created_at=now,
                updated_at=now,
            )
            .on_conflict_do_nothing(index_elements=["group_id", "user_id"])
            .returning(table.c.id)
        )
    ).scalar_one_or_none()
    if inserted is not None:
        entry = record_history(
            session,
            await session.get_one(GroupMembership, inserted),
            reason=item.request_reason,
            actor=user.id,
        )
        await session.flush()
        return GroupRequestResult(
            group_id=group.id,
            status="pending",
            message="request sent to the group's administrators",
        ), entry

    membership = (
        await session.exec(
            select(GroupMembership)
            .where(
                col(GroupMembership.group_id) == group.id, col(GroupMembership.user_id) == user.id
            )
            .with_for_update()
        )
    ).one()
    if membership.approval_status is ApprovalStatus.REJECTED:
        membership.approval_status = ApprovalStatus.PENDING
        membership.request_reason = item.request_reason
        membership.rejection_reason = None
        membership.updated_by_id = user.id
        membership.updated_at = now
        await session.flush()
        entry = record_history(session, membership, reason=item.request_reason, actor=user.id)
        await session.flush()
        return GroupRequestResult(
            group_id=group.id, status="pending", message="request sent again"
        ), entry
    return GroupRequestResult(
        group_id=group.id, status="conflict", message=CONFLICT_MESSAGES[membership.approval_status]
    ), None
