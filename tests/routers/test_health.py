import asyncio
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.engine import URL

from db.admin import create_database, drop_database
from db.engine import create_engine
from db.migrations import upgrade_head
from main import create_app
from scripts.pg_cluster import TempCluster
from services.kit.version import app_version
from tests.conftest import make_settings


async def _get(app: FastAPI, path: str) -> httpx.Response:
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            return await client.get(path)


@pytest.fixture
async def empty_database(pg_server_url: URL) -> AsyncIterator[URL]:
    name = f"aai_unmigrated_{secrets.token_hex(3)}"
    url = await create_database(pg_server_url, name)
    yield url
    await drop_database(pg_server_url, name)


class TestRootAndLiveness:
    async def test_root_names_the_service_and_version(self, client: httpx.AsyncClient):
        response = await client.get("/")
        assert response.status_code == 200
        assert response.json() == {"message": "AAI Backend API", "version": app_version()}

    async def test_live(self, client: httpx.AsyncClient):
        response = await client.get("/health/live")
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}

    async def test_openapi_is_served(self, client: httpx.AsyncClient):
        assert (await client.get("/docs")).status_code == 200
        spec = (await client.get("/openapi.json")).json()
        assert "/health/ready" in spec["paths"]


class TestReadiness:
    async def test_ready_on_a_migrated_database(self, client: httpx.AsyncClient):
        response = await client.get("/health/ready")
        assert response.status_code == 200
        body = response.json()
        assert body["status"] == "ready"
        assert body["checks"]["database"]["ok"] is True
        assert body["checks"]["migrations"]["ok"] is True

    async def test_not_ready_on_an_unmigrated_database(self, empty_database: URL):
        response = await _get(create_app(make_settings(empty_database)), "/health/ready")
        assert response.status_code == 503
        body = response.json()
        assert body["status"] == "not_ready"
        assert body["checks"]["database"]["ok"] is True
        assert body["checks"]["migrations"]["ok"] is False
        assert "(none)" in body["checks"]["migrations"]["detail"]
        assert "alembic upgrade head" in body["checks"]["migrations"]["detail"]

    async def test_not_ready_when_the_database_is_behind_head(self, empty_database: URL):
        engine = create_engine(empty_database, process="tests")
        async with engine.begin() as conn:
            await conn.execute(
                text("CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY)")
            )
            await conn.execute(text("INSERT INTO alembic_version VALUES ('0000oldrev')"))
        await engine.dispose()
        response = await _get(create_app(make_settings(empty_database)), "/health/ready")
        assert response.status_code == 503
        assert "0000oldrev" in response.json()["checks"]["migrations"]["detail"]

    async def test_not_ready_when_nothing_listens(self):
        settings = make_settings("postgresql://postgres@127.0.0.1:1/none", db_connect_timeout_s=2)
        response = await _get(create_app(settings), "/health/ready")
        assert response.status_code == 503
        body = response.json()
        assert body["checks"]["database"]["ok"] is False
        assert body["checks"]["database"]["detail"]
        assert body["checks"]["migrations"]["detail"].startswith("not checked")
        # The public body names no host or port (the driver's message goes to the log).
        assert "127.0.0.1" not in response.text
        assert ":1" not in response.text
        assert "Errno" not in response.text

    async def test_follows_a_real_postgres_stop_and_restart(self):
        """A private cluster is stopped under a running app, then started again: 200 → 503 → 200."""
        cluster = TempCluster()
        cluster.start()
        try:
            await upgrade_head(cluster.url)
            app = create_app(make_settings(cluster.url, db_connect_timeout_s=2))
            async with LifespanManager(app) as manager:
                transport = httpx.ASGITransport(app=manager.app)
                async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                    assert (await client.get("/health/ready")).status_code == 200
                    await asyncio.to_thread(cluster.stop)
                    stopped = await client.get("/health/ready")
                    await asyncio.to_thread(cluster.start)
                    restarted = await client.get("/health/ready")
        finally:
            await asyncio.to_thread(cluster.remove)
        assert stopped.status_code == 503
        assert stopped.json()["checks"]["database"]["ok"] is False
        assert restarted.status_code == 200, restarted.text


class TestEmbeddedDefault:
    async def test_sqlite_database_is_created_and_migrated_at_startup(self, tmp_path: Path):
        path = tmp_path / "embedded.db"
        settings = make_settings(f"sqlite:///{path}")
        response = await _get(create_app(settings), "/health/ready")
        assert response.status_code == 200, response.text
        assert response.json()["checks"]["migrations"]["ok"] is True
        assert path.exists()


class TestSettingsAtStartup:
    def test_unsafe_production_config_stops_the_app_with_a_clear_message(
        self, monkeypatch: pytest.MonkeyPatch
    ):
        from services.settings import get_settings

        monkeypatch.setenv("ENVIRONMENT", "production")
        monkeypatch.setenv("DB_URL", "sqlite:///./prod.db")
        monkeypatch.delenv("DB_HOST", raising=False)
        get_settings.cache_clear()
        try:
            with pytest.raises(SystemExit, match="DB_URL"):
                create_app()
        finally:
            get_settings.cache_clear()
