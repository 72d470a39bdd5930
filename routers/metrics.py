"""GET /metrics (ENABLE_PROMETHEUS_METRICS): Prometheus text format, see
services/kit/observability.py. Only for the scraper inside the network.

The load balancer's rule for `/metrics` matched the path as written, and `/%6detrics`
went through to a server that decodes it. So the app refuses it itself: a request that
came through a proxy (it carries X-Forwarded-For, Forwarded or X-Real-IP; the load
balancer always adds the first) is a public request, answered 404 as if there were no
such page. The scraper calls the task directly and sends none of them.
"""

from fastapi import APIRouter, Depends, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST

from routers.deps import SessionDep
from services.errors import NotFound
from services.kit.observability import render_metrics

PROXY_HEADERS = ("x-forwarded-for", "forwarded", "x-real-ip")


async def internal_only(request: Request) -> None:
    if any(name in request.headers for name in PROXY_HEADERS):
        raise NotFound("no such page")


router = APIRouter(tags=["health"], dependencies=[Depends(internal_only)])


@router.get(
    "/metrics", response_class=Response, responses={404: {"description": "Through a proxy"}}
)
async def metrics(session: SessionDep) -> Response:
    return Response(await render_metrics(session), media_type=CONTENT_TYPE_LATEST)
