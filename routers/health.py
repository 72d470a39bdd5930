from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from routers.deps import EngineDep
from schemas.health import Liveness, ReadinessReport, RootInfo
from services.kit import health as health_service
from services.kit.version import app_version

router = APIRouter(tags=["health"])


@router.get("/")
async def root() -> RootInfo:
    """Service name and version."""
    return RootInfo(message="AAI Backend API", version=app_version())


@router.get("/health/live")
async def live() -> Liveness:
    """The process is up and serving; says nothing about its dependencies."""
    return Liveness()


@router.get(
    "/health/ready",
    responses={503: {"model": ReadinessReport, "description": "A check failed"}},
)
async def ready(request: Request, engine: EngineDep) -> JSONResponse:
    """200 when the database answers and is migrated to the code's head, else 503 naming the
    failed check; also 503 when the start-up check found the Auth0 tenant misconfigured."""
    report = await health_service.readiness(
        engine,
        request.state.expected_heads,
        auth0=request.state.tenant_check.readiness(),
    )
    status = 200 if report.status == "ready" else 503
    return JSONResponse(report.model_dump(), status_code=status)
