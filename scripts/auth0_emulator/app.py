"""The emulator's HTTP surface: Auth0's Authentication API (OAuth/OIDC), the Management
API v2 subset this project uses, and `/_emulator/*` controls for tests and demos."""

import asyncio
import base64
import csv
import fnmatch
import gzip
import html
import io
import json
import re
import secrets
import time
from typing import Any
from urllib.parse import urlencode

import jwt
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from scripts.auth0_emulator.limits import Faults, TokenBucket, bucket_for
from scripts.auth0_emulator.tenant import (
    DEFAULT_CONNECTION,
    ExportJob,
    Tenant,
    TenantError,
    iso_now,
)

MAX_PAGED_RESULTS = 1000
FAULT_SETTINGS = (
    "error_rate",
    "error_status",
    "latency_ms",
    "fail_exports",
    "exports_enabled",
    "export_delay_s",
    "down",
)


def auth0_error(
    status: int, message: str, error_code: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    names = {
        400: "Bad Request",
        401: "Unauthorized",
        403: "Forbidden",
        404: "Not Found",
        409: "Conflict",
        429: "Too Many Requests",
        500: "Internal Server Error",
        503: "Service Unavailable",
    }
    body = {
        "statusCode": status,
        "error": names.get(status, "Error"),
        "message": message,
        "errorCode": error_code,
    }
    return JSONResponse(body, status_code=status, headers=headers)


class EmulatorState:
    def __init__(
        self, tenant: Tenant, rate_limit: str = "off", faults: Faults | None = None
    ) -> None:
        self.tenant = tenant
        self.bucket: TokenBucket | None = bucket_for(rate_limit)
        self.rate_limit = rate_limit
        self.faults = faults or Faults()
        self.requests: dict[str, int] = {}
        self.throttled = 0

    def set_rate_limit(self, preset: str) -> None:
        self.bucket = bucket_for(preset)
        self.rate_limit = preset


# ---- Lucene subset for GET /users?q= ----------------------------------------------

_CLAUSE = re.compile(r'^(?P<field>[\w.]+):(?P<value>"[^"]*"|\[[^\]]*\]|\S+)$')


def _lookup(user: dict[str, Any], path: str) -> Any:
    if path == "identities.connection":
        return [identity["connection"] for identity in user.get("identities", [])]
    if path.startswith("identities[0]."):
        identities = user.get("identities") or [{}]
        return identities[0].get(path.removeprefix("identities[0]."))
    value: Any = user
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _matches(actual: Any, expected: str) -> bool:
    if isinstance(actual, list):
        return any(_matches(item, expected) for item in actual)
    if actual is None:
        return expected == "null"
    if isinstance(actual, bool):
        return str(actual).lower() == expected.lower()
    text = str(actual).lower()
    expected = expected.lower()
    if "*" in expected or "?" in expected:
        return fnmatch.fnmatchcase(text, expected)
    return text == expected


def compile_query(q: str) -> list[tuple[str, str]]:
    clauses = []
    for part in re.split(r"\s+AND\s+", q.strip()):
        match = _CLAUSE.match(part.strip())
        if match is None:
            raise TenantError(
                400, f"Query validation error: unsupported query '{part}'", "invalid_query_string"
            )
        clauses.append((match["field"], match["value"]))
    return clauses


def user_matches(user: dict[str, Any], clauses: list[tuple[str, str]]) -> bool:
    for field, value in clauses:
        actual = _lookup(user, field)
        if value.startswith("["):
            low, _, high = value[1:-1].partition(" TO ")
            text = str(actual) if actual is not None else None
            if text is None or (low != "*" and text < low) or (high != "*" and text > high):
                return False
        elif not _matches(actual, value.strip('"')):
            return False
    return True


def project(user: dict[str, Any], fields: str | None, include: bool) -> dict[str, Any]:
    if not fields:
        return user
    wanted = {f.strip() for f in fields.split(",") if f.strip()}
    if include:
        return {k: v for k, v in user.items() if k in wanted}
    return {k: v for k, v in user.items() if k not in wanted}


def export_line(user: dict[str, Any], fields: list[dict[str, Any]] | None) -> dict[str, Any]:
    if not fields:
        return {k: v for k, v in user.items() if k != "identities"}
    return {f.get("export_as") or f["name"]: _lookup(user, f["name"]) for f in fields}


_ID_SEGMENT = re.compile(r"/(auth0|google-oauth2|sms|email|rol|job)[|_%][^/]*")


class LimitsAndFaults:
    """Counts requests, injects latency and failures, and applies the rate limit.

    Plain ASGI rather than Starlette's BaseHTTPMiddleware: at thousands of Management API
    calls per benchmark run the emulator must not be the bottleneck.
    """

    def __init__(self, app: Any, state: EmulatorState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state, path = self.state, scope["path"]
        is_management = path.startswith("/api/v2/")
        key = f"{scope['method']} {_ID_SEGMENT.sub('/{id}', path)}"
        state.requests[key] = state.requests.get(key, 0) + 1
        faults = state.faults
        if faults.latency_ms and (is_management or path == "/oauth/token"):
            await asyncio.sleep(faults.latency_ms / 1000)
        if (is_management or path == "/oauth/token") and faults.should_fail():
            await auth0_error(faults.error_status, "Injected failure", "emulator_fault")(
                scope, receive, send
            )
            return
        if not is_management or state.bucket is None:
            await self.app(scope, receive, send)
            return
        allowed, remaining, reset = state.bucket.take()
        headers = [
            (b"x-ratelimit-limit", str(state.bucket.capacity).encode()),
            (b"x-ratelimit-remaining", str(remaining).encode()),
            (b"x-ratelimit-reset", str(reset).encode()),
        ]
        if not allowed:
            state.throttled += 1
            response = auth0_error(429, "Global limit has been reached", "too_many_requests")
            response.raw_headers.extend(headers)
            await response(scope, receive, send)
            return

        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *headers]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def fast_json(body: Any, status: int = 200) -> Response:
    """Serialise straight to bytes, skipping FastAPI's response-model encoding."""
    return Response(
        json.dumps(body, separators=(",", ":")), status_code=status, media_type="application/json"
    )


def create_emulator_app(state: EmulatorState) -> FastAPI:
    tenant = state.tenant
    app = FastAPI(
        title="Auth0 emulator", docs_url="/_emulator/docs", openapi_url="/_emulator/openapi.json"
    )
    app.state.emulator = state

    @app.exception_handler(TenantError)
    async def _tenant_error(_request: Request, exc: TenantError) -> JSONResponse:
        return auth0_error(exc.status, exc.message, exc.error_code)

    app.add_middleware(LimitsAndFaults, state=state)

    # ---- Authentication API -------------------------------------------------------

    @app.get("/.well-known/openid-configuration")
    async def discovery() -> dict[str, Any]:
        base = tenant.base_url
        return {
            "issuer": tenant.issuer,
            "authorization_endpoint": f"{base}/authorize",
            "token_endpoint": f"{base}/oauth/token",
            "userinfo_endpoint": f"{base}/userinfo",
            "jwks_uri": f"{base}/.well-known/jwks.json",
            "end_session_endpoint": f"{base}/oidc/logout",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "claims_supported": [
                "sub",
                "iss",
                "aud",
                "exp",
                "iat",
                "email",
                "email_verified",
                "name",
                "nonce",
            ],
            "code_challenge_methods_supported": ["S256", "plain"],
        }

    @app.get("/.well-known/jwks.json")
    async def jwks() -> dict[str, Any]:
        return tenant.jwks()

    async def _form_or_json(request: Request) -> dict[str, Any]:
        if request.headers.get("content-type", "").startswith("application/json"):
            return dict(await request.json())
        return dict(await request.form())

    def _client_credentials(
        request: Request, body: dict[str, Any]
    ) -> tuple[str | None, str | None]:
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("basic "):
            client_id, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
            return client_id, secret
        return body.get("client_id"), body.get("client_secret")

    @app.post("/oauth/token")
    async def token(request: Request) -> JSONResponse:
        body = await _form_or_json(request)
        client_id, client_secret = _client_credentials(request, body)
        if client_id != tenant.management_client_id or not _same(
            str(client_secret or ""), tenant.management_client_secret
        ):
            return JSONResponse(
                {"error": "access_denied", "error_description": "Unauthorized"}, status_code=401
            )
        grant = body.get("grant_type")
        if grant == "client_credentials":
            audience = body.get("audience") or tenant.management_audience
            if audience != tenant.management_audience:
                return JSONResponse(
                    {
                        "error": "access_denied",
                        "error_description": f"Service not found: {audience}",
                    },
                    status_code=403,
                )
            access_token, ttl = tenant.issue_management_token(client_id)
            return JSONResponse(
                {
                    "access_token": access_token,
                    "token_type": "Bearer",
                    "expires_in": ttl,
                    "scope": "read:users update:users",
                }
            )
        if grant == "authorization_code":
            grant_data = tenant.codes.pop(str(body.get("code")), None)
            if grant_data is None or grant_data["expires"] < time.time():
                return JSONResponse(
                    {"error": "invalid_grant", "error_description": "Invalid authorization code"},
                    status_code=403,
                )
            if body.get("redirect_uri") and body.get("redirect_uri") != grant_data["redirect_uri"]:
                return JSONResponse(
                    {"error": "invalid_grant", "error_description": "redirect_uri mismatch"},
                    status_code=403,
                )
            user = tenant.get_user(grant_data["user_id"])
            now = int(time.time())
            audience = grant_data.get("audience") or tenant.audience
            access_token = tenant.mint_access_token(
                user["user_id"],
                audience=[audience, f"{tenant.issuer}userinfo"],
                scope=grant_data["scope"],
            )
            id_claims = {
                "iss": tenant.issuer,
                "sub": user["user_id"],
                "aud": client_id,
                "iat": now,
                "exp": now + 36000,
                "email": user["email"],
                "email_verified": user["email_verified"],
                "name": user["name"],
                "nickname": user["nickname"],
                "picture": user["picture"],
                tenant.roles_claim: tenant.role_names_of(user["user_id"]),
            }
            if grant_data.get("nonce"):
                id_claims["nonce"] = grant_data["nonce"]
            user["last_login"] = iso_now()
            user["logins_count"] = int(user.get("logins_count") or 0) + 1
            return JSONResponse(
                {
                    "access_token": access_token,
                    "id_token": tenant.sign(id_claims),
                    "token_type": "Bearer",
                    "expires_in": tenant.access_token_ttl_s,
                    "scope": grant_data["scope"],
                }
            )
        if grant in ("password", "http://auth0.com/oauth/grant-type/password-realm"):
            found = tenant.find_user(str(body.get("username", "")))
            realm = body.get("realm") or DEFAULT_CONNECTION
            if (
                found is None
                or tenant.connection_of(found) != realm
                or not _same(
                    tenant.passwords.get(found["user_id"], ""), str(body.get("password", ""))
                )
            ):
                return JSONResponse(
                    {"error": "invalid_grant", "error_description": "Wrong email or password."},
                    status_code=403,
                )
            if found.get("blocked"):
                return JSONResponse(
                    {"error": "unauthorized", "error_description": "user is blocked"},
                    status_code=401,
                )
            access_token = tenant.mint_access_token(
                found["user_id"], audience=body.get("audience") or tenant.audience
            )
            return JSONResponse(
                {
                    "access_token": access_token,
                    "token_type": "Bearer",
                    "expires_in": tenant.access_token_ttl_s,
                }
            )
        return JSONResponse(
            {
                "error": "unsupported_grant_type",
                "error_description": f"Unsupported grant type: {grant}",
            },
            status_code=403,
        )

    @app.get("/authorize", response_model=None)
    async def authorize(request: Request) -> Response:
        params = dict(request.query_params)
        redirect_uri = params.get("redirect_uri")
        if params.get("client_id") != tenant.management_client_id or not redirect_uri:
            return HTMLResponse("<h1>Unknown client or missing redirect_uri</h1>", status_code=400)
        hint = params.get("login_hint")
        if not hint:
            rows = []
            for user_id in tenant.user_order[:200]:
                listed = tenant.users[user_id]
                link = "/authorize?" + urlencode({**params, "login_hint": user_id})
                roles = ", ".join(tenant.role_names_of(user_id)) or "no roles"
                rows.append(
                    f'<li><a href="{html.escape(link)}">{html.escape(str(listed["email"]))}</a> <small>{html.escape(roles)}</small></li>'
                )
            page = (
                "<!doctype html><title>Auth0 emulator login</title><h1>Log in as</h1><ul>"
                + "".join(rows)
                + "</ul>"
            )
            return HTMLResponse(page)
        user = tenant.find_user(hint)
        if user is None:
            return HTMLResponse(f"<h1>No user {html.escape(hint)}</h1>", status_code=404)
        if user.get("blocked"):
            query = urlencode(
                {
                    "error": "access_denied",
                    "error_description": "user is blocked",
                    "state": params.get("state", ""),
                }
            )
            return RedirectResponse(f"{redirect_uri}?{query}", status_code=302)
        code = secrets.token_urlsafe(24)
        tenant.codes[code] = {
            "user_id": user["user_id"],
            "redirect_uri": redirect_uri,
            "nonce": params.get("nonce"),
            "scope": params.get("scope", "openid"),
            "audience": params.get("audience"),
            "expires": time.time() + 300,
        }
        query = urlencode(
            {"code": code, **({"state": params["state"]} if "state" in params else {})}
        )
        return RedirectResponse(
            f"{redirect_uri}{'&' if '?' in redirect_uri else '?'}{query}", status_code=302
        )

    @app.get("/userinfo")
    async def userinfo(request: Request) -> JSONResponse:
        auth = request.headers.get("authorization", "")
        try:
            claims = tenant.decode(
                auth.removeprefix("Bearer ").strip(), audience=f"{tenant.issuer}userinfo"
            )
            user = tenant.get_user(claims["sub"])
        except (jwt.InvalidTokenError, TenantError):
            return JSONResponse({"error": "invalid_token"}, status_code=401)
        keys = (
            "email",
            "email_verified",
            "name",
            "nickname",
            "picture",
            "given_name",
            "family_name",
            "updated_at",
        )
        return JSONResponse(
            {"sub": user["user_id"], **{k: user.get(k) for k in keys if user.get(k) is not None}}
        )

    @app.get("/v2/logout", response_model=None)
    @app.get("/oidc/logout", response_model=None)
    async def logout(request: Request) -> Response:
        target = request.query_params.get("returnTo") or request.query_params.get(
            "post_logout_redirect_uri"
        )
        if target:
            return RedirectResponse(target, status_code=302)
        return HTMLResponse("<h1>Logged out</h1>")

    @app.post("/dbconnections/change_password")
    async def change_password(request: Request) -> Response:
        body = await _form_or_json(request)
        if body.get("connection", DEFAULT_CONNECTION) != DEFAULT_CONNECTION:
            return JSONResponse({"error": "connection not found"}, status_code=400)
        if body.get("email"):
            tenant.outbox.append({"type": "change_password", "email": str(body["email"]).lower()})
        return Response(
            "We've just sent you an email to reset your password.", media_type="text/plain"
        )

    # ---- Management API -----------------------------------------------------------

    verified_tokens: dict[str, tuple[float, tuple[str, ...]]] = {}

    async def management_token(request: Request) -> None:
        auth = request.headers.get("authorization", "")
        if not auth.lower().startswith("bearer "):
            raise TenantError(401, "Missing authentication", "missing_authentication")
        token = auth[7:].strip()
        keys = tuple(key.kid for key in tenant.keys)
        cached = verified_tokens.get(token)
        if cached is not None and cached[0] > time.time() and cached[1] == keys:
            return
        try:
            claims = tenant.decode(token, audience=tenant.management_audience)
        except jwt.ExpiredSignatureError:
            raise TenantError(
                401, "Expired token received for JSON Web Token validation", "invalid_token"
            ) from None
        except jwt.InvalidTokenError:
            raise TenantError(401, "Invalid token", "invalid_token") from None
        if len(verified_tokens) > 1000:
            verified_tokens.clear()
        # Valid only with the same signing keys: rotating them must invalidate old tokens.
        verified_tokens[token] = (float(claims["exp"]), keys)

    router = APIRouter(dependencies=[Depends(management_token)])

    def paged(
        items: list[Any],
        key: str,
        page: int,
        per_page: int,
        include_totals: bool,
        total: int | None = None,
    ) -> Any:
        window = items[page * per_page : (page + 1) * per_page]
        if not include_totals:
            return window
        return {
            "start": page * per_page,
            "limit": per_page,
            "length": len(window),
            "total": total if total is not None else len(items),
            key: window,
        }

    def bool_param(value: str | None, default: bool) -> bool:
        return default if value is None else value.lower() == "true"

    def page_params(request: Request) -> tuple[int, int, bool]:
        query = request.query_params
        try:
            page = int(query.get("page", 0))
            per_page = int(query.get("per_page", 50))
        except ValueError:
            raise TenantError(
                400,
                "Query validation error: page and per_page must be integers",
                "invalid_query_string",
            ) from None
        if page < 0 or not 1 <= per_page <= 100:
            raise TenantError(
                400,
                "Query validation error: per_page must be between 1 and 100",
                "invalid_query_string",
            )
        return page, per_page, bool_param(query.get("include_totals"), False)

    @router.get("/users")
    async def list_users(request: Request) -> Any:
        page, per_page, include_totals = page_params(request)
        if page * per_page >= MAX_PAGED_RESULTS:
            raise TenantError(
                400,
                "You can only page through the first 1000 records. See https://auth0.com/docs/users/search/v3/view-search-results-by-page#limitation",
                "invalid_paging",
            )
        query = request.query_params
        clauses = compile_query(query["q"]) if query.get("q") else []
        exact_email = [
            v.strip('"') for f, v in clauses if f == "email" and "*" not in v and "?" not in v
        ]
        if exact_email:
            # The common lookup; answer it from the index instead of scanning every user.
            users = [u for u in tenant.users_by_email(exact_email[0]) if user_matches(u, clauses)]
        else:
            users = [tenant.users[user_id] for user_id in tenant.user_order]
            if clauses:
                users = [user for user in users if user_matches(user, clauses)]
        if query.get("connection"):
            users = [
                u
                for u in users
                if any(i["connection"] == query["connection"] for i in u["identities"])
            ]
        if query.get("sort"):
            field, _, direction = query["sort"].partition(":")
            users = sorted(
                users, key=lambda u: str(_lookup(u, field) or ""), reverse=direction == "-1"
            )
        # Page first, then project: a 100k-user tenant must not copy every user per call.
        total = len(users)
        window = [
            project(u, query.get("fields"), bool_param(query.get("include_fields"), True))
            for u in users[page * per_page : (page + 1) * per_page]
        ]
        if not include_totals:
            return window
        return {
            "start": page * per_page,
            "limit": per_page,
            "length": len(window),
            "total": total,
            "users": window,
        }

    @router.post("/users", status_code=201)
    async def create_user(request: Request) -> dict[str, Any]:
        return tenant.create_user(await request.json())

    @router.get("/users/{user_id}")
    async def get_user(user_id: str, request: Request) -> dict[str, Any]:
        query = request.query_params
        return project(
            tenant.get_user(user_id),
            query.get("fields"),
            bool_param(query.get("include_fields"), True),
        )

    @router.patch("/users/{user_id}")
    async def update_user(user_id: str, request: Request) -> dict[str, Any]:
        return tenant.update_user(user_id, await request.json())

    @router.delete("/users/{user_id}", status_code=204)
    async def delete_user(user_id: str) -> Response:
        tenant.delete_user(user_id)
        return Response(status_code=204)

    @router.get("/users-by-email")
    async def users_by_email(email: str) -> list[dict[str, Any]]:
        return tenant.users_by_email(email)

    @router.get("/users/{user_id}/roles")
    async def user_roles(user_id: str, request: Request) -> Any:
        tenant.get_user(user_id)
        page, per_page, include_totals = page_params(request)
        return paged(tenant.roles_of(user_id), "roles", page, per_page, include_totals)

    @router.post("/users/{user_id}/roles", status_code=204)
    async def assign_user_roles(user_id: str, request: Request) -> Response:
        tenant.assign_roles(user_id, list((await request.json()).get("roles", [])))
        return Response(status_code=204)

    @router.delete("/users/{user_id}/roles", status_code=204)
    async def remove_user_roles(user_id: str, request: Request) -> Response:
        tenant.remove_roles(user_id, list((await request.json()).get("roles", [])))
        return Response(status_code=204)

    @router.delete("/users/{user_id}/refresh-tokens", status_code=204)
    async def revoke_refresh_tokens(user_id: str) -> Response:
        tenant.get_user(user_id)
        tenant.revoked_refresh_tokens[user_id] = tenant.revoked_refresh_tokens.get(user_id, 0) + 1
        return Response(status_code=204)

    @router.get("/roles")
    async def list_roles(request: Request) -> Any:
        page, per_page, include_totals = page_params(request)
        roles = sorted(tenant.roles.values(), key=lambda r: r["name"])
        name_filter = request.query_params.get("name_filter")
        if name_filter:
            roles = [r for r in roles if name_filter.lower() in r["name"].lower()]
        return paged(roles, "roles", page, per_page, include_totals)

    @router.post("/roles", status_code=200)
    async def create_role(request: Request) -> dict[str, Any]:
        body = await request.json()
        if not body.get("name"):
            raise TenantError(
                400, "Payload validation error: 'Missing required property: name'.", "invalid_body"
            )
        return tenant.create_role(body["name"], body.get("description"))

    @router.get("/roles/{role_id}")
    async def get_role(role_id: str) -> dict[str, Any]:
        return tenant.get_role(role_id)

    @router.patch("/roles/{role_id}")
    async def update_role(role_id: str, request: Request) -> dict[str, Any]:
        return tenant.update_role(role_id, await request.json())

    @router.delete("/roles/{role_id}", status_code=204)
    async def delete_role(role_id: str) -> Response:
        tenant.delete_role(role_id)
        return Response(status_code=204)

    @router.get("/roles/{role_id}/users")
    async def role_users(role_id: str, request: Request) -> Any:
        query = request.query_params
        if "from" in query or "take" in query:
            take = min(max(int(query.get("take", 50)), 1), 100)
            after = None
            if query.get("from"):
                try:
                    after = bytes.fromhex(query["from"]).decode()
                except ValueError:
                    raise TenantError(400, "Invalid checkpoint", "invalid_query_string") from None
            members, last = tenant.role_members_after(role_id, after, take)
            users = [_role_user(tenant.users[user_id]) for user_id in members]
            return fast_json({"users": users, **({"next": last.encode().hex()} if last else {})})
        tenant.get_role(role_id)
        page, per_page, include_totals = page_params(request)
        if page * per_page >= MAX_PAGED_RESULTS:
            raise TenantError(
                400,
                "You can only page through the first 1000 records; use checkpoint pagination",
                "invalid_paging",
            )
        members = tenant.role_members[role_id]
        window = members[page * per_page : (page + 1) * per_page]
        users = [_role_user(tenant.users[user_id]) for user_id in window]
        if not include_totals:
            return users
        return {"start": page * per_page, "limit": per_page, "total": len(members), "users": users}

    def _role_user(user: dict[str, Any]) -> dict[str, Any]:
        return {k: user.get(k) for k in ("user_id", "email", "name", "picture")}

    @router.post("/roles/{role_id}/users", status_code=200)
    async def assign_role_users(role_id: str, request: Request) -> Response:
        tenant.get_role(role_id)
        for user_id in (await request.json()).get("users", []):
            tenant.assign_roles(user_id, [role_id])
        return Response(status_code=200)

    def job_body(job: ExportJob, request: Request) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": job.id,
            "type": "users_export",
            "created_at": job.created_at,
            "connection_id": job.connection_id,
            "format": job.format,
        }
        elapsed = time.monotonic() - job.created
        if elapsed < state.faults.export_delay_s:
            body.update(
                status="processing" if elapsed > 0 else "pending",
                percentage_done=int(100 * elapsed / state.faults.export_delay_s),
                time_left_seconds=1,
            )
        elif job.fail:
            body.update(status="failed", status_details="The export job failed (injected)")
        else:
            extension = "json.gz" if job.format == "json" else "csv.gz"
            body.update(
                status="completed",
                percentage_done=100,
                location=str(request.url_for("export_download", job_id=job.id)).replace(".gz", "")
                + f".{extension}",
            )
        return body

    @router.post("/jobs/users-exports", status_code=201)
    async def create_export(request: Request) -> dict[str, Any]:
        if not state.faults.exports_enabled:
            raise TenantError(
                403, "This feature is not available on the Free plan.", "operation_not_supported"
            )
        body = await request.json()
        if body.get("format", "json") not in ("json", "csv"):
            raise TenantError(400, "format must be json or csv", "invalid_body")
        job = tenant.create_export(body, fail=state.faults.fail_exports)
        return job_body(job, request)

    @router.get("/jobs/{job_id}")
    async def get_job(job_id: str, request: Request) -> dict[str, Any]:
        job = tenant.jobs.get(job_id)
        if job is None:
            raise TenantError(404, "The job does not exist", "inexistent_job")
        return job_body(job, request)

    @router.post("/jobs/verification-email", status_code=201)
    async def verification_email(request: Request) -> dict[str, Any]:
        body = await request.json()
        user = tenant.get_user(body.get("user_id", ""))
        tenant.outbox.append(
            {"type": "verification_email", "user_id": user["user_id"], "email": user["email"]}
        )
        return {
            "id": f"job_{secrets.token_hex(8)}",
            "status": "pending",
            "type": "verification_email",
            "created_at": iso_now(),
        }

    @router.post("/tickets/password-change", status_code=201)
    async def password_change_ticket(request: Request) -> dict[str, Any]:
        body = await request.json()
        if body.get("user_id"):
            user = tenant.get_user(body["user_id"])
        else:
            found = tenant.users_by_email(body.get("email", ""))
            if not found:
                raise TenantError(404, "The user does not exist.", "inexistent_user")
            user = found[0]
        ticket = f"{tenant.base_url}/lo/reset?ticket={secrets.token_urlsafe(16)}"
        tenant.outbox.append(
            {"type": "password_change_ticket", "user_id": user["user_id"], "ticket": ticket}
        )
        return {"ticket": ticket}

    app.include_router(router, prefix="/api/v2")

    # ---- downloads and emulator controls ------------------------------------------

    @app.get("/_emulator/exports/{job_id}", name="export_download")
    async def export_download(job_id: str) -> Response:
        job = tenant.jobs.get(job_id.split(".")[0])
        if job is None or job.fail:
            return Response(status_code=404)
        with tenant.lock:
            users = [tenant.users[user_id] for user_id in tenant.user_order]
        if job.connection_id:
            users = [
                u
                for u in users
                if any(i["connection"] == job.connection_id for i in u["identities"])
            ]
        if job.limit:
            users = users[: job.limit]
        if job.format == "json":
            payload = "".join(json.dumps(export_line(u, job.fields)) + "\n" for u in users)
        else:
            buffer = io.StringIO()
            names = [
                f.get("export_as") or f["name"]
                for f in (job.fields or [{"name": "user_id"}, {"name": "email"}])
            ]
            writer = csv.writer(buffer)
            writer.writerow(names)
            for user in users:
                line = export_line(user, job.fields or [{"name": "user_id"}, {"name": "email"}])
                writer.writerow([line.get(name) for name in names])
            payload = buffer.getvalue()
        return Response(
            gzip.compress(payload.encode(), compresslevel=1), media_type="application/gzip"
        )

    @app.post("/recaptcha/api/siteverify")
    async def recaptcha_siteverify(request: Request) -> dict[str, Any]:
        """A stand-in for Google's endpoint: any token not starting with "bad" passes."""
        form = await request.form()
        token = str(form.get("response") or "")
        if not form.get("secret"):
            return {"success": False, "error-codes": ["missing-input-secret"]}
        if not token or token.startswith("bad"):
            return {"success": False, "error-codes": ["invalid-input-response"]}
        return {"success": True, "hostname": "127.0.0.1"}

    @app.get("/_emulator/state")
    async def emulator_state() -> dict[str, Any]:
        return {
            "users": len(tenant.users),
            "roles": len(tenant.roles),
            "rate_limit": state.rate_limit,
            "throttled": state.throttled,
            "requests": state.requests,
            "management_tokens_issued": tenant.management_tokens_issued,
            "outbox": len(tenant.outbox),
        }

    @app.post("/_emulator/config")
    async def configure(request: Request) -> dict[str, Any]:
        body = await request.json()
        if "rate_limit" in body:
            state.set_rate_limit(body["rate_limit"])
        for key in FAULT_SETTINGS:
            if key in body:
                setattr(state.faults, key, body[key])
        return {
            "rate_limit": state.rate_limit,
            "faults": {key: getattr(state.faults, key) for key in FAULT_SETTINGS},
        }

    @app.post("/_emulator/tokens")
    async def mint(request: Request) -> dict[str, Any]:
        body = await request.json()
        user = tenant.find_user(str(body.get("user", "")))
        if user is None:
            raise TenantError(404, "The user does not exist.", "inexistent_user")
        roles = body.get("roles")
        if roles is not None:
            # A real tenant's token names the roles the user holds (the login Action reads
            # them), so asking for roles gives them to the user first: the backend confirms
            # admin roles with the Management API before admin writes.
            tenant.grant_roles(user["user_id"], [str(name) for name in roles])
        token = tenant.mint_access_token(user["user_id"], expires_in=body.get("expires_in"))
        return {"access_token": token, "token_type": "Bearer", "user_id": user["user_id"]}

    return app


def _same(a: str, b: str) -> bool:
    # compare_digest refuses non-ASCII str; passwords may be any Unicode (found by fuzzing).
    return secrets.compare_digest(
        a.encode("utf-8", "surrogatepass"), b.encode("utf-8", "surrogatepass")
    )
