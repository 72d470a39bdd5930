"""GET /metrics (ENABLE_PROMETHEUS_METRICS): Prometheus text format, see
services/observability.py. Meant for the scraper inside the network; the load balancer
does not route it."""

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST

from routers.deps import SessionDep
from services.observability import render_metrics

router = APIRouter(tags=["health"])


@router.get("/metrics", response_class=Response)
async def metrics(session: SessionDep) -> Response:
    return Response(await render_metrics(session), media_type=CONTENT_TYPE_LATEST)
