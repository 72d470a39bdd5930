"""Event Streams and a Log Stream, as Auth0 delivers them: to configured URLs, over real HTTP.

What is modelled, and from where:
- **At least once.** A delivery that gets no 2xx is retried with growing pauses ("Without
  this response, Auth0 considers the event delivery a failure and will retry", Events Best
  Practices); Auth0's older eventing docs say up to 12 times, so `max_attempts` defaults to
  12, after which the event counts as failed (`stats.failed`; Auth0 then lists it among the
  stream's failed deliveries, to be redelivered by hand). A delivered event may come again
  ("Webhook endpoints may occasionally receive the same event more than once"):
  `duplicate_rate`.
- **No guaranteed order** ("Auth0 does not guarantee that events are delivered in the same
  sequence that they are generated"): up to `reorder_window` queued deliveries are shuffled
  before they go.
- **Event Streams** post one CloudEvent per request, authenticated by a bearer token
  (EventStreamWebhookAuthorization: bearer, basic or a custom header).
- **A Log Stream** posts batches of log entries in its Content Format (JSON array, JSON
  lines or one object per request) with a static Authorization header (custom webhook).

`StreamDelivery` listens to a `Tenant` (its `listeners`) and posts from a thread of its own,
so tests, `scripts/run` and the benchmarks see the same pushes a real tenant makes.
"""

import json
import random
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import httpx

from scripts.auth0_emulator.tenant import Tenant

RETRY_DELAYS_S = (0.2, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0)


@dataclass
class Target:
    url: str
    authorization: str  # the whole Authorization header value
    content_format: str = "JSONARRAY"  # Log Streams: JSONARRAY | JSONLINES | JSONOBJECT


@dataclass
class _Delivery:
    items: list[dict[str, Any]]
    attempts: int = 0
    due: float = 0.0


@dataclass
class DeliveryStats:
    delivered: int = 0  # items that got a 2xx (duplicates included)
    duplicates: int = 0
    attempts: int = 0  # requests made
    refused: int = 0  # requests that got no 2xx or no answer
    failed: int = 0  # items given up after max_attempts
    latencies: list[float] = field(default_factory=list)


class StreamDelivery:
    def __init__(
        self,
        tenant: Tenant,
        *,
        events: Target | None = None,
        logs: Target | None = None,
        duplicate_rate: float = 0.0,
        reorder_window: int = 1,
        log_batch: int = 100,
        max_attempts: int = 12,
        retry_delays_s: tuple[float, ...] = RETRY_DELAYS_S,
        seed: int | None = None,
        timeout_s: float = 10.0,
        senders: int = 4,
    ) -> None:
        self.tenant = tenant
        self.targets = {"event": events, "log": logs}
        self.duplicate_rate = duplicate_rate
        self.reorder_window = max(1, reorder_window)
        self.log_batch = log_batch
        self.max_attempts = max_attempts
        self.retry_delays_s = retry_delays_s
        self.random = random.Random(seed)
        self.timeout_s = timeout_s
        # Deliveries in flight at once per stream (Auth0 does not wait for one to answer
        # before sending the next).
        self.senders = senders
        self.queues: dict[str, deque[_Delivery]] = {"event": deque(), "log": deque()}
        self.stats = {"event": DeliveryStats(), "log": DeliveryStats()}
        self._lock = threading.Condition()
        self._stop = False
        self._busy = 0
        self._threads: list[threading.Thread] = []

    # ---- the tenant's side --------------------------------------------------------

    def offer(self, kind: str, item: dict[str, Any]) -> None:
        if self.targets.get(kind) is None:
            return
        with self._lock:
            queue = self.queues[kind]
            if (
                kind == "log"
                and queue
                and queue[-1].attempts == 0
                and len(queue[-1].items) < self.log_batch
            ):
                queue[-1].items.append(item)  # log entries travel in batches
            else:
                queue.append(_Delivery([item], due=time.monotonic()))
            self._lock.notify_all()

    def start(self) -> "StreamDelivery":
        self.tenant.listeners.append(self.offer)
        for kind in ("event", "log"):
            if self.targets[kind] is not None:
                for _ in range(self.senders):
                    thread = threading.Thread(target=self._run, args=(kind,), daemon=True)
                    thread.start()
                    self._threads.append(thread)
        return self

    def stop(self) -> None:
        if self.offer in self.tenant.listeners:
            self.tenant.listeners.remove(self.offer)
        with self._lock:
            self._stop = True
            self._lock.notify_all()
        for thread in self._threads:
            thread.join(timeout=5)

    def __enter__(self) -> "StreamDelivery":
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def pending(self) -> int:
        with self._lock:
            return sum(len(d.items) for q in self.queues.values() for d in q) + self._busy

    def wait_idle(self, timeout_s: float = 30.0) -> bool:
        """True once everything offered so far was delivered (or given up)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.pending() == 0:
                return True
            time.sleep(0.02)
        return False

    # ---- the delivering side ------------------------------------------------------

    def _take(self, kind: str) -> list[_Delivery] | None:
        with self._lock:
            while not self._stop:
                queue, now = self.queues[kind], time.monotonic()
                ready = [d for d in list(queue)[: self.reorder_window * 4] if d.due <= now]
                if ready:
                    chosen = ready[: self.reorder_window]
                    for delivery in chosen:
                        queue.remove(delivery)
                    self._busy += sum(len(d.items) for d in chosen)
                    self.random.shuffle(chosen)
                    return chosen
                waits = [d.due - now for d in queue]
                self._lock.wait(timeout=min(waits) if waits else 0.5)
            return None

    def _run(self, kind: str) -> None:
        target = self.targets[kind]
        assert target is not None
        stats = self.stats[kind]
        with httpx.Client(timeout=self.timeout_s) as client:
            while (batch := self._take(kind)) is not None:
                for delivery in batch:
                    ok = self._post(client, kind, target, delivery.items)
                    with self._lock:
                        stats.attempts += 1
                        self._busy -= len(delivery.items)
                        if ok:
                            stats.delivered += len(delivery.items)
                            if self.random.random() < self.duplicate_rate:
                                stats.duplicates += len(delivery.items)
                                self.queues[kind].append(
                                    _Delivery(list(delivery.items), due=time.monotonic())
                                )
                            continue
                        stats.refused += 1
                        delivery.attempts += 1
                        if delivery.attempts >= self.max_attempts:
                            stats.failed += len(delivery.items)
                            continue
                        pause = self.retry_delays_s[
                            min(delivery.attempts - 1, len(self.retry_delays_s) - 1)
                        ]
                        delivery.due = time.monotonic() + pause
                        self.queues[kind].appendleft(delivery)
                        self._lock.notify_all()

    def _post(
        self, client: httpx.Client, kind: str, target: Target, items: list[dict[str, Any]]
    ) -> bool:
        headers = {"authorization": target.authorization}
        if kind == "event":
            bodies = [json.dumps(item) for item in items]
        elif target.content_format == "JSONLINES":
            bodies = ["\n".join(json.dumps(item) for item in items)]
        elif target.content_format == "JSONOBJECT":
            bodies = [json.dumps(item) for item in items]
        else:
            bodies = [json.dumps(items)]
        try:
            for body in bodies:
                response = client.post(
                    target.url,
                    content=body,
                    headers={**headers, "content-type": "application/json"},
                )
                if not 200 <= response.status_code < 300:
                    return False
        except httpx.HTTPError:
            return False
        return True
