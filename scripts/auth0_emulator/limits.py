"""Auth0-like rate limiting (a token bucket per tenant) and fault injection."""

import math
import random
import threading
import time
from dataclasses import dataclass, field

# Management API buckets from Auth0's published rate-limit policy.
PRESETS: dict[str, tuple[float, int] | None] = {
    "free": (2.0, 2),  # 2 requests/s sustained, burst 2
    "enterprise": (16.0, 50),
    "off": None,
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
    seed: int | None = None
    _random: random.Random = field(default_factory=random.Random)

    def __post_init__(self) -> None:
        if self.seed is not None:
            self._random.seed(self.seed)

    def should_fail(self) -> bool:
        return self.down or (self.error_rate > 0 and self._random.random() < self.error_rate)


def bucket_for(preset: str) -> TokenBucket | None:
    if preset not in PRESETS:
        raise ValueError(f"unknown rate-limit preset {preset!r}; choose from {', '.join(PRESETS)}")
    spec = PRESETS[preset]
    return TokenBucket(rate=spec[0], capacity=spec[1]) if spec else None
