"""The emulator's Authentication API: OIDC discovery and keys, /oauth/token (client
credentials, authorization code, password realm), /authorize with a login page, /userinfo,
logout and the database connection's change-password email.

Served on both of the tenant's domains (see `Tenant`): discovery names the domain it was
asked on, tokens carry that domain as `iss`, and the keys are the tenant's on both."""

import base64
import html
import secrets
import time
from typing import Any
from urllib.parse import urlencode

import jwt
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from scripts.auth0_emulator.app import EmulatorState
from scripts.auth0_emulator.tenant import (
    BRUTE_FORCE_THRESHOLD,
    DEFAULT_CONNECTION,
    PASSWORD_GRANTS,
    AppClient,
    TenantError,
)


def authentication_routes(state: EmulatorState) -> APIRouter:
    tenant = state.tenant
    router = APIRouter()

    def issuer_of(request: Request) -> str:
        return tenant.issuer_for_host(request.headers.get("host"))

    @router.get("/.well-known/openid-configuration")
    async def discovery(request: Request) -> dict[str, Any]:
        issuer = issuer_of(request)
        base = issuer.rstrip("/")
        return {
            "issuer": issuer,
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

    @router.get("/.well-known/jwks.json")
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

    def _client_credentials_grant(
        request: Request, body: dict[str, Any], client_id: str
    ) -> JSONResponse:
        """A Management API token (the only API the emulated client has a grant for).

        The audience must be the canonical domain's `/api/v2/`, whichever domain is asked
        (see `Tenant`); any other is an API the tenant does not have: 403 `access_denied`
        "Service not enabled within domain: <audience>". A grant without scopes is no grant
        (403 `Client "…" is not authorized to access resource server "…"`); a `scope`
        asking for more than the grant is refused, one within it narrows the token."""
        issuer = issuer_of(request)
        audience = str(body.get("audience") or "")
        known = audience == tenant.management_audience or (
            not tenant.strict and audience.endswith("/api/v2/")
        )
        if not known:
            return _denied(f"Service not enabled within domain: {audience}")
        grant = tenant.grant
        if not grant and tenant.strict:
            return _denied(
                f'Client "{client_id}" is not authorized to access resource server "{audience}".'
            )
        scopes = sorted(grant)
        if body.get("scope"):
            asked = str(body["scope"]).split()
            missing = [scope for scope in asked if scope not in grant]
            if missing:
                return _denied(f"Client has not been granted scopes: {' '.join(missing)}")
            scopes = asked
        access_token, ttl = tenant.issue_management_token(client_id, issuer=issuer, scopes=scopes)
        return JSONResponse(
            {
                "access_token": access_token,
                "token_type": "Bearer",
                "expires_in": ttl,
                "scope": " ".join(scopes),
            }
        )

    def _password_grant(request: Request, body: dict[str, Any], client: AppClient) -> JSONResponse:
        """The resource-owner password grant. Its answers, as Auth0 gives them: a wrong
        password 403 `invalid_grant` "Wrong email or password."; a blocked user 401
        `unauthorized` "user is blocked"; a right password of a user with MFA 403
        `mfa_required` (Auth0 docs, "Multi-factor Authentication and Resource Owner
        Password"); after BRUTE_FORCE_THRESHOLD failures for the user from one address,
        429 `too_many_attempts` until a right password from elsewhere or an unblock. The
        address is `auth0-forwarded-for` when the client trusts it, else the caller's."""
        address = (request.client.host if request.client else "") or "unknown"
        forwarded = request.headers.get("auth0-forwarded-for")
        if forwarded and (client.trust_ip_header or not tenant.strict):
            address = forwarded.strip()
        tenant.login_addresses.append(address)
        found = tenant.find_user(str(body.get("username", "")))
        realm = body.get("realm") or DEFAULT_CONNECTION
        key = (found["user_id"] if found else "", address)
        if found is not None and tenant.failed_logins.get(key, 0) >= BRUTE_FORCE_THRESHOLD:
            return JSONResponse(
                {
                    "error": "too_many_attempts",
                    "error_description": "Your account has been blocked after multiple "
                    "consecutive login attempts. We've sent you an email with instructions "
                    "on how to unblock it.",
                },
                status_code=429,
            )
        if (
            found is None
            or tenant.connection_of(found) != realm
            or not _same(tenant.passwords.get(found["user_id"], ""), str(body.get("password", "")))
        ):
            if found is not None:
                tenant.failed_logins[key] = tenant.failed_logins.get(key, 0) + 1
            return JSONResponse(
                {"error": "invalid_grant", "error_description": "Wrong email or password."},
                status_code=403,
            )
        tenant.failed_logins.pop(key, None)
        if found.get("blocked"):
            return JSONResponse(
                {"error": "unauthorized", "error_description": "user is blocked"},
                status_code=401,
            )
        if found["user_id"] in tenant.mfa_users:
            return JSONResponse(
                {
                    "error": "mfa_required",
                    "error_description": "Multifactor authentication required",
                    "mfa_token": secrets.token_urlsafe(24),
                },
                status_code=403,
            )
        tenant.record_login(found)  # a password grant is a login too
        access_token = tenant.mint_access_token(
            found["user_id"],
            audience=body.get("audience") or tenant.audience,
            issuer=issuer_of(request),
        )
        return JSONResponse(
            {
                "access_token": access_token,
                "token_type": "Bearer",
                "expires_in": tenant.access_token_ttl_s,
            }
        )

    @router.post("/oauth/token")
    async def token(request: Request) -> JSONResponse:
        body = await _form_or_json(request)
        client_id, client_secret = _client_credentials(request, body)
        client = tenant.clients.get(str(client_id))
        if client is None or not _same(str(client_secret or ""), client.secret):
            return JSONResponse(
                {"error": "access_denied", "error_description": "Unauthorized"}, status_code=401
            )
        grant = body.get("grant_type")
        if tenant.strict and grant not in client.grant_types:
            return JSONResponse(
                {
                    "error": "unauthorized_client",
                    "error_description": f"Grant type '{grant}' not allowed for the client.",
                },
                status_code=403,
            )
        if grant == "client_credentials":
            return _client_credentials_grant(request, body, str(client_id))
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
            issuer = issuer_of(request)
            access_token = tenant.mint_access_token(
                user["user_id"],
                audience=[audience, f"{issuer}userinfo"],
                scope=grant_data["scope"],
                issuer=issuer,
            )
            id_claims = {
                "iss": issuer,
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
            tenant.record_login(user)
            return JSONResponse(
                {
                    "access_token": access_token,
                    "id_token": tenant.sign(id_claims),
                    "token_type": "Bearer",
                    "expires_in": tenant.access_token_ttl_s,
                    "scope": grant_data["scope"],
                }
            )
        if grant in PASSWORD_GRANTS:
            return _password_grant(request, body, client)
        return JSONResponse(
            {
                "error": "unsupported_grant_type",
                "error_description": f"Unsupported grant type: {grant}",
            },
            status_code=403,
        )

    @router.get("/authorize", response_model=None)
    async def authorize(request: Request) -> Response:
        params = dict(request.query_params)
        redirect_uri = params.get("redirect_uri")
        login_client = tenant.clients.get(str(params.get("client_id")))
        if (
            login_client is None
            or "authorization_code" not in login_client.grant_types
            or not redirect_uri
        ):
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

    @router.get("/userinfo")
    async def userinfo(request: Request) -> JSONResponse:
        auth = request.headers.get("authorization", "")
        try:
            issuer = issuer_of(request)
            claims = tenant.decode(
                auth.removeprefix("Bearer ").strip(),
                audience=f"{issuer}userinfo",
                issuer=issuer,
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

    @router.get("/v2/logout", response_model=None)
    @router.get("/oidc/logout", response_model=None)
    async def logout(request: Request) -> Response:
        target = request.query_params.get("returnTo") or request.query_params.get(
            "post_logout_redirect_uri"
        )
        if target:
            return RedirectResponse(target, status_code=302)
        return HTMLResponse("<h1>Logged out</h1>")

    @router.post("/dbconnections/change_password")
    async def change_password(request: Request) -> Response:
        body = await _form_or_json(request)
        if body.get("connection", DEFAULT_CONNECTION) != DEFAULT_CONNECTION:
            return JSONResponse({"error": "connection not found"}, status_code=400)
        if body.get("email"):
            tenant.outbox.append({"type": "change_password", "email": str(body["email"]).lower()})
        return Response(
            "We've just sent you an email to reset your password.", media_type="text/plain"
        )

    return router


def _denied(description: str) -> JSONResponse:
    return JSONResponse(
        {"error": "access_denied", "error_description": description}, status_code=403
    )


def _same(a: str, b: str) -> bool:
    # compare_digest refuses non-ASCII str; passwords may be any Unicode (found by fuzzing).
    return secrets.compare_digest(
        a.encode("utf-8", "surrogatepass"), b.encode("utf-8", "surrogatepass")
    )
