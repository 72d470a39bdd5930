"""Auth0's current roles of a user, asked before an admin write.

An access token carries the roles its holder had when it was issued, and Auth0 tokens
often live for a day. Admin writes therefore confirm the caller's admin roles with
Auth0 (a removed role stops working within a minute), and account actions look at
the target's current roles (an admin's account is out of a platform admin's reach
even when the target signed in before becoming an admin).
"""

import time
from collections.abc import Callable

from services.auth0 import Auth0Gateway
from services.errors import AppError, NotFound, ServiceUnavailable
from services.kit.cache import TtlCache

# "Within a minute": a cached answer is used at most this long after it was fetched.
MAX_AGE_S = 60.0


class LiveRoles:
    def __init__(
        self, auth0: Auth0Gateway, ttl_s: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._auth0 = auth0
        self._cache: TtlCache[frozenset[str]] = TtlCache(ttl_s, clock=clock)
        self._max_stale_s = max(0.0, MAX_AGE_S - ttl_s)

    async def of(self, user_id: str) -> frozenset[str]:
        """Role names the user holds in Auth0 now (empty for a user Auth0 does not know).
        503 when Auth0 cannot answer and no answer younger than a minute is at hand:
        without it nobody can tell whether the write is allowed."""

        async def lookup() -> frozenset[str]:
            try:
                roles = await self._auth0.user_roles(user_id)
            except NotFound:
                return frozenset()
            return frozenset(str(role["name"]) for role in roles)

        try:
            return await self._cache.get(
                user_id, lookup, stale_on=(AppError,), max_stale_s=self._max_stale_s
            )
        except ServiceUnavailable:
            raise
        except AppError as exc:
            raise ServiceUnavailable(
                f"cannot confirm roles with Auth0 right now ({exc.detail}); try again shortly"
            ) from None
