import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field

from db.base import (
    TableBase,
    created_at_field,
    enum_column,
    timestamp_field,
    updated_at_field,
    uuid_pk_field,
)
from db.types import EmailStatus


class EmailNotification(TableBase, table=True):
    """The outgoing email queue.

    A row is enqueued in the same transaction as the change that causes it.
    `dedupe_key` stops the same message being queued twice; `lease_expires_at` lets a
    crashed sender's rows be picked up again (and, while the lease holds, tells whose
    send a result belongs to); `priority` puts one-time codes first (lower sends sooner).
    Delivery: services/email/delivery.py.
    """

    __tablename__ = "email_notification"

    id: uuid.UUID = uuid_pk_field()
    to_address: str = Field(max_length=320)
    from_address: str | None = Field(default=None, max_length=320)
    subject: str = Field(max_length=998)
    body_html: str = Field(sa_type=sa.Text)
    body_text: str | None = Field(default=None, sa_type=sa.Text)
    template: str | None = Field(default=None, max_length=64)
    dedupe_key: str | None = Field(default=None, max_length=255, unique=True)
    priority: int = Field(default=100, sa_type=sa.SmallInteger)
    status: EmailStatus = Field(
        default=EmailStatus.PENDING, sa_column=enum_column(EmailStatus, index=False)
    )
    attempts: int = Field(default=0)
    last_error: str | None = Field(default=None, sa_type=sa.Text)
    send_after: datetime | None = timestamp_field()
    # Not worth sending after this (a one-time code that has expired): dropped as failed.
    expires_at: datetime | None = timestamp_field()
    lease_expires_at: datetime | None = timestamp_field()
    last_attempt_at: datetime | None = timestamp_field()
    sent_at: datetime | None = timestamp_field()
    created_at: datetime = created_at_field()
    updated_at: datetime = updated_at_field()


# The delivery job's claim query: ready rows by status, priority, due time.
sa.Index(
    "ix_email_notification_status_priority_send_after",
    EmailNotification.__table__.c.status,
    EmailNotification.__table__.c.priority,
    EmailNotification.__table__.c.send_after,
)
sa.Index("ix_email_notification_created_at", EmailNotification.__table__.c.created_at)
# "What did we send this person?" (/db-admin search).
sa.Index("ix_email_notification_to_address", EmailNotification.__table__.c.to_address)


class EmailChangeOtp(TableBase, table=True):
    """A one-time code for changing a user's email; only a keyed hash is stored."""

    __tablename__ = "email_change_otp"

    id: uuid.UUID = uuid_pk_field()
    user_id: str = Field(foreign_key="app_user.id", max_length=255)
    target_email: str = Field(max_length=320)
    otp_hash: str = Field(max_length=128)
    expires_at: datetime = timestamp_field(nullable=False)
    is_active: bool = Field(default=True)
    attempts: int = Field(default=0)
    consumed_at: datetime | None = timestamp_field()
    created_at: datetime = created_at_field()


# At most one live code per user: issuing a new one must void the old in the same
# transaction, or the insert fails.
sa.Index(
    "uq_email_change_otp_user_id_active",
    EmailChangeOtp.__table__.c.user_id,
    unique=True,
    postgresql_where=EmailChangeOtp.__table__.c.is_active,
    sqlite_where=EmailChangeOtp.__table__.c.is_active,
)
sa.Index("ix_email_change_otp_expires_at", EmailChangeOtp.__table__.c.expires_at)
