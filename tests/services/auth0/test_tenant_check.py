"""The tenant check against a strict emulator: the custom-domain mistake, a grant short of
scopes, and what the API does about them at start."""

import asyncio
import logging
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy.engine import URL

from scripts.auth0_emulator.server import EmulatorServer
from services.auth0 import Auth0Gateway
from services.auth0.scopes import REQUIRED_SCOPES
from services.auth0.tenant_check import check_tenant
from services.errors import UpstreamError
from services.settings import Settings
from tests.conftest import emulator_settings, make_settings
from tests.factories import auth0_users


def tenant_settings(pg_url: URL, emulator: EmulatorServer, **overrides: object) -> Settings:
    return make_settings(pg_url, **{**emulator_settings(emulator), **overrides})


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


async def run_check(settings: Settings, http: httpx.AsyncClient):
    gateway = Auth0Gateway.from_settings(settings, max_retries=0)
    try:
        return await check_tenant(gateway, http, settings, password_client=True)
    finally:
        await gateway.aclose()


async def test_a_well_set_up_tenant_passes(
    pg_url: URL, emulator: EmulatorServer, http: httpx.AsyncClient
):
    check = await run_check(tenant_settings(pg_url, emulator), http)
    assert check.ok, check.lines()
    assert check.scopes == sorted(REQUIRED_SCOPES)
    assert any(f"users log in at {emulator.custom_url}" in note for note in check.notes)


async def test_the_custom_domain_as_auth0_domain_is_named_as_the_fault(
    pg_url: URL, emulator: EmulatorServer, http: httpx.AsyncClient
):
    """The production mistake: AUTH0_DOMAIN set to the login domain. Every Management API
    call fails: the token is asked for `https://<custom>/api/v2/`."""
    settings = tenant_settings(pg_url, emulator, auth0_domain=emulator.custom_url)
    check = await run_check(settings, http)
    assert not check.ok
    [problem] = check.problems
    assert f"Service not enabled within domain: {emulator.custom_url}/api/v2/" in problem
    assert "AUTH0_DOMAIN: equals AUTH0_CUSTOM_DOMAIN" in problem  # the settings' own words

    (user_id,) = auth0_users(emulator, 1)
    gateway = Auth0Gateway.from_settings(settings, max_retries=0)
    try:
        with pytest.raises(UpstreamError, match="Service not enabled within domain"):
            await gateway.get_user(user_id)
    finally:
        await gateway.aclose()


async def test_a_grant_short_of_a_scope_is_named(
    pg_url: URL, emulator: EmulatorServer, http: httpx.AsyncClient
):
    emulator.tenant.granted_scopes = frozenset(REQUIRED_SCOPES) - {"delete:refresh_tokens"}
    settings = tenant_settings(pg_url, emulator)
    check = await run_check(settings, http)
    assert check.problems == [
        "the management client's grant lacks scopes this service uses: delete:refresh_tokens"
    ]
    # And the operation needing it is refused by Auth0 as a real tenant would.
    (user_id,) = auth0_users(emulator, 1)
    gateway = Auth0Gateway.from_settings(settings, max_retries=0)
    try:
        with pytest.raises(UpstreamError, match=r"Insufficient scope.*delete:refresh_tokens"):
            await gateway.revoke_refresh_tokens(user_id)
    finally:
        await gateway.aclose()


async def test_an_unreachable_tenant_proves_nothing_either_way(
    pg_url: URL, emulator: EmulatorServer, http: httpx.AsyncClient
):
    emulator.state.faults.down = True
    check = await run_check(tenant_settings(pg_url, emulator), http)
    assert check.problems == []
    assert check.unknown
    assert not check.ok


# What the start-up check logs when it has finished, one way or the other.
FINISHED = ("auth0 management token scopes", "auth0 tenant misconfigured")


class TestAtStart:
    async def ready_after_check(
        self,
        settings: Settings,
        app_factory: Callable[..., FastAPI],
        caplog: pytest.LogCaptureFixture,
    ) -> httpx.Response:
        """/health/ready once the start-up check (in the background) has logged."""
        app = app_factory(settings)
        with caplog.at_level(logging.INFO, logger="aai.auth0"):
            async with LifespanManager(app) as manager:
                for _ in range(500):
                    if any(r.getMessage().startswith(FINISHED) for r in caplog.records):
                        break
                    await asyncio.sleep(0.01)
                transport = httpx.ASGITransport(app=manager.app)
                async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                    return await client.get("/health/ready")

    async def test_a_misconfigured_tenant_keeps_the_api_from_being_ready(
        self,
        pg_url: URL,
        emulator: EmulatorServer,
        app_factory: Callable[..., FastAPI],
        caplog: pytest.LogCaptureFixture,
    ):
        settings = tenant_settings(
            pg_url, emulator, auth0_domain=emulator.custom_url, auth0_startup_check=True
        )
        response = await self.ready_after_check(settings, app_factory, caplog)
        assert response.status_code == 503
        body = response.json()
        assert body["status"] == "not_ready"
        assert "Service not enabled within domain" in body["checks"]["auth0"]["detail"]
        assert any(
            r.levelno == logging.ERROR and "auth0 tenant misconfigured" in r.getMessage()
            for r in caplog.records
        )

    async def test_a_good_tenant_logs_its_scopes_and_is_ready(
        self,
        pg_url: URL,
        emulator: EmulatorServer,
        app_factory: Callable[..., FastAPI],
        caplog: pytest.LogCaptureFixture,
    ):
        settings = tenant_settings(pg_url, emulator, auth0_startup_check=True)
        logins_before = len(emulator.tenant.login_addresses)
        response = await self.ready_after_check(settings, app_factory, caplog)
        assert response.status_code == 200, response.text
        # No probe of the password client at start: failed logins from the server's
        # address would count against it in Auth0's suspicious-IP throttling.
        assert len(emulator.tenant.login_addresses) == logins_before
        assert "auth0" not in response.json()["checks"]
        assert any(
            r.getMessage() == f"auth0 management token scopes: {' '.join(REQUIRED_SCOPES)}"
            for r in caplog.records
        )


async def test_a_password_client_without_the_grant_is_named(
    pg_url: URL, emulator: EmulatorServer, http: httpx.AsyncClient
):
    settings = tenant_settings(
        pg_url,
        emulator,
        auth0_password_client_id=emulator.tenant.management_client_id,
        auth0_password_client_secret=emulator.tenant.management_client_secret,
    )
    check = await run_check(settings, http)
    [problem] = check.problems
    assert "unauthorized_client" in problem
    assert "Password grant" in problem
