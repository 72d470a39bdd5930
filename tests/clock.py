"""A clock tests move by hand, for code that takes `clock=` (and `sleep=`): time passes
when the test says so, never by sleeping."""

import asyncio


class FakeClock:
    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    async def sleep(self, seconds: float) -> None:
        """A sleep that takes no time: the clock moves on, and other tasks get a turn."""
        self.now += max(seconds, 0.0)
        await asyncio.sleep(0)
