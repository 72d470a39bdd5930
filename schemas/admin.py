from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from db.types import ApprovalStatus


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
