"""A user blocked in Auth0 loses API access by the first incremental run after Auth0's
search shows the block, through the synced row the API checks on every request."""

import secrets
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession

from scripts.auth0_emulator.server import EmulatorServer
from services.sync.runs import JobContext
from tests.clock import FakeClock
from tests.conftest import savepoint_sessions
from tests.factories import auth0_user, make_gateway
from tests.services.sync.conftest import sync_settings
from tests.services.sync.helpers import sync


@pytest.fixture
async def shared_ctx(
    session: AsyncSession, pg_engine: AsyncEngine, pg_url: URL, emulator: EmulatorServer
) -> AsyncIterator[JobContext]:
    """Jobs against the emulator the API talks to, inside the test's transaction."""
    gateway = make_gateway(emulator, jobs=True)
    yield JobContext(
        settings=sync_settings(pg_url, emulator),
        engine=pg_engine,
        sessions=savepoint_sessions(await session.connection()),
        auth0=gateway,
    )
    await gateway.aclose()


async def test_a_user_blocked_in_auth0_loses_access_by_the_next_incremental_run(
    client: httpx.AsyncClient, shared_ctx: JobContext, emulator: EmulatorServer
):
    clock = FakeClock()
    tenant = emulator.tenant
    tenant.search_clock, tenant.search_lag_s = clock, 30.0
    user_id = auth0_user(tenant, f"blk{secrets.token_hex(3)}")
    clock.advance(31)
    await sync(shared_ctx, "sync.users.full")
    headers = {"Authorization": f"Bearer {tenant.mint_access_token(user_id)}"}
    assert (await client.get("/me/profile", headers=headers)).status_code == 200

    tenant.update_user(user_id, {"blocked": True})
    await sync(shared_ctx, "sync.users.incremental")  # the search does not show it yet
    clock.advance(31)
    (run,) = await sync(shared_ctx, "sync.users.incremental")
    assert run.counts["blocked"] == 1
    refused = await client.get("/me/profile", headers=headers)
    assert refused.status_code == 401
    assert "deactivated" in refused.json()["detail"]
