"""/db-admin: a read-only Starlette Admin dashboard for ops, behind Auth0 login.

Login is the OIDC authorization-code flow (authlib) with ADMIN_CLIENT_ID/SECRET (the
management client when unset). The callback URL is sent without a query string, so the
one URL registered in Auth0 always matches; where to go afterwards is kept in the
session. Only holders of an ADMIN_ROLES role get in; anyone else gets a refusal page.
The session cookie (signed, not encrypted) holds only who the user is and until when.

Read-only three times over: every view refuses create/edit/delete/import/export and has
no actions, the dashboard's database sessions are READ ONLY transactions on Postgres,
and a test posts to every write route.
"""

import html
import logging
import time
import warnings
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import urlencode

import httpx
import sqlalchemy as sa
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette_admin.auth import AdminUser, OAuthProvider, login_not_required
from starlette_admin.contrib.sqla import Admin, ModelView
from starlette_admin.helpers import index_url, safe_redirect_url

from db.models import (
    Auth0OutboxEntry,
    Auth0Role,
    EmailChangeOtp,
    EmailNotification,
    Group,
    GroupAdminRole,
    GroupMembership,
    GroupMembershipHistory,
    Platform,
    PlatformAdminRole,
    PlatformMembership,
    PlatformMembershipHistory,
    SyncRun,
    User,
    UserHistory,
    UsernameClaim,
)
from services.errors import AppError
from services.identity.tokens import is_deactivated
from services.settings import Settings
from services.users.admin_reads import contains

with warnings.catch_warnings():
    # authlib's Starlette client imports authlib's httpx module, which authlib itself now
    # marks deprecated (in favour of httpx2); nothing for us to act on. authlib turns its
    # warnings on when `authlib.deprecate` loads, so that comes first.
    import authlib.deprecate  # noqa: F401

    warnings.filterwarnings("ignore", message="The httpx module is deprecated")
    from authlib.integrations.starlette_client import OAuth, OAuthError

logger = logging.getLogger("aai.db_admin")

BASE_URL = "/db-admin"
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
            server_metadata_url=f"{settings.auth0_base_url}/.well-known/openid-configuration",
            client_kwargs={"scope": "openid profile email"},
        )

    async def render_login(self, request: Request) -> Response:
        if next_url := request.query_params.get("next"):
            request.session[NEXT_KEY] = next_url
        callback = str(request.url_for(f"{ROUTE_NAME}:oauth_callback"))
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


# ---------------------------------------------------------------------------- views


class ReadOnlyView(ModelView):
    """Lists and detail pages only. Each view names its columns, its default order (an
    indexed one, newest first) and what search matches, so 100k-row tables stay fast."""

    page_size = 25
    page_size_options: ClassVar[list[int]] = [25, 50, 100]
    actions: ClassVar[list[str]] = []
    row_actions: ClassVar[list[str]] = ["view"]

    def can_create(self, request: Request) -> bool:
        return False

    def can_edit(self, request: Request) -> bool:
        return False

    def can_delete(self, request: Request) -> bool:
        return False

    def can_import(self, request: Request) -> bool:
        return False

    def can_export(self, request: Request) -> bool:
        return False

    async def is_action_allowed(self, request: Request, name: str) -> bool:
        return False

    def _setup_primary_key(self) -> None:
        super()._setup_primary_key()
        # String keys (AutoString) report no Python type; they are compared as strings.
        if isinstance(self._pk_coerce, tuple):
            self._pk_coerce = tuple(str if c is object else c for c in self._pk_coerce)
        elif self._pk_coerce is object:
            self._pk_coerce = str

    async def is_row_action_allowed(self, request: Request, name: str) -> bool:
        return name == "view"


class UserView(ReadOnlyView):
    fields: ClassVar[list[str]] = [
        "id",
        "email",
        "username",
        "name",
        "email_verified",
        "connection",
        "blocked",
        "created_at",
        "updated_at",
        "last_login",
        "last_synced_at",
    ]
    exclude_fields_from_list: ClassVar[list[str]] = [
        "name",
        "connection",
        "updated_at",
        "last_synced_at",
    ]
    sortable_fields: ClassVar[list[str]] = ["created_at"]
    fields_default_sort: ClassVar[list[tuple[str, bool]]] = [("created_at", True)]
    deleted = False

    def get_list_query(self, request: Request) -> sa.Select:
        return super().get_list_query(request).where(User.is_deleted.is_(self.deleted))

    def get_count_query(self, request: Request) -> sa.Select:
        return super().get_count_query(request).where(User.is_deleted.is_(self.deleted))

    def get_search_query(self, request: Request, term: str) -> Any:
        # The trigram indexes on lower(email) / lower(username) answer these.
        return sa.or_(User.id == term, contains(User.email, term), contains(User.username, term))


class DeletedUserView(UserView):
    fields: ClassVar[list[str]] = [
        *UserView.fields,
        "deleted_at",
        "deleted_by_id",
        "deletion_reason",
    ]
    exclude_fields_from_list: ClassVar[list[str]] = [
        *UserView.exclude_fields_from_list,
        "deletion_reason",
    ]
    sortable_fields: ClassVar[list[str]] = ["deleted_at"]
    fields_default_sort: ClassVar[list[tuple[str, bool]]] = [("deleted_at", True)]
    deleted = True


class ByUserView(ReadOnlyView):
    """Rows about users: search takes a user id, or a platform/group id where there is one."""

    search_columns: ClassVar[tuple[str, ...]] = ("user_id",)

    def get_search_query(self, request: Request, term: str) -> Any:
        return sa.or_(*(getattr(self.model, c) == term for c in self.search_columns))


@dataclass(frozen=True)
class Listing:
    """One table's view: its columns, the indexed column it is ordered by (newest or
    A-Z first), which columns a search matches exactly, and columns for the detail page
    only."""

    model: type
    label: str
    key: str
    icon: str
    fields: tuple[str, ...]
    order: str
    search: tuple[str, ...]
    descending: bool = True
    detail_only: tuple[str, ...] = ()


MEMBERSHIP = ("user_id", "approval_status", "request_reason", "revocation_reason")
MEMBERSHIP_TAIL = ("updated_by_id", "created_at", "updated_at")
HISTORY_TAIL = ("user_id", "approval_status", "reason", "updated_by_id", "created_at")
CATALOG = ("name", "short_name", "access_role_id", "removed_at", "created_at", "updated_at")
LISTINGS = (
    Listing(
        UserHistory,
        "User history",
        "user-history",
        "fa fa-clock-rotate-left",
        (
            "id",
            "user_id",
            "change",
            "email",
            "username",
            "previous_value",
            "new_value",
            "changed_by_id",
            "reason",
            "created_at",
        ),
        "id",
        ("user_id",),
    ),
    Listing(
        UsernameClaim,
        "Username claims",
        "username-claims",
        "fa fa-signature",
        ("username", "user_id", "claimed_at"),
        "username",
        ("user_id", "username"),
        descending=False,
    ),
    Listing(
        PlatformMembership,
        "Platform memberships",
        "platform-memberships",
        "fa fa-id-card",
        ("id", "platform_id", *MEMBERSHIP, *MEMBERSHIP_TAIL),
        "updated_at",
        ("user_id", "platform_id"),
    ),
    Listing(
        GroupMembership,
        "Group memberships",
        "group-memberships",
        "fa fa-users",
        ("id", "group_id", *MEMBERSHIP, "rejection_reason", *MEMBERSHIP_TAIL),
        "updated_at",
        ("user_id", "group_id"),
    ),
    Listing(
        PlatformMembershipHistory,
        "Platform membership history",
        "platform-membership-history",
        "fa fa-clock-rotate-left",
        ("id", "platform_id", "membership_id", *HISTORY_TAIL),
        "id",
        ("user_id", "platform_id"),
    ),
    Listing(
        GroupMembershipHistory,
        "Group membership history",
        "group-membership-history",
        "fa fa-clock-rotate-left",
        ("id", "group_id", "membership_id", *HISTORY_TAIL),
        "id",
        ("user_id", "group_id"),
    ),
    Listing(
        Auth0Role,
        "Roles",
        "roles",
        "fa fa-key",
        ("id", "name", "description", "removed_at", "created_at", "updated_at", "last_synced_at"),
        "name",
        ("id", "name"),
        descending=False,
    ),
    Listing(
        Platform,
        "Platforms",
        "platforms",
        "fa fa-server",
        ("id", *CATALOG),
        "name",
        ("id", "name"),
        descending=False,
    ),
    Listing(
        Group,
        "Groups",
        "groups",
        "fa fa-people-group",
        ("id", *CATALOG),
        "name",
        ("id", "name", "short_name"),
        descending=False,
    ),
    Listing(
        PlatformAdminRole,
        "Platform admin roles",
        "platform-admin-roles",
        "fa fa-user-shield",
        ("platform_id", "role_id"),
        "platform_id",
        ("platform_id", "role_id"),
        descending=False,
    ),
    Listing(
        GroupAdminRole,
        "Group admin roles",
        "group-admin-roles",
        "fa fa-user-shield",
        ("group_id", "role_id"),
        "group_id",
        ("group_id", "role_id"),
        descending=False,
    ),
    Listing(
        EmailNotification,
        "Email queue",
        "email-queue",
        "fa fa-envelope",
        (
            "id",
            "to_address",
            "subject",
            "template",
            "status",
            "attempts",
            "last_error",
            "priority",
            "send_after",
            "last_attempt_at",
            "sent_at",
            "expires_at",
            "lease_expires_at",
            "dedupe_key",
            "from_address",
            "created_at",
            "body_text",
            "body_html",
        ),
        "created_at",
        ("to_address", "template"),
        # Bodies can hold one-time codes: detail page only.
        detail_only=(
            "body_text",
            "body_html",
            "dedupe_key",
            "from_address",
            "priority",
            "expires_at",
            "lease_expires_at",
            "last_attempt_at",
        ),
    ),
    Listing(
        # Never the code's hash.
        EmailChangeOtp,
        "Email-change codes",
        "email-change-codes",
        "fa fa-hashtag",
        (
            "id",
            "user_id",
            "target_email",
            "is_active",
            "attempts",
            "expires_at",
            "consumed_at",
            "created_at",
        ),
        "created_at",
        ("user_id", "target_email"),
    ),
    Listing(
        Auth0OutboxEntry,
        "Auth0 outbox",
        "auth0-outbox",
        "fa fa-paper-plane",
        (
            "id",
            "operation",
            "user_id",
            "role_id",
            "status",
            "attempts",
            "last_error",
            "next_attempt_at",
            "requested_by_id",
            "created_at",
            "completed_at",
        ),
        "id",
        ("user_id", "role_id"),
    ),
    Listing(
        SyncRun,
        "Scheduler runs",
        "scheduler-runs",
        "fa fa-rotate",
        ("id", "job", "status", "dry_run", "started_at", "finished_at", "host", "error", "counts"),
        "started_at",
        ("job",),
        detail_only=("counts",),
    ),
)


def _views() -> list[ReadOnlyView]:
    views: list[ReadOnlyView] = [
        UserView(User, menu_label="Users", key="users", icon="fa fa-user"),
        DeletedUserView(
            User, menu_label="Deleted users", key="deleted-users", icon="fa fa-user-slash"
        ),
    ]
    for listing in LISTINGS:
        view_class = type(
            f"{listing.model.__name__}View",
            (ByUserView,),
            {
                "fields": list(listing.fields),
                "exclude_fields_from_list": list(listing.detail_only),
                "sortable_fields": [listing.order],
                "fields_default_sort": [(listing.order, listing.descending)],
                "search_columns": listing.search,
            },
        )
        views.append(
            view_class(listing.model, menu_label=listing.label, key=listing.key, icon=listing.icon)
        )
    return views


def mount(app: FastAPI, settings: Settings) -> async_sessionmaker[AsyncSession]:
    """Mount the dashboard; returns its session factory, bound to the engine at start-up."""
    sessions: async_sessionmaker[AsyncSession] = async_sessionmaker(
        class_=AsyncSession, expire_on_commit=False
    )
    admin = Admin(
        sessions,
        title="AAI backend — database",
        base_url=BASE_URL,
        route_name=ROUTE_NAME,
        auth_provider=Auth0Login(settings),
        secret_key=settings.derived_key("csrf"),
    )
    for view in _views():
        admin.add_view(view)
    admin.mount_to(app)
    return sessions


def bind(sessions: async_sessionmaker[AsyncSession], engine: AsyncEngine) -> None:
    """Give the dashboard its sessions: READ ONLY transactions where the database has them."""
    if engine.dialect.name == "postgresql":
        engine = engine.execution_options(postgresql_readonly=True)
    sessions.configure(bind=engine)
