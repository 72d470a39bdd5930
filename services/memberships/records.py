"""Writing memberships with their history: every state a membership enters gets exactly
one history row, whichever flow (registration, a request, an admin decision) caused it."""

from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from db.types import ApprovalStatus
from services.memberships.kinds import Membership, MembershipHistory, kind_named, kind_of


def record_history(
    session: AsyncSession, membership: Membership, *, reason: str | None, actor: str | None
) -> MembershipHistory:
    """Add the history row for the state `membership` is in now (its id after a flush)."""
    of = kind_of(membership)
    target: dict[str, Any] = {of.column: of.target_of(membership)}
    entry = of.history_model(
        membership_id=membership.id,
        user_id=membership.user_id,
        approval_status=membership.approval_status,
        reason=reason,
        updated_by_id=actor,
        **target,
    )
    session.add(entry)
    return entry


async def add_membership(
    session: AsyncSession,
    kind_name: str,
    target_id: str,
    user_id: str,
    status: ApprovalStatus,
    *,
    request_reason: str | None = None,
    reason: str | None = None,
    actor: str | None = None,
) -> Membership:
    """A new membership and its first history row."""
    of = kind_named(kind_name)
    target: dict[str, Any] = {of.column: target_id}
    membership: Membership = of.membership_model(
        user_id=user_id,
        approval_status=status,
        request_reason=request_reason,
        updated_by_id=actor,
        **target,
    )
    session.add(membership)
    await session.flush()
    record_history(session, membership, reason=reason, actor=actor)
    return membership
