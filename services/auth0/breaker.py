"""A circuit breaker in front of the Management API: once Auth0 has failed several attempts
in a row, calls fail at once (503) for a cool-off instead of each waiting through its own
retries. In the API that matters more than the call itself: a request waiting on Auth0
holds its database connection, and during an outage enough of them drained the pool and
stalled reads that never touch Auth0."""

import logging
import time
from collections.abc import Callable

from services.errors import ServiceUnavailable

logger = logging.getLogger("aai.auth0")


class CircuitBreaker:
    """Opens after `threshold` consecutive failed attempts (5xx, unreachable); while open,
    calls are refused for `cooloff_s`. Then one trial call is let through: its success
    closes the circuit, its failure opens it for another cool-off. A threshold of 0
    turns the breaker off (the scheduler's jobs would rather wait Auth0 out)."""

    def __init__(
        self, threshold: int, cooloff_s: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._clock = clock
        self.threshold = threshold
        self.cooloff_s = cooloff_s
        self.failures = 0
        self.opened = 0  # times the circuit has opened, for logs and tests
        self._open_until = 0.0
        self._trial_running = False

    def admit(self, operation: str) -> None:
        """Let an attempt go to Auth0 (as the trial, if one is due), or raise
        ServiceUnavailable while the circuit is open."""
        if not self.threshold or self.failures < self.threshold:
            return
        now = self._clock()
        if now < self._open_until or self._trial_running:
            wait = max(self._open_until - now, 1.0)
            raise ServiceUnavailable(
                f"Auth0 failed {self.failures} attempts in a row; {operation} not tried, "
                f"retry in {wait:.0f}s",
                retry_after_s=int(wait) + 1,
            )
        self._trial_running = True

    def succeeded(self) -> None:
        if self.failures >= self.threshold > 0:
            logger.info("auth0 answers again; circuit closed")
        self.failures = 0
        self._trial_running = False

    def failed(self) -> None:
        self.failures += 1
        self._trial_running = False
        if self.threshold and self.failures >= self.threshold:
            if self._clock() >= self._open_until:
                self.opened += 1
                logger.warning(
                    "auth0 failed %s attempts in a row; refusing calls for %.0fs",
                    self.failures,
                    self.cooloff_s,
                )
            self._open_until = self._clock() + self.cooloff_s

    def abandoned(self) -> None:
        """The attempt ended without an answer either way (cancelled): let another try."""
        self._trial_running = False
