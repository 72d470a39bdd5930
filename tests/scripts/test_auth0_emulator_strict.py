"""The emulator is as strict as a real tenant: its two domains and the management grant's
scopes. Each test here fails against the lenient emulator (`--lenient`, `strict=False`)."""

from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlparse

import httpx
import jwt
import pytest
from fastapi.routing import APIRoute

from scripts.auth0_emulator.management import management_routes
from scripts.auth0_emulator.scopes import ALL_SCOPES, ENDPOINT_SCOPES
from scripts.auth0_emulator.server import EmulatorServer
from scripts.auth0_emulator.tenant import DEFAULT_CONNECTION
from services.auth0.scopes import REQUIRED_SCOPES
from tests.clock import FakeClock
from tests.factories import auth0_users
from tests.scripts.test_auth0_emulator import management_token


@pytest.fixture
async def canonical(emulator: EmulatorServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=emulator.base_url) as client:
        yield client


@pytest.fixture
async def custom(emulator: EmulatorServer) -> AsyncIterator[httpx.AsyncClient]:
    assert emulator.custom_url is not None
    async with httpx.AsyncClient(base_url=emulator.custom_url) as client:
        yield client


def credentials(emulator: EmulatorServer, audience: str, **extra: str) -> dict[str, str]:
    return {
        "grant_type": "client_credentials",
        "client_id": emulator.tenant.management_client_id,
        "client_secret": emulator.tenant.management_client_secret,
        "audience": audience,
        **extra,
    }


class TestDomains:
    async def test_the_management_api_is_only_the_canonical_domains(
        self, custom: httpx.AsyncClient, emulator: EmulatorServer
    ):
        wrong = f"{emulator.custom_url}/api/v2/"
        response = await custom.post("/oauth/token", data=credentials(emulator, wrong))
        assert response.status_code == 403
        assert response.json() == {
            "error": "access_denied",
            "error_description": f"Service not enabled within domain: {wrong}",
        }

    async def test_a_token_carries_the_domain_it_was_asked_on_and_works_only_there(
        self,
        canonical: httpx.AsyncClient,
        custom: httpx.AsyncClient,
        emulator: EmulatorServer,
    ):
        from_custom = await management_token(custom, emulator)
        from_canonical = await management_token(canonical, emulator)
        assert jwt.decode(from_custom, options={"verify_signature": False})["iss"] == (
            f"{emulator.custom_url}/"
        )
        assert jwt.decode(from_canonical, options={"verify_signature": False})["iss"] == (
            f"{emulator.base_url}/"
        )
        for client, token, status in (
            (canonical, from_canonical, 200),
            (custom, from_custom, 200),
            (canonical, from_custom, 401),
            (custom, from_canonical, 401),
        ):
            response = await client.get(
                "/api/v2/roles", headers={"Authorization": f"Bearer {token}"}
            )
            assert response.status_code == status, (client.base_url, response.text)

    async def test_discovery_and_user_logins_name_the_domain_used(
        self, custom: httpx.AsyncClient, canonical: httpx.AsyncClient, emulator: EmulatorServer
    ):
        for client, base in ((custom, emulator.custom_url), (canonical, emulator.base_url)):
            discovery = (await client.get("/.well-known/openid-configuration")).json()
            assert discovery["issuer"] == f"{base}/"
            assert discovery["authorization_endpoint"] == f"{base}/authorize"
            keys = (await client.get("/.well-known/jwks.json")).json()["keys"]
            assert emulator.tenant.signing_key.kid in {key["kid"] for key in keys}
        (user_id,) = auth0_users(emulator, 1)
        redirect = await custom.get(
            "/authorize",
            params={
                "client_id": emulator.tenant.management_client_id,
                "redirect_uri": "http://portal.test/",
                "login_hint": user_id,
            },
        )
        code = parse_qs(urlparse(redirect.headers["location"]).query)["code"][0]
        tokens = (
            await custom.post(
                "/oauth/token",
                data={
                    "grant_type": "authorization_code",
                    "code": code,
                    "client_id": emulator.tenant.management_client_id,
                    "client_secret": emulator.tenant.management_client_secret,
                },
            )
        ).json()
        for name in ("access_token", "id_token"):
            claims = jwt.decode(tokens[name], options={"verify_signature": False})
            assert claims["iss"] == f"{emulator.custom_url}/"
        # The user tokens tests mint are the portal's: from the custom domain.
        minted = emulator.tenant.mint_access_token(user_id)
        assert jwt.decode(minted, options={"verify_signature": False})["iss"] == (
            f"{emulator.custom_url}/"
        )


class TestScopes:
    async def test_a_token_holds_the_grant_and_an_endpoint_needs_one_of_its_scopes(
        self, canonical: httpx.AsyncClient, emulator: EmulatorServer
    ):
        emulator.tenant.granted_scopes = frozenset({"read:users"})
        token = await management_token(canonical, emulator)
        assert jwt.decode(token, options={"verify_signature": False})["scope"] == "read:users"
        headers = {"Authorization": f"Bearer {token}"}
        assert (await canonical.get("/api/v2/users", headers=headers)).status_code == 200
        refused = await canonical.get("/api/v2/roles", headers=headers)
        assert refused.status_code == 403
        assert refused.json() == {
            "statusCode": 403,
            "error": "Forbidden",
            "message": "Insufficient scope, expected any of: read:roles",
            "errorCode": "insufficient_scope",
        }

    async def test_asking_beyond_the_grant_or_without_one_is_refused(
        self, canonical: httpx.AsyncClient, emulator: EmulatorServer
    ):
        audience = emulator.tenant.management_audience
        emulator.tenant.granted_scopes = frozenset({"read:users"})
        beyond = await canonical.post(
            "/oauth/token", data=credentials(emulator, audience, scope="read:users delete:users")
        )
        assert beyond.status_code == 403
        assert beyond.json()["error_description"] == (
            "Client has not been granted scopes: delete:users"
        )
        emulator.tenant.granted_scopes = frozenset()
        none = await canonical.post("/oauth/token", data=credentials(emulator, audience))
        assert none.status_code == 403
        assert "is not authorized to access resource server" in none.json()["error_description"]

    def test_every_management_route_names_its_scopes(self, emulator: EmulatorServer):
        routes = {
            (method, route.path)
            for route in management_routes(emulator.state).routes
            if isinstance(route, APIRoute)
            for method in route.methods or ()
        }
        assert routes == set(ENDPOINT_SCOPES)

    def test_the_scopes_the_service_needs_are_real_ones(self):
        assert set(REQUIRED_SCOPES) <= ALL_SCOPES


class TestErrors:
    async def test_a_taken_email_or_username_is_400_on_update_and_409_on_create(
        self, canonical: httpx.AsyncClient, emulator: EmulatorServer
    ):
        first, second = auth0_users(emulator, 2)
        taken = emulator.tenant.get_user(second)
        headers = {"Authorization": f"Bearer {await management_token(canonical, emulator)}"}
        for field, message in (
            ("email", "The specified new email already exists"),
            ("username", "The specified new username already exists"),
        ):
            response = await canonical.patch(
                f"/api/v2/users/{first}", json={field: taken[field]}, headers=headers
            )
            assert response.status_code == 400
            assert response.json()["message"] == message
            assert response.json()["errorCode"] == "auth0_idp_error"
        create = await canonical.post(
            "/api/v2/users",
            json={
                "connection": DEFAULT_CONNECTION,
                "email": taken["email"],
                "password": "long-enough-1",
            },
            headers=headers,
        )
        assert create.status_code == 409


class TestPasswordGrant:
    async def test_only_a_client_with_the_password_grant_may_use_it(
        self, canonical: httpx.AsyncClient, emulator: EmulatorServer
    ):
        form = {
            "grant_type": "http://auth0.com/oauth/grant-type/password-realm",
            "username": "nobody@example.org",
            "password": "wrong",
            "realm": DEFAULT_CONNECTION,
        }
        tenant = emulator.tenant
        management = await canonical.post(
            "/oauth/token",
            data={
                **form,
                "client_id": tenant.management_client_id,
                "client_secret": tenant.management_client_secret,
            },
        )
        assert management.status_code == 403
        assert management.json() == {
            "error": "unauthorized_client",
            "error_description": "Grant type 'http://auth0.com/oauth/grant-type/password-realm'"
            " not allowed for the client.",
        }
        password_client = await canonical.post(
            "/oauth/token",
            data={
                **form,
                "client_id": tenant.password_client_id,
                "client_secret": tenant.password_client_secret,
            },
        )
        assert password_client.status_code == 403
        assert password_client.json()["error"] == "invalid_grant"


class TestLimits:
    async def test_self_service_buckets_are_per_endpoint_group(
        self, canonical: httpx.AsyncClient, emulator: EmulatorServer
    ):
        """Spending "all other endpoints" (10 burst) leaves "read users" (40) untouched."""
        headers = {"Authorization": f"Bearer {await management_token(canonical, emulator)}"}
        emulator.state.set_rate_limit("self-service")
        roles = [await canonical.get("/api/v2/roles", headers=headers) for _ in range(11)]
        assert [r.status_code for r in roles].count(429) >= 1
        refused = next(r for r in roles if r.status_code == 429)
        assert refused.headers["x-emulator-bucket"] == "all other endpoints"
        assert refused.headers["x-ratelimit-limit"] == "10"
        users = await canonical.get("/api/v2/users", headers=headers)
        assert users.status_code == 200
        assert users.headers["x-emulator-bucket"] == "read users"
        assert users.headers["x-ratelimit-limit"] == "40"


class TestFieldRules:
    @pytest.mark.parametrize(
        ("fields", "message"),
        [
            ({"username": "a" * 16}, "maximum 15' on property username"),
            ({"given_name": "g" * 151}, "maximum 150' on property given_name"),
            ({"family_name": "f" * 151}, "maximum 150' on property family_name"),
            ({"name": "n" * 301}, "maximum 300' on property name"),
        ],
    )
    async def test_the_database_connection_refuses_what_auth0_refuses(
        self,
        canonical: httpx.AsyncClient,
        emulator: EmulatorServer,
        fields: dict[str, str],
        message: str,
    ):
        headers = {"Authorization": f"Bearer {await management_token(canonical, emulator)}"}
        body = {
            "connection": DEFAULT_CONNECTION,
            "email": "rules@example.org",
            "password": "long-enough-1",
            **fields,
        }
        created = await canonical.post("/api/v2/users", json=body, headers=headers)
        assert created.status_code == 400
        assert message in created.json()["message"]
        (user_id,) = auth0_users(emulator, 1)
        patched = await canonical.patch(f"/api/v2/users/{user_id}", json=fields, headers=headers)
        assert patched.status_code == 400

    async def test_a_username_on_a_connection_without_usernames_is_refused(
        self, canonical: httpx.AsyncClient, emulator: EmulatorServer
    ):
        emulator.tenant.requires_username = False
        headers = {"Authorization": f"Bearer {await management_token(canonical, emulator)}"}
        response = await canonical.post(
            "/api/v2/users",
            json={
                "connection": DEFAULT_CONNECTION,
                "email": "nouser@example.org",
                "password": "long-enough-1",
                "username": "someone",
            },
            headers=headers,
        )
        assert response.status_code == 400
        assert "requires_username" in response.json()["message"]


class TestSearchLag:
    def test_a_user_changed_often_within_the_lag_is_still_found_as_before(
        self, emulator: EmulatorServer
    ):
        clock = FakeClock()
        tenant = emulator.tenant
        tenant.search_clock, tenant.search_lag_s = clock, 30.0
        (user_id,) = auth0_users(emulator, 1)
        clock.advance(31)
        for index in range(10):
            tenant.update_user(user_id, {"given_name": f"G{index}"})
        shown = tenant.searchable(tenant.get_user(user_id))
        assert shown is not None
        assert shown.get("given_name") is None  # the version from before the changes
        clock.advance(31)
        later = tenant.searchable(tenant.get_user(user_id))
        assert later is not None
        assert later["given_name"] == "G9"
