"""Admins changing someone else's account: delete, restore, email, username, and the
verification and password-reset emails. General admins may change anyone's but their
own; platform and group admins only a plain user's with a pending or approved
membership they administer (services/admin_scope.manageable_user). `scope` is the
caller's confirmed scope (admin_scope.confirmed_scope).
"""

from sqlmodel.ext.asyncio.session import AsyncSession

from db.models import User
from schemas.profile import Done
from services import accounts
from services.admin_scope import Scope, manageable_user
from services.auth0 import Auth0Gateway
from services.errors import BadRequest, Conflict, InvalidFields
from services.live_roles import LiveRoles
from services.registration import email_registered
from services.settings import Settings
from services.users import ensure_user


async def _actor(session: AsyncSession, auth0: Auth0Gateway, scope: Scope) -> User:
    return await ensure_user(session, auth0, scope.caller_id)


async def delete_user(
    session: AsyncSession,
    auth0: Auth0Gateway,
    settings: Settings,
    live_roles: LiveRoles,
    scope: Scope,
    user_id: str,
    reason: str | None,
) -> Done:
    user = await manageable_user(session, scope, user_id, live_roles=live_roles, settings=settings)
    if user.is_deleted:
        return Done(message="The account was already deleted")
    actor = await _actor(session, auth0, scope)
    await accounts.soft_delete(session, auth0, user, actor=actor.id, reason=reason)
    return Done(message="Account deleted")


async def restore_user(
    session: AsyncSession,
    auth0: Auth0Gateway,
    settings: Settings,
    live_roles: LiveRoles,
    scope: Scope,
    user_id: str,
    reason: str | None,
) -> Done:
    user = await manageable_user(session, scope, user_id, live_roles=live_roles, settings=settings)
    if not user.is_deleted:
        return Done(message="The account is not deleted")
    actor = await _actor(session, auth0, scope)
    await accounts.restore(session, auth0, user, actor=actor.id, reason=reason)
    return Done(message="Account restored")


async def update_username(
    session: AsyncSession,
    auth0: Auth0Gateway,
    settings: Settings,
    live_roles: LiveRoles,
    scope: Scope,
    user_id: str,
    username: str,
) -> Done:
    user = await _live(session, settings, live_roles, scope, user_id)
    actor = await _actor(session, auth0, scope)
    await accounts.change_username(session, auth0, settings, user, username, actor=actor.id)
    return Done(message="Username updated")


async def update_email(
    session: AsyncSession,
    auth0: Auth0Gateway,
    settings: Settings,
    live_roles: LiveRoles,
    scope: Scope,
    user_id: str,
    email: str,
) -> Done:
    """Set a new address (unverified), tell the old one, and send Auth0's verification
    email to the new one."""
    user = await _live(session, settings, live_roles, scope, user_id)
    if user.email and user.email.lower() == email:
        raise InvalidFields([{"field": "email", "message": "This is already the user's email"}])
    if await email_registered(session, email):
        raise InvalidFields([{"field": "email", "message": "Email is already registered"}])
    actor = await _actor(session, auth0, scope)
    await accounts.change_email(
        session, auth0, settings, user, email, verified=False, actor=actor.id
    )
    await auth0.send_verification_email(user.id)
    return Done(message=f"Email updated; a verification email was sent to {email}")


async def resend_verification(
    session: AsyncSession,
    auth0: Auth0Gateway,
    settings: Settings,
    live_roles: LiveRoles,
    scope: Scope,
    user_id: str,
) -> Done:
    user = await _live(session, settings, live_roles, scope, user_id)
    if user.email_verified:
        raise BadRequest("the user's email address is already verified")
    await auth0.send_verification_email(user.id)
    return Done(message="Verification email sent")


async def send_password_reset(
    session: AsyncSession,
    auth0: Auth0Gateway,
    settings: Settings,
    live_roles: LiveRoles,
    scope: Scope,
    user_id: str,
) -> Done:
    user = await _live(session, settings, live_roles, scope, user_id)
    if user.connection != settings.auth0_db_connection or not user.email:
        raise BadRequest("this user signs in through another provider; it holds their password")
    await auth0.request_password_reset(
        user.email, client_id=settings.auth0_management_id, connection=settings.auth0_db_connection
    )
    return Done(message=f"Password reset email sent to {user.email}")


async def _live(
    session: AsyncSession, settings: Settings, live_roles: LiveRoles, scope: Scope, user_id: str
) -> User:
    user = await manageable_user(session, scope, user_id, live_roles=live_roles, settings=settings)
    if user.is_deleted:
        raise Conflict("the account is deleted; restore it first")
    return user
