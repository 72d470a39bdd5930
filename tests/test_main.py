"""The app factory's cross-cutting behaviour: error rendering, DB outages, CORS, sessions."""

import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy.engine import URL
from sqlmodel import col, select

from db.models import Auth0Role
from main import create_app
from routers.deps import SessionDep
from scripts.auth0_emulator.server import free_port
from services.errors import Conflict, NotFound, ServiceUnavailable
from services.settings import Settings
from tests.conftest import make_settings
from tests.processes import serving


def add_probe_routes(app: FastAPI) -> None:
    @app.get("/_probe/not-found")
    async def not_found() -> None:
        raise NotFound("platform 'nope' does not exist")

    @app.get("/_probe/conflict")
    async def conflict() -> None:
        raise Conflict("username is taken", field="username")

    @app.get("/_probe/unavailable")
    async def unavailable() -> None:
        raise ServiceUnavailable("Auth0 is unavailable", retry_after_s=7)

    @app.get("/_probe/bug")
    async def bug() -> None:
        raise RuntimeError("a bug, with a secret-looking detail")

    @app.get("/_probe/roles")
    async def roles(session: SessionDep) -> list[str]:
        return list((await session.exec(select(col(Auth0Role.name)))).all())

    @app.post("/_probe/roles/{role_id}")
    async def add_role(role_id: str, session: SessionDep, fail: bool = False) -> None:
        session.add(Auth0Role(id=role_id, name=f"probe/{role_id}"))
        await session.flush()
        if fail:
            raise Conflict("changed my mind")


async def serve(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


@pytest.fixture
async def probe(
    app_factory: Callable[[Settings], FastAPI], settings: Settings
) -> AsyncIterator[httpx.AsyncClient]:
    app = app_factory(settings)
    add_probe_routes(app)
    async for client in serve(app):
        yield client


class TestErrorRendering:
    async def test_domain_error_has_its_status_and_a_json_detail(self, probe: httpx.AsyncClient):
        response = await probe.get("/_probe/not-found")
        assert response.status_code == 404
        assert response.json() == {
            "detail": "platform 'nope' does not exist",
            # What the portal's alerts read (portal contract, known difference 15).
            "message": "platform 'nope' does not exist",
            "error": "not_found",
        }

    async def test_domain_error_can_name_the_field(self, probe: httpx.AsyncClient):
        response = await probe.get("/_probe/conflict")
        assert response.status_code == 409
        assert response.json()["field"] == "username"

    async def test_unavailable_sets_retry_after(self, probe: httpx.AsyncClient):
        response = await probe.get("/_probe/unavailable")
        assert response.status_code == 503
        assert response.headers["retry-after"] == "7"

    async def test_a_bug_is_a_json_500_without_internals(self, probe: httpx.AsyncClient):
        response = await probe.get("/_probe/bug")
        assert response.status_code == 500
        assert response.json() == {"detail": "internal server error", "error": "internal_error"}
        assert "secret" not in response.text

    async def test_validation_errors_are_422_json(self, probe: httpx.AsyncClient):
        response = await probe.post("/_probe/roles/x", params={"fail": "not-a-bool"})
        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"] == ["query", "fail"]


class TestUnitOfWork:
    async def test_successful_request_commits(self, probe: httpx.AsyncClient):
        assert (await probe.post("/_probe/roles/kept")).status_code == 200
        assert "probe/kept" in (await probe.get("/_probe/roles")).json()

    async def test_failed_request_rolls_back(self, probe: httpx.AsyncClient):
        assert (await probe.post("/_probe/roles/dropped", params={"fail": True})).status_code == 409
        assert "probe/dropped" not in (await probe.get("/_probe/roles")).json()


class TestDatabaseOutage:
    async def test_query_against_an_unreachable_database_is_503(self):
        app = create_app(
            make_settings("postgresql://postgres@127.0.0.1:1/none", db_connect_timeout_s=2)
        )
        add_probe_routes(app)
        async for client in serve(app):
            response = await client.get("/_probe/roles")
            assert response.status_code == 503
            assert response.json()["error"] == "service_unavailable"
            assert response.headers["retry-after"] == "5"


class TestCors:
    async def test_configured_origin_is_allowed(
        self, app_factory: Callable[[Settings], FastAPI], pg_url: URL
    ):
        app = app_factory(make_settings(pg_url, cors_allowed_origins="https://portal.example"))
        async for client in serve(app):
            allowed = await client.options(
                "/health/live",
                headers={
                    "Origin": "https://portal.example",
                    "Access-Control-Request-Method": "GET",
                },
            )
            other = await client.options(
                "/health/live",
                headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
            )
        assert allowed.headers["access-control-allow-origin"] == "https://portal.example"
        assert "access-control-allow-origin" not in other.headers


async def test_the_old_command_uvicorn_main_app_serves(repo_root: Path, tmp_path: Path):
    """The running backend's deployments start `uvicorn main:app`: it still serves."""
    port = free_port()
    env = {
        **os.environ,
        "DB_URL": f"sqlite:///{tmp_path}/old-command.db",
        "DB_HOST": "",
        "AUTH0_DOMAIN": f"http://127.0.0.1:{free_port()}",
    }
    async with (
        serving(repo_root, env, port, "-m", "uvicorn", "main:app", "--port", str(port)),
        httpx.AsyncClient() as client,
    ):
        live = await client.get(f"http://127.0.0.1:{port}/health/live")
    assert live.status_code == 200
