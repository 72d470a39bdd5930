"""Flows that Auth0 Actions hand over to this API with a short-lived signed session token.

The token is HS256 with AUTH0_ACTION_TOKEN_SECRET (its own secret), and is checked for
signature, expiry, a short lifetime, purpose, audience and issuer before anything happens.

During the switch from the old backend, whose deployed Actions sign with the management
client's secret and send only `exp` (and, for the resend, `user_id`), those tokens are
also accepted while AUTH0_ACTION_LEGACY_TOKENS is on: logged at start and on each use, so
ops can see when the redeployed Actions have taken over and switch it off.
"""

import logging
import time
from typing import Any
from urllib.parse import quote

import jwt
from sqlmodel.ext.asyncio.session import AsyncSession

from services.auth0 import Auth0Gateway
from services.email.queue import queue_welcome
from services.errors import InvalidFields, Unauthorized
from services.registration.recaptcha import RecaptchaVerifier
from services.settings import Settings
from services.users.signed_in import ensure_user

logger = logging.getLogger("aai.actions")

RESEND_VERIFICATION = "unverified_email_resend"
PASSWORD_MIGRATION = "password_migration"  # noqa: S105 - a purpose name, not a secret
MAX_LIFETIME_S = 15 * 60


def verify_action_token(settings: Settings, token: str, purpose: str) -> dict[str, Any]:
    """The token's claims, `sub` naming the user, or 401."""
    try:
        return _verify_current(settings, token, purpose)
    except Unauthorized:
        if not settings.auth0_action_legacy_tokens:
            raise
        legacy = _verify_legacy(settings, token, purpose)
        if legacy is None:
            raise
        logger.info(
            "action token of the old contract accepted (%s for %s); AUTH0_ACTION_LEGACY_TOKENS "
            "is still needed",
            purpose,
            legacy["sub"],
        )
        return legacy


def _verify_legacy(settings: Settings, token: str, purpose: str) -> dict[str, Any] | None:
    """The old backend's contract: HS256 with the management client's secret, `exp`
    required, no audience or issuer; the user in `sub` (or `user_id`, which the old resend
    read), a `purpose` if any must match. Still no longer than MAX_LIFETIME_S from now."""
    try:
        claims = jwt.decode(
            token,
            settings.auth0_management_secret.get_secret_value(),
            algorithms=["HS256"],
            leeway=10,
            options={"require": ["exp"], "verify_aud": False},
        )
    except jwt.InvalidTokenError:
        return None
    subject = claims.get("sub") or claims.get("user_id")
    if not isinstance(subject, str) or not subject:
        return None
    if claims.get("purpose", purpose) != purpose:
        return None
    if purpose == RESEND_VERIFICATION and "purpose" not in claims:
        return None  # the old resend required it too
    if int(claims["exp"]) - time.time() > MAX_LIFETIME_S:
        return None
    return {**claims, "sub": subject}


def _verify_current(settings: Settings, token: str, purpose: str) -> dict[str, Any]:
    try:
        claims = jwt.decode(
            token,
            settings.auth0_action_token_secret.get_secret_value(),
            algorithms=["HS256"],
            audience=settings.auth0_action_token_audience,
            issuer=settings.auth0_issuers,
            leeway=10,
            options={"require": ["exp", "iat", "iss", "aud", "sub", "purpose"]},
        )
    except jwt.ExpiredSignatureError:
        raise Unauthorized(
            "the session token has expired; start again from the login page"
        ) from None
    except jwt.InvalidTokenError:
        raise Unauthorized("invalid session token") from None
    if claims["purpose"] != purpose:
        raise Unauthorized("the session token is not for this action")
    if int(claims["exp"]) - int(claims["iat"]) > MAX_LIFETIME_S:
        raise Unauthorized("the session token lives too long to be trusted")
    return claims


async def resend_verification(
    auth0: Auth0Gateway,
    recaptcha: RecaptchaVerifier,
    settings: Settings,
    session_token: str,
    recaptcha_token: str,
    *,
    remote_ip: str | None,
) -> None:
    claims = verify_action_token(settings, session_token, RESEND_VERIFICATION)
    if not await recaptcha.verify(recaptcha_token, remote_ip):
        raise InvalidFields(
            [
                {
                    "field": "recaptcha_token",
                    "message": "reCAPTCHA verification failed; please try again",
                }
            ]
        )
    await auth0.send_verification_email(str(claims["sub"]))


async def start_password_migration(
    auth0: Auth0Gateway, settings: Settings, session_token: str, client_id: str
) -> None:
    claims = verify_action_token(settings, session_token, PASSWORD_MIGRATION)
    email = claims.get("email") or (await auth0.get_user(str(claims["sub"]))).get("email")
    if not email:
        raise InvalidFields(
            [{"field": "session_token", "message": "the account has no email address"}]
        )
    await auth0.request_password_reset(
        str(email), client_id=client_id, connection=settings.auth0_db_connection
    )


async def finish_password_migration(
    session: AsyncSession, auth0: Auth0Gateway, settings: Settings, state: str, session_token: str
) -> str:
    """Mark the migration done in Auth0, queue the welcome email once, and return where
    the browser goes next: back to Auth0 to finish the login."""
    claims = verify_action_token(settings, session_token, PASSWORD_MIGRATION)
    user_id = str(claims["sub"])
    user = await auth0.update_user(user_id, app_metadata={"user_needs_migration": False})
    # The portal's banner at the next profile load (the old backend read it from an
    # Action's userinfo claim; the row carries it here, shown once).
    row = await ensure_user(session, auth0, user_id)
    row.welcome_pending = True
    if user.get("email"):
        await queue_welcome(
            session, settings, to=str(user["email"]), user_id=user_id, name=user.get("given_name")
        )
    return f"{settings.auth0_login_url}/continue?state={quote(state, safe='')}"
