"""Admins deciding on memberships: a validated state machine, history, email, and the
Auth0 role change kept in step through the outbox.

The membership change and its outbox row are written together; the Auth0 call is then
tried at once (bounded). If it succeeds the outbox row is marked done in the same unit of
work, with a compensation that undoes the role change should the commit fail; if Auth0 is
down the answer says the change is pending and the scheduler's outbox job completes it.
"""

from dataclasses import dataclass

from sqlmodel.ext.asyncio.session import AsyncSession

from db.base import utcnow
from db.engine import on_rollback
from db.models import (
    GroupMembership,
    PlatformMembership,
    User,
)
from db.types import ApprovalStatus, OutboxOperation
from schemas.memberships import MembershipActionResult
from services.auth0 import Auth0Gateway
from services.email.queue import enqueue
from services.errors import Conflict, Forbidden, NotFound
from services.identity.admin_scope import Scope, administered_target
from services.memberships import outbox
from services.memberships.kinds import Membership, kind_named, kind_of
from services.memberships.records import record_history
from services.settings import Settings
from services.users.signed_in import ensure_user

# action → (states it may start from, the state it leads to)
TRANSITIONS: dict[str, tuple[frozenset[ApprovalStatus], ApprovalStatus]] = {
    "approve": (
        frozenset({ApprovalStatus.PENDING, ApprovalStatus.REVOKED}),
        ApprovalStatus.APPROVED,
    ),
    "revoke": (
        frozenset({ApprovalStatus.APPROVED, ApprovalStatus.PENDING}),
        ApprovalStatus.REVOKED,
    ),
    "reject": (frozenset({ApprovalStatus.PENDING}), ApprovalStatus.REJECTED),
    "unreject": (frozenset({ApprovalStatus.REJECTED}), ApprovalStatus.PENDING),
}
PLATFORM_ACTIONS = frozenset({"approve", "revoke"})


@dataclass(frozen=True)
class Target:
    kind: str  # platform | group
    id: str
    name: str
    role_id: str | None


async def _target(session: AsyncSession, scope: Scope, kind: str, target_id: str) -> Target:
    row = await administered_target(session, scope, kind, target_id)
    return Target(kind, row.id, row.name, row.access_role_id)


async def _membership(session: AsyncSession, target: Target, user_id: str) -> Membership:
    if await session.get(User, user_id) is None:
        raise NotFound(f"no user {user_id!r}")
    membership = await kind_named(target.kind).locked_membership(session, target.id, user_id)
    if membership is None:
        raise NotFound(f"user {user_id!r} has no membership of {target.kind} {target.id!r}")
    return membership


async def decide(
    session: AsyncSession,
    auth0: Auth0Gateway,
    settings: Settings,
    scope: Scope,
    *,
    kind: str,
    target_id: str,
    user_id: str,
    action: str,
    reason: str | None = None,
) -> MembershipActionResult:
    if kind == "platform" and action not in PLATFORM_ACTIONS:
        raise NotFound(f"platform memberships cannot be {action}ed")
    target = await _target(session, scope, kind, target_id)
    if user_id == scope.caller_id:
        raise Forbidden("admins cannot decide on their own memberships")
    actor = await ensure_user(session, auth0, scope.caller_id)
    membership = await _membership(session, target, user_id)
    allowed_from, new_status = TRANSITIONS[action]
    current = membership.approval_status
    if current is new_status and action != "unreject":
        # A retried request: nothing to grant or email twice.
        return MembershipActionResult(updated=False, approval_status=current, auth0="not_needed")
    if current not in allowed_from:
        raise Conflict(
            f"cannot {action} a membership that is {current.value}", current_status=current.value
        )

    now = utcnow()
    membership.approval_status = new_status
    membership.updated_by_id = actor.id
    membership.updated_at = now
    if new_status is ApprovalStatus.APPROVED:
        membership.revocation_reason = None
        if isinstance(membership, GroupMembership):
            membership.rejection_reason = None
    elif new_status is ApprovalStatus.REVOKED:
        membership.revocation_reason = reason
    elif new_status is ApprovalStatus.REJECTED:
        assert isinstance(membership, GroupMembership)
        membership.rejection_reason = reason
    record_history(session, membership, reason=reason, actor=actor.id)

    operation = None
    if new_status is ApprovalStatus.APPROVED:
        operation = OutboxOperation.GRANT_ROLE
    elif new_status is ApprovalStatus.REVOKED and current is ApprovalStatus.APPROVED:
        operation = OutboxOperation.REVOKE_ROLE
    await _email(session, settings, membership, target, reason)
    await session.flush()
    if operation is None or target.role_id is None:
        return MembershipActionResult(updated=True, approval_status=new_status, auth0="not_needed")
    entry = await outbox.queue(
        session, operation, user_id=user_id, role_id=target.role_id, requested_by=actor.id
    )
    # Bounded by the gateway's request deadline; past it the scheduler's outbox job retries.
    outcome = await outbox.deliver(auth0, entry, max_attempts=settings.outbox_max_attempts)
    if outcome == "delivered":
        role_id = target.role_id
        undo = auth0.remove_roles if operation is OutboxOperation.GRANT_ROLE else auth0.assign_roles
        on_rollback(session, lambda: undo(user_id, [role_id]))
    await session.flush()
    auth0_state = {"delivered": "done", "retry_later": "pending", "failed": "failed"}[outcome]
    return MembershipActionResult(updated=True, approval_status=new_status, auth0=auth0_state)


TEMPLATES = {
    ApprovalStatus.APPROVED: "membership_approved",
    ApprovalStatus.REVOKED: "membership_revoked",
    ApprovalStatus.REJECTED: "membership_rejected",
    ApprovalStatus.PENDING: "membership_reconsidered",
}


async def _email(
    session: AsyncSession,
    settings: Settings,
    membership: PlatformMembership | GroupMembership,
    target: Target,
    reason: str | None,
) -> None:
    user = await session.get(User, membership.user_id)
    if user is None or not user.email:
        return
    status = membership.approval_status
    context: dict[str, object] = {"target_name": target.name}
    if status in (ApprovalStatus.REVOKED, ApprovalStatus.REJECTED):
        context["reason"] = reason
    kind = kind_of(membership).name
    await enqueue(
        session,
        settings,
        TEMPLATES[status],
        to=user.email,
        context=context,
        # One email per decision, whatever retries the request sees.
        dedupe_key=f"decision:{kind}:{membership.id}:{status.value}:{membership.updated_at:%Y%m%dT%H%M%S%f}",
    )
