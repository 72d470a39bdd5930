"""API shapes of a user's account: their own profile and its changes, and what admins read."""

import uuid
from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from db.types import ApprovalStatus
from schemas.memberships import GroupMembershipBrief, PlatformMembershipBrief
from schemas.registration import check_email, check_password, check_username


class ProfilePublic(BaseModel):
    user_id: str
    name: str | None
    email: str | None
    email_verified: bool
    username: str | None
    picture: str | None
    given_name: str | None
    family_name: str | None
    created_at: datetime
    last_login: datetime | None
    # The portal's post-migration banner ("Password updated. Welcome to your new access
    # profile!"): true on the first profile read after the migration, then false.
    show_welcome_message: bool = False
    platform_memberships: list[PlatformMembershipBrief]
    group_memberships: list[GroupMembershipBrief]


class AdminPlatform(BaseModel):
    id: str
    name: str


class AdminGroup(BaseModel):
    id: str
    name: str
    short_name: str | None


class NameUpdate(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")
    # Auth0's limits: given_name and family_name at most 150 characters (name 300).
    first_name: str = Field(min_length=1, max_length=150)
    last_name: str = Field(min_length=1, max_length=150)


class UsernameUpdate(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")
    username: str = Field(min_length=3, max_length=128)

    @field_validator("username")
    @classmethod
    def _username(cls, value: str) -> str:
        return check_username(value)


class EmailUpdate(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")
    email: str = Field(min_length=3, max_length=254)

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        return check_email(value)


class EmailCode(BaseModel):
    model_config = ConfigDict(extra="forbid")
    otp: str = Field(pattern=r"^\d{6}$")


class PasswordUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # The portal's password modal looks for these names in field_errors (portal contract,
    # call 9), though it sends the body in snake_case.
    form_field_names: ClassVar[dict[str, str]] = {
        "current_password": "currentPassword",
        "new_password": "newPassword",
    }
    current_password: str = Field(min_length=1, max_length=128)
    new_password: str = Field(min_length=8, max_length=72)

    @field_validator("new_password")
    @classmethod
    def _password(cls, value: str) -> str:
        return check_password(value)


class Done(BaseModel):
    message: str


class AdminFilter(BaseModel):
    """A platform or group the caller administers; `id` is what `filter_by` takes."""

    id: str
    name: str
    type: Literal["platform", "group"]


class AdminUserQuery(BaseModel):
    """Filters of the admin user list. Every filter narrows the caller's own scope."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    page: int = Field(default=1, ge=1, le=100_000)
    per_page: int = Field(default=100, ge=1, le=100)
    filter_by: str | None = Field(
        default=None, max_length=255, description="an id from /admin/filters"
    )
    search: str | None = Field(
        default=None,
        max_length=100,
        description="part of a username or email, any case; with an @ only emails match",
    )
    email_verified: bool | None = None
    approval_status: ApprovalStatus | None = Field(
        default=None, description="on any membership the caller administers"
    )
    platform: str | None = Field(default=None, max_length=64)
    platform_approval_status: ApprovalStatus | None = None
    group: str | None = Field(default=None, max_length=255)
    group_approval_status: ApprovalStatus | None = None
    deleted: bool = Field(default=False, description="list deleted users instead of live ones")


class PlatformMembershipAdmin(BaseModel):
    id: uuid.UUID
    platform_id: str
    platform_name: str
    user_id: str
    approval_status: ApprovalStatus
    updated_by: str  # the admin's email, or "(automatic)" for the sync and sign-up
    updated_at: datetime
    revocation_reason: str | None
    request_reason: str | None
    requested_at: datetime | None = None  # the latest request (pending), if any


class GroupMembershipAdmin(BaseModel):
    id: uuid.UUID
    group_id: str
    group_name: str
    group_short_name: str | None
    user_id: str
    approval_status: ApprovalStatus
    updated_by: str
    updated_at: datetime
    revocation_reason: str | None
    rejection_reason: str | None
    request_reason: str | None
    # The latest request (the [b95] portal's pending tooltip), if any.
    requested_at: datetime | None = None


class AdminUser(BaseModel):
    id: str
    email: str | None
    username: str | None
    email_verified: bool
    created_at: datetime
    is_deleted: bool = False
    platform_memberships: list[PlatformMembershipAdmin]
    group_memberships: list[GroupMembershipAdmin]


class UserPages(BaseModel):
    total: int
    pages: int
    per_page: int


class UserCounts(BaseModel):
    all: int
    pending: int
    revoked: int
    unverified: int


class UserHistoryEntry(BaseModel):
    change: str
    previous_value: str | None
    new_value: str | None
    reason: str | None
    changed_by: str
    created_at: datetime


class MembershipHistoryEntry(BaseModel):
    kind: Literal["platform", "group"]
    target_id: str
    approval_status: ApprovalStatus
    reason: str | None
    updated_by: str
    created_at: datetime


class AdminUserRecord(AdminUser):
    """What the database holds for a user's details page, before the live Auth0 profile
    is laid over it (not a response of its own: AdminUserDetails is)."""

    user_id: str
    updated_at: datetime
    name: str | None
    given_name: str | None
    family_name: str | None
    picture: str | None
    blocked: bool
    connection: str | None
    last_login: datetime | None
    deleted_at: datetime | None
    deletion_reason: str | None
    history: list[UserHistoryEntry]
    membership_history: list[MembershipHistoryEntry]


class AdminUserDetails(AdminUser):
    """The database record with the live Auth0 profile laid over it.

    `profile_source` says where the profile fields came from: "auth0" when Auth0
    answered, "database" when it could not be reached (the page still loads)."""

    profile_source: Literal["auth0", "database"]
    # The portal's details page builds every action URL from `user_id` (not `id`), and
    # shows `updated_at` as "Last Updated" (portal contract, call 18).
    user_id: str
    updated_at: datetime
    name: str | None
    given_name: str | None
    family_name: str | None
    picture: str | None
    blocked: bool
    connection: str | None
    last_login: datetime | None
    last_ip: str | None = None
    logins_count: int | None = None
    identities: list[dict[str, Any]] = Field(default_factory=list)
    user_metadata: dict[str, Any] = Field(default_factory=dict)
    app_metadata: dict[str, Any] = Field(default_factory=dict)
    deleted_at: datetime | None
    deletion_reason: str | None
    history: list[UserHistoryEntry]
    membership_history: list[MembershipHistoryEntry]


class IsAdmin(BaseModel):
    platform_id: str
    is_admin: bool


class InvalidEmailDeletion(BaseModel):
    """`POST /admin/users/{id}/delete_invalid_email`: where to tell the person."""

    correct_email: str = Field(min_length=3, max_length=254)

    @field_validator("correct_email")
    @classmethod
    def _email(cls, value: str) -> str:
        return check_email(value.strip())
