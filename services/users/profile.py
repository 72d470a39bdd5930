"""The signed-in user's own account: what their pages read, and the changes they make.

Reads come from Postgres (revoked memberships left out); no Auth0 call once synced.

Auth0 is changed first, then the database in the request's unit of work; a compensation
puts Auth0 back if the database part does not commit, so the two never disagree.
"""

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta
from typing import cast
from urllib.parse import quote, unquote, urlsplit

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from db.base import utcnow
from db.engine import on_rollback
from db.models import EmailChangeOtp, User
from db.reads import Reader
from db.types import ApprovalStatus, UserChange
from schemas.memberships import PendingPublic
from schemas.users import (
    Done,
    EmailCode,
    EmailUpdate,
    NameUpdate,
    PasswordUpdate,
    ProfilePublic,
    UsernameUpdate,
)
from services.auth0 import Auth0Gateway
from services.email.queue import enqueue
from services.errors import BadRequest, Conflict, InvalidFields, TooManyRequests
from services.identity.tokens import refuse_deactivated
from services.memberships.requests import VISIBLE, group_memberships, platform_memberships
from services.registration.signup import email_registered
from services.settings import Settings
from services.users import accounts, json_reads
from services.users.signed_in import ensure_user

CODE_TTL = timedelta(minutes=10)
MAX_CODE_ATTEMPTS = 5
MAX_CODES_PER_HOUR = 5
# A second code within this long of the last is refused (429): a double click, or two
# tabs, would otherwise race to be the user's one active code.
MIN_CODE_INTERVAL = timedelta(seconds=30)
SELF_DELETION = "deleted by the user"


async def profile_body(
    session: AsyncSession, reader: Reader, auth0: Auth0Gateway, user_id: str
) -> bytes:
    """`GET /me/profile` as JSON bytes, for a caller whose deactivation is not yet checked:
    on Postgres one statement builds it (services/users/json_reads.py) unless the row must
    first be created or the welcome banner cleared, which `profile` does."""
    if reader.dialect == "postgresql":
        body = await json_reads.own_profile(reader, user_id)
        if body is not None:
            return body
    await refuse_deactivated(session, user_id)
    return (await profile(session, auth0, user_id)).model_dump_json().encode()


async def profile(session: AsyncSession, auth0: Auth0Gateway, user_id: str) -> ProfilePublic:
    """The profile from Postgres (revoked memberships left out); no Auth0 call once synced.
    The welcome banner after a password migration is shown once: reading it clears it."""
    user = await ensure_user(session, auth0, user_id)
    welcome = user.welcome_pending
    if welcome:
        user.welcome_pending = False
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
        show_welcome_message=welcome,
        platform_memberships=await platform_memberships(session, user.id, statuses=VISIBLE),
        group_memberships=await group_memberships(session, user.id, statuses=VISIBLE),
    )


async def pending(session: AsyncSession, user_id: str) -> PendingPublic:
    only_pending = {ApprovalStatus.PENDING}
    return PendingPublic(
        platforms=await platform_memberships(session, user_id, statuses=only_pending),
        groups=await group_memberships(session, user_id, statuses=only_pending),
    )


def _code_hash(settings: Settings, user_id: str, email: str, code: str) -> str:
    # Keyed, so a leaked table cannot be brute-forced over the million 6-digit codes.
    key = settings.derived_key("email-code").encode()
    return hmac.new(key, f"{user_id}:{email}:{code}".encode(), hashlib.sha256).hexdigest()


def initials_picture(first_name: str, last_name: str) -> str:
    """An initials avatar (ui-avatars.com, the old backend's), e.g. "AL" for Ada Lovelace."""
    initials = f"{first_name[:1]}{last_name[:1]}".upper()
    return f"https://ui-avatars.com/api/?name={quote(initials)}&background=random"


def is_generated_picture(picture: str | None) -> bool:
    """No picture, an initials avatar, or Auth0's default for database users (a Gravatar
    whose fallback is cdn.auth0.com's initials image): none of them the user chose."""
    if not picture:
        return True
    host = urlsplit(picture).hostname or ""
    if host == "ui-avatars.com":
        return True
    return host.endswith("gravatar.com") and "cdn.auth0.com" in unquote(picture)


async def update_name(
    session: AsyncSession, auth0: Auth0Gateway, user_id: str, data: NameUpdate
) -> Done:
    user = await ensure_user(session, auth0, user_id)
    old = {
        "given_name": user.given_name,
        "family_name": user.family_name,
        "name": user.name,
        "picture": user.picture,
    }
    new = {
        "given_name": data.first_name,
        "family_name": data.last_name,
        "name": f"{data.first_name} {data.last_name}",
    }
    if is_generated_picture(user.picture):
        # The initials avatar follows the name, as the old backend's did; a picture of
        # the user's own (a social login's) is theirs to keep.
        new["picture"] = initials_picture(data.first_name, data.last_name)
    user_id = user.id  # a rollback expires `user`; the compensation must not read it
    await auth0.update_user(user_id, **new)
    on_rollback(session, lambda: auth0.update_user(user_id, **{k: v for k, v in old.items() if v}))
    user.given_name, user.family_name, user.name = (
        new["given_name"],
        new["family_name"],
        new["name"],
    )
    user.picture = new.get("picture", user.picture)
    user.updated_at = utcnow()
    session.add(
        accounts.history(user, UserChange.PROFILE_UPDATE, old["name"], new["name"], actor=user.id)
    )
    await session.flush()
    return Done(message="Name updated")


async def update_username(
    session: AsyncSession,
    auth0: Auth0Gateway,
    settings: Settings,
    user_id: str,
    data: UsernameUpdate,
) -> Done:
    user = await ensure_user(session, auth0, user_id)
    await accounts.change_username(session, auth0, settings, user, data.username, actor=user.id)
    return Done(message="Username updated")


async def start_email_change(
    session: AsyncSession, auth0: Auth0Gateway, settings: Settings, user_id: str, data: EmailUpdate
) -> Done:
    """Send a 6-digit code to the new address; a new code voids the previous one."""
    user = await ensure_user(session, auth0, user_id)
    if user.email and user.email.lower() == data.email:
        raise InvalidFields([{"field": "email", "message": "This is already your email address"}])
    if await email_registered(session, data.email, user.connection):
        raise InvalidFields([{"field": "email", "message": "Email is already registered"}])
    # One code request per user at a time: the row lock makes a concurrent one wait and
    # then see this one's code (before: both inserted an active code, and the loser's
    # unique violation was a 500).
    await session.execute(
        sa.select(User.__table__.c.id).where(User.__table__.c.id == user.id).with_for_update()
    )
    now = utcnow()
    recent, newest = (
        await session.exec(
            select(sa.func.count(), sa.func.max(col(EmailChangeOtp.created_at))).where(
                col(EmailChangeOtp.user_id) == user.id,
                col(EmailChangeOtp.created_at) > now - timedelta(hours=1),
            )
        )
    ).one()
    latest = cast(datetime | None, newest)  # none in the last hour
    if recent >= MAX_CODES_PER_HOUR:
        raise TooManyRequests(
            "too many codes requested; try again in an hour", headers={"Retry-After": "3600"}
        )
    if latest is not None and now - latest < MIN_CODE_INTERVAL:
        wait = int((MIN_CODE_INTERVAL - (now - latest)).total_seconds()) + 1
        raise TooManyRequests(
            "a code was sent moments ago; use it, or ask again shortly",
            headers={"Retry-After": str(wait)},
        )
    await session.execute(
        sa.update(EmailChangeOtp.__table__)
        .where(EmailChangeOtp.__table__.c.user_id == user.id, EmailChangeOtp.__table__.c.is_active)
        .values(is_active=False)
    )
    code = f"{secrets.randbelow(1_000_000):06d}"
    otp = EmailChangeOtp(
        user_id=user.id,
        target_email=data.email,
        otp_hash=_code_hash(settings, user.id, data.email, code),
        expires_at=now + CODE_TTL,
    )
    session.add(otp)
    await session.flush()
    await enqueue(
        session,
        settings,
        "email_change_code",
        to=data.email,
        context={
            "code": code,
            "minutes": int(CODE_TTL.total_seconds() // 60),
            "new_email": data.email,
        },
        dedupe_key=f"email-code:{otp.id}",
    )
    return Done(message=f"A code was sent to {data.email}")


async def finish_email_change(
    session: AsyncSession, auth0: Auth0Gateway, settings: Settings, user_id: str, data: EmailCode
) -> Done:
    user = await ensure_user(session, auth0, user_id)
    otp = (
        await session.exec(
            select(EmailChangeOtp)
            .where(col(EmailChangeOtp.user_id) == user.id, col(EmailChangeOtp.is_active))
            .with_for_update()
        )
    ).first()
    now = utcnow()
    if otp is None or otp.expires_at < now:
        raise InvalidFields(
            [{"field": "otp", "message": "The code has expired; ask for a new one"}]
        )
    if otp.attempts >= MAX_CODE_ATTEMPTS:
        raise TooManyRequests("too many wrong codes; ask for a new one")
    if not hmac.compare_digest(
        otp.otp_hash, _code_hash(settings, user.id, otp.target_email, data.otp)
    ):
        otp.attempts += 1
        if otp.attempts >= MAX_CODE_ATTEMPTS:
            otp.is_active = False
        # The failed attempt must count even though the request fails.
        raise InvalidFields(
            [{"field": "otp", "message": "The code is not correct"}], keep_changes=True
        )
    otp.is_active = False
    otp.consumed_at = now
    try:
        await accounts.change_email(
            session, auth0, settings, user, otp.target_email, verified=True, actor=user.id
        )
    except InvalidFields as exc:
        # Taken since the code was sent: 409, which the portal's code modal explains as
        # "already used by another account" (portal contract, call 8). The code stays
        # usable (the unit of work rolls back).
        if any(error["field"] == "email" for error in exc.field_errors):
            raise Conflict(
                "That email address is already used by another account", field="email"
            ) from None
        raise
    return Done(message="Email updated")


async def update_password(
    session: AsyncSession,
    auth0: Auth0Gateway,
    settings: Settings,
    user_id: str,
    data: PasswordUpdate,
    end_user_ip: str | None = None,
) -> Done:
    user = await ensure_user(session, auth0, user_id)
    if user.connection != settings.auth0_db_connection or not user.email:
        raise BadRequest(
            "this account signs in through another provider; change the password there"
        )
    if not await auth0.verify_password(
        user.email,
        data.current_password,
        realm=settings.auth0_db_connection,
        client=(
            settings.auth0_password_client_id,
            settings.auth0_password_client_secret.get_secret_value(),
        ),
        end_user_ip=end_user_ip,
    ):
        raise InvalidFields(
            [{"field": "currentPassword", "message": "The current password is not correct"}]
        )
    try:
        await auth0.update_user(
            user.id, password=data.new_password, connection=settings.auth0_db_connection
        )
    except BadRequest as exc:
        raise InvalidFields([{"field": "newPassword", "message": exc.detail}]) from None
    return Done(message="Password updated")


async def delete_self(session: AsyncSession, auth0: Auth0Gateway, user_id: str) -> Done:
    """Block in Auth0, revoke refresh tokens, soft-delete here with history."""
    user = await ensure_user(session, auth0, user_id)
    await accounts.soft_delete(session, auth0, user, actor=user.id, reason=SELF_DELETION)
    return Done(message="Account deleted")
