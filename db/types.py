"""Enumerations stored in the database (by value) and exposed by the API."""

from enum import StrEnum


class ApprovalStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REVOKED = "revoked"
    REJECTED = "rejected"


class UserChange(StrEnum):
    CREATED = "created"
    EMAIL_UPDATE = "email_update"
    USERNAME_UPDATE = "username_update"
    PROFILE_UPDATE = "profile_update"
    BLOCKED = "blocked"
    UNBLOCKED = "unblocked"
    USER_DELETION = "user_deletion"
    USER_RESTORATION = "user_restoration"


class EmailStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


class OutboxOperation(StrEnum):
    GRANT_ROLE = "grant_role"
    REVOKE_ROLE = "revoke_role"


class OutboxStatus(StrEnum):
    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    DONE = "done"
    FAILED = "failed"


class SyncRunStatus(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"


class EventSource(StrEnum):
    EVENT_STREAM = "event_stream"  # Auth0 Event Streams: CloudEvents, one user object each
    LOG_STREAM = "log_stream"  # an Auth0 Log Stream (custom webhook): tenant log entries


class EventStatus(StrEnum):
    PENDING = "pending"
    APPLIED = "applied"
    IGNORED = "ignored"
    PARKED = "parked"
