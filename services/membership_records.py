"""Writing memberships with their history: every state a membership enters gets exactly
one history row, whichever flow (registration, a request, an admin decision) caused it."""

from sqlmodel.ext.asyncio.session import AsyncSession

from db.models import (
    GroupMembership,
    GroupMembershipHistory,
    PlatformMembership,
    PlatformMembershipHistory,
)
from db.types import ApprovalStatus

Membership = PlatformMembership | GroupMembership


def record_history(
    session: AsyncSession, membership: Membership, *, reason: str | None, actor: str | None
) -> None:
    """Add the history row for the state `membership` is in now."""
    if isinstance(membership, PlatformMembership):
        session.add(
            PlatformMembershipHistory(
                membership_id=membership.id,
                platform_id=membership.platform_id,
                user_id=membership.user_id,
                approval_status=membership.approval_status,
                reason=reason,
                updated_by_id=actor,
            )
        )
    else:
        session.add(
            GroupMembershipHistory(
                membership_id=membership.id,
                group_id=membership.group_id,
                user_id=membership.user_id,
                approval_status=membership.approval_status,
                reason=reason,
                updated_by_id=actor,
            )
        )


async def add_membership(
    session: AsyncSession,
    kind: str,
    target_id: str,
    user_id: str,
    status: ApprovalStatus,
    *,
    request_reason: str | None = None,
    reason: str | None = None,
    actor: str | None = None,
) -> Membership:
    """A new membership and its first history row."""
    membership: Membership
    if kind == "platform":
        membership = PlatformMembership(
            platform_id=target_id,
            user_id=user_id,
            approval_status=status,
            request_reason=request_reason,
            updated_by_id=actor,
        )
    else:
        membership = GroupMembership(
            group_id=target_id,
            user_id=user_id,
            approval_status=status,
            request_reason=request_reason,
            updated_by_id=actor,
        )
    session.add(membership)
    await session.flush()
    record_history(session, membership, reason=reason, actor=actor)
    return membership
