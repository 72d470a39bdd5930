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


class SharedBudget:
    """The tenant's rate limit is one budget for every process that calls it (API workers,
    replicas, the scheduler), and Auth0 says in each answer how much of it is left
    (`X-RateLimit-Limit`, `-Remaining`, `-Reset` = epoch seconds when the bucket is full
    again). A process that only paced itself would drive the shared bucket into 429s;
    this one reads what every answer says and holds its calls to that bucket while the
    bucket is down to `reserve`, until one token is back, so the processes share it.

    Buckets are learned per operation: on plans with per-endpoint buckets (Self Service)
    each operation's answers describe its own bucket."""

    def __init__(self, reserve: int = 1, *, wall_clock: Callable[[], float] = time.time) -> None:
        self.reserve = reserve
        self._wall_clock = wall_clock
        # operation -> (limit, remaining, reset epoch seconds)
        self._buckets: dict[str, tuple[int, int, float]] = {}
        self._slots: dict[str, float] = {}  # operation -> when the last held call may go

    def learn(self, operation: str, headers: httpx.Headers) -> None:
        try:
            limit = int(headers["x-ratelimit-limit"])
            remaining = int(headers["x-ratelimit-remaining"])
            reset = float(headers["x-ratelimit-reset"])
        except (KeyError, ValueError):
            return
        self._buckets[operation] = (limit, remaining, reset)
        if remaining > self.reserve:
            self._slots.pop(operation, None)

    def hold(self, operation: str) -> float:
        """Seconds to wait before calling `operation` (0: go). Calls held on one bucket are
        spaced one refill interval apart, so they do not all go when the first may."""
        state = self._buckets.get(operation)
        if state is None:
            return 0.0
        limit, remaining, reset = state
        now = self._wall_clock()
        if reset <= now:
            self._buckets.pop(operation, None)
            self._slots.pop(operation, None)
            return 0.0
        if remaining > self.reserve:
            self._buckets[operation] = (limit, remaining - 1, reset)
            return 0.0
        # The bucket refills evenly until `reset`: one token every (reset-now)/missing s.
        interval = (reset - now) / max(limit - remaining, 1)
        slot = max(now, self._slots.get(operation, now)) + interval
        self._slots[operation] = slot
        return slot - now
