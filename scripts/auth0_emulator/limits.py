"""Auth0-like rate limiting (a token bucket per tenant) and fault injection."""

import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

# Management API buckets per subscription, from Auth0's rate-limit policy ("Rate Limit
# Configurations": free-public, self-service-public, enterprise-public): (bucket name, which
# requests it counts, sustained requests per second, burst). A request spends from the first
# bucket that counts it. Free and Enterprise have one bucket for the whole Management API;
# Self Service has one per endpoint group, "All other endpoints combined" taking the rest
# (roles, role users, jobs, tickets).
Counts = Callable[[str, str], bool]  # (method, path with ids replaced) -> counted?


def _any(_method: str, _path: str) -> bool:
    return True


def _read_users(method: str, path: str) -> bool:
    return method == "GET" and path in (
        "/api/v2/users",
        "/api/v2/users/{id}",
        "/api/v2/users-by-email",
    )


def _write_users(method: str, path: str) -> bool:
    return method in ("POST", "PATCH") and path in ("/api/v2/users", "/api/v2/users/{id}")


def _delete_users(method: str, path: str) -> bool:
    return method == "DELETE" and path == "/api/v2/users/{id}"


PRESETS: dict[str, list[tuple[str, Counts, float, int]]] = {
    "free": [("management", _any, 2.0, 2)],
    "self-service": [
        ("read users", _read_users, 500 / 60, 40),
        ("write users", _write_users, 200 / 60, 20),
        ("delete users", _delete_users, 200 / 60, 20),
        ("all other endpoints", _any, 150 / 60, 10),
    ],
    "enterprise": [("management", _any, 16.0, 50)],  # production tenants
    "enterprise-nonprod": [("management", _any, 2.0, 10)],
    "off": [],
}


@dataclass
class TokenBucket:
    rate: float  # tokens added per second
    capacity: int
    tokens: float = -1.0
    updated: float = field(default_factory=time.monotonic)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        if self.tokens < 0:
            self.tokens = float(self.capacity)

    def _refill(self, now: float) -> None:
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now

    def take(self) -> tuple[bool, int, int]:
        """Take one token: (allowed, remaining, reset epoch seconds when full again)."""
        with self.lock:
            now = time.monotonic()
            self._refill(now)
            allowed = self.tokens >= 1
            if allowed:
                self.tokens -= 1
            seconds_to_full = (self.capacity - self.tokens) / self.rate
            reset = math.ceil(time.time() + seconds_to_full)
            return allowed, int(self.tokens), reset


@dataclass
class Faults:
    """What goes wrong, changeable at runtime through /_emulator/config."""

    error_rate: float = 0.0  # fraction of Management API calls answered 5xx
    error_status: int = 503
    latency_ms: float = 0.0
    fail_exports: bool = False
    exports_enabled: bool = True  # False: the Free plan, where export jobs are refused
    export_delay_s: float = 0.2
    down: bool = False  # every Management and token call answers 503
    # Response drift: Management API calls answer 200 with a body of the wrong shape, as
    # after an unannounced API change or a proxy's page. auth0-python 6.x validates bodies
    # against its models and raises `ParsingError` (auth0/management/core/parse_error.py),
    # which is not an `ApiError`; a body that is not JSON at all is an `ApiError` carrying
    # the 2xx status (the generated raw clients' `except JSONDecodeError`).
    drift: str | None = None  # None, "shape" (valid JSON, wrong shape) or "html"
    # Role members answered with a full page that names no next page: a list cut short.
    cut_pages: bool = False
    # The next N export `location`s handed out have already expired (a consumer slower
    # than the link's 60 s).
    stale_export_locations: int = 0
    # 429s say the bucket is full again only this many seconds later (0: the bucket's own).
    long_reset_s: float = 0.0
    seed: int | None = None
    _random: random.Random = field(default_factory=random.Random)

    def __post_init__(self) -> None:
        if self.seed is not None:
            self._random.seed(self.seed)

    def take_stale_location(self) -> bool:
        if self.stale_export_locations > 0:
            self.stale_export_locations -= 1
            return True
        return False

    def should_fail(self) -> bool:
        return self.down or (self.error_rate > 0 and self._random.random() < self.error_rate)


@dataclass
class RateLimits:
    """The buckets of one preset; `take` spends from the bucket that counts the request."""

    preset: str
    buckets: list[tuple[str, Counts, TokenBucket]]

    def take(self, method: str, path: str) -> tuple[str, TokenBucket, bool, int, int] | None:
        for name, counts, bucket in self.buckets:
            if counts(method, path):
                allowed, remaining, reset = bucket.take()
                return name, bucket, allowed, remaining, reset
        return None


def limits_for(preset: str) -> RateLimits | None:
    if preset not in PRESETS:
        raise ValueError(f"unknown rate-limit preset {preset!r}; choose from {', '.join(PRESETS)}")
    spec = PRESETS[preset]
    if not spec:
        return None
    return RateLimits(
        preset,
        [
            (name, counts, TokenBucket(rate=rate, capacity=burst))
            for name, counts, rate, burst in spec
        ],
    )
