"""General admins' catalog endpoints: roles, platforms, groups and their admin roles."""

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Path

from routers.deps import (
    Auth0Dep,
    ScopeCacheDep,
    SessionDep,
    SettingsDep,
    form_body,
    require_confirmed_general_admin,
)
from schemas.catalog import (
    AdminRolesUpdate,
    CatalogEntry,
    GroupCreate,
    PlatformCreate,
    RoleCreate,
    RolePublic,
)
from schemas.errors import AUTHENTICATED, LOOKUPS, UNAVAILABLE
from services.catalog import edits as catalog_admin


async def forget_admin_scopes(cache: ScopeCacheDep) -> AsyncIterator[None]:
    """Every change here may change who administers what: once the request is over (and
    committed), this process stops reusing the scopes it worked out; other processes
    within ADMIN_SCOPE_CACHE_S."""
    yield
    cache.clear()


router = APIRouter(
    prefix="/biocommons-admin",
    tags=["catalog"],
    dependencies=[Depends(require_confirmed_general_admin), Depends(forget_admin_scopes)],
    responses={**AUTHENTICATED, **LOOKUPS, **UNAVAILABLE},
)


@router.post("/roles/create")
async def create_role(
    session: SessionDep, auth0: Auth0Dep, body: Annotated[RoleCreate, form_body(RoleCreate)]
) -> RolePublic:
    """Get or create an Auth0 role and record it here."""
    return await catalog_admin.create_role(session, auth0, body)


@router.post("/platforms/create")
async def create_platform(
    session: SessionDep,
    auth0: Auth0Dep,
    settings: SettingsDep,
    body: Annotated[PlatformCreate, form_body(PlatformCreate)],
) -> CatalogEntry:
    """Create (or retitle) a platform: its access and admin roles in Auth0, then here."""
    return await catalog_admin.create_platform(session, auth0, settings, body)


@router.post("/groups/create")
async def create_group(
    session: SessionDep,
    auth0: Auth0Dep,
    settings: SettingsDep,
    body: Annotated[GroupCreate, form_body(GroupCreate)],
) -> CatalogEntry:
    """Create (or retitle) a group: its access and admin roles in Auth0, then here."""
    return await catalog_admin.create_group(session, auth0, settings, body)


@router.post(
    "/platforms/{platform_id}/set-admin-roles", responses={404: {"description": "No such platform"}}
)
async def set_platform_admin_roles(
    session: SessionDep,
    settings: SettingsDep,
    platform_id: Annotated[str, Path(min_length=1, max_length=64)],
    body: Annotated[AdminRolesUpdate, form_body(AdminRolesUpdate)],
) -> CatalogEntry:
    """Which other roles administer the platform (its own admin role always does)."""
    return await catalog_admin.set_admin_roles(
        session, settings, "platform", platform_id, body.role_names
    )


@router.post(
    "/groups/{group_id:path}/set-admin-roles", responses={404: {"description": "No such group"}}
)
async def set_group_admin_roles(
    session: SessionDep,
    settings: SettingsDep,
    group_id: Annotated[str, Path(min_length=1, max_length=255)],
    body: Annotated[AdminRolesUpdate, form_body(AdminRolesUpdate)],
) -> CatalogEntry:
    """`group_id` is the full id or its short form (`tsi`)."""
    return await catalog_admin.set_admin_roles(
        session, settings, "group", group_id, body.role_names
    )
