"""A small per-process cache with a time limit, for reads that many requests repeat."""

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")
MAX_ENTRIES = 10_000


class TtlCache(Generic[T]):
    """Values live `ttl_s` seconds (0 turns the cache off). Concurrent misses for one key
    wait for a single computation instead of each running it. When a recomputation fails
    with one of `stale_on`, the expired value (if any, and at most `max_stale_s` past its
    time) is returned instead."""

    def __init__(self, ttl_s: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self._clock = clock
        self._entries: dict[Hashable, tuple[float, T]] = {}
        self._locks: dict[Hashable, asyncio.Lock] = {}

    async def get(
        self,
        key: Hashable,
        compute: Callable[[], Awaitable[T]],
        *,
        stale_on: tuple[type[Exception], ...] = (),
        max_stale_s: float = float("inf"),
    ) -> T:
        if self.ttl_s <= 0:
            return await compute()
        hit = self._entries.get(key)
        if hit is not None and self._clock() - hit[0] < self.ttl_s:
            return hit[1]
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            hit = self._entries.get(key)
            if hit is not None and self._clock() - hit[0] < self.ttl_s:
                return hit[1]
            try:
                value = await compute()
            except stale_on:
                if hit is None or self._clock() - hit[0] >= self.ttl_s + max_stale_s:
                    raise
                return hit[1]
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
                self._locks = {key: lock}
            self._entries[key] = (self._clock(), value)
            return value

    def clear(self) -> None:
        self._entries.clear()
