"""The floor the admin list is measured against (issue #22): the first page's one statement
(`services.users.json_reads.list_statement`, the same SQL the API sends) behind a minimal
Starlette app with an RS256 check of every token and an asyncpg pool of 10, under uvicorn
with the API's worker count. Whatever the API spends beyond this is routing, dependencies,
middleware and its own bookkeeping. Started by `scripts.bench.admin_lists`; not a server
for anything else (no audience or issuer check, no scope lookup: the bench passes each
caller's scope in FLOOR_SCOPES)."""

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import httpx
import jwt
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from schemas.users import AdminUserQuery
from services.identity.admin_scope import Scope
from services.users.admin_search import Selection
from services.users.json_reads import list_statement


def create_app() -> Starlette:
    dsn = os.environ["FLOOR_DSN"]
    jwks_url = os.environ["FLOOR_JWKS"]
    # {sub: ["galaxy", ...]} for a platform admin, {sub: null} for a general admin.
    scopes: dict[str, list[str] | None] = json.loads(os.environ["FLOOR_SCOPES"])
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        state["pool"] = await asyncpg.create_pool(dsn, min_size=10, max_size=10)
        async with httpx.AsyncClient() as client:
            keys = (await client.get(jwks_url)).json()["keys"]
        state["keys"] = {key["kid"]: jwt.PyJWK(key).key for key in keys}
        try:
            yield
        finally:
            await state["pool"].close()

    async def first_page(request: Request) -> Response:
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        try:
            kid = jwt.get_unverified_header(token)["kid"]
            claims = jwt.decode(
                token, state["keys"][kid], algorithms=["RS256"], options={"verify_aud": False}
            )
        except (jwt.PyJWTError, KeyError):
            return JSONResponse({"detail": "bad token"}, status_code=401)
        platforms = scopes[claims["sub"]]
        if platforms is None:
            scope = Scope(claims["sub"], True, frozenset(), frozenset())
        else:
            scope = Scope(claims["sub"], False, frozenset(platforms), frozenset())
        query = AdminUserQuery(
            page=int(request.query_params.get("page", 1)),
            per_page=int(request.query_params.get("per_page", 50)),
        )
        sql, args = list_statement(scope, Selection(query, None, None))
        async with state["pool"].acquire() as connection:
            row = await connection.fetchrow(sql, *args)
        return Response(row[1], media_type="application/json")

    async def ready(_request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[Route("/admin/users", first_page), Route("/health/ready", ready)],
        lifespan=lifespan,
    )
