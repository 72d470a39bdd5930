"""Sign-up: the Auth0 user, the local user, default platforms, bundle requests, email.

The Auth0 user is created first (Auth0 decides what is taken); everything after it runs
in the request's unit of work with a compensation registered, so if the database part
fails or never commits the Auth0 user is deleted again: no half-registrations.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from db.base import utcnow
from db.engine import on_rollback
from db.models import (
    Group,
    Platform,
    User,
    UserHistory,
    UsernameClaim,
)
from db.types import ApprovalStatus, OutboxOperation, UserChange
from schemas.registration import (
    USERNAME,
    Availability,
    FieldError,
    RegistrationCreate,
    RegistrationPublic,
    check_email,
)
from services.auth0 import Auth0Gateway
from services.email.queue import enqueue, queue_welcome
from services.errors import AppError, BadRequest, Conflict, InvalidFields
from services.identity.role_scheme import RoleScheme
from services.kit.cache import TtlCache
from services.memberships import outbox
from services.memberships.kinds import GROUPS, PLATFORMS
from services.memberships.notices import notify_request
from services.memberships.records import add_membership
from services.registration.recaptcha import RecaptchaVerifier
from services.settings import Settings


async def username_taken(
    session: AsyncSession, username: str, *, for_user: str | None = None
) -> bool:
    """Usernames stay reserved once used, by anyone, now or before (any case): taken
    unless nobody ever held it, or only `for_user` did (a user may take back their own
    former name). The claims (db/models/user.UsernameClaim) hold every name ever used."""
    holder = await session.scalar(
        sa.select(col(UsernameClaim.user_id)).where(col(UsernameClaim.username) == username.lower())
    )
    return holder is not None and holder != for_user


async def email_registered(session: AsyncSession, email: str, connection: str | None) -> bool:
    """A live account of `connection` holds `email`. Emails are unique per connection, as
    in Auth0: a Google account may share its address with a database account (two Auth0
    users, two accounts here; README, "Accounts and email addresses")."""
    statement = (
        select(col(User.id))
        .where(
            sa.func.lower(col(User.email)) == email.lower(),
            sa.not_(col(User.is_deleted)),
            sa.func.coalesce(col(User.connection), "") == (connection or ""),
        )
        .limit(1)
    )
    return (await session.exec(statement)).first() is not None


async def _requested_groups(
    session: AsyncSession, settings: Settings, data: RegistrationCreate
) -> list[tuple[Group, str | None]]:
    """The groups the chosen bundles stand for. A bundle is a live group of the catalog,
    named by its short id (`sbp_workflow_execution` is `{ns}/group/sbp_workflow_execution`);
    REGISTRATION_BUNDLES may point a bundle id at another group. So a new bundle needs its
    Auth0 role, not a configuration change."""
    scheme = RoleScheme(settings.auth0_role_namespace)
    chosen = []
    for choice in data.bundle_choices():
        spec = settings.registration_bundles.get(choice.bundle_id) or {"group": choice.bundle_id}
        group = await session.get(Group, scheme.group_id(str(spec["group"])))
        if group is None or group.removed_at is not None:
            # No field of the sign-up form shows it, and the portal keeps any field error
            # until a reload, blocking a corrected submit: the reason goes in `message`.
            raise InvalidFields([], message=f"Unknown bundle {choice.bundle_id!r}")
        chosen.append((group, choice.reason or data.request_reason))
    return chosen


async def register(
    session: AsyncSession,
    auth0: Auth0Gateway,
    recaptcha: RecaptchaVerifier,
    settings: Settings,
    data: RegistrationCreate,
    *,
    remote_ip: str | None = None,
    admins_cache: TtlCache[frozenset[str]] | None = None,
    app: str = "biocommons",
    pending_platforms: tuple[str, ...] = (),
) -> RegistrationPublic:
    """Register through `app`: BioCommons grants the default platforms at once; SBP asks
    for its platform (`pending_platforms`) and grants nothing until an admin approves.
    Each request made (a bundle's group, SBP's platform) is mailed as a request made later
    would be: a confirmation to the user for a group, a notice to the target's admins
    (`admins_cache`: their addresses, looked up in Auth0 and reused)."""
    await _check_request(session, recaptcha, settings, data, remote_ip)
    groups = await _requested_groups(session, settings, data)
    granted = () if pending_platforms else settings.registration_default_platforms
    platforms = (
        await session.exec(
            select(Platform).where(
                col(Platform.id).in_(granted),
                col(Platform.removed_at).is_(None),
                col(Platform.access_role_id).is_not(None),
            )
        )
    ).all()
    user_id = await _create_auth0_user(session, auth0, settings, data, app)
    try:
        await _add_local_user(session, settings, data, user_id, app)
        await _grant_default_platforms(session, user_id, platforms)
        platform_requests = await _request_platforms(session, data, user_id, pending_platforms)
        group_requests = await _request_groups(session, user_id, groups)
        user = await session.get_one(User, user_id)
        cache = admins_cache or TtlCache[frozenset[str]](0)
        for kind, requested in ((PLATFORMS, platform_requests), (GROUPS, group_requests)):
            if requested:
                await notify_request(session, auth0, settings, user, kind, requested, cache)
        await enqueue(
            session,
            settings,
            "registration_received",
            to=data.email,
            context={"first_name": data.first_name, "username": data.username},
            dedupe_key=f"registration:{user_id}",
        )
        await session.flush()
    except sa_exc.IntegrityError as exc:
        raise Conflict(
            "an account with this email or username already exists; contact support"
        ) from exc
    return RegistrationPublic(
        message="User registered successfully",
        user_id=user_id,
        email=data.email,
        username=data.username,
        platforms=sorted(p.id for p in platforms),
        groups_requested=[g.id for g, _ in groups],
    )


async def _check_request(
    session: AsyncSession,
    recaptcha: RecaptchaVerifier,
    settings: Settings,
    data: RegistrationCreate,
    remote_ip: str | None,
) -> None:
    """What can be refused before anything is created: a failed reCAPTCHA, a username the
    connection would refuse or someone held."""
    # Only the SBP form may come without a token (schemas.registration.SbpRegistrationCreate).
    if data.recaptcha_token and not await recaptcha.verify(data.recaptcha_token, remote_ip):
        # In `message` only, as the old backend answered: a field error for a field the
        # form does not have would block the retry until the page is reloaded.
        raise InvalidFields([], message="reCAPTCHA verification failed; please try again")
    length = username_length_problem(settings, data.username)
    if length:
        raise InvalidFields([{"field": "username", "message": length}])
    if await username_taken(session, data.username):
        raise InvalidFields([{"field": "username", "message": "Username is already taken"}])


async def _create_auth0_user(
    session: AsyncSession,
    auth0: Auth0Gateway,
    settings: Settings,
    data: RegistrationCreate,
    app: str,
) -> str:
    """The Auth0 user first (Auth0 decides what is taken), removed again if the rest of
    the request does not commit."""
    try:
        created = await auth0.create_user(
            connection=settings.auth0_db_connection,
            email=data.email,
            username=data.username,
            password=data.password,
            given_name=data.first_name,
            family_name=data.last_name,
            name=f"{data.first_name} {data.last_name}",
            app_metadata={"registration_from": app},
        )
    except Conflict as exc:
        field = str(exc.extra.get("field", "email"))
        raise InvalidFields(
            [{"field": field, "message": f"{field.capitalize()} is already taken"}]
        ) from exc
    except BadRequest as exc:
        raise _refused(exc.detail) from exc
    user_id = str(created["user_id"])
    on_rollback(session, lambda: auth0.delete_user(user_id))
    return user_id


def _refused(reason: str) -> InvalidFields:
    """Auth0's 400 on the create, told apart: a username or email rule is that field's error
    (the portal clears those two when they are edited); anything else (the password policy,
    "PasswordStrengthError: Password is too weak"; a name rule) is the message alone, as a
    field error under another name would block the portal's form until a reload
    (portal-contract.md §3, "A trap on the registration page")."""
    lowered = reason.lower()
    for field in ("username", "email"):
        if field in lowered and "password" not in lowered:
            return InvalidFields([{"field": field, "message": reason}])
    return InvalidFields([], message=reason)


async def _add_local_user(
    session: AsyncSession, settings: Settings, data: RegistrationCreate, user_id: str, app: str
) -> None:
    session.add(
        User(
            id=user_id,
            email=data.email,
            username=data.username,
            email_verified=False,
            name=f"{data.first_name} {data.last_name}",
            given_name=data.first_name,
            family_name=data.last_name,
            connection=settings.auth0_db_connection,
            registration_from=app,
            last_synced_at=utcnow(),
        )
    )
    await session.flush()
    session.add(
        UserHistory(
            user_id=user_id,
            change=UserChange.CREATED,
            email=data.email,
            username=data.username,
            reason=f"registration ({app})",
        )
    )


async def _grant_default_platforms(
    session: AsyncSession, user_id: str, platforms: Sequence[Platform]
) -> None:
    """Approved at once; the role grants go through the outbox."""
    for platform in platforms:
        await add_membership(
            session,
            "platform",
            platform.id,
            user_id,
            ApprovalStatus.APPROVED,
            reason="default platform",
        )
        assert platform.access_role_id is not None
        await outbox.queue(
            session,
            OutboxOperation.GRANT_ROLE,
            user_id=user_id,
            role_id=platform.access_role_id,
            requested_by=None,
        )


async def _request_platforms(
    session: AsyncSession, data: RegistrationCreate, user_id: str, platform_ids: tuple[str, ...]
) -> list[tuple[str, str | None, object]]:
    """Pending platform memberships; (platform, reason, membership id) of each."""
    made: list[tuple[str, str | None, object]] = []
    for platform_id in platform_ids:
        if await session.get(Platform, platform_id) is not None:
            membership = await add_membership(
                session,
                "platform",
                platform_id,
                user_id,
                ApprovalStatus.PENDING,
                request_reason=data.request_reason,
                reason=data.request_reason,
                actor=user_id,
            )
            made.append((platform_id, data.request_reason, membership.id))
    return made


async def _request_groups(
    session: AsyncSession, user_id: str, groups: Sequence[tuple[Group, str | None]]
) -> list[tuple[str, str | None, object]]:
    """Pending group memberships; (group, reason, membership id) of each."""
    made: list[tuple[str, str | None, object]] = []
    for group, reason in groups:
        membership = await add_membership(
            session,
            "group",
            group.id,
            user_id,
            ApprovalStatus.PENDING,
            request_reason=reason,
            reason=reason,
            actor=user_id,
        )
        made.append((group.id, reason, membership.id))
    return made


def username_length_problem(settings: Settings, username: str) -> str | None:
    """The database connection's own length rule (Auth0's default allows 1 to 15
    characters; README, Tenant setup): refused here, as a field error, before Auth0 is
    asked and answers with a payload error."""
    limit = settings.auth0_username_max_length
    if not 3 <= len(username) <= limit:
        return f"Username must be 3 to {limit} characters long"
    return None


async def username_availability(
    session: AsyncSession, settings: Settings, username: str
) -> Availability:
    problem = username_length_problem(settings, username) or _username_problem(username)
    if problem:
        return Availability(
            available=False, field_errors=[FieldError(field="username", message=problem)]
        )
    if await username_taken(session, username):
        return Availability(
            available=False,
            field_errors=[FieldError(field="username", message="Username is already taken")],
        )
    return Availability(available=True, field_errors=[])


def _username_problem(username: str) -> str | None:
    if not USERNAME.match(username):
        return "Username must start with a lowercase letter or digit and use only lowercase letters, digits, - and _"
    return None


async def email_availability(session: AsyncSession, email: str, connection: str) -> Availability:
    try:
        email = check_email(email)
    except ValueError:
        return Availability(
            available=False,
            field_errors=[FieldError(field="email", message="Enter a valid email address")],
        )
    if await email_registered(session, email, connection):
        return Availability(
            available=False,
            field_errors=[FieldError(field="email", message="Email is already registered")],
        )
    return Availability(available=True, field_errors=[])


async def registration_app(session: AsyncSession, auth0: Auth0Gateway, email: str) -> str | None:
    """Which app the user registered through (Auth0 app_metadata.registration_from).

    Anyone may ask, so Postgres answers whenever it knows the address (registration and
    the users sync keep the column); only an address it has not seen yet is looked up in
    Auth0, on the anonymous callers' small share of the Management API rate."""
    known = (
        await session.exec(
            select(col(User.registration_from)).where(
                sa.func.lower(col(User.email)) == email.lower(), sa.not_(col(User.is_deleted))
            )
        )
    ).all()
    if known:
        return next((app for app in known if app), None)
    for user in await auth0.users_by_email(email, anonymous=True):
        app = (user.get("app_metadata") or {}).get("registration_from")
        if app:
            return str(app)
    return None


async def send_welcome(
    session: AsyncSession, auth0: Auth0Gateway, settings: Settings, email: str
) -> None:
    """Queue the welcome email once, and only for a verified account; the answer is the
    same either way so it reveals nothing about who has an account.

    The portal calls this right after the user verified their address, before the sync
    has seen it: a row not verified here is asked about in Auth0 (on the anonymous
    callers' share, bounded), and brought up to date when Auth0 says it is verified."""
    user = (
        await session.exec(
            select(User)
            .where(sa.func.lower(col(User.email)) == email.lower(), sa.not_(col(User.is_deleted)))
            # The address may also be a social account's: the welcome is the sign-up's.
            .order_by(sa.case((col(User.connection) == settings.auth0_db_connection, 0), else_=1))
            .limit(1)
        )
    ).first()
    if user is None or not user.email:
        return
    if not user.email_verified:
        try:
            live = await auth0.get_user(user.id, anonymous=True)
        except AppError:
            return  # the sync will bring the row up to date; no welcome then
        same_address = str(live.get("email") or "").lower() == user.email.lower()
        if not (live.get("email_verified") and same_address):
            return
        user.email_verified = True
        user.updated_at = utcnow()
    await queue_welcome(
        session, settings, to=user.email, user_id=user.id, name=user.given_name or user.username
    )


def is_research_institution_email(settings: Settings, email: str) -> bool:
    """An address at an Australian research institution (SBP_ALLOWED_EMAIL_DOMAINS, or a
    subdomain of one): the SBP bundle is for them only."""
    domain = email.rsplit("@", 1)[-1].lower()
    allowed = [d.lower().lstrip("@") for d in settings.sbp_allowed_email_domains]
    return any(domain == d or domain.endswith(f".{d}") for d in allowed)


def check_sbp_email(settings: Settings, email: str) -> None:
    if not is_research_institution_email(settings, email):
        raise InvalidFields(
            [{"field": "email", "message": "Use an email address of a participating institution"}]
        )
