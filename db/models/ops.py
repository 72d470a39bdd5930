from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field

from db.base import (
    BIGINT_PK,
    TableBase,
    created_at_field,
    enum_column,
    timestamp_field,
    updated_at_field,
)
from db.types import OutboxOperation, OutboxStatus, SyncRunStatus


class SyncRun(TableBase, table=True):
    """One run of one scheduler job: when, how it ended, what it counted."""

    __tablename__ = "sync_run"

    id: int | None = Field(default=None, sa_column=sa.Column(BIGINT_PK, primary_key=True))
    job: str = Field(max_length=64)
    status: SyncRunStatus = Field(sa_column=enum_column(SyncRunStatus))
    dry_run: bool = Field(default=False)
    started_at: datetime = created_at_field()
    finished_at: datetime | None = timestamp_field()
    counts: dict[str, Any] = Field(
        default_factory=dict, sa_column=sa.Column(sa.JSON, nullable=False)
    )
    error: str | None = Field(default=None, sa_type=sa.Text)
    host: str | None = Field(default=None, max_length=255)


sa.Index("ix_sync_run_job_started_at", SyncRun.__table__.c.job, SyncRun.__table__.c.started_at)
sa.Index("ix_sync_run_started_at", SyncRun.__table__.c.started_at)


class Auth0OutboxEntry(TableBase, table=True):
    """A role grant or revoke that must reach Auth0.

    Written in the same transaction as the membership change, then delivered (and
    retried) until Auth0 confirms it, so the database and Auth0 never disagree silently.
    """

    __tablename__ = "auth0_outbox"

    id: int | None = Field(default=None, sa_column=sa.Column(BIGINT_PK, primary_key=True))
    operation: OutboxOperation = Field(sa_column=enum_column(OutboxOperation))
    user_id: str = Field(foreign_key="app_user.id", index=True, max_length=255)
    role_id: str = Field(foreign_key="auth0_role.id", max_length=64)
    status: OutboxStatus = Field(default=OutboxStatus.PENDING, sa_column=enum_column(OutboxStatus))
    attempts: int = Field(default=0)
    next_attempt_at: datetime | None = timestamp_field()
    last_error: str | None = Field(default=None, sa_type=sa.Text)
    requested_by_id: str | None = Field(
        default=None, foreign_key="app_user.id", ondelete="SET NULL", max_length=255
    )
    created_at: datetime = created_at_field()
    updated_at: datetime = updated_at_field()
    completed_at: datetime | None = timestamp_field()


sa.Index(
    "ix_auth0_outbox_status_next_attempt_at",
    Auth0OutboxEntry.__table__.c.status,
    Auth0OutboxEntry.__table__.c.next_attempt_at,
)


class RateLimitHit(TableBase, table=True):
    """Requests one client made to one public endpoint group in one minute.

    Shared by every API worker and replica, so a limit is the limit however many
    processes serve it. Rows older than two minutes are never read again; the scheduler's
    cleanup job deletes them.
    """

    __tablename__ = "rate_limit_hit"

    scope: str = Field(primary_key=True, max_length=32)
    client: str = Field(primary_key=True, max_length=64)
    # Minutes since the epoch.
    minute: int = Field(primary_key=True, sa_type=sa.BigInteger)
    hits: int = Field(default=0)


sa.Index("ix_rate_limit_hit_minute", RateLimitHit.__table__.c.minute)


class Auth0RateBudget(TableBase, table=True):
    """One bucket of the Auth0 tenant's Management API rate limit, shared by every process
    that calls it (services/auth0/budget.py): the tokens left when it was last spent from,
    and when. A negative balance is a queue of reservations."""

    __tablename__ = "auth0_rate_budget"

    bucket: str = Field(primary_key=True, max_length=64)
    tokens: float = Field(sa_type=sa.Float)
    # Seconds since the epoch (every process's wall clock, kept by NTP).
    updated_at: float = Field(sa_type=sa.Float)
