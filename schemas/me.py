"""Shapes of the /me endpoints, as the portal reads them."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, model_validator

from db.types import ApprovalStatus


class PlatformMembershipBrief(BaseModel):
    platform_id: str
    platform_name: str
    approval_status: ApprovalStatus


class GroupMembershipBrief(BaseModel):
    group_id: str
    group_name: str
    group_short_name: str | None
    approval_status: ApprovalStatus


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
    platform_memberships: list[PlatformMembershipBrief]
    group_memberships: list[GroupMembershipBrief]


class AdminPlatform(BaseModel):
    id: str
    name: str


class AdminGroup(BaseModel):
    id: str
    name: str
    short_name: str | None


class PendingPublic(BaseModel):
    platforms: list[PlatformMembershipBrief]
    groups: list[GroupMembershipBrief]


class GroupRequestItem(BaseModel):
    group_id: str = Field(min_length=1, max_length=255)
    request_reason: str | None = Field(default=None, max_length=255)


class GroupRequestCreate(BaseModel):
    """Either one group (`group_id`, `request_reason`) or several (`groups`)."""

    group_id: str | None = Field(default=None, min_length=1, max_length=255)
    request_reason: str | None = Field(default=None, max_length=255)
    groups: list[GroupRequestItem] | None = Field(default=None, min_length=1, max_length=20)

    @model_validator(mode="after")
    def _one_form(self) -> "GroupRequestCreate":
        if (self.group_id is None) == (self.groups is None):
            raise ValueError("send either group_id or groups, not both or neither")
        return self

    def items(self) -> list[GroupRequestItem]:
        if self.groups is not None:
            return self.groups
        assert self.group_id is not None
        return [GroupRequestItem(group_id=self.group_id, request_reason=self.request_reason)]


class GroupRequestResult(BaseModel):
    group_id: str
    status: Literal["pending", "conflict", "not_found"]
    message: str
