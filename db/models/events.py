"""The inbox of events Auth0 pushes (Event Streams and a Log Stream), drained by the
scheduler's `events.apply` job (services/sync/events.py)."""

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field

from db.base import BIGINT_PK, TableBase, created_at_field, enum_column, timestamp_field
from db.types import EventSource, EventStatus


class Auth0Event(TableBase, table=True):
    """One delivered event, stored as it came, keyed by its own id so a redelivery is a
    no-op. Auth0 delivers at least once and in no guaranteed order; the apply job makes
    that converge. Rows end applied, ignored (nothing to do) or parked (with the reason:
    never lost, never retried forever)."""

    __tablename__ = "auth0_event"
    __table_args__ = (sa.UniqueConstraint("source", "event_id"),)

    id: int | None = Field(default=None, sa_column=sa.Column(BIGINT_PK, primary_key=True))
    source: EventSource = Field(sa_column=enum_column(EventSource))
    event_id: str = Field(max_length=255)
    type: str = Field(max_length=64)
    # The user the event is about, when it names one (CloudEvent data.object.user_id, a log
    # entry's user_id or the user in its request path).
    user_id: str | None = Field(default=None, max_length=255)
    occurred_at: datetime | None = timestamp_field()
    received_at: datetime = created_at_field()
    body: dict[str, Any] = Field(sa_column=sa.Column(sa.JSON, nullable=False))
    status: EventStatus = Field(
        default=EventStatus.PENDING, sa_column=enum_column(EventStatus, index=False)
    )
    attempts: int = Field(default=0)
    next_attempt_at: datetime | None = timestamp_field()
    finished_at: datetime | None = timestamp_field()
    # What applying it did, or why it was ignored or parked.
    outcome: str | None = Field(default=None, sa_type=sa.Text)


_events = Auth0Event.__table__
# The drain: pending rows in arrival order.
sa.Index(
    "ix_auth0_event_pending",
    _events.c.id,
    postgresql_where=_events.c.status == EventStatus.PENDING.value,
    sqlite_where=_events.c.status == EventStatus.PENDING.value,
)
# Health (the last delivery per source) and /db-admin's newest-first list.
sa.Index("ix_auth0_event_source_received_at", _events.c.source, _events.c.received_at)
# A user's events: a deletion outranks any older or later-delivered update.
sa.Index("ix_auth0_event_user_id_type", _events.c.user_id, _events.c.type)
