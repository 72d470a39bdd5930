"""The `--lenient` switch is what the strict tests guard against: against a lenient tenant
each behaviour they pin is gone (so a backend that passed only thanks to it would fail
them). One emulator, strict=False, asked the same questions."""

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from scripts.auth0_emulator.server import EmulatorServer
from scripts.auth0_emulator.tenant import DEFAULT_CONNECTION
from tests.factories import auth0_users


@pytest.fixture(scope="module")
def lenient() -> Iterator[EmulatorServer]:
    with EmulatorServer(
        audience="https://api.test", custom_domain=True, strict=False, granted_scopes=frozenset()
    ) as server:
        yield server


@pytest.fixture
async def http(lenient: EmulatorServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=lenient.base_url) as client:
        yield client


async def test_what_the_strict_tenant_refuses_the_lenient_one_lets_through(
    http: httpx.AsyncClient, lenient: EmulatorServer
):
    tenant = lenient.tenant
    credentials = {
        "grant_type": "client_credentials",
        "client_id": tenant.management_client_id,
        "client_secret": tenant.management_client_secret,
    }
    # The custom domain's /api/v2/ as audience (strict: 403 "Service not enabled").
    wrong = await http.post(
        "/oauth/token", data={**credentials, "audience": f"{lenient.custom_url}/api/v2/"}
    )
    assert wrong.status_code == 200
    headers = {"Authorization": f"Bearer {wrong.json()['access_token']}"}
    # A token without scopes reads anyway (strict: 403 insufficient_scope).
    assert (await http.get("/api/v2/roles", headers=headers)).status_code == 200
    # A duplicate email on PATCH is a 409 (strict: Auth0's 400).
    first, second = auth0_users(lenient, 2)
    taken = tenant.get_user(second)["email"]
    duplicate = await http.patch(f"/api/v2/users/{first}", json={"email": taken}, headers=headers)
    assert duplicate.status_code == 409
    # A 16-character username is taken (strict: refused by the connection's rule).
    created = await http.post(
        "/api/v2/users",
        json={
            "connection": DEFAULT_CONNECTION,
            "email": "long.name@example.org",
            "username": "a" * 16,
            "password": "long-enough-1",
        },
        headers=headers,
    )
    assert created.status_code == 201
    # The password grant works for the management client (strict: unauthorized_client).
    password = await http.post(
        "/oauth/token",
        data={
            **credentials,
            "grant_type": "http://auth0.com/oauth/grant-type/password-realm",
            "username": "long.name@example.org",
            "password": "long-enough-1",
            "realm": DEFAULT_CONNECTION,
        },
    )
    assert password.status_code == 200
    # A search's total is the true count (strict: at most 1000).
    auth0_users(lenient, 1001, prefix="many")
    page = await http.get(
        "/api/v2/users", params={"include_totals": "true", "per_page": 1}, headers=headers
    )
    assert page.json()["total"] > 1000
