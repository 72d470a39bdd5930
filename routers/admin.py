"""Admin endpoints. Membership decisions: a general admin, or an admin of the platform or
group in the path. 202 means the database changed and the Auth0 role change is queued."""

from typing import Annotated

from fastapi import APIRouter, Body, Path, Response

from routers.deps import Auth0Dep, CurrentUserDep, SessionDep, SettingsDep
from schemas.admin import MembershipActionResult, ReasonOptional, ReasonRequired
from services import admin_memberships

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


def _answer(response: Response, result: MembershipActionResult) -> MembershipActionResult:
    if result.auth0 == "pending":
        response.status_code = 202
    return result


@router.post("/users/{user_id}/platforms/{platform_id}/approve", responses=DECISION_RESPONSES)
async def approve_platform(
    response: Response,
    session: SessionDep,
    auth0: Auth0Dep,
    settings: SettingsDep,
    caller: CurrentUserDep,
    user_id: UserId,
    platform_id: PlatformId,
) -> MembershipActionResult:
    """Approve a pending or revoked platform membership; grants the platform's role."""
    return _answer(
        response,
        await admin_memberships.decide(
            session,
            auth0,
            settings,
            caller,
            kind="platform",
            target_id=platform_id,
            user_id=user_id,
            action="approve",
        ),
    )


@router.post("/users/{user_id}/platforms/{platform_id}/revoke", responses=DECISION_RESPONSES)
async def revoke_platform(
    response: Response,
    session: SessionDep,
    auth0: Auth0Dep,
    settings: SettingsDep,
    caller: CurrentUserDep,
    user_id: UserId,
    platform_id: PlatformId,
    body: Annotated[ReasonOptional | None, Body()] = None,
) -> MembershipActionResult:
    """Revoke an approved or pending platform membership; removes the role if it was granted."""
    return _answer(
        response,
        await admin_memberships.decide(
            session,
            auth0,
            settings,
            caller,
            kind="platform",
            target_id=platform_id,
            user_id=user_id,
            action="revoke",
            reason=body.reason if body else None,
        ),
    )


@router.post("/users/{user_id}/groups/{group_id:path}/approve", responses=DECISION_RESPONSES)
async def approve_group(
    response: Response,
    session: SessionDep,
    auth0: Auth0Dep,
    settings: SettingsDep,
    caller: CurrentUserDep,
    user_id: UserId,
    group_id: GroupId,
) -> MembershipActionResult:
    """Approve a pending or revoked group membership; grants the group's role."""
    return _answer(
        response,
        await admin_memberships.decide(
            session,
            auth0,
            settings,
            caller,
            kind="group",
            target_id=group_id,
            user_id=user_id,
            action="approve",
        ),
    )


@router.post("/users/{user_id}/groups/{group_id:path}/reject", responses=DECISION_RESPONSES)
async def reject_group(
    response: Response,
    session: SessionDep,
    auth0: Auth0Dep,
    settings: SettingsDep,
    caller: CurrentUserDep,
    user_id: UserId,
    group_id: GroupId,
    body: Annotated[ReasonRequired, Body()],
) -> MembershipActionResult:
    """Reject a pending group request, with a reason the user sees."""
    return _answer(
        response,
        await admin_memberships.decide(
            session,
            auth0,
            settings,
            caller,
            kind="group",
            target_id=group_id,
            user_id=user_id,
            action="reject",
            reason=body.reason,
        ),
    )


@router.post("/users/{user_id}/groups/{group_id:path}/unreject", responses=DECISION_RESPONSES)
async def unreject_group(
    response: Response,
    session: SessionDep,
    auth0: Auth0Dep,
    settings: SettingsDep,
    caller: CurrentUserDep,
    user_id: UserId,
    group_id: GroupId,
) -> MembershipActionResult:
    """Put a rejected group request back to pending."""
    return _answer(
        response,
        await admin_memberships.decide(
            session,
            auth0,
            settings,
            caller,
            kind="group",
            target_id=group_id,
            user_id=user_id,
            action="unreject",
        ),
    )


@router.post("/users/{user_id}/groups/{group_id:path}/revoke", responses=DECISION_RESPONSES)
async def revoke_group(
    response: Response,
    session: SessionDep,
    auth0: Auth0Dep,
    settings: SettingsDep,
    caller: CurrentUserDep,
    user_id: UserId,
    group_id: GroupId,
    body: Annotated[ReasonOptional | None, Body()] = None,
) -> MembershipActionResult:
    """Revoke an approved or pending group membership; removes the role if it was granted."""
    return _answer(
        response,
        await admin_memberships.decide(
            session,
            auth0,
            settings,
            caller,
            kind="group",
            target_id=group_id,
            user_id=user_id,
            action="revoke",
            reason=body.reason if body else None,
        ),
    )
