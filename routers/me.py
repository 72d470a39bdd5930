from fastapi import APIRouter

from routers.deps import CurrentUserDep

router = APIRouter(prefix="/me", tags=["me"])


@router.get("/is-general-admin")
async def is_general_admin(caller: CurrentUserDep) -> bool:
    """Whether the caller may open the admin pages: a general, platform or group admin."""
    return caller.permissions.is_any_admin
