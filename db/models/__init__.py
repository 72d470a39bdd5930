"""Every table model, imported here so the metadata is complete wherever it is used."""

from db.models.catalog import Group, GroupAdminRole, Platform, PlatformAdminRole
from db.models.email import EmailChangeOtp, EmailNotification
from db.models.events import Auth0Event
from db.models.membership import (
    GroupMembership,
    GroupMembershipHistory,
    PlatformMembership,
    PlatformMembershipHistory,
)
from db.models.ops import Auth0OutboxEntry, Auth0RateBudget, RateLimitHit, SyncRun
from db.models.role import Auth0Role
from db.models.user import User, UserHistory, UsernameClaim

# Tables that only ever grow: the migrations install triggers refusing UPDATE/DELETE.
APPEND_ONLY_TABLES = (
    "user_history",
    "platform_membership_history",
    "group_membership_history",
)

__all__ = [
    "APPEND_ONLY_TABLES",
    "Auth0Event",
    "Auth0OutboxEntry",
    "Auth0RateBudget",
    "Auth0Role",
    "EmailChangeOtp",
    "EmailNotification",
    "Group",
    "GroupAdminRole",
    "GroupMembership",
    "GroupMembershipHistory",
    "Platform",
    "PlatformAdminRole",
    "PlatformMembership",
    "PlatformMembershipHistory",
    "RateLimitHit",
    "SyncRun",
    "User",
    "UserHistory",
    "UsernameClaim",
]
