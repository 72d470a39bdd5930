"""/db-admin login: Auth0 OIDC for holders of an ADMIN_ROLES role, re-checked while the session lasts.

The callback URL is sent without a query string, so the one URL registered in Auth0 always
matches; where to go afterwards is kept in the session. The session cookie (signed, not
encrypted) holds only who the user is and until when.
"""

import html
import logging
import time
import warnings
from typing import Any
from urllib.parse import urlencode

import httpx
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette_admin.auth import AdminUser, OAuthProvider, login_not_required
from starlette_admin.helpers import index_url, safe_redirect_url

from services.errors import AppError
from services.identity.tokens import is_deactivated
from services.settings import Settings

with warnings.catch_warnings():
    # authlib's Starlette client imports authlib's httpx module, which authlib itself now
    # marks deprecated (in favour of httpx2); nothing for us to act on. authlib turns its
    # warnings on when `authlib.deprecate` loads, so that comes first.
    import authlib.deprecate  # noqa: F401

    warnings.filterwarnings("ignore", message="The httpx module is deprecated")
    from authlib.integrations.starlette_client import OAuth, OAuthError


logger = logging.getLogger("aai.db_admin")

BASE_URL = "/db-admin"
# The callback the old backend registered in the Auth0 tenants ("Allowed Callback URLs"):
# sent as redirect_uri, so the switch needs no tenant change; it forwards to the
# dashboard's own callback (routers/db_admin.py).
CALLBACK_PATH = "/auth/auth0"
CALLBACK_ROUTE = "db_admin_auth0_callback"
ROUTE_NAME = "db_admin"
SESSION_KEY = "db_admin_user"
NEXT_KEY = "db_admin_next"
SESSION_HOURS = 8


# ---------------------------------------------------------------------------- login


class Auth0Login(OAuthProvider):
    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self.settings = settings
        self.oauth = OAuth()
        client_secret = settings.admin_client_secret or settings.auth0_management_secret
        self.oauth.register(
            "auth0",
            client_id=settings.admin_client_id or settings.auth0_management_id,
            client_secret=client_secret.get_secret_value(),
            # Ops log in where users do: the custom domain when there is one (its discovery
            # names it as issuer and endpoints), the canonical domain otherwise.
            server_metadata_url=f"{settings.auth0_login_url}/.well-known/openid-configuration",
            client_kwargs={"scope": "openid profile email"},
        )

    async def render_login(self, request: Request) -> Response:
        if next_url := request.query_params.get("next"):
            request.session[NEXT_KEY] = next_url
        callback = str(request.url_for(CALLBACK_ROUTE))
        return await self.redirect_to_provider(request, callback)

    async def redirect_to_provider(self, request: Request, callback_url: str) -> Response:
        client = self.oauth.create_client("auth0")
        try:
            return await client.authorize_redirect(
                request, callback_url, audience=self.settings.auth0_audience
            )
        except httpx.HTTPError as exc:
            logger.warning("db-admin login: Auth0 discovery failed: %r", exc)
            return HTMLResponse(
                "<!doctype html><title>Login unavailable</title><h1>Login unavailable</h1>"
                "<p>Auth0 does not answer just now; try again in a minute.</p>",
                status_code=503,
                headers={"Retry-After": "30"},
            )

    async def handle_callback(self, request: Request) -> None:
        client = self.oauth.create_client("auth0")
        token = await client.authorize_access_token(request)
        claims = dict(token.get("userinfo") or {})
        roles = await self._roles(request, claims, token.get("access_token"))
        admin_roles = sorted(roles & set(self.settings.admin_roles))
        who = claims.get("email") or claims.get("sub")
        if not admin_roles:
            request.session.pop(SESSION_KEY, None)
            request.session["db_admin_refused"] = who
            logger.warning("db-admin login refused for %s: no ADMIN_ROLES role", who)
            return
        request.session[SESSION_KEY] = {
            "sub": claims.get("sub"),
            "email": claims.get("email"),
            "name": claims.get("name") or who,
            "picture": claims.get("picture"),
            "roles": admin_roles,
            "expires": int(time.time()) + SESSION_HOURS * 3600,
            "checked": int(time.time()),
        }
        logger.info("db-admin login: %s (%s)", who, ", ".join(admin_roles))

    async def _roles(
        self, request: Request, claims: dict[str, Any], access_token: str | None
    ) -> set[str]:
        """The roles claim from the ID token, else from the (validated) access token."""
        roles = claims.get(self.settings.auth0_roles_claim)
        if isinstance(roles, list):
            return {str(r) for r in roles}
        if access_token:
            try:
                validated = await request.state.token_validator.validate(access_token)
            except Exception:
                logger.warning("db-admin: the access token from the login did not validate")
                return set()
            return set(validated.roles)
        return set()

    @login_not_required
    async def render_callback(self, request: Request) -> Response:
        if "error" in request.query_params:
            return self.refusal(request, request.query_params.get("error_description") or "")
        try:
            await self.handle_callback(request)
        except OAuthError as exc:
            return self.refusal(request, f"the login could not be completed ({exc.error})")
        if request.session.get(SESSION_KEY) is None:
            return self.refusal(
                request,
                f"{request.session.pop('db_admin_refused', 'this account')} does not hold "
                "an administrator role (ADMIN_ROLES).",
            )
        fallback = index_url(request)
        next_url = safe_redirect_url(request.session.pop(NEXT_KEY, fallback), request, fallback)
        return RedirectResponse(next_url, status_code=303)

    async def authenticate(self, request: Request) -> AdminUser | None:
        user = request.session.get(SESSION_KEY)
        if not isinstance(user, dict) or int(user.get("expires", 0)) < time.time():
            return None
        if time.time() - float(user.get("checked", 0)) >= self.settings.db_admin_recheck_s:
            # A session outlives what it was granted for: every few minutes the role must
            # still be held in Auth0 and the account still live here, or the session ends.
            if not await self._still_allowed(request, str(user.get("sub") or "")):
                request.session.pop(SESSION_KEY, None)
                return None
            request.session[SESSION_KEY] = {**user, "checked": int(time.time())}
        return AdminUser(username=user.get("name") or "admin", photo_url=user.get("picture"))

    async def _still_allowed(self, request: Request, sub: str) -> bool:
        if not sub:
            return False
        try:
            roles = await request.state.live_roles.of(sub)
        except AppError as exc:
            logger.warning("db-admin: cannot re-check %s (%s); the session ends", sub, exc.detail)
            return False
        if not roles & set(self.settings.admin_roles):
            logger.warning("db-admin: %s no longer holds an ADMIN_ROLES role; session ended", sub)
            return False
        async with request.state.session_factory() as session:
            deactivated = await is_deactivated(session, sub)
        if deactivated:
            logger.warning("db-admin: %s is blocked or deleted; session ended", sub)
            return False
        return True

    async def logout(self, request: Request) -> Response | None:
        request.session.pop(SESSION_KEY, None)
        return RedirectResponse(self.auth0_logout_url(index_url(request)), status_code=303)

    def auth0_logout_url(self, return_to: str) -> str:
        """Auth0's own session ends too, or the next login would silently reuse it."""
        client_id = self.settings.admin_client_id or self.settings.auth0_management_id
        query = urlencode({"client_id": client_id, "returnTo": return_to})
        return f"{self.settings.auth0_login_url}/v2/logout?{query}"

    def refusal(self, request: Request, reason: str) -> Response:
        switch = self.auth0_logout_url(str(request.url_for(f"{ROUTE_NAME}:login")))
        body = (
            "<!doctype html><meta charset='utf-8'><title>Access refused</title>"
            "<body style='font-family:sans-serif;max-width:40em;margin:4em auto'>"
            "<h1>Access refused</h1>"
            f"<p>{html.escape(reason)}</p>"
            "<p>The database dashboard is for BioCommons administrators only. If you should "
            "have access, ask for an administrator role, or "
            f"<a href='{html.escape(switch)}'>log in as someone else</a>.</p></body>"
        )
        return HTMLResponse(body, status_code=403)
