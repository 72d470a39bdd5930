"""The signed-in user's endpoints. Reads are served from Postgres."""

from typing import Annotated

from fastapi import APIRouter, Body, Query, Request
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, Field

from db.types import ApprovalStatus
from routers.deps import (
    AdministeredDep,
    Auth0Dep,
    ClaimedUserDep,
    CurrentUserDep,
    GroupAdminsCacheDep,
    JsonBody,
    ReaderDep,
    RecaptchaDep,
    SessionDep,
    SettingsDep,
    client_address,
    form_body,
    rate_limited,
    user_rate_limited,
)
from schemas.errors import AUTHENTICATED, LOOKUPS, RATE_LIMITED
from schemas.memberships import GroupRequestCreate, GroupRequestResult, PendingPublic
from schemas.users import (
    AdminGroup,
    AdminPlatform,
    Done,
    EmailCode,
    EmailUpdate,
    GroupMembershipBrief,
    NameUpdate,
    PasswordUpdate,
    PlatformMembershipBrief,
    ProfilePublic,
    UsernameUpdate,
)
from services.identity import actions as actions_service
from services.memberships import requests as memberships_service
from services.users import profile as profile_service

router = APIRouter(
    prefix="/me", tags=["me"], responses={**AUTHENTICATED, **LOOKUPS, **RATE_LIMITED}
)

APPROVED = {ApprovalStatus.APPROVED}
PENDING = {ApprovalStatus.PENDING}


@router.get("/profile", response_model=ProfilePublic)
async def get_profile(
    session: SessionDep, reader: ReaderDep, auth0: Auth0Dep, caller: ClaimedUserDep
) -> JsonBody:
    """The caller's profile and memberships (revoked ones left out)."""
    return JsonBody(await profile_service.profile_body(session, reader, auth0, caller.id))


@router.get("/platforms")
async def list_platforms(
    session: SessionDep, caller: CurrentUserDep
) -> list[PlatformMembershipBrief]:
    """All of the caller's platform memberships."""
    return await memberships_service.platform_memberships(session, caller.id)


@router.get("/platforms/approved")
async def list_approved_platforms(
    session: SessionDep, caller: CurrentUserDep
) -> list[PlatformMembershipBrief]:
    return await memberships_service.platform_memberships(session, caller.id, statuses=APPROVED)


@router.get("/platforms/pending")
async def list_pending_platforms(
    session: SessionDep, caller: CurrentUserDep
) -> list[PlatformMembershipBrief]:
    return await memberships_service.platform_memberships(session, caller.id, statuses=PENDING)


@router.get("/platforms/admin-roles")
async def list_administered_platforms(
    session: SessionDep, scope: AdministeredDep
) -> list[AdminPlatform]:
    """Platforms the caller administers (every platform for a general admin)."""
    return await memberships_service.administered_platforms(session, scope)


@router.get("/groups")
async def list_groups(session: SessionDep, caller: CurrentUserDep) -> list[GroupMembershipBrief]:
    """All of the caller's group memberships."""
    return await memberships_service.group_memberships(session, caller.id)


@router.get("/groups/approved")
async def list_approved_groups(
    session: SessionDep, caller: CurrentUserDep
) -> list[GroupMembershipBrief]:
    return await memberships_service.group_memberships(session, caller.id, statuses=APPROVED)


@router.get("/groups/pending")
async def list_pending_groups(
    session: SessionDep, caller: CurrentUserDep
) -> list[GroupMembershipBrief]:
    return await memberships_service.group_memberships(session, caller.id, statuses=PENDING)


@router.get("/groups/admin-roles")
async def list_administered_groups(session: SessionDep, scope: AdministeredDep) -> list[AdminGroup]:
    """Groups the caller administers (every group for a general admin)."""
    return await memberships_service.administered_groups(session, scope)


@router.post(
    "/groups/request",
    responses={
        404: {"description": "No such group"},
        409: {"description": "Already requested, a member, or revoked"},
    },
)
async def request_groups(
    session: SessionDep,
    auth0: Auth0Dep,
    settings: SettingsDep,
    caller: CurrentUserDep,
    admins_cache: GroupAdminsCacheDep,
    body: Annotated[GroupRequestCreate, Body()],
) -> list[GroupRequestResult]:
    """Ask to join one group or several; each gets its own result. The requester and the
    group's admins are emailed."""
    return await memberships_service.request_groups(
        session, auth0, settings, caller.id, body.items(), admins_cache
    )


@router.get("/is-general-admin")
async def is_general_admin(scope: AdministeredDep) -> bool:
    """Whether the caller may open the admin pages: a general, platform or group admin."""
    return scope.is_admin


@router.get("/all/pending")
async def list_all_pending(session: SessionDep, caller: CurrentUserDep) -> PendingPublic:
    """The caller's pending platform and group memberships."""
    return await profile_service.pending(session, caller.id)


@router.post("/profile/name/update")
async def update_name(
    session: SessionDep,
    auth0: Auth0Dep,
    caller: CurrentUserDep,
    form: Annotated[NameUpdate, form_body(NameUpdate)],
) -> Done:
    """Change the caller's first and last name (in Auth0 and here)."""
    return await profile_service.update_name(session, auth0, caller.id, form)


@router.post("/profile/username/update")
async def update_username(
    session: SessionDep,
    auth0: Auth0Dep,
    settings: SettingsDep,
    caller: CurrentUserDep,
    form: Annotated[UsernameUpdate, form_body(UsernameUpdate)],
) -> Done:
    """Change the caller's username; one never used by anyone before."""
    return await profile_service.update_username(session, auth0, settings, caller.id, form)


@router.post("/profile/email/update")
async def start_email_change(
    session: SessionDep,
    auth0: Auth0Dep,
    settings: SettingsDep,
    caller: CurrentUserDep,
    form: Annotated[EmailUpdate, form_body(EmailUpdate)],
) -> Done:
    """Send a one-time code to the new address (10 minutes; a new code voids the old)."""
    return await profile_service.start_email_change(session, auth0, settings, caller.id, form)


@router.post("/profile/email/continue")
async def finish_email_change(
    session: SessionDep,
    auth0: Auth0Dep,
    settings: SettingsDep,
    caller: CurrentUserDep,
    form: Annotated[EmailCode, form_body(EmailCode)],
) -> Done:
    """Apply the new address after the right code."""
    return await profile_service.finish_email_change(session, auth0, settings, caller.id, form)


@router.post("/profile/password/update", dependencies=[user_rate_limited("current-password")])
async def update_password(
    request: Request,
    session: SessionDep,
    auth0: Auth0Dep,
    settings: SettingsDep,
    caller: CurrentUserDep,
    form: Annotated[PasswordUpdate, form_body(PasswordUpdate)],
) -> Done:
    """Change the password of a database-connection account after checking the current one
    (at most PASSWORD_CHECKS_PER_MINUTE tries per user)."""
    return await profile_service.update_password(
        session, auth0, settings, caller.id, form, end_user_ip=client_address(request)
    )


@router.post("/profile/delete")
async def delete_profile(session: SessionDep, auth0: Auth0Dep, caller: CurrentUserDep) -> Done:
    """Delete the caller's account: blocked in Auth0, refresh tokens revoked, soft-deleted here."""
    return await profile_service.delete_self(session, auth0, caller.id)


class ResendVerification(BaseModel):
    session_token: str = Field(min_length=1, max_length=4096)
    recaptcha_token: str = Field(min_length=1, max_length=4096)


class MigrationStart(BaseModel):
    session_token: str = Field(min_length=1, max_length=4096)
    client_id: str = Field(min_length=1, max_length=255)


@router.post("/email-verification/resend", dependencies=[rate_limited("actions")])
async def resend_verification_email(
    request: Request,
    auth0: Auth0Dep,
    recaptcha: RecaptchaDep,
    settings: SettingsDep,
    body: ResendVerification,
) -> Done:
    """From the Auth0 'verify your email' Action: send the verification email again."""
    await actions_service.resend_verification(
        auth0,
        recaptcha,
        settings,
        body.session_token,
        body.recaptcha_token,
        remote_ip=client_address(request),
    )
    return Done(message="Verification email sent")


@router.post("/migration/update-password", dependencies=[rate_limited("actions")])
async def start_password_migration(
    auth0: Auth0Dep, settings: SettingsDep, body: MigrationStart
) -> Done:
    """From the Auth0 migration Action: email the user a link to set a new password."""
    await actions_service.start_password_migration(
        auth0, settings, body.session_token, body.client_id
    )
    return Done(message="Password reset email sent")


@router.get("/migration/password-changed", response_class=RedirectResponse, status_code=307)
async def finish_password_migration(
    session: SessionDep,
    auth0: Auth0Dep,
    settings: SettingsDep,
    state: Annotated[str, Query(min_length=1, max_length=2048)],
    session_token: Annotated[str, Query(min_length=1, max_length=4096)],
) -> RedirectResponse:
    """After the new password is set: mark the migration done, then continue the Auth0 login."""
    target = await actions_service.finish_password_migration(
        session, auth0, settings, state, session_token
    )
    return RedirectResponse(target, status_code=307)
