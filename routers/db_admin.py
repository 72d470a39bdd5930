"""/db-admin: a read-only Starlette Admin dashboard for ops, behind Auth0 login.

Login is the OIDC authorization-code flow (authlib) with ADMIN_CLIENT_ID/SECRET (the
management client when unset), on the custom domain. The callback URL is the old
backend's (`/db-admin/auth/auth0`, already registered in the tenants), sent without a
query string, so the one URL registered in Auth0 always matches; it forwards to the
dashboard's own callback. Where to go afterwards is kept in the session. Only holders of an ADMIN_ROLES role get in; anyone else gets a refusal page.
The session cookie (signed, not encrypted) holds only who the user is and until when.

Read-only three times over: every view refuses create/edit/delete/import/export and has
no actions, the dashboard's database sessions are READ ONLY transactions on Postgres,
and a test posts to every write route.
"""

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette_admin.contrib.sqla import Admin

from services.dashboard.login import (
    BASE_URL,
    CALLBACK_PATH,
    CALLBACK_ROUTE,
    ROUTE_NAME,
    Auth0Login,
)
from services.dashboard.views import views
from services.settings import Settings


def mount(app: FastAPI, settings: Settings) -> async_sessionmaker[AsyncSession]:
    """Mount the dashboard; returns its session factory, bound to the engine at start-up."""
    sessions: async_sessionmaker[AsyncSession] = async_sessionmaker(
        class_=AsyncSession, expire_on_commit=False
    )
    admin = Admin(
        sessions,  # type: ignore[arg-type]  # SQLModel's AsyncSession is SQLAlchemy's; the parameter is invariant
        title="AAI backend — database",
        base_url=BASE_URL,
        route_name=ROUTE_NAME,
        auth_provider=Auth0Login(settings),
        secret_key=settings.derived_key("csrf"),
    )
    for view in views():
        admin.add_view(view)

    # Before the mount, so it is matched first.
    @app.get(BASE_URL + CALLBACK_PATH, name=CALLBACK_ROUTE, include_in_schema=False)
    async def auth0_callback(request: Request) -> RedirectResponse:
        target = str(request.url_for(f"{ROUTE_NAME}:oauth_callback"))
        query = request.url.query
        return RedirectResponse(f"{target}?{query}" if query else target, status_code=307)

    admin.mount_to(app)
    return sessions


def bind(sessions: async_sessionmaker[AsyncSession], engine: AsyncEngine) -> None:
    """Give the dashboard its sessions: READ ONLY transactions where the database has them."""
    if engine.dialect.name == "postgresql":
        engine = engine.execution_options(postgresql_readonly=True)
    sessions.configure(bind=engine)
