"""Admin endpoints. Membership decisions: a general admin, or an admin of the platform or
group in the path. 202 means the database changed and the Auth0 role change is queued."""

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Path, Response
from sqlmodel.ext.asyncio.session import AsyncSession

from routers.deps import Auth0Dep, CurrentUserDep, SessionDep, SettingsDep
from schemas.admin import MembershipActionResult, ReasonOptional, ReasonRequired
from services import admin_memberships
from services.auth import CurrentUser
from services.auth0 import Auth0Gateway
from services.settings import Settings

router = APIRouter(prefix="/admin", tags=["admin"])

UserId = Annotated[str, Path(min_length=1, max_length=255)]
PlatformId = Annotated[str, Path(min_length=1, max_length=64)]
GroupId = Annotated[str, Path(min_length=1, max_length=255)]
DECISION_RESPONSES: dict[int | str, dict[str, str]] = {
    202: {"description": "Changed here; the Auth0 role change is queued and completes shortly"},
    403: {"description": "Not an admin of this platform or group"},
    404: {"description": "No such user, platform, group or membership"},
    409: {
        "description": "Not allowed from the membership's current state (current_status says which)"
    },
}


@dataclass
class Decider:
    """What every membership decision needs, gathered once per request."""

    session: AsyncSession
    auth0: Auth0Gateway
    settings: Settings
    caller: CurrentUser
    response: Response

    async def __call__(
        self, kind: str, target_id: str, user_id: str, action: str, reason: str | None = None
    ) -> MembershipActionResult:
        result = await admin_memberships.decide(
            self.session,
            self.auth0,
            self.settings,
            self.caller,
            kind=kind,
            target_id=target_id,
            user_id=user_id,
            action=action,
            reason=reason,
        )
        if result.auth0 == "pending":
            self.response.status_code = 202
        return result


def get_decider(
    session: SessionDep,
    auth0: Auth0Dep,
    settings: SettingsDep,
    caller: CurrentUserDep,
    response: Response,
) -> Decider:
    return Decider(session, auth0, settings, caller, response)


DeciderDep = Annotated[Decider, Depends(get_decider)]


@router.post("/users/{user_id}/platforms/{platform_id}/approve", responses=DECISION_RESPONSES)
async def approve_platform(
    decide: DeciderDep, user_id: UserId, platform_id: PlatformId
) -> MembershipActionResult:
    """Approve a pending or revoked platform membership; grants the platform's role."""
    return await decide("platform", platform_id, user_id, "approve")


@router.post("/users/{user_id}/platforms/{platform_id}/revoke", responses=DECISION_RESPONSES)
async def revoke_platform(
    decide: DeciderDep,
    user_id: UserId,
    platform_id: PlatformId,
    body: Annotated[ReasonOptional | None, Body()] = None,
) -> MembershipActionResult:
    """Revoke an approved or pending platform membership; removes the role if it was granted."""
    return await decide("platform", platform_id, user_id, "revoke", body.reason if body else None)


@router.post("/users/{user_id}/groups/{group_id:path}/approve", responses=DECISION_RESPONSES)
async def approve_group(
    decide: DeciderDep, user_id: UserId, group_id: GroupId
) -> MembershipActionResult:
    """Approve a pending or revoked group membership; grants the group's role."""
    return await decide("group", group_id, user_id, "approve")


@router.post("/users/{user_id}/groups/{group_id:path}/reject", responses=DECISION_RESPONSES)
async def reject_group(
    decide: DeciderDep, user_id: UserId, group_id: GroupId, body: Annotated[ReasonRequired, Body()]
) -> MembershipActionResult:
    """Reject a pending group request, with a reason the user sees."""
    return await decide("group", group_id, user_id, "reject", body.reason)


@router.post("/users/{user_id}/groups/{group_id:path}/unreject", responses=DECISION_RESPONSES)
async def unreject_group(
    decide: DeciderDep, user_id: UserId, group_id: GroupId
) -> MembershipActionResult:
    """Put a rejected group request back to pending."""
    return await decide("group", group_id, user_id, "unreject")


@router.post("/users/{user_id}/groups/{group_id:path}/revoke", responses=DECISION_RESPONSES)
async def revoke_group(
    decide: DeciderDep,
    user_id: UserId,
    group_id: GroupId,
    body: Annotated[ReasonOptional | None, Body()] = None,
) -> MembershipActionResult:
    """Revoke an approved or pending group membership; removes the role if it was granted."""
    return await decide("group", group_id, user_id, "revoke", body.reason if body else None)
