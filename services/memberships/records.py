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


# Per kind: the history table and the membership's target column.
HISTORY: dict[type, tuple[type[PlatformMembershipHistory | GroupMembershipHistory], str]] = {
    PlatformMembership: (PlatformMembershipHistory, "platform_id"),
    GroupMembership: (GroupMembershipHistory, "group_id"),
}


def record_history(
    session: AsyncSession, membership: Membership, *, reason: str | None, actor: str | None
) -> PlatformMembershipHistory | GroupMembershipHistory:
    """Add the history row for the state `membership` is in now (its id after a flush)."""
    model, target = HISTORY[type(membership)]
    entry = model(
        membership_id=membership.id,
        user_id=membership.user_id,
        approval_status=membership.approval_status,
        reason=reason,
        updated_by_id=actor,
        **{target: getattr(membership, target)},
    )
    session.add(entry)
    return entry


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
    model = PlatformMembership if kind == "platform" else GroupMembership
    membership: Membership = model(
        user_id=user_id,
        approval_status=status,
        request_reason=request_reason,
        updated_by_id=actor,
        **{HISTORY[model][1]: target_id},
    )
    session.add(membership)
    await session.flush()
    record_history(session, membership, reason=reason, actor=actor)
    return membership
