"""Use cases of the signed-in user's own pages."""

from sqlmodel.ext.asyncio.session import AsyncSession

from db.types import ApprovalStatus
from schemas.me import PendingPublic, ProfilePublic
from services.auth0 import Auth0Gateway
from services.memberships import VISIBLE, group_memberships, platform_memberships
from services.users import ensure_user


async def profile(session: AsyncSession, auth0: Auth0Gateway, user_id: str) -> ProfilePublic:
    """The profile from Postgres (revoked memberships left out); no Auth0 call once synced."""
    user = await ensure_user(session, auth0, user_id)
    return ProfilePublic(
        user_id=user.id,
        name=user.name,
        email=user.email,
        email_verified=user.email_verified,
        username=user.username,
        picture=user.picture,
        given_name=user.given_name,
        family_name=user.family_name,
        created_at=user.created_at,
        last_login=user.last_login,
        platform_memberships=await platform_memberships(session, user.id, statuses=VISIBLE),
        group_memberships=await group_memberships(session, user.id, statuses=VISIBLE),
    )


async def pending(session: AsyncSession, user_id: str) -> PendingPublic:
    only_pending = {ApprovalStatus.PENDING}
    return PendingPublic(
        platforms=await platform_memberships(session, user_id, statuses=only_pending),
        groups=await group_memberships(session, user_id, statuses=only_pending),
    )
