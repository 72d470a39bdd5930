"""Hostile input and what leaks: body limits, nesting, CORS, security headers, logs."""

import logging
import secrets

import httpx
import pytest
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from scripts.auth0_emulator.server import EmulatorServer
from scripts.auth0_emulator.tenant import DEFAULT_CONNECTION
from services.kit.http_security import SecurityHeadersMiddleware
from tests.factories import add_catalog
from tests.routers.test_registration import GOOD


async def test_an_oversized_body_is_refused_with_413_before_it_is_read(client: httpx.AsyncClient):
    body = {**GOOD, "request_reason": "x" * 300_000}
    response = await client.post("/biocommons/register", json=body)
    assert response.status_code == 413


@pytest.mark.parametrize("path", ["/biocommons/register", "/utils/send-welcome-email"])
async def test_deeply_nested_json_is_a_400_not_a_500(client: httpx.AsyncClient, path: str):
    body = "[" * 60_000 + "]" * 60_000
    response = await client.post(path, content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text
    # FastAPI's own body parser turns the RecursionError into this 400.
    assert response.json()["detail"] == "There was an error parsing the body"


async def test_cors_answers_only_configured_origins(client: httpx.AsyncClient):
    preflight = {
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization",
    }
    allowed = await client.options(
        "/me/profile", headers={"origin": "http://localhost:4200", **preflight}
    )
    foreign = await client.options(
        "/me/profile", headers={"origin": "https://evil.example", **preflight}
    )
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "http://localhost:4200"
    assert foreign.status_code == 400
    assert "access-control-allow-origin" not in foreign.headers
    simple = await client.get("/health/live", headers={"origin": "https://evil.example"})
    assert "access-control-allow-origin" not in simple.headers


async def test_security_headers_on_json_and_html(client: httpx.AsyncClient):
    json_response = await client.get("/health/live")
    docs = await client.get("/docs")
    for response in (json_response, docs):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["referrer-policy"] == "no-referrer"
    assert json_response.headers["content-security-policy"].startswith("default-src 'none'")
    assert "content-security-policy" not in docs.headers  # Swagger UI needs its scripts
    assert "strict-transport-security" not in json_response.headers  # not production


async def test_hsts_in_production():
    async def hello(_request: object) -> JSONResponse:
        return JSONResponse({"ok": True})

    app = SecurityHeadersMiddleware(Starlette(routes=[Route("/", hello)]), hsts=True)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://t") as c:
        response = await c.get("/")
    assert response.headers["strict-transport-security"].startswith("max-age=31536000")


async def test_no_password_token_secret_or_code_reaches_the_logs(
    client: httpx.AsyncClient,
    emulator: EmulatorServer,
    session: AsyncSession,
    caplog: pytest.LogCaptureFixture,
):
    await add_catalog(session)
    password = f"Secret-{secrets.token_hex(6)}-1"
    other = f"Other-{secrets.token_hex(6)}-2"
    user = emulator.tenant.create_user(
        {
            "connection": DEFAULT_CONNECTION,
            "email": f"logs.{secrets.token_hex(3)}@example.org",
            "username": f"logs_{secrets.token_hex(3)}",
            "password": password,
        }
    )
    token = emulator.tenant.mint_access_token(user["user_id"])
    headers = {"Authorization": f"Bearer {token}"}
    with caplog.at_level(logging.DEBUG):
        await client.post("/biocommons/register", json={**GOOD, "password": other})
        await client.get("/me/profile", headers=headers)
        await client.post(
            "/me/profile/password/update",
            json={"current_password": password, "new_password": f"{password}x"},
            headers=headers,
        )
        await client.post(
            "/me/profile/password/update",
            json={"current_password": "wrong-Password-9", "new_password": other},
            headers=headers,
        )
        await client.get("/me/profile", headers={"Authorization": "Bearer forged." + token[-20:]})
    text = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert caplog.records  # the requests were logged
    for secret in (
        password,
        other,
        token,
        token.split(".")[2],
        emulator.tenant.management_client_secret,
        "wrong-Password-9",
    ):
        assert secret not in text
