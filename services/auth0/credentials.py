"""Client-credentials tokens for the Management API, fetched without blocking the loop.

auth0-python's own providers are synchronous (or unused by the async client) and
hard-code https, so this one is ours: one fetch at a time, cached until shortly
before expiry, invalidated when Auth0 rejects it.
"""

import asyncio
import logging
import time
from collections.abc import Callable

import httpx

from services.errors import ServiceUnavailable, UpstreamError

REFRESH_MARGIN_S = 60.0

logger = logging.getLogger("aai.auth0")


def oauth_error(response: httpx.Response) -> tuple[str, str]:
    """(error, error_description) of an Authentication API error answer (/oauth/token)."""
    try:
        body = response.json()
    except ValueError:
        return "", response.text[:200]
    if not isinstance(body, dict):
        return "", str(body)[:200]
    error = str(body.get("error") or "")
    return error, str(body.get("error_description") or body.get("message") or error)


class ManagementTokenProvider:
    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        token_url: str,
        client_id: str,
        client_secret: str,
        audience: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._http = http
        self._clock = clock
        self._token_url = token_url
        self._form = {
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": client_secret,
            "audience": audience,
        }
        self.client_id = client_id
        self.client_secret = client_secret
        self._token: str | None = None
        self._expires_at = 0.0
        # The scopes the last token was granted (Auth0's `scope` answer), for the start-up
        # log and `check-auth0`.
        self.scopes: frozenset[str] = frozenset()
        self._lock = asyncio.Lock()
        self.fetches = 0

    def _valid(self) -> bool:
        return self._token is not None and self._clock() < self._expires_at

    async def get(self) -> str:
        if self._token is None or not self._valid():
            async with self._lock:
                # Another waiter may have refreshed it while this one queued.
                if not self._valid():
                    await self._fetch()
        assert self._token is not None  # _fetch sets it or raises
        return self._token

    def invalidate(self) -> None:
        self._token = None
        self._expires_at = 0.0

    async def _fetch(self) -> None:
        try:
            response = await self._http.post(self._token_url, data=self._form)
        except httpx.TransportError as exc:
            raise ServiceUnavailable(
                f"Auth0 token endpoint unreachable ({type(exc).__name__})"
            ) from exc
        if response.status_code >= 500 or response.status_code == 429:
            raise ServiceUnavailable(
                f"Auth0 token endpoint is unavailable ({response.status_code})"
            )
        if response.status_code != 200:
            # A refusal here is configuration, not load: a wrong audience ("Service not
            # enabled within domain", AUTH0_DOMAIN set to the custom domain), a client
            # without a grant, a wrong secret. Say so where ops look.
            _, reason = oauth_error(response)
            logger.error(
                "auth0 refused the management token (%s): %s", response.status_code, reason
            )
            raise UpstreamError(
                f"Auth0 refused the management client credentials ({response.status_code}): {reason}"
            )
        try:
            body = response.json()
            token = str(body["access_token"])
            expires_in = float(body.get("expires_in", 86400))
        except (ValueError, KeyError, TypeError) as exc:
            raise UpstreamError("Auth0's token endpoint answered something unreadable") from exc
        self.fetches += 1
        self._token = token
        self.scopes = frozenset(str(body.get("scope") or "").split())
        self._expires_at = self._clock() + max(expires_in - REFRESH_MARGIN_S, expires_in / 2)
