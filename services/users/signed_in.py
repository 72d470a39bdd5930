"""The signed-in user's own record."""

from sqlmodel.ext.asyncio.session import AsyncSession

from db.base import utcnow
from db.bulk import dialect_insert
from db.models import User
from services.auth0 import Auth0Gateway
from services.errors import Conflict, NotFound, Unauthorized
from services.registration.signup import username_taken
from services.users.accounts import yield_unverified_email
from services.users.auth0_records import BLOCKED_REASON, user_row


async def ensure_user(session: AsyncSession, auth0: Auth0Gateway, user_id: str) -> User:
    """The caller's row; a user who signed up moments ago (before the sync saw them) is
    fetched from Auth0 and created, rather than failing."""
    user = await session.get(User, user_id)
    if user is not None:
        return user
    try:
        profile = await auth0.get_user(user_id)
    except NotFound:
        raise Unauthorized("this account no longer exists") from None
    row = user_row(profile)
    assert row is not None
    if row["username"] and await username_taken(session, row["username"], for_user=user_id):
        # Given to this account in Auth0 directly, but someone here held it before.
        raise Conflict("another account held this username before; contact support")
    now = utcnow()
    values = {
        **row,
        "created_at": row["created_at"] or now,
        "updated_at": now,
        "last_synced_at": now,
        "is_deleted": row["blocked"],
        "deleted_at": now if row["blocked"] else None,
        "deletion_reason": BLOCKED_REASON if row["blocked"] else None,
    }
    # A concurrent request may create the same row; any conflict is settled by re-reading.
    insert = dialect_insert(session, User.__table__).values(values).on_conflict_do_nothing()
    await session.execute(insert)
    user = await session.get(User, user_id)
    # Someone signed up with this address and never verified it (a squatter, or a sign-up
    # its owner abandoned): the verified owner gets it.
    if (
        user is None
        and row["email"]
        and row["email_verified"]
        and await yield_unverified_email(session, auth0, row["email"], claimant=user_id)
    ):
        await session.execute(insert)
        user = await session.get(User, user_id)
    if user is None:
        raise Conflict("another account already uses this email or username; contact support")
    if row["email"] and row["email_verified"]:
        # An unverified sign-up of another connection holding this address (a squatter,
        # or the person's own abandoned one) gives it up to the verified account, as
        # within one connection above.
        await yield_unverified_email(session, auth0, row["email"], claimant=user_id)
    if user.is_deleted:
        raise Unauthorized("this account is deactivated")
    return user
