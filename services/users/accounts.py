"""Account changes shared by the user's own pages and by admins: deletion, restoration,
username changes, each with a history row naming who acted.

Auth0 is changed first, then the database in the caller's unit of work; a compensation
puts Auth0 back if the database part does not commit, so the two never disagree.
"""

import contextlib

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from db.base import utcnow
from db.engine import on_rollback
from db.models import User, UserHistory
from db.types import UserChange
from services.auth0 import Auth0Gateway
from services.email.queue import enqueue
from services.errors import AppError, Conflict, InvalidFields
from services.registration.signup import email_registered, username_length_problem, username_taken
from services.settings import Settings


def history(
    user: User,
    change: UserChange,
    previous: str | None,
    new: str | None,
    *,
    actor: str | None,
    reason: str | None = None,
) -> UserHistory:
    return UserHistory(
        user_id=user.id,
        change=change,
        email=user.email,
        username=user.username,
        previous_value=previous,
        new_value=new,
        changed_by_id=actor,
        reason=reason,
    )


async def change_username(
    session: AsyncSession,
    auth0: Auth0Gateway,
    settings: Settings,
    user: User,
    username: str,
    *,
    actor: str,
) -> None:
    """Usernames are unique among everyone who ever held one, any case. The user is told
    by email (in this unit of work)."""
    if user.username and user.username.lower() == username.lower():
        raise InvalidFields([{"field": "username", "message": "This is already the username"}])
    length = username_length_problem(settings, username)
    if length:
        raise InvalidFields([{"field": "username", "message": length}])
    if await username_taken(session, username, for_user=user.id):
        raise InvalidFields([{"field": "username", "message": "Username is already taken"}])
    # Plain values for the compensation: a rollback expires `user`, and reading it then
    # would need the database the rollback just gave up.
    user_id = user.id
    try:
        await auth0.update_user(user_id, username=username)
    except Conflict:
        raise InvalidFields(
            [{"field": "username", "message": "Username is already taken"}]
        ) from None
    previous = user.username
    if previous:
        on_rollback(session, lambda: auth0.update_user(user_id, username=previous))
    user.username = username
    user.updated_at = utcnow()
    entry = history(user, UserChange.USERNAME_UPDATE, previous, username, actor=actor)
    session.add(entry)
    await session.flush()
    if user.email:
        await enqueue(
            session,
            settings,
            "username_changed_notice",
            to=user.email,
            context={"username": username, "by_admin": actor != user.id},
            dedupe_key=f"username-changed:{entry.id}",
        )


async def change_email(
    session: AsyncSession,
    auth0: Auth0Gateway,
    settings: Settings,
    user: User,
    email: str,
    *,
    verified: bool,
    actor: str,
) -> None:
    """Set the address in Auth0, then here with history; the previous address is told
    (in this unit of work), so a hijacked account does not change hands silently. An
    address another live account holds (here or in Auth0) is a field error on `email`."""
    taken = InvalidFields([{"field": "email", "message": "Email is already registered"}])
    if await email_registered(session, email, user.connection):
        raise taken  # here, before Auth0 is asked
    user_id = user.id
    try:
        await auth0.update_user(user_id, email=email, email_verified=verified)
    except Conflict:
        raise taken from None
    previous, was_verified = user.email, user.email_verified
    if previous:
        on_rollback(
            session,
            lambda: auth0.update_user(user_id, email=previous, email_verified=was_verified),
        )
    user.email, user.email_verified, user.updated_at = email, verified, utcnow()
    entry = history(user, UserChange.EMAIL_UPDATE, previous, email, actor=actor)
    session.add(entry)
    await session.flush()
    if previous:
        await enqueue(
            session,
            settings,
            "email_changed_notice",
            to=previous,
            context={"new_email": email, "by_admin": actor != user.id},
            dedupe_key=f"email-changed:{entry.id}",
        )


async def soft_delete(
    session: AsyncSession,
    auth0: Auth0Gateway,
    user: User,
    *,
    actor: str | None,
    reason: str | None,
) -> None:
    """Block in Auth0, revoke refresh tokens, mark deleted here. Memberships and history
    stay, so the account can be restored as it was."""
    user_id = user.id
    await auth0.update_user(user_id, blocked=True)
    on_rollback(session, lambda: auth0.update_user(user_id, blocked=False))
    # The block already stops new sign-ins; a refresh token that survives fails at its next use.
    with contextlib.suppress(AppError):
        await auth0.revoke_refresh_tokens(user.id)
    now = utcnow()
    user.is_deleted, user.blocked, user.deleted_at, user.deleted_by_id = True, True, now, actor
    user.deletion_reason = reason
    user.updated_at = now
    session.add(history(user, UserChange.USER_DELETION, None, None, actor=actor, reason=reason))
    await session.flush()


async def restore(
    session: AsyncSession, auth0: Auth0Gateway, user: User, *, actor: str, reason: str | None
) -> None:
    """Unblock in Auth0 and bring the account back. The deletion stays in the history."""
    if user.email and await email_registered(session, user.email, user.connection):
        raise Conflict("another live account now uses this email address", field="email")
    if user.username and await username_taken(session, user.username, for_user=user.id):
        raise Conflict("another live account now uses this username", field="username")
    user_id = user.id
    await auth0.update_user(user_id, blocked=False)
    on_rollback(session, lambda: auth0.update_user(user_id, blocked=True))
    user.is_deleted, user.blocked = False, False
    user.deleted_at, user.deleted_by_id, user.deletion_reason = None, None, None
    user.updated_at = utcnow()
    session.add(history(user, UserChange.USER_RESTORATION, None, None, actor=actor, reason=reason))
    await session.flush()


# The email rule (README "Accounts and email addresses"): among live accounts one address
# has one holder. A verified holder wins over an unverified one, since only the verified
# one has shown they read the mailbox; sign-ups that never verify expire.
CLAIMED_REASON = "unverified; its email address was claimed by a verified account"


async def yield_unverified_email(
    session: AsyncSession, auth0: Auth0Gateway, email: str, *, claimant: str
) -> bool:
    """Free `email` for a verified account: its live holder, if unverified, is blocked in
    Auth0 and deleted here (restorable by an admin; expired later, see
    services/sync/unverified.py). False when the holder is verified (nothing changes)."""
    holder = (
        await session.exec(
            select(User).where(
                sa.func.lower(col(User.email)) == email.lower(),
                sa.not_(col(User.is_deleted)),
                col(User.id) != claimant,
            )
        )
    ).first()
    if holder is None:
        return True
    if holder.email_verified:
        return False
    await soft_delete(session, auth0, holder, actor=None, reason=CLAIMED_REASON)
    return True
