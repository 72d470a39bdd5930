"""The emulator itself, over real HTTP: the Auth0 behaviour the rest of the suite relies on."""

import gzip
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import jwt
import pytest

from scripts.auth0_emulator.server import EmulatorServer, free_port
from scripts.auth0_emulator.tenant import DEFAULT_CONNECTION
from tests.conftest import TEST_AUDIENCE


@pytest.fixture
async def http(emulator: EmulatorServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=emulator.base_url) as client:
        yield client


async def management_token(http: httpx.AsyncClient, emulator: EmulatorServer) -> str:
    response = await http.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": emulator.tenant.management_client_id,
            "client_secret": emulator.tenant.management_client_secret,
            "audience": emulator.tenant.management_audience,
        },
    )
    assert response.status_code == 200
    return str(response.json()["access_token"])


def test_refuses_to_serve_beyond_loopback():
    with pytest.raises(ValueError, match="loopback"):
        EmulatorServer(host="0.0.0.0")  # noqa: S104 - the point of the test


class TestAuthentication:
    async def test_discovery_and_jwks(self, http: httpx.AsyncClient, emulator: EmulatorServer):
        discovery = (await http.get("/.well-known/openid-configuration")).json()
        assert discovery["issuer"] == f"{emulator.base_url}/"
        assert discovery["jwks_uri"] == f"{emulator.base_url}/.well-known/jwks.json"
        keys = (await http.get("/.well-known/jwks.json")).json()["keys"]
        assert {k["kid"] for k in keys} >= {emulator.tenant.signing_key.kid}
        assert all(k["alg"] == "RS256" and "d" not in k for k in keys)

    async def test_bad_client_secret_is_refused(self, http: httpx.AsyncClient):
        response = await http.post(
            "/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": "dev-management-client",
                "client_secret": "nope",
            },
        )
        assert response.status_code == 401

    async def test_authorization_code_flow(self, http: httpx.AsyncClient, emulator: EmulatorServer):
        user = emulator.tenant.create_user(
            {
                "connection": DEFAULT_CONNECTION,
                "email": "flow@example.org",
                "password": "long-enough-1",
                "email_verified": True,
            }
        )
        galaxy = emulator.tenant.role_by_name("biocommons/platform/galaxy")
        assert galaxy is not None
        emulator.tenant.assign_roles(user["user_id"], [galaxy["id"]])
        redirect_uri = "http://127.0.0.1:9999/callback"
        response = await http.get(
            "/authorize",
            params={
                "client_id": emulator.tenant.management_client_id,
                "redirect_uri": redirect_uri,
                "response_type": "code",
                "scope": "openid profile email",
                "state": "st4te",
                "nonce": "n0nce",
                "audience": TEST_AUDIENCE,
                "login_hint": "flow@example.org",
            },
        )
        assert response.status_code == 302
        location = urlparse(response.headers["location"])
        query = parse_qs(location.query)
        assert f"{location.scheme}://{location.netloc}{location.path}" == redirect_uri
        assert query["state"] == ["st4te"]
        tokens = (
            await http.post(
                "/oauth/token",
                data={
                    "grant_type": "authorization_code",
                    "code": query["code"][0],
                    "redirect_uri": redirect_uri,
                    "client_id": emulator.tenant.management_client_id,
                    "client_secret": emulator.tenant.management_client_secret,
                },
            )
        ).json()
        signing_key = jwt.PyJWKClient(
            f"{emulator.base_url}/.well-known/jwks.json"
        ).get_signing_key_from_jwt(tokens["access_token"])
        access = jwt.decode(
            tokens["access_token"],
            signing_key.key,
            algorithms=["RS256"],
            audience=TEST_AUDIENCE,
            issuer=f"{emulator.base_url}/",
        )
        assert access["aud"] == [TEST_AUDIENCE, f"{emulator.base_url}/userinfo"]
        assert access[emulator.tenant.roles_claim] == ["biocommons/platform/galaxy"]
        identity = jwt.decode(
            tokens["id_token"],
            signing_key.key,
            algorithms=["RS256"],
            audience=emulator.tenant.management_client_id,
        )
        assert identity["nonce"] == "n0nce"
        assert identity["email"] == "flow@example.org"
        userinfo = await http.get(
            "/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}
        )
        assert userinfo.json()["email"] == "flow@example.org"
        replay = await http.post(
            "/oauth/token",
            data={
                "grant_type": "authorization_code",
                "code": query["code"][0],
                "client_id": emulator.tenant.management_client_id,
                "client_secret": emulator.tenant.management_client_secret,
            },
        )
        assert replay.status_code == 403

    async def test_login_page_lists_users(self, http: httpx.AsyncClient, emulator: EmulatorServer):
        emulator.tenant.create_user(
            {
                "connection": DEFAULT_CONNECTION,
                "email": "listed@example.org",
                "password": "long-enough-1",
            }
        )
        page = await http.get(
            "/authorize",
            params={
                "client_id": emulator.tenant.management_client_id,
                "redirect_uri": "http://127.0.0.1/cb",
            },
        )
        assert page.status_code == 200
        assert "listed@example.org" in page.text

    async def test_logout_returns_to_the_caller(self, http: httpx.AsyncClient):
        response = await http.get(
            "/v2/logout", params={"returnTo": "http://127.0.0.1:8000/db-admin"}
        )
        assert response.status_code == 302
        assert response.headers["location"] == "http://127.0.0.1:8000/db-admin"

    async def test_change_password_email(self, http: httpx.AsyncClient, emulator: EmulatorServer):
        response = await http.post(
            "/dbconnections/change_password",
            json={"email": "Someone@Example.org", "connection": DEFAULT_CONNECTION},
        )
        assert response.status_code == 200
        assert {"type": "change_password", "email": "someone@example.org"} in emulator.tenant.outbox


class TestManagementApi:
    async def test_requires_a_management_token(
        self, http: httpx.AsyncClient, emulator: EmulatorServer
    ):
        anonymous = await http.get("/api/v2/users")
        assert anonymous.status_code == 401
        assert anonymous.json()["statusCode"] == 401
        user_token = emulator.tenant.mint_access_token("auth0|someone", roles=[])
        assert (
            await http.get("/api/v2/users", headers={"Authorization": f"Bearer {user_token}"})
        ).status_code == 401

    async def test_search_subset_and_paging_rules(
        self, http: httpx.AsyncClient, emulator: EmulatorServer
    ):
        for index in range(3):
            emulator.tenant.create_user(
                {
                    "connection": DEFAULT_CONNECTION,
                    "email": f"lucene{index}@search.example",
                    "password": "long-enough-1",
                    "email_verified": index == 0,
                }
            )
        headers = {"Authorization": f"Bearer {await management_token(http, emulator)}"}

        async def search(**params: str) -> Any:
            return (await http.get("/api/v2/users", params=params, headers=headers)).json()

        wildcard = await search(q="email:*@search.example", include_totals="true")
        assert wildcard["total"] == 3
        combined = await search(
            q="email:*@search.example AND email_verified:true", include_totals="true"
        )
        assert [u["email"] for u in combined["users"]] == ["lucene0@search.example"]
        bare = await search(q='email:"lucene1@search.example"')
        assert isinstance(bare, list)
        assert bare[0]["email"] == "lucene1@search.example"
        capped = await http.get(
            "/api/v2/users", params={"page": 20, "per_page": 50}, headers=headers
        )
        assert capped.status_code == 400
        assert capped.json()["errorCode"] == "invalid_paging"

    async def test_rate_limit_headers_and_429_body(
        self, http: httpx.AsyncClient, emulator: EmulatorServer
    ):
        headers = {"Authorization": f"Bearer {await management_token(http, emulator)}"}
        emulator.state.set_rate_limit("free")
        responses = [await http.get("/api/v2/roles", headers=headers) for _ in range(4)]
        assert [r.status_code for r in responses[:2]] == [200, 200]
        throttled = responses[-1]
        assert throttled.status_code == 429
        assert throttled.json()["message"] == "Global limit has been reached"
        assert throttled.headers["x-ratelimit-limit"] == "2"
        assert throttled.headers["x-ratelimit-remaining"] == "0"
        assert int(throttled.headers["x-ratelimit-reset"]) > 0

    async def test_export_download_is_gzipped_ndjson(
        self, http: httpx.AsyncClient, emulator: EmulatorServer
    ):
        for index in range(3):
            emulator.tenant.create_user(
                {
                    "connection": DEFAULT_CONNECTION,
                    "email": f"export{index}@example.org",
                    "password": "long-enough-1",
                }
            )
        emulator.state.faults.export_delay_s = 0
        headers = {"Authorization": f"Bearer {await management_token(http, emulator)}"}
        job = (
            await http.post(
                "/api/v2/jobs/users-exports",
                json={
                    "format": "json",
                    "fields": [{"name": "user_id"}, {"name": "email", "export_as": "mail"}],
                },
                headers=headers,
            )
        ).json()
        done = (await http.get(f"/api/v2/jobs/{job['id']}", headers=headers)).json()
        assert done["status"] == "completed"
        download = await http.get(done["location"])
        lines = [json.loads(line) for line in gzip.decompress(download.content).splitlines()]
        assert len(lines) == len(emulator.tenant.users)
        assert set(lines[0]) == {"user_id", "mail"}


def test_command_line_starts_a_seeded_tenant(repo_root: Path):
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "scripts.auth0_emulator",
            "--port",
            str(port),
            "--seed",
            "demo",
            "--users",
            "5",
        ],
        cwd=repo_root,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        banner = process.stdout.readline()
        assert f"http://127.0.0.1:{port}" in banner
        discovery = httpx.get(
            f"http://127.0.0.1:{port}/.well-known/openid-configuration", timeout=5
        )
        assert discovery.json()["issuer"] == f"http://127.0.0.1:{port}/"
        state = httpx.get(f"http://127.0.0.1:{port}/_emulator/state", timeout=5).json()
        assert state["users"] == 8  # three named admins and five demo users
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_command_line_refuses_a_public_address(repo_root: Path):
    result = subprocess.run(
        [sys.executable, "-m", "scripts.auth0_emulator", "--host", "0.0.0.0", "--seed", "none"],  # noqa: S104
        cwd=repo_root,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "loopback" in result.stderr
