"""Admin endpoints for platform, group and general admins.

Reads are narrowed to the users the caller administers and leave the caller out.
Writes first confirm the caller's admin roles with Auth0 (AdminWriteScopeDep).
Membership decisions: a general admin, or an admin of the platform or group in the
path; 202 means the database changed and the Auth0 role change is queued. Account
changes: a general admin on anyone else, or a platform or group admin on a plain user
(no admin role) with a pending or approved membership they administer.
"""

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Path, Query, Response
from fastapi.responses import StreamingResponse
from sqlmodel.ext.asyncio.session import AsyncSession

from routers.deps import (
    AdminScopeDep,
    AdminWriteScopeDep,
    Auth0Dep,
    ClaimedAdminScopeDep,
    CountsCacheDep,
    GeneralAdminDep,
    JsonBody,
    LiveRolesDep,
    ReaderDep,
    ScopeCacheDep,
    SessionDep,
    SessionFactoryDep,
    SettingsDep,
    form_body,
)
from schemas.errors import AUTHENTICATED, LOOKUPS
from schemas.memberships import MembershipActionResult, ReasonOptional, ReasonRequired
from schemas.sync import SyncRunPublic
from schemas.users import (
    AdminFilter,
    AdminUser,
    AdminUserDetails,
    AdminUserQuery,
    Done,
    EmailUpdate,
    InvalidEmailDeletion,
    IsAdmin,
    UserCounts,
    UsernameUpdate,
    UserPages,
)
from services.auth0 import Auth0Gateway
from services.dashboard import run_history
from services.identity.admin_scope import Scope
from services.memberships import decisions as admin_memberships
from services.settings import Settings
from services.users import admin_details, admin_lists, admin_search
from services.users.admin_changes import AccountAdmin

router = APIRouter(prefix="/admin", tags=["admin"], responses={**AUTHENTICATED, **LOOKUPS})

UserId = Annotated[str, Path(min_length=1, max_length=255)]
PlatformId = Annotated[str, Path(min_length=1, max_length=64)]
GroupId = Annotated[str, Path(min_length=1, max_length=255)]
UserQueryDep = Annotated[AdminUserQuery, Query()]
READ_RESPONSES: dict[int | str, dict[str, str]] = {
    400: {"description": "Contradictory filters"},
    403: {"description": "Not an admin, or not of the platform or group asked for"},
    404: {"description": "No such platform or group"},
}
USER_RESPONSES: dict[int | str, dict[str, str]] = {
    403: {"description": "The user is not one the caller administers"},
    404: {"description": "No such user"},
}
ACCOUNT_RESPONSES: dict[int | str, dict[str, str]] = {
    400: {"description": "Invalid or unchanged value ({message, field_errors})"},
    403: {
        "description": "Only general admins, or admins of one of the user's platforms or "
        "groups when the user holds no admin role; or the caller's admin role was removed"
    },
    404: {"description": "No such user"},
    409: {"description": "The account is deleted (restore it first) or its name is taken"},
    502: {"description": "Auth0 refused the change"},
    503: {"description": "Auth0 is unavailable; nothing was changed"},
}
DECISION_RESPONSES: dict[int | str, dict[str, str]] = {
    202: {"description": "Changed here; the Auth0 role change is queued and completes shortly"},
    403: {"description": "Not an admin of this platform or group (any more), or your own"},
    404: {"description": "No such user, platform, group or membership"},
    409: {
        "description": "Not allowed from the membership's current state (current_status says which)"
    },
    503: {"description": "Auth0 cannot confirm the caller's roles right now"},
}


@dataclass
class Decider:
    """What every membership decision needs, gathered once per request."""

    session: AsyncSession
    auth0: Auth0Gateway
    settings: Settings
    scope: Scope
    response: Response

    async def __call__(
        self, kind: str, target_id: str, user_id: str, action: str, reason: str | None = None
    ) -> MembershipActionResult:
        result = await admin_memberships.decide(
            self.session,
            self.auth0,
            self.settings,
            self.scope,
            kind=kind,
            target_id=target_id,
            user_id=user_id,
            action=action,
            reason=reason,
        )
        if result.auth0 == "pending":
            self.response.status_code = 202
        return result


async def get_decider(
    session: SessionDep,
    auth0: Auth0Dep,
    settings: SettingsDep,
    scope: AdminWriteScopeDep,
    response: Response,
) -> Decider:
    return Decider(session, auth0, settings, scope, response)


DeciderDep = Annotated[Decider, Depends(get_decider)]


@router.get("/filters")
async def list_filters(session: SessionDep, scope: AdminScopeDep) -> list[AdminFilter]:
    """The platforms and groups the caller administers; `id` is what `filter_by` takes."""
    return await admin_search.filters(session, scope)


@router.get("/users", responses=READ_RESPONSES, response_model=list[AdminUser])
async def list_users(
    session: SessionDep,
    reader: ReaderDep,
    scope: ClaimedAdminScopeDep,
    query: UserQueryDep,
    cache: ScopeCacheDep,
) -> JsonBody:
    """One page of users, newest first, with their memberships inside the caller's scope."""
    return JsonBody(await admin_lists.page_body(session, reader, scope, query, cache))


@router.get("/users/pages", responses=READ_RESPONSES, response_model=UserPages)
async def user_pages(
    session: SessionDep,
    reader: ReaderDep,
    scope: ClaimedAdminScopeDep,
    query: UserQueryDep,
    cache: ScopeCacheDep,
) -> JsonBody:
    """How many users and pages the same filters give."""
    return JsonBody(await admin_lists.pages_body(session, reader, scope, query, cache))


@router.get("/users/counts", responses=READ_RESPONSES)
async def user_counts(
    session: SessionDep, scope: AdminScopeDep, cache: CountsCacheDep
) -> UserCounts:
    """Users the caller administers: all, with a pending or a revoked membership, unverified.
    Each API process may reuse a caller's figures for ADMIN_COUNTS_CACHE_S seconds."""
    return await admin_lists.counts(session, scope, cache)


@router.get(
    "/users/export.csv",
    responses={**READ_RESPONSES, 200: {"content": {"text/csv": {}}}},
    response_class=StreamingResponse,
)
async def export_users(
    session: SessionDep, factory: SessionFactoryDep, scope: AdminScopeDep, query: UserQueryDep
) -> StreamingResponse:
    """Every user the filters select (page and per_page are ignored), as CSV."""
    selection = await admin_search.select_users(session, scope, query)
    return StreamingResponse(
        admin_lists.export_csv(factory, scope, selection),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="users.csv"'},
    )


@router.get("/users/{user_id}", responses=USER_RESPONSES)
async def get_user(session: SessionDep, scope: AdminScopeDep, user_id: UserId) -> AdminUser:
    return await admin_details.get_user(session, scope, user_id)


@router.get("/users/{user_id}/details", responses=USER_RESPONSES)
async def get_user_details(
    session: SessionDep,
    reader: ReaderDep,
    auth0: Auth0Dep,
    scope: ClaimedAdminScopeDep,
    user_id: UserId,
) -> AdminUserDetails:
    """The record, its history and the live Auth0 profile (from the database when Auth0
    cannot be reached; `profile_source` says which)."""
    return await admin_details.details(session, reader, auth0, scope, user_id)


@router.get(
    "/platforms/{platform_id}/is-admin", responses={404: {"description": "No such platform"}}
)
async def is_platform_admin(
    session: SessionDep, scope: AdminScopeDep, platform_id: PlatformId
) -> IsAdmin:
    return await admin_search.is_platform_admin(session, scope, platform_id)


@router.get("/sync-runs", responses={403: {"description": "General admins only"}})
async def list_sync_runs(
    session: SessionDep,
    _: GeneralAdminDep,
    job: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[SyncRunPublic]:
    """Recent scheduler runs, newest first."""
    return await run_history.sync_runs(session, job=job, limit=limit)


async def get_account_admin(
    session: SessionDep,
    auth0: Auth0Dep,
    settings: SettingsDep,
    live_roles: LiveRolesDep,
    scope: AdminWriteScopeDep,
) -> AccountAdmin:
    return AccountAdmin(session, auth0, settings, live_roles, scope)


AccountAdminDep = Annotated[AccountAdmin, Depends(get_account_admin)]


@router.post("/users/{user_id}/delete", responses=ACCOUNT_RESPONSES)
async def delete_user(
    admin: AccountAdminDep,
    user_id: UserId,
    body: Annotated[ReasonOptional | None, Body()] = None,
) -> Done:
    """Block in Auth0, end their sessions, mark deleted; memberships and history are kept."""
    return await admin.delete_user(user_id, body.reason if body else None)


@router.post("/users/{user_id}/restore", responses=ACCOUNT_RESPONSES)
async def restore_user(
    admin: AccountAdminDep,
    user_id: UserId,
    body: Annotated[ReasonOptional | None, Body()] = None,
) -> Done:
    """Unblock in Auth0 and bring a deleted account back as it was."""
    return await admin.restore_user(user_id, body.reason if body else None)


@router.post("/users/{user_id}/delete_invalid_email", responses=ACCOUNT_RESPONSES)
async def delete_invalid_email(
    admin: AccountAdminDep,
    user_id: UserId,
    body: Annotated[InvalidEmailDeletion, form_body(InvalidEmailDeletion)],
) -> Done:
    """For an account signed up with a mistyped address: delete it (as `delete`) and email
    `correct_email` to sign up again. The path's underscores are the portal's."""
    return await admin.delete_invalid_email(user_id, body.correct_email)


@router.post("/users/{user_id}/email/update", responses=ACCOUNT_RESPONSES)
async def update_email(
    admin: AccountAdminDep,
    user_id: UserId,
    body: Annotated[EmailUpdate, form_body(EmailUpdate)],
) -> Done:
    """Set a new, unverified address; the old one is told and the new one gets Auth0's
    verification email."""
    return await admin.update_email(user_id, body.email)


@router.post("/users/{user_id}/username/update", responses=ACCOUNT_RESPONSES)
async def update_username(
    admin: AccountAdminDep,
    user_id: UserId,
    body: Annotated[UsernameUpdate, form_body(UsernameUpdate)],
) -> Done:
    """Usernames are unique among all users, past usernames included."""
    return await admin.update_username(user_id, body.username)


@router.post("/users/{user_id}/verification-email/resend", responses=ACCOUNT_RESPONSES)
async def resend_verification(admin: AccountAdminDep, user_id: UserId) -> Done:
    return await admin.resend_verification(user_id)


@router.post("/users/{user_id}/password-reset-email", responses=ACCOUNT_RESPONSES)
async def send_password_reset(admin: AccountAdminDep, user_id: UserId) -> Done:
    """Auth0 emails the user a link to choose a new password (database accounts only)."""
    return await admin.send_password_reset(user_id)


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
