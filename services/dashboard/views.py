"""/db-admin views: every table ops may read, read-only, with the search and order each offers."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlmodel import col
from starlette.requests import Request
from starlette_admin.contrib.sqla import ModelView

from db.models import (
    Auth0Event,
    Auth0OutboxEntry,
    Auth0Role,
    EmailChangeOtp,
    EmailNotification,
    Group,
    GroupAdminRole,
    GroupMembership,
    GroupMembershipHistory,
    Platform,
    PlatformAdminRole,
    PlatformMembership,
    PlatformMembershipHistory,
    SyncRun,
    User,
    UserHistory,
    UsernameClaim,
)
from services.users.admin_search import contains

# ---------------------------------------------------------------------------- views


class ReadOnlyView(ModelView):
    """Lists and detail pages only. Each view names its columns, its default order (an
    indexed one, newest first) and what search matches, so 100k-row tables stay fast."""

    page_size = 25
    page_size_options = [25, 50, 100]
    actions = []
    row_actions = ["view"]

    def can_create(self, request: Request) -> bool:
        return False

    def can_edit(self, request: Request) -> bool:
        return False

    def can_delete(self, request: Request) -> bool:
        return False

    def can_import(self, request: Request) -> bool:
        return False

    def can_export(self, request: Request) -> bool:
        return False

    async def is_action_allowed(self, request: Request, name: str) -> bool:
        return False

    def _setup_primary_key(self) -> None:
        super()._setup_primary_key()
        # String keys (AutoString) report no Python type; they are compared as strings.
        if isinstance(self._pk_coerce, tuple):
            self._pk_coerce = tuple(str if c is object else c for c in self._pk_coerce)
        elif self._pk_coerce is object:
            self._pk_coerce = str

    async def is_row_action_allowed(self, request: Request, name: str) -> bool:
        return name == "view"


class UserView(ReadOnlyView):
    fields: Sequence[Any] = [
        "id",
        "email",
        "username",
        "name",
        "email_verified",
        "connection",
        "blocked",
        "created_at",
        "updated_at",
        "last_login",
        "last_synced_at",
    ]
    exclude_fields_from_list = [
        "name",
        "connection",
        "updated_at",
        "last_synced_at",
    ]
    sortable_fields = ["created_at"]
    fields_default_sort = [("created_at", True)]
    deleted = False

    def get_list_query(self, request: Request) -> sa.Select:
        return super().get_list_query(request).where(col(User.is_deleted).is_(self.deleted))

    def get_count_query(self, request: Request) -> sa.Select:
        return super().get_count_query(request).where(col(User.is_deleted).is_(self.deleted))

    def get_search_query(self, request: Request, term: str) -> Any:
        # The trigram indexes on lower(email) / lower(username) answer these.
        return sa.or_(
            col(User.id) == term,
            contains(col(User.email), term),
            contains(col(User.username), term),
        )


class DeletedUserView(UserView):
    fields: Sequence[Any] = [
        *UserView.fields,
        "deleted_at",
        "deleted_by_id",
        "deletion_reason",
    ]
    exclude_fields_from_list = [
        *UserView.exclude_fields_from_list,
        "deletion_reason",
    ]
    sortable_fields = ["deleted_at"]
    fields_default_sort = [("deleted_at", True)]
    deleted = True


class ByUserView(ReadOnlyView):
    """Rows about users: search takes a user id, or a platform/group id where there is one."""

    search_columns = ("user_id",)

    def get_search_query(self, request: Request, term: str) -> Any:
        return sa.or_(*(getattr(self.model, c) == term for c in self.search_columns))


@dataclass(frozen=True)
class Listing:
    """One table's view: its columns, the indexed column it is ordered by (newest or
    A-Z first), which columns a search matches exactly, and columns for the detail page
    only."""

    model: type
    label: str
    key: str
    icon: str
    fields: tuple[str, ...]
    order: str
    search: tuple[str, ...]
    descending: bool = True
    detail_only: tuple[str, ...] = ()


MEMBERSHIP = ("user_id", "approval_status", "request_reason", "revocation_reason")
MEMBERSHIP_TAIL = ("updated_by_id", "created_at", "updated_at")
HISTORY_TAIL = ("user_id", "approval_status", "reason", "updated_by_id", "created_at")
CATALOG = ("name", "short_name", "access_role_id", "removed_at", "created_at", "updated_at")
LISTINGS = (
    Listing(
        UserHistory,
        "User history",
        "user-history",
        "fa fa-clock-rotate-left",
        (
            "id",
            "user_id",
            "change",
            "email",
            "username",
            "previous_value",
            "new_value",
            "changed_by_id",
            "reason",
            "created_at",
        ),
        "id",
        ("user_id",),
    ),
    Listing(
        UsernameClaim,
        "Username claims",
        "username-claims",
        "fa fa-signature",
        ("username", "user_id", "claimed_at"),
        "username",
        ("user_id", "username"),
        descending=False,
    ),
    Listing(
        PlatformMembership,
        "Platform memberships",
        "platform-memberships",
        "fa fa-id-card",
        ("id", "platform_id", *MEMBERSHIP, *MEMBERSHIP_TAIL),
        "updated_at",
        ("user_id", "platform_id"),
    ),
    Listing(
        GroupMembership,
        "Group memberships",
        "group-memberships",
        "fa fa-users",
        ("id", "group_id", *MEMBERSHIP, "rejection_reason", *MEMBERSHIP_TAIL),
        "updated_at",
        ("user_id", "group_id"),
    ),
    Listing(
        PlatformMembershipHistory,
        "Platform membership history",
        "platform-membership-history",
        "fa fa-clock-rotate-left",
        ("id", "platform_id", "membership_id", *HISTORY_TAIL),
        "id",
        ("user_id", "platform_id"),
    ),
    Listing(
        GroupMembershipHistory,
        "Group membership history",
        "group-membership-history",
        "fa fa-clock-rotate-left",
        ("id", "group_id", "membership_id", *HISTORY_TAIL),
        "id",
        ("user_id", "group_id"),
    ),
    Listing(
        Auth0Role,
        "Roles",
        "roles",
        "fa fa-key",
        ("id", "name", "description", "removed_at", "created_at", "updated_at", "last_synced_at"),
        "name",
        ("id", "name"),
        descending=False,
    ),
    Listing(
        Platform,
        "Platforms",
        "platforms",
        "fa fa-server",
        ("id", *CATALOG),
        "name",
        ("id", "name"),
        descending=False,
    ),
    Listing(
        Group,
        "Groups",
        "groups",
        "fa fa-people-group",
        ("id", *CATALOG),
        "name",
        ("id", "name", "short_name"),
        descending=False,
    ),
    Listing(
        PlatformAdminRole,
        "Platform admin roles",
        "platform-admin-roles",
        "fa fa-user-shield",
        ("platform_id", "role_id"),
        "platform_id",
        ("platform_id", "role_id"),
        descending=False,
    ),
    Listing(
        GroupAdminRole,
        "Group admin roles",
        "group-admin-roles",
        "fa fa-user-shield",
        ("group_id", "role_id"),
        "group_id",
        ("group_id", "role_id"),
        descending=False,
    ),
    Listing(
        EmailNotification,
        "Email queue",
        "email-queue",
        "fa fa-envelope",
        (
            "id",
            "to_address",
            "subject",
            "template",
            "status",
            "attempts",
            "last_error",
            "priority",
            "send_after",
            "last_attempt_at",
            "sent_at",
            "expires_at",
            "lease_expires_at",
            "dedupe_key",
            "from_address",
            "created_at",
            "body_text",
            "body_html",
        ),
        "created_at",
        ("to_address", "template"),
        # Bodies can hold one-time codes: detail page only.
        detail_only=(
            "body_text",
            "body_html",
            "dedupe_key",
            "from_address",
            "priority",
            "expires_at",
            "lease_expires_at",
            "last_attempt_at",
        ),
    ),
    Listing(
        # Never the code's hash.
        EmailChangeOtp,
        "Email-change codes",
        "email-change-codes",
        "fa fa-hashtag",
        (
            "id",
            "user_id",
            "target_email",
            "is_active",
            "attempts",
            "expires_at",
            "consumed_at",
            "created_at",
        ),
        "created_at",
        ("user_id", "target_email"),
    ),
    Listing(
        Auth0OutboxEntry,
        "Auth0 outbox",
        "auth0-outbox",
        "fa fa-paper-plane",
        (
            "id",
            "operation",
            "user_id",
            "role_id",
            "status",
            "attempts",
            "last_error",
            "next_attempt_at",
            "requested_by_id",
            "created_at",
            "completed_at",
        ),
        "id",
        ("user_id", "role_id"),
    ),
    Listing(
        # What Auth0 pushed (Event Streams, the Log Stream) and what became of it: a parked
        # event's outcome says why.
        Auth0Event,
        "Auth0 events",
        "auth0-events",
        "fa fa-inbox",
        (
            "id",
            "source",
            "type",
            "user_id",
            "status",
            "outcome",
            "attempts",
            "occurred_at",
            "received_at",
            "finished_at",
            "next_attempt_at",
            "event_id",
            "body",
        ),
        "received_at",
        ("user_id", "type"),
        detail_only=("body", "event_id", "next_attempt_at"),
    ),
    Listing(
        SyncRun,
        "Scheduler runs",
        "scheduler-runs",
        "fa fa-rotate",
        ("id", "job", "status", "dry_run", "started_at", "finished_at", "host", "error", "counts"),
        "started_at",
        ("job",),
        detail_only=("counts",),
    ),
)


def views() -> list[ReadOnlyView]:
    views: list[ReadOnlyView] = [
        UserView(User, menu_label="Users", key="users", icon="fa fa-user"),
        DeletedUserView(
            User, menu_label="Deleted users", key="deleted-users", icon="fa fa-user-slash"
        ),
    ]
    for listing in LISTINGS:
        view_class = type(
            f"{listing.model.__name__}View",
            (ByUserView,),
            {
                "fields": list(listing.fields),
                "exclude_fields_from_list": list(listing.detail_only),
                "sortable_fields": [listing.order],
                "fields_default_sort": [(listing.order, listing.descending)],
                "search_columns": listing.search,
            },
        )
        views.append(
            view_class(listing.model, menu_label=listing.label, key=listing.key, icon=listing.icon)
        )
    return views
