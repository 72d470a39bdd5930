"""What an outsider must not reach or read: metrics through the load balancer, the API's
own documentation in production."""

import csv
import io
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from db.engine import create_engine
from db.models import PlatformMembership, User
from db.types import ApprovalStatus
from main import create_app
from scripts.auth0_emulator.server import EmulatorServer
from services.settings import Settings
from tests.conftest import emulator_settings, make_settings
from tests.routers.admin_world import admin
from tests.routers.db_admin_world import dashboard_settings, person
from tests.routers.test_db_admin import log_in
from tests.routers.test_registration import GOOD


@pytest.fixture
async def public(
    app_factory: Callable[[Settings], FastAPI], pg_url, emulator
) -> AsyncIterator[httpx.AsyncClient]:
    """The API with metrics on and docs at their production default, reached the way the
    load balancer reaches it."""
    settings = make_settings(
        pg_url,
        **emulator_settings(emulator),
        enable_prometheus_metrics=True,
        enable_api_docs=False,
        forwarded_allow_ips="127.0.0.1",
    )
    async with LifespanManager(app_factory(settings)) as manager:
        transport = httpx.ASGITransport(app=manager.app, client=("127.0.0.1", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            yield client


@pytest.mark.parametrize("path", ["/metrics", "/%6detrics", "/%6D%65trics"])
async def test_metrics_are_not_served_through_the_load_balancer(public, path):
    response = await public.get(path, headers={"X-Forwarded-For": "203.0.113.9"})
    assert response.status_code == 404, response.text
    assert "aai_http" not in response.text


async def test_the_scraper_inside_the_network_still_gets_metrics(public):
    response = await public.get("/metrics")
    assert response.status_code == 200
    assert "aai_http_request_duration_seconds" in response.text


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/openapi.json"])
async def test_api_docs_are_off_unless_enabled(public, path):
    assert (await public.get(path)).status_code == 404


async def test_api_docs_are_on_in_dev(client):
    assert (await client.get("/openapi.json")).status_code == 200


# ---- what an admin reads ---------------------------------------------------------------


@pytest.fixture
async def social_member(session, emulator, world):
    """A Galaxy member who signed in with a social identity: Auth0 keeps the provider's
    tokens on the identity, their last IP, and what other apps stored in app_metadata."""

    created = emulator.tenant.create_user(
        {
            "connection": "Username-Password-Authentication",
            "email": "social.member@example.org",
            "password": "long-enough-1",
            "app_metadata": {"registration_from": "galaxy", "internal_note": "vip"},
        }
    )
    stored = emulator.tenant.users[created["user_id"]]
    stored["identities"][0].update(
        {"access_token": "idp-access-token", "refresh_token": "idp-refresh-token"}
    )
    stored["last_ip"] = "198.51.100.23"
    session.add(User(id=created["user_id"], email=created["email"]))
    await session.flush()
    session.add(
        PlatformMembership(
            platform_id="galaxy",
            user_id=created["user_id"],
            approval_status=ApprovalStatus.APPROVED,
        )
    )
    await session.flush()
    return created["user_id"]


async def test_details_never_show_identity_provider_tokens(client, emulator, social_member):

    for roles in (["biocommons/role/galaxy/admin"], ["Admin"]):
        response = await client.get(
            f"/admin/users/{social_member}/details", headers=admin(emulator, *roles)
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert "idp-access-token" not in response.text
        assert "idp-refresh-token" not in response.text
        (identity,) = body["identities"]
        assert set(identity) <= {"provider", "connection", "user_id", "isSocial"}
        assert identity["connection"] == "Username-Password-Authentication"


async def test_app_metadata_and_last_ip_go_to_general_admins_only(client, emulator, social_member):

    platform = (
        await client.get(
            f"/admin/users/{social_member}/details",
            headers=admin(emulator, "biocommons/role/galaxy/admin"),
        )
    ).json()
    general = (
        await client.get(f"/admin/users/{social_member}/details", headers=admin(emulator, "Admin"))
    ).json()
    assert (platform["app_metadata"], platform["last_ip"]) == ({}, None)
    assert general["app_metadata"]["internal_note"] == "vip"
    assert general["last_ip"] == "198.51.100.23"


async def test_csv_export_cells_cannot_be_formulas(client, session, emulator, world):

    # Written by the sync from Auth0 (where the old pattern let it through registration).
    session.add(
        User(id="auth0|formula", email='=HYPERLINK("https://evil.example")@x.org', username="-2+3")
    )
    await session.flush()
    session.add(
        PlatformMembership(
            platform_id="galaxy", user_id="auth0|formula", approval_status=ApprovalStatus.APPROVED
        )
    )
    await session.flush()
    response = await client.get(
        "/admin/users/export.csv", params={"search": "hyperlink"}, headers=admin(emulator, "Admin")
    )
    assert response.status_code == 200

    (row,) = list(csv.DictReader(io.StringIO(response.text)))
    assert row["email"] == '\'=HYPERLINK("https://evil.example")@x.org'
    assert row["username"] == "'-2+3"


@pytest.mark.parametrize(
    "email",
    ['=HYPERLINK("https://evil.example")@x.org', "a b@example.org", "x@localhost", "@example.org"],
)
async def test_registration_refuses_addresses_a_real_validator_refuses(client, email):

    response = await client.post("/biocommons/register", json={**GOOD, "email": email})
    assert response.status_code == 400, response.text
    fields = {e["field"] for e in response.json()["field_errors"]}
    assert "email" in fields


async def test_filter_by_wildcards_reveal_no_group_ids(client, emulator, world):

    headers = admin(emulator, "biocommons/role/galaxy/admin")
    for value in ("coh%", "c_hort", "%"):
        response = await client.get("/admin/users", params={"filter_by": value}, headers=headers)
        assert response.status_code == 404, response.text
        assert "cohort" not in response.text


# ---- /db-admin sessions ----------------------------------------------------------------


async def test_a_dashboard_session_ends_when_its_role_or_account_goes(
    dashboard_db, emulator: EmulatorServer
):

    settings = dashboard_settings(
        dashboard_db, emulator, db_admin_recheck_s=0, live_roles_cache_s=0
    )
    async with LifespanManager(create_app(settings)) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        for take_away in ("role", "account"):
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as b:
                email = person(emulator, "Admin")
                callback = await log_in(b, email)
                assert callback.status_code == 303, callback.text
                cookie = callback.headers["set-cookie"]
                assert "Max-Age=28800" in cookie  # the cookie lives as long as the session
                assert (await b.get("/db-admin/users/list")).status_code == 200
                user = emulator.tenant.find_user(email)
                if take_away == "role":
                    admin_role = emulator.tenant.role_by_name("Admin")
                    assert user is not None
                    assert admin_role is not None
                    emulator.tenant.remove_roles(user["user_id"], [admin_role["id"]])
                else:
                    assert user is not None
                    await _deactivate(dashboard_db, user["user_id"], user["email"])
                after = await b.get("/db-admin/users/list")
                assert after.status_code == 303, (take_away, after.text)
                assert "/db-admin/login" in after.headers["location"]


async def _deactivate(url, user_id: str, email: str) -> None:
    engine = create_engine(url, process="tests")
    try:
        async with engine.begin() as connection:
            await connection.execute(
                User.__table__.insert().values(
                    id=user_id, email=email, blocked=True, is_deleted=True
                )
            )
    finally:
        await engine.dispose()
