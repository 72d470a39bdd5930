"""Per-client limits for public endpoints (registration, availability checks), so they
cannot be used to enumerate accounts at speed. In memory, per process: a deployment with
N workers allows N times the limit, which still stops scripted enumeration."""

import time
from dataclasses import dataclass, field

from services.errors import TooManyRequests

MAX_CLIENTS = 50_000


@dataclass
class _Bucket:
    tokens: float
    updated: float


@dataclass
class RateLimiter:
    per_minute: int
    buckets: dict[tuple[str, str], _Bucket] = field(default_factory=dict)

    def check(self, scope: str, client: str) -> None:
        now = time.monotonic()
        rate = self.per_minute / 60.0
        key = (scope, client)
        bucket = self.buckets.get(key)
        if bucket is None:
            if len(self.buckets) >= MAX_CLIENTS:
                self.buckets.clear()
            bucket = self.buckets[key] = _Bucket(tokens=float(self.per_minute), updated=now)
        bucket.tokens = min(float(self.per_minute), bucket.tokens + (now - bucket.updated) * rate)
        bucket.updated = now
        if bucket.tokens < 1:
            wait = int((1 - bucket.tokens) / rate) + 1
            raise TooManyRequests(
                f"too many requests; try again in {wait}s", headers={"Retry-After": str(wait)}
            )
        bucket.tokens -= 1
