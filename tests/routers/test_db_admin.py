"""/db-admin over HTTP: Auth0 login through the emulator, who gets in, what every view
shows, and that nothing can be written."""

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import sqlalchemy as sa
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy.engine import URL

from db.engine import create_engine
from db.models import (
    EmailChangeOtp,
    EmailNotification,
    User,
)
from main import create_app
from scripts.auth0_emulator.server import EmulatorServer, free_port
from services.dashboard.views import views as _views
from tests.routers.db_admin_world import (
    CODE_IN_BODY,
    OTP_HASH,
    as_user,
    dashboard_settings,
    person,
)

VIEW_KEYS = [view.key for view in _views()]


@pytest.fixture
async def dashboard(dashboard_db: URL, emulator: EmulatorServer) -> AsyncIterator[FastAPI]:
    app = create_app(dashboard_settings(dashboard_db, emulator))
    async with LifespanManager(app) as manager:
        yield manager.app  # type: ignore[misc]  # asgi-lifespan types its app as a bare ASGI callable


@pytest.fixture
async def browser(dashboard: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A cookie-keeping client that does not follow redirects (each hop is checked)."""
    transport = httpx.ASGITransport(app=dashboard)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


async def log_in(client: httpx.AsyncClient, email: str) -> httpx.Response:
    """Login page → Auth0 (the emulator, as that user) → our callback; returns the
    callback's response."""
    to_auth0 = await client.get("/db-admin/login")
    assert to_auth0.status_code == 302, to_auth0.text
    async with httpx.AsyncClient() as auth0:
        consent = await auth0.get(as_user(to_auth0.headers["location"], email))
    assert consent.status_code == 302, consent.text
    back = urlsplit(consent.headers["location"])
    assert back.path == "/db-admin/auth/auth0"  # the old backend's, registered in Auth0
    forwarded = await client.get(f"{back.path}?{back.query}")
    assert forwarded.status_code == 307  # on to the dashboard's own callback, query intact
    return await client.get(forwarded.headers["location"])


class TestLogin:
    async def test_logged_out_is_sent_to_auth0_with_a_bare_callback(
        self, browser: httpx.AsyncClient, emulator: EmulatorServer
    ):
        first = await browser.get("/db-admin/users/list")
        assert first.status_code == 303
        assert first.headers["location"].startswith("http://testserver/db-admin/login?next=")
        login = await browser.get(first.headers["location"])
        assert login.status_code == 302
        target = urlsplit(login.headers["location"])
        # Ops log in where users do: the custom domain, not the Management API's.
        assert f"{target.scheme}://{target.netloc}" == emulator.custom_url
        assert target.path == "/authorize"
        query = parse_qs(target.query)
        # Registered in Auth0 as is: no query string to match.
        # The old backend's callback, registered in the tenants: no change needed there.
        assert query["redirect_uri"] == ["http://testserver/db-admin/auth/auth0"]
        assert query["client_id"] == [emulator.tenant.management_client_id]
        assert query["audience"] == [emulator.tenant.audience]
        assert "openid" in query["scope"][0]

    async def test_a_general_admin_gets_in_and_lands_where_they_were_going(
        self, browser: httpx.AsyncClient, emulator: EmulatorServer
    ):
        email = person(emulator, "Admin")
        to_auth0 = await browser.get(
            "/db-admin/login", params={"next": "http://testserver/db-admin/scheduler-runs/list"}
        )
        async with httpx.AsyncClient() as auth0:
            consent = await auth0.get(as_user(to_auth0.headers["location"], email))
        back = urlsplit(consent.headers["location"])
        forwarded = await browser.get(f"{back.path}?{back.query}")
        callback = await browser.get(forwarded.headers["location"])
        assert callback.status_code == 303, callback.text
        assert callback.headers["location"] == "http://testserver/db-admin/scheduler-runs/list"
        page = await browser.get("/db-admin/scheduler-runs/list")
        assert page.status_code == 200
        assert "sync.users.full" in page.text

    async def test_someone_without_an_admin_role_is_refused_clearly(
        self, browser: httpx.AsyncClient, emulator: EmulatorServer
    ):
        email = person(emulator, "biocommons/role/galaxy/admin")  # a platform admin is not enough
        callback = await log_in(browser, email)
        assert callback.status_code == 403
        assert "Access refused" in callback.text
        assert email in callback.text
        assert "/v2/logout" in callback.text  # a way to switch accounts
        again = await browser.get("/db-admin/users/list")
        assert again.status_code == 303  # still not logged in

    async def test_a_forged_callback_is_refused(self, browser: httpx.AsyncClient):
        response = await browser.get("/db-admin/oauth/callback?code=made-up&state=made-up")
        assert response.status_code == 403
        assert "could not be completed" in response.text

    async def test_behind_a_tls_proxy_the_callback_is_https(
        self, dashboard: FastAPI, emulator: EmulatorServer
    ):
        # As deployed: the load balancer (FORWARDED_ALLOW_IPS, 127.0.0.1 here) says https.
        transport = httpx.ASGITransport(app=dashboard, client=("127.0.0.1", 40000))
        async with httpx.AsyncClient(
            transport=transport, base_url="http://portal.example"
        ) as client:
            login = await client.get(
                "/db-admin/login",
                headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "10.0.0.1"},
            )
        query = parse_qs(urlsplit(login.headers["location"]).query)
        assert query["redirect_uri"] == ["https://portal.example/db-admin/auth/auth0"]

    async def test_auth0_unreachable_gives_a_503_page(self, dashboard_db: URL, emulator):
        nowhere = f"http://127.0.0.1:{free_port()}"
        app = create_app(
            dashboard_settings(
                dashboard_db, emulator, auth0_domain=nowhere, auth0_custom_domain=nowhere
            )
        )
        async with LifespanManager(app) as manager:
            transport = httpx.ASGITransport(app=manager.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                response = await client.get("/db-admin/login")
        assert response.status_code == 503
        assert "Auth0" in response.text

    async def test_not_mounted_unless_enabled(self, dashboard_db: URL, emulator):
        app = create_app(dashboard_settings(dashboard_db, emulator, enable_admin_dashboard=False))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            assert (await client.get("/db-admin/")).status_code == 404


@pytest.fixture
async def ops(browser: httpx.AsyncClient, emulator: EmulatorServer) -> httpx.AsyncClient:
    callback = await log_in(browser, person(emulator, "Admin"))
    assert callback.status_code == 303, callback.text
    return browser


class TestViews:
    @pytest.mark.parametrize("key", VIEW_KEYS)
    async def test_every_view_lists(self, ops: httpx.AsyncClient, key: str):
        response = await ops.get(f"/db-admin/{key}/list")
        assert response.status_code == 200, response.text[:500]

    async def test_users_and_deleted_users_are_apart_newest_first(self, ops: httpx.AsyncClient):
        users = (await ops.get("/db-admin/users/list")).text
        deleted = (await ops.get("/db-admin/deleted-users/list")).text
        assert "dash000@example.org" in users
        assert "dash038@example.org" not in users
        assert "dash038@example.org" in deleted
        assert "dash000@example.org" not in deleted
        assert users.index("dash000@example.org") < users.index("dash005@example.org")

    async def test_search_finds_part_of_an_email_or_username(self, ops: httpx.AsyncClient):
        page = (await ops.get("/db-admin/users/list", params={"q": "USER_012"})).text
        assert "dash012@example.org" in page
        assert "dash013@example.org" not in page

    async def test_a_user_detail_page(self, ops: httpx.AsyncClient):
        page = await ops.get("/db-admin/users/detail", params={"pk": "auth0|dash007"})
        assert page.status_code == 200
        assert "dash_user_007" in page.text

    async def test_message_bodies_only_on_the_detail_page_and_never_a_code_hash(
        self, ops: httpx.AsyncClient, dashboard_db: URL
    ):
        listing = (await ops.get("/db-admin/email-queue/list")).text
        assert "attempt 8: SMTP 451 try later" in listing  # why it failed is visible
        assert CODE_IN_BODY not in listing
        engine = create_engine(dashboard_db, process="tests")
        async with engine.connect() as conn:
            email_id = (
                await conn.execute(sa.select(EmailNotification.__table__.c.id))
            ).scalar_one()
            otp_id = (await conn.execute(sa.select(EmailChangeOtp.__table__.c.id))).scalar_one()
        await engine.dispose()
        detail = (await ops.get("/db-admin/email-queue/detail", params={"pk": str(email_id)})).text
        assert CODE_IN_BODY in detail
        for page in (
            (await ops.get("/db-admin/email-change-codes/list")).text,
            (await ops.get("/db-admin/email-change-codes/detail", params={"pk": str(otp_id)})).text,
        ):
            assert "new@example.org" in page
            assert OTP_HASH not in page


class TestReadOnly:
    async def test_every_write_route_answers_403_and_changes_nothing(
        self, ops: httpx.AsyncClient, dashboard_db: URL
    ):
        attempts: list[tuple[str, str, dict[str, Any]]] = []
        for key in VIEW_KEYS:
            attempts += [
                ("GET", f"/db-admin/{key}/create", {}),
                ("POST", f"/db-admin/{key}/create", {"data": {"id": "x"}}),
                ("GET", f"/db-admin/{key}/edit", {"params": {"pk": "1"}}),
                ("POST", f"/db-admin/{key}/edit", {"params": {"pk": "1"}, "data": {"id": "x"}}),
                (
                    "POST",
                    f"/db-admin/_api/{key}/action",
                    {"params": {"name": "delete", "pks": "1"}},
                ),
                (
                    "POST",
                    f"/db-admin/_api/{key}/row-action",
                    {"params": {"name": "delete", "pk": "1"}},
                ),
                (
                    "POST",
                    f"/db-admin/_api/{key}/import",
                    {"files": {"file": ("x.csv", b"id\n1\n")}},
                ),
                (
                    "GET",
                    f"/db-admin/_api/{key}/inline-edit",
                    {"params": {"pk": "1", "field": "id"}},
                ),
                (
                    "POST",
                    f"/db-admin/_api/{key}/inline-edit",
                    {"params": {"pk": "1", "field": "id"}},
                ),
            ]
        statuses = {}
        for method, path, options in attempts:
            response = await ops.request(method, path, **options)
            statuses[(method, path)] = response.status_code
        assert {k: v for k, v in statuses.items() if v != 403} == {}
        engine = create_engine(dashboard_db, process="tests")
        async with engine.connect() as conn:
            assert (await conn.execute(sa.select(sa.func.count()).select_from(User))).scalar() == 40
        await engine.dispose()

    async def test_the_dashboard_database_sessions_refuse_writes(self, dashboard_db: URL, emulator):
        app = create_app(dashboard_settings(dashboard_db, emulator))
        async with LifespanManager(app), app.state.db_admin_sessions() as session:
            with pytest.raises(sa.exc.DBAPIError, match="read-only transaction"):
                await session.execute(
                    sa.update(User.__table__)
                    .values(username="changed")
                    .where(User.__table__.c.id == "auth0|dash000")
                )
