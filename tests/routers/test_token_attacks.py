"""Hostile and broken access tokens against a protected route: always 401, never 500."""

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable

import httpx
import jwt
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlmodel.ext.asyncio.session import AsyncSession

from db.models import Platform, User
from scripts.auth0_emulator.server import EmulatorServer
from scripts.auth0_emulator.tenant import SigningKey
from services.settings import Settings
from tests.clock import FakeClock
from tests.conftest import TEST_AUDIENCE

PROTECTED = "/me/is-general-admin"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims_for(
    emulator: EmulatorServer, sub: str = "auth0|attacker", **extra: object
) -> dict[str, object]:
    now = int(time.time())
    return {
        "iss": emulator.tenant.issuer,
        "sub": sub,
        "aud": [TEST_AUDIENCE, f"{emulator.tenant.issuer}userinfo"],
        "iat": now,
        "exp": now + 600,
        emulator.tenant.roles_claim: ["Admin"],
        **extra,
    }


async def call(
    client: httpx.AsyncClient, token: str | None, scheme: str = "Bearer"
) -> httpx.Response:
    headers = {"Authorization": f"{scheme} {token}"} if token is not None else {}
    return await client.get(PROTECTED, headers=headers)


def assert_refused(response: httpx.Response, reason: str) -> None:
    assert response.status_code == 401, response.text
    body = response.json()
    assert body["error"] == "unauthorized"
    assert reason in body["detail"]


class TestValidTokens:
    async def test_general_admin(self, client: httpx.AsyncClient, emulator: EmulatorServer):
        response = await call(
            client, emulator.tenant.mint_access_token("auth0|admin", roles=["Admin"])
        )
        assert response.status_code == 200
        assert response.json() is True

    async def test_platform_admin_counts_as_admin(
        self, client: httpx.AsyncClient, emulator: EmulatorServer, session: AsyncSession
    ):
        session.add(Platform(id="galaxy", name="Galaxy Australia"))
        await session.flush()
        token = emulator.tenant.mint_access_token(
            "auth0|padmin", roles=["biocommons/role/galaxy/admin"]
        )
        assert (await call(client, token)).json() is True
        # An admin role administers only a platform or group the catalog has.
        unknown = emulator.tenant.mint_access_token(
            "auth0|padmin", roles=["biocommons/role/nothing/admin"]
        )
        assert (await call(client, unknown)).json() is False

    async def test_ordinary_user(self, client: httpx.AsyncClient, emulator: EmulatorServer):
        token = emulator.tenant.mint_access_token(
            "auth0|plain", roles=["biocommons/platform/galaxy"]
        )
        response = await call(client, token)
        assert response.status_code == 200
        assert response.json() is False

    async def test_string_audience_is_accepted(
        self, client: httpx.AsyncClient, emulator: EmulatorServer
    ):
        token = emulator.tenant.mint_access_token("auth0|plain", roles=[], audience=TEST_AUDIENCE)
        assert (await call(client, token)).status_code == 200

    async def test_rotated_signing_key_is_fetched_once_after_the_cooldown(
        self,
        app_factory: Callable[..., FastAPI],
        settings: Settings,
        emulator: EmulatorServer,
    ):
        clock = FakeClock()
        app = app_factory(settings.model_copy(update={"auth0_jwks_cooldown_s": 30}), clock=clock)
        async with LifespanManager(app) as manager:
            transport = httpx.ASGITransport(app=manager.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                assert (
                    await call(client, emulator.tenant.mint_access_token("auth0|a", roles=[]))
                ).status_code == 200
                fetches = emulator.state.requests["GET /.well-known/jwks.json"]
                emulator.tenant.rotate_keys(keep_old=True)
                within_cooldown = await call(
                    client, emulator.tenant.mint_access_token("auth0|a", roles=[])
                )
                clock.advance(31)
                first = await call(client, emulator.tenant.mint_access_token("auth0|a", roles=[]))
                second = await call(client, emulator.tenant.mint_access_token("auth0|b", roles=[]))
        assert within_cooldown.status_code == 401
        assert (first.status_code, second.status_code) == (200, 200)
        assert emulator.state.requests["GET /.well-known/jwks.json"] == fetches + 1


class TestRefused:
    async def test_missing_token(self, client: httpx.AsyncClient):
        response = await call(client, None)
        assert_refused(response, "missing bearer token")
        assert response.headers["www-authenticate"] == "Bearer"

    async def test_wrong_scheme(self, client: httpx.AsyncClient, emulator: EmulatorServer):
        assert_refused(await call(client, "dXNlcjpwYXNz", scheme="Basic"), "missing bearer token")

    @pytest.mark.parametrize(
        "garbage", ["abc", "a.b.c", "....", "eyJhbGciOiJSUzI1NiJ9.e30", "%%%.%%%.%%%"]
    )
    async def test_malformed(self, client: httpx.AsyncClient, garbage: str):
        response = await call(client, garbage)
        assert response.status_code == 401, response.text

    async def test_alg_none(self, client: httpx.AsyncClient, emulator: EmulatorServer):
        header = {"alg": "none", "typ": "JWT", "kid": emulator.tenant.signing_key.kid}
        token = (
            f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims_for(emulator)).encode())}."
        )
        assert_refused(await call(client, token), "RS256")

    async def test_hs256_signed_with_the_public_key(
        self, client: httpx.AsyncClient, emulator: EmulatorServer
    ):
        key = emulator.tenant.signing_key
        header = {"alg": "HS256", "typ": "JWT", "kid": key.kid}
        signing_input = (
            f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims_for(emulator)).encode())}"
        )
        signature = hmac.new(key.public_pem(), signing_input.encode(), hashlib.sha256).digest()
        assert_refused(await call(client, f"{signing_input}.{b64(signature)}"), "RS256")

    async def test_expired(self, client: httpx.AsyncClient, emulator: EmulatorServer):
        token = emulator.tenant.mint_access_token("auth0|x", roles=[], expires_in=-300)
        assert_refused(await call(client, token), "expired")

    async def test_not_yet_valid(self, client: httpx.AsyncClient, emulator: EmulatorServer):
        token = emulator.tenant.mint_access_token(
            "auth0|x", roles=[], extra_claims={"nbf": int(time.time()) + 600}
        )
        assert_refused(await call(client, token), "not valid yet")

    async def test_issued_in_the_future(self, client: httpx.AsyncClient, emulator: EmulatorServer):
        now = int(time.time())
        token = emulator.tenant.mint_access_token(
            "auth0|x", roles=[], extra_claims={"iat": now + 600, "exp": now + 1200}
        )
        assert_refused(await call(client, token), "not valid yet")

    async def test_wrong_audience(self, client: httpx.AsyncClient, emulator: EmulatorServer):
        token = emulator.tenant.mint_access_token(
            "auth0|x", roles=[], audience="https://another.api"
        )
        assert_refused(await call(client, token), "audience")

    async def test_wrong_issuer(self, client: httpx.AsyncClient, emulator: EmulatorServer):
        token = emulator.tenant.mint_access_token(
            "auth0|x", roles=[], extra_claims={"iss": "https://evil.example/"}
        )
        assert_refused(await call(client, token), "issuer")

    async def test_unknown_kid(self, client: httpx.AsyncClient, emulator: EmulatorServer):
        stranger = SigningKey.generate()
        token = emulator.tenant.mint_access_token("auth0|x", roles=["Admin"], key=stranger)
        assert_refused(await call(client, token), "unknown key")

    async def test_unknown_kid_floods_do_not_refetch_keys(
        self, client: httpx.AsyncClient, emulator: EmulatorServer
    ):
        stranger = SigningKey.generate()
        await call(client, emulator.tenant.mint_access_token("auth0|x", roles=[], key=stranger))
        fetches = emulator.state.requests.get("GET /.well-known/jwks.json", 0)
        for _ in range(10):
            await call(
                client,
                emulator.tenant.mint_access_token("auth0|x", roles=[], key=SigningKey.generate()),
            )
        assert emulator.state.requests.get("GET /.well-known/jwks.json", 0) == fetches

    async def test_same_kid_other_key(self, client: httpx.AsyncClient, emulator: EmulatorServer):
        forged = SigningKey.generate()
        forged.kid = emulator.tenant.signing_key.kid
        token = emulator.tenant.mint_access_token("auth0|x", roles=["Admin"], key=forged)
        assert_refused(await call(client, token), "invalid token")

    async def test_tampered_payload(self, client: httpx.AsyncClient, emulator: EmulatorServer):
        header, _payload, signature = emulator.tenant.mint_access_token("auth0|x", roles=[]).split(
            "."
        )
        forged_payload = b64(json.dumps(claims_for(emulator, sub="auth0|x")).encode())
        assert_refused(
            await call(client, f"{header}.{forged_payload}.{signature}"), "invalid token"
        )

    async def test_missing_roles_claim(self, client: httpx.AsyncClient, emulator: EmulatorServer):
        token = emulator.tenant.mint_access_token("auth0|x", include_roles_claim=False)
        assert_refused(await call(client, token), "roles claim")

    async def test_roles_claim_of_the_wrong_type(
        self, client: httpx.AsyncClient, emulator: EmulatorServer
    ):
        token = emulator.tenant.mint_access_token(
            "auth0|x", extra_claims={emulator.tenant.roles_claim: "Admin"}
        )
        assert_refused(await call(client, token), "roles claim")

    @pytest.mark.parametrize("claim", ["exp", "iat", "sub"])
    async def test_missing_required_claim(
        self, client: httpx.AsyncClient, emulator: EmulatorServer, claim: str
    ):
        claims = claims_for(emulator)
        del claims[claim]
        assert_refused(await call(client, emulator.tenant.sign(claims)), claim)

    async def test_token_of_a_deleted_user(
        self, client: httpx.AsyncClient, emulator: EmulatorServer, session: AsyncSession
    ):
        session.add(User(id="auth0|gone", email="gone@example.org", is_deleted=True))
        await session.flush()
        token = emulator.tenant.mint_access_token("auth0|gone", roles=["Admin"])
        assert_refused(await call(client, token), "deactivated")

    async def test_token_of_a_blocked_user(
        self, client: httpx.AsyncClient, emulator: EmulatorServer, session: AsyncSession
    ):
        session.add(User(id="auth0|blocked", email="blocked@example.org", blocked=True))
        await session.flush()
        token = emulator.tenant.mint_access_token("auth0|blocked", roles=[])
        assert_refused(await call(client, token), "deactivated")

    async def test_hs256_token_signed_with_a_guessable_secret(
        self, client: httpx.AsyncClient, emulator: EmulatorServer
    ):
        token = jwt.encode(
            claims_for(emulator),
            "secret-" * 8,
            algorithm="HS256",
            headers={"kid": emulator.tenant.signing_key.kid},
        )
        assert_refused(await call(client, token), "RS256")
