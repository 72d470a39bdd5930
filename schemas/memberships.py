"""API shapes of platform and group memberships: requests and admin decisions."""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

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


class ReasonOptional(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")
    reason: str | None = Field(default=None, max_length=1024)


class ReasonRequired(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")
    reason: str = Field(min_length=1, max_length=255)


class MembershipActionResult(BaseModel):
    status: Literal["ok"] = "ok"
    updated: bool
    approval_status: ApprovalStatus
    # done: Auth0 has it; pending: queued, the scheduler completes it; not_needed: no role change
    auth0: Literal["done", "pending", "failed", "not_needed"]
