"""Access-token validation for Auth0 RS256 tokens, and the caller it identifies.

RS256 only, whatever the token header says; issuer, audience and `exp iat iss aud sub`
required; a small leeway for clock skew. Signing keys come from the tenant's JWKS,
fetched with httpx (never blocking the loop), cached, and refetched once for an
unknown `kid` at most every cooldown period.
"""

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
import sqlalchemy as sa
from jwt import PyJWK
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from db.models import User
from services.errors import ServiceUnavailable, Unauthorized
from services.identity.role_scheme import Permissions, RoleScheme, permissions_for
from services.settings import Settings

logger = logging.getLogger("aai.auth")

REQUIRED_CLAIMS = ["exp", "iat", "iss", "aud", "sub"]


class JwksCache:
    def __init__(
        self,
        http: httpx.AsyncClient,
        url: str,
        *,
        ttl_s: float = 600.0,
        cooldown_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        self._http = http
        self._url = url
        self._ttl_s = ttl_s
        self._cooldown_s = cooldown_s
        self._keys: dict[str, PyJWK] = {}
        self._fetched_at = float("-inf")
        self._lock = asyncio.Lock()
        self.fetches = 0

    async def _refresh(self) -> None:
        try:
            response = await self._http.get(self._url)
            response.raise_for_status()
            document = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            logger.warning("JWKS fetch from %s failed: %r", self._url, exc)
            if not self._keys:
                raise ServiceUnavailable(
                    "cannot verify tokens: the signing keys are unavailable"
                ) from exc
            # Keep serving the keys we have; try again after the cooldown.
            self._fetched_at = self._clock()
            return
        keys: dict[str, PyJWK] = {}
        for entry in document.get("keys", []):
            if (
                entry.get("kty") != "RSA"
                or not entry.get("kid")
                or entry.get("use", "sig") != "sig"
            ):
                continue
            try:
                keys[entry["kid"]] = PyJWK.from_dict(entry, algorithm="RS256")
            except jwt.PyJWKError:
                continue
        self._keys = keys
        self._fetched_at = self._clock()
        self.fetches += 1

    async def key(self, kid: str) -> PyJWK:
        now = self._clock()
        stale = now - self._fetched_at > self._ttl_s
        if stale or (kid not in self._keys and now - self._fetched_at > self._cooldown_s):
            async with self._lock:
                # Re-check: a concurrent caller may have just refreshed.
                now = self._clock()
                if now - self._fetched_at > self._ttl_s or (
                    kid not in self._keys and now - self._fetched_at > self._cooldown_s
                ):
                    await self._refresh()
        found = self._keys.get(kid)
        if found is None:
            raise Unauthorized("token signed with an unknown key")
        return found

    def current(self, kid: str) -> PyJWK | None:
        """The key now held for `kid`, without fetching."""
        return self._keys.get(kid)


@dataclass(frozen=True)
class AccessClaims:
    sub: str
    roles: frozenset[str]
    raw: dict[str, Any] = field(repr=False)


# Tokens whose signature and claims were checked, per process (the portal sends one
# token per signed-in person for up to a day).
VERIFIED_TOKENS = 4096


class TokenValidator:
    """Checks an RS256 access token against the tenant's keys, audience and issuer.

    A token already checked is answered from memory until it expires, while the key that
    signed it is still the tenant's: the RS256 check and its parsing were ~14% of the CPU
    of every API request (scripts/bench/admin_lists, py-spy). The token string is the
    key, so a token differing in one byte is checked afresh."""

    def __init__(
        self, settings: Settings, jwks: JwksCache, *, wall: Callable[[], float] = time.time
    ) -> None:
        self._jwks = jwks
        self._audience = settings.auth0_audience
        self._issuers = settings.auth0_issuers
        self._leeway = settings.auth0_token_leeway_s
        self._roles_claim = settings.auth0_roles_claim
        self._wall = wall
        # token → (claims, expiry, key id, the key that verified it)
        self._verified: OrderedDict[str, tuple[AccessClaims, float, str, PyJWK]] = OrderedDict()

    async def validate(self, token: str) -> AccessClaims:
        known = self._verified.get(token)
        if known is not None:
            claims, expires, kid, key = known
            if self._jwks.current(kid) is key:
                self._refuse_expired(expires)
                self._verified.move_to_end(token)
                return claims
            del self._verified[token]
        claims, kid, key = await self._check(token)
        exp = claims.raw["exp"]
        if not isinstance(exp, int | float):
            raise Unauthorized("token has an invalid expiry")
        self._refuse_expired(float(exp))
        self._verified[token] = (claims, float(exp), kid, key)
        if len(self._verified) > VERIFIED_TOKENS:
            self._verified.popitem(last=False)
        return claims

    def _refuse_expired(self, expires: float) -> None:
        # As PyJWT judges `exp` (expired once now - leeway reaches it), on this
        # validator's clock, for checked and remembered tokens alike.
        if self._wall() - self._leeway >= expires:
            raise Unauthorized("token has expired")

    async def _check(self, token: str) -> tuple[AccessClaims, str, PyJWK]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.DecodeError:
            raise Unauthorized("malformed token") from None
        if header.get("alg") != "RS256":
            raise Unauthorized("token must be signed with RS256")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise Unauthorized("token has no key id")
        key = await self._jwks.key(kid)
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=["RS256"],
                audience=self._audience,
                issuer=self._issuers,
                leeway=self._leeway,
                # `exp` is judged by `_refuse_expired`, remembered tokens too.
                options={"require": REQUIRED_CLAIMS, "verify_exp": False},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("token has expired") from None
        except jwt.ImmatureSignatureError:
            raise Unauthorized("token is not valid yet") from None
        except jwt.InvalidAudienceError:
            raise Unauthorized("token is for another audience") from None
        except jwt.InvalidIssuerError:
            raise Unauthorized("token is from an untrusted issuer") from None
        except jwt.MissingRequiredClaimError as exc:
            raise Unauthorized(f"token lacks the {exc.claim!r} claim") from None
        except jwt.InvalidTokenError:
            raise Unauthorized("invalid token") from None
        roles = claims.get(self._roles_claim)
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise Unauthorized(f"token lacks the roles claim {self._roles_claim!r}")
        sub = claims["sub"]
        if not isinstance(sub, str) or not sub:
            raise Unauthorized("token has an invalid subject")
        return AccessClaims(sub=sub, roles=frozenset(roles), raw=claims), kid, key


@dataclass(frozen=True)
class CurrentUser:
    """The authenticated caller: who, with which roles and rights."""

    id: str
    roles: frozenset[str]
    permissions: Permissions
    access_token: str = field(repr=False)


async def is_deactivated(session: AsyncSession, user_id: str) -> bool:
    """Deleted or blocked here. Two columns through Core rather than the ORM row: this runs
    on every request, and a user not synced yet (no row) is not deactivated."""
    deactivated = await session.scalar(
        sa.select(sa.or_(col(User.is_deleted), col(User.blocked))).where(col(User.id) == user_id)
    )
    return bool(deactivated)


async def refuse_deactivated(session: AsyncSession, user_id: str) -> None:
    """401 for a caller deleted or blocked here (their token may still be valid)."""
    if await is_deactivated(session, user_id):
        raise Unauthorized("this account is deactivated")


async def claimed_user(
    validator: TokenValidator, settings: Settings, authorization: str | None
) -> CurrentUser:
    """The caller the bearer token names, checked against the keys only. Whether the
    account is deactivated here is for the caller to ask: `authenticate` does, and the
    hot reads ask in their one statement (services/users/json_reads.py)."""
    if not authorization:
        raise Unauthorized("missing bearer token")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("the Authorization header must be 'Bearer <token>'")
    claims = await validator.validate(token.strip())
    permissions = permissions_for(
        claims.roles, RoleScheme(settings.auth0_role_namespace), frozenset(settings.admin_roles)
    )
    return CurrentUser(
        id=claims.sub,
        roles=claims.roles,
        permissions=permissions,
        access_token=token.strip(),
    )


async def authenticate(
    session: AsyncSession,
    validator: TokenValidator,
    settings: Settings,
    authorization: str | None,
) -> CurrentUser:
    caller = await claimed_user(validator, settings, authorization)
    await refuse_deactivated(session, caller.id)
    return caller
