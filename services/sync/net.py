"""Polling as the net under a stream (README "Event and Log Streams"): a sync that a healthy
stream stands in for runs only every EVENTS_NET_*_INTERVAL_S; when the stream is unhealthy
it runs at its usual interval and says why (a warning, and `mode`/`why` in its run's counts).
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from db.base import utcnow
from db.types import EventSource
from services.events.stream_health import configured, stream_health
from services.settings import Settings
from services.sync.runs import JobContext
from services.sync.user_import import last_success

logger = logging.getLogger("aai.sync.net")


@dataclass(frozen=True)
class Net:
    source: EventSource
    interval_s: Callable[[Settings], int]
    since: tuple[str, ...]  # the jobs whose last success the interval counts from


async def net_decision(ctx: JobContext, job: str, net: Net) -> tuple[str | None, dict[str, Any]]:
    """(why the run is not needed now, or None; the counts a run starts with)."""
    if not configured(ctx.settings, net.source):
        return None, {}
    async with ctx.sessions() as session:
        health = await stream_health(session, ctx.settings, net.source)
        if not health.healthy:
            logger.warning(
                "%s polls: %s",
                job,
                health.why,
                extra={"event": "stream_fallback", "job": job},
            )
            return None, {"mode": "polling", "why": health.why}
        last = await last_success(session, list(net.since))
    interval = net.interval_s(ctx.settings)
    if last is not None and (utcnow() - last).total_seconds() < interval:
        return f"{health.why}; the net runs every {interval} s", {}
    return None, {"mode": "net", "why": health.why}
