"""Client-side pacing for the Management API: a token bucket matching the tenant's limit,
held back by everyone after a 429, and the wait Auth0 asks for in its headers."""

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from email.utils import parsedate_to_datetime

import httpx

from services.errors import ServiceUnavailable


class Pacer:
    """A client-side token bucket matching the tenant's (`rps` sustained, `burst` at once),
    which also holds everyone back after a 429."""

    # Requests reach Auth0 with a few milliseconds of jitter; running a hair under the
    # tenant's bucket keeps that jitter from turning into 429s and full-bucket waits.
    SAFETY = 0.97

    def __init__(
        self,
        rps: float,
        burst: int = 1,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._clock, self._sleep = clock, sleep
        self._rate = rps * self.SAFETY
        self._capacity = float(max(burst - 1, 1))
        self._tokens = self._capacity
        self._updated = self._clock()
        self._blocked_until = 0.0
        self._lock = asyncio.Lock()

    async def wait(self, max_wait_s: float = float("inf")) -> None:
        """Wait for a turn; when the turn is more than `max_wait_s` away, take none and
        raise ServiceUnavailable instead (a request should not hold its caller, and its
        database connection, in a queue behind everyone else's Auth0 calls)."""
        async with self._lock:
            now = self._clock()
            self._tokens = min(self._capacity, self._tokens + (now - self._updated) * self._rate)
            self._updated = now
            # A negative balance is a queue of reservations, each 1/rate apart.
            ready_at = now + max(0.0, (1.0 - self._tokens) / self._rate)
            start = max(ready_at, self._blocked_until)
            if start - now > max_wait_s:
                raise ServiceUnavailable(
                    "Auth0 is busy; try again shortly", retry_after_s=math.ceil(start - now)
                )
            self._tokens -= 1.0
        if start > now:
            await self._sleep(start - now)

    def block_for(self, seconds: float) -> None:
        self._blocked_until = max(self._blocked_until, self._clock() + seconds)


def retry_after_seconds(headers: dict[str, str] | httpx.Headers | None) -> float | None:
    """How long Auth0 asks us to wait: Retry-After (seconds or date), else X-RateLimit-Reset."""
    if not headers:
        return None
    lowered = {k.lower(): v for k, v in dict(headers).items()}
    retry_after = lowered.get("retry-after")
    if retry_after:
        try:
            return max(float(retry_after), 0.0)
        except ValueError:
            try:
                return max(parsedate_to_datetime(retry_after).timestamp() - time.time(), 0.0)
            except (TypeError, ValueError):
                pass
    reset = lowered.get("x-ratelimit-reset")
    if reset:
        try:
            return max(float(reset) - time.time(), 0.0)
        except ValueError:
            return None
    return None
