"""The hot reads' fast lane: `GET /admin/users`, `/admin/users/pages` and `/me/profile`
answered on Postgres without FastAPI's routing and dependency solving.

Those routes stay declared in routers/admin.py and routers/me.py (their schemas, OpenAPI,
and every answer but the plain 200). This lane, the innermost middleware, does the same
work as their handlers — the same token check, scope, filters and one statement
(services/users/json_reads.py) in one unit of work — and sends the body when all went
well. Anything else (no token, a refused caller, a query FastAPI would question, a
repeated or unknown parameter, SQLite, an error of any kind) is not answered here: the
request goes on to the routes, which answer it as they always have, so a 4xx or 503 has
one author. The admin list bench measured FastAPI's part at about 45% of a worker's CPU
for a first page (1.0 ms against the floor's 0.5 ms per request).
"""

import logging
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from functools import partial

from pydantic import ValidationError
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from db.reads import Reader, RequestReader
from routers.deps import get_reader, get_session
from schemas.users import AdminUserQuery
from services.identity import admin_scope
from services.identity.tokens import claimed_user
from services.users import admin_lists, json_reads

logger = logging.getLogger("aai.api.hot_reads")

Serve = Callable[[Request], Awaitable[bytes | None]]


def _query(request: Request) -> AdminUserQuery | None:
    """The list's query as the route would read it, or None where the route should judge:
    a name given twice or one the model does not know, or a value it refuses (422)."""
    items = request.query_params.multi_items()
    names = {name for name, _value in items}
    if len(names) != len(items) or not names <= AdminUserQuery.model_fields.keys():
        return None
    try:
        return AdminUserQuery.model_validate(dict(items))
    except ValidationError:
        return None


def _overrides(request: Request) -> dict[Callable[..., object], Callable[..., object]]:
    """The app's dependency overrides: the lane takes its session and reader as the
    routes' dependencies would (the tests share one rolled-back session this way)."""
    return getattr(request.scope.get("app"), "dependency_overrides", {})


def _session(request: Request) -> AbstractAsyncContextManager[AsyncSession]:
    """The request's unit of work, from get_session (SessionDep) or its override."""
    provider = _overrides(request).get(get_session, get_session)
    return asynccontextmanager(provider)(request)  # type: ignore[arg-type]  # get_session or its override: an async generator of one session


async def _reader(request: Request, session: AsyncSession) -> Reader:
    override = _overrides(request).get(get_reader)
    if override is not None:
        return await override()  # type: ignore[misc]  # an async override of get_reader
    return RequestReader(session, request.state.reader)


async def _admin(request: Request, *, pages: bool) -> bytes | None:
    state = request.state
    query = _query(request)
    if query is None or state.reader.dialect != "postgresql":
        return None
    caller = await claimed_user(
        state.token_validator, state.settings, request.headers.get("authorization")
    )
    async with _session(request) as session:
        scope = await admin_scope.scope_for(session, caller, state.scope_cache)
        body = admin_lists.pages_body if pages else admin_lists.page_body
        return await body(session, await _reader(request, session), scope, query, state.scope_cache)


async def _profile(request: Request) -> bytes | None:
    state = request.state
    if request.query_params or state.reader.dialect != "postgresql":
        return None
    caller = await claimed_user(
        state.token_validator, state.settings, request.headers.get("authorization")
    )
    # None when the row must first be created or the welcome banner cleared: the route.
    async with _session(request) as session:
        return await json_reads.own_profile(await _reader(request, session), caller.id)


LANE: dict[str, Serve] = {
    "/admin/users": partial(_admin, pages=False),
    "/admin/users/pages": partial(_admin, pages=True),
    "/me/profile": _profile,
}


class HotReads:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        serve = None
        if scope["type"] == "http" and scope["method"] == "GET":
            serve = LANE.get(scope["path"])
        if serve is not None:
            body = None
            try:
                body = await serve(Request(scope, receive))
            except Exception:  # the routes answer it (and log it if it is a bug)
                logger.debug("left to the routes: %s", scope["path"], exc_info=True)
            if body is not None:
                await send(
                    {
                        "type": "http.response.start",
                        "status": 200,
                        "headers": [
                            (b"content-length", str(len(body)).encode()),
                            (b"content-type", b"application/json"),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)
