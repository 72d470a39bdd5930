"""Admins changing someone else's account: delete, restore, email, username, and the
verification and password-reset emails. General admins may change anyone's but their
own; platform and group admins only a plain user's with a pending or approved
membership they administer (services/admin_scope.manageable_user).
"""

from dataclasses import dataclass

from sqlmodel.ext.asyncio.session import AsyncSession

from db.models import User
from schemas.users import Done
from services.auth0 import Auth0Gateway
from services.email.queue import enqueue
from services.errors import BadRequest, Conflict, InvalidFields
from services.identity.admin_scope import Scope, manageable_user
from services.identity.live_roles import LiveRoles
from services.settings import Settings
from services.users import accounts
from services.users.signed_in import ensure_user


@dataclass(frozen=True)
class AccountAdmin:
    """One request's admin, acting on accounts: `scope` is the caller's confirmed scope
    (admin_scope.confirmed_scope); `live_roles` tells whether a target is an admin."""

    session: AsyncSession
    auth0: Auth0Gateway
    settings: Settings
    live_roles: LiveRoles
    scope: Scope

    async def delete_user(self, user_id: str, reason: str | None) -> Done:
        user = await self._target(user_id)
        if user.is_deleted:
            return Done(message="The account was already deleted")
        actor = await self._actor()
        await accounts.soft_delete(self.session, self.auth0, user, actor=actor.id, reason=reason)
        return Done(message="Account deleted")

    async def restore_user(self, user_id: str, reason: str | None) -> Done:
        user = await self._target(user_id)
        if not user.is_deleted:
            return Done(message="The account is not deleted")
        actor = await self._actor()
        await accounts.restore(self.session, self.auth0, user, actor=actor.id, reason=reason)
        return Done(message="Account restored")

    async def delete_invalid_email(self, user_id: str, correct_email: str) -> Done:
        """An account signed up with an address that cannot be right (a typo): delete it
        as `delete_user` does, and tell the person at `correct_email` to sign up again.
        The right to delete the account is the right to do this."""
        user = await self._live(user_id)
        if user.email and user.email.lower() == correct_email:
            raise InvalidFields(
                [{"field": "correct_email", "message": "This is the account's own address"}]
            )
        actor = await self._actor()
        reason = f"invalid email address; the person was told at {correct_email}"
        await accounts.soft_delete(self.session, self.auth0, user, actor=actor.id, reason=reason)
        await enqueue(
            self.session,
            self.settings,
            "account_removed_invalid_email",
            to=correct_email,
            context={"username": user.username or "", "invalid_email": user.email or ""},
            dedupe_key=f"invalid-email-removed:{user.id}",
        )
        return Done(message=f"Account deleted; {correct_email} was told to sign up again")

    async def update_username(self, user_id: str, username: str) -> Done:
        user = await self._live(user_id)
        actor = await self._actor()
        await accounts.change_username(
            self.session, self.auth0, self.settings, user, username, actor=actor.id
        )
        return Done(message="Username updated")

    async def update_email(self, user_id: str, email: str) -> Done:
        """Set a new address (unverified), tell the old one, and send Auth0's verification
        email to the new one."""
        user = await self._live(user_id)
        if user.email and user.email.lower() == email:
            raise InvalidFields([{"field": "email", "message": "This is already the user's email"}])
        actor = await self._actor()
        await accounts.change_email(
            self.session, self.auth0, self.settings, user, email, verified=False, actor=actor.id
        )
        await self.auth0.send_verification_email(user.id)
        return Done(message=f"Email updated; a verification email was sent to {email}")

    async def resend_verification(self, user_id: str) -> Done:
        user = await self._live(user_id)
        if user.email_verified:
            raise BadRequest("the user's email address is already verified")
        await self.auth0.send_verification_email(user.id)
        return Done(message="Verification email sent")

    async def send_password_reset(self, user_id: str) -> Done:
        user = await self._live(user_id)
        connection = self.settings.auth0_db_connection
        if user.connection != connection or not user.email:
            raise BadRequest("this user signs in through another provider; it holds their password")
        await self.auth0.request_password_reset(
            user.email, client_id=self.settings.auth0_management_id, connection=connection
        )
        return Done(message=f"Password reset email sent to {user.email}")

    async def _actor(self) -> User:
        return await ensure_user(self.session, self.auth0, self.scope.caller_id)

    async def _target(self, user_id: str) -> User:
        return await manageable_user(
            self.session,
            self.scope,
            user_id,
            live_roles=self.live_roles,
            settings=self.settings,
        )

    async def _live(self, user_id: str) -> User:
        user = await self._target(user_id)
        if user.is_deleted:
            raise Conflict("the account is deleted; restore it first")
        return user
