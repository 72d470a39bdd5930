"""Whether a stream can stand in for polling: the scheduler's syncs become a net while it
is healthy, and poll as before (saying why) when it is not.

A stream is healthy when it is configured, something came within EVENTS_SILENCE_S, and its
oldest unapplied event is younger than EVENTS_MAX_LAG_S. Auth0 sends no heartbeat, so a
quiet tenant looks like a silent stream: the scheduler then polls, which costs requests
but never correctness, and returns to the net with the next delivery.
"""

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlmodel.ext.asyncio.session import AsyncSession

from db.base import utcnow
from db.models import Auth0Event
from db.types import EventSource, EventStatus
from services.settings import Settings


@dataclass(frozen=True)
class StreamHealth:
    source: EventSource
    configured: bool
    healthy: bool
    why: str
    last_delivery: datetime | None
    pending: int
    oldest_pending: datetime | None


def configured(settings: Settings, source: EventSource) -> bool:
    secret = (
        settings.events_stream_secret
        if source is EventSource.EVENT_STREAM
        else settings.log_stream_secret
    )
    return bool(secret and secret.get_secret_value())


async def stream_health(
    session: AsyncSession, settings: Settings, source: EventSource, now: datetime | None = None
) -> StreamHealth:
    now = now or utcnow()
    table = Auth0Event.__table__
    last = (
        await session.execute(
            sa.select(sa.func.max(table.c.received_at)).where(table.c.source == source)
        )
    ).scalar()
    pending, oldest = (
        await session.execute(
            sa.select(sa.func.count(), sa.func.min(table.c.received_at)).where(
                table.c.status == EventStatus.PENDING, table.c.source == source
            )
        )
    ).one()
    label = source.value.replace("_", " ")

    def health(healthy: bool, why: str) -> StreamHealth:
        return StreamHealth(
            source, configured(settings, source), healthy, why, last, pending, oldest
        )

    if not configured(settings, source):
        return health(False, f"no {label} is configured")
    if oldest is not None and (now - oldest).total_seconds() > settings.events_max_lag_s:
        return health(
            False,
            f"the {label} inbox lags: its oldest unapplied event came "
            f"{(now - oldest).total_seconds():.0f} s ago (EVENTS_MAX_LAG_S={settings.events_max_lag_s})",
        )
    if last is None:
        return health(False, f"the {label} has delivered nothing yet")
    silent = (now - last).total_seconds()
    if silent > settings.events_silence_s:
        return health(
            False,
            f"the {label} has been silent for {silent:.0f} s (EVENTS_SILENCE_S={settings.events_silence_s})",
        )
    return health(True, f"the {label} is healthy")
