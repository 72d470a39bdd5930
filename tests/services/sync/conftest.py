"""Sync fixtures: a fresh emulated tenant per test, and job contexts whose database work
stays inside the test's rolled-back transaction (or a scratch database, across processes)."""

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession

from db.engine import create_engine, create_session_factory
from scripts.auth0_emulator.seed import seed_roles
from scripts.auth0_emulator.server import EmulatorServer
from services.settings import Settings
from services.sync.runs import JobContext
from tests.conftest import TEST_AUDIENCE, make_settings, savepoint_sessions
from tests.factories import make_gateway


@pytest.fixture
def tenant_server() -> Iterator[EmulatorServer]:
    with EmulatorServer(audience=TEST_AUDIENCE) as server:
        server.state.faults.export_delay_s = 0.0
        seed_roles(server.tenant)
        yield server


def sync_settings(db_url: URL, server: EmulatorServer, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "auth0_domain": server.base_url,
        "auth0_audience": TEST_AUDIENCE,
        "auth0_mgmt_rps": 1000,
        "auth0_mgmt_burst": 1000,
        "sync_max_delete_fraction": 1.0,
        **overrides,
    }
    return make_settings(db_url, **values)


@pytest.fixture
async def sync_ctx(
    session: AsyncSession, pg_engine: AsyncEngine, pg_url: URL, tenant_server: EmulatorServer
) -> AsyncIterator[JobContext]:
    """Jobs commit as they would in production; here each commit is a savepoint of the test."""
    connection = await session.connection()
    sessions = savepoint_sessions(connection)
    gateway = make_gateway(tenant_server, jobs=True)
    yield JobContext(
        settings=sync_settings(pg_url, tenant_server),
        engine=pg_engine,
        sessions=sessions,
        auth0=gateway,
    )
    await gateway.aclose()


@pytest.fixture
async def scratch_ctx(scratch_db: URL, tenant_server: EmulatorServer) -> AsyncIterator[JobContext]:
    engine = create_engine(scratch_db, process="tests")
    gateway = make_gateway(tenant_server, jobs=True)
    yield JobContext(
        settings=sync_settings(scratch_db, tenant_server),
        engine=engine,
        sessions=create_session_factory(engine),
        auth0=gateway,
    )
    await gateway.aclose()
    await engine.dispose()
