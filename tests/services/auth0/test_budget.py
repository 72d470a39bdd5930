"""One Auth0 rate budget for every process: the buckets kept in Postgres, and what Auth0's
answers say is left. Against the emulator's Free plan (one bucket, burst 2, 2/s)."""

import asyncio
from collections.abc import AsyncIterator
from typing import get_args

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL

from db.engine import create_engine
from db.models import Auth0RateBudget
from scripts.auth0_emulator.server import EmulatorServer
from services.auth0 import Auth0Gateway
from services.auth0.budget import PLANS, TenantBudget, bucket_of
from services.errors import ServiceUnavailable
from services.settings import Settings
from tests.factories import auth0_users, make_gateway


@pytest.fixture
async def user_id(emulator: EmulatorServer) -> AsyncIterator[str]:
    (user,) = auth0_users(emulator, 1)
    yield user
    emulator.state.set_rate_limit("off")


async def spend(gateways: list[Auth0Gateway], emulator: EmulatorServer, user_id: str) -> int:
    """Four calls from each "process" at once on the Free plan; the 429s they met."""
    for gateway in gateways:
        await gateway.get_user(user_id)  # tokens fetched before the limit applies
    emulator.state.set_rate_limit("free")
    await asyncio.gather(*(g.get_user(user_id) for g in gateways for _ in range(4)))
    emulator.state.set_rate_limit("off")
    return sum(g.stats.throttled for g in gateways)


async def test_processes_sharing_the_postgres_budget_stay_under_the_tenants_limit(
    scratch_db: URL, emulator: EmulatorServer, user_id: str
):
    engines = [create_engine(scratch_db, process="tests") for _ in range(2)]
    # Each paces itself to the plan's rate: together they would send twice that.
    alone, shared = (
        [
            make_gateway(emulator, rps=2.0, burst=2, max_retries=8, rate_reserve=None)
            for _ in range(2)
        ]
        for _ in range(2)
    )
    for gateway, engine in zip(shared, engines, strict=True):
        gateway.tenant_budget = TenantBudget(engine, "free")
    try:
        assert await spend(alone, emulator, user_id) > 0
        await asyncio.sleep(1.1)  # the emulator's bucket fills again
        assert await spend(shared, emulator, user_id) == 0
        assert sum(g.stats.held for g in shared) > 0
        async with engines[0].connect() as connection:
            rows = (await connection.execute(sa.select(Auth0RateBudget.__table__))).all()
        assert [row.bucket for row in rows] == ["management"]
    finally:
        for gateway in alone + shared:
            await gateway.aclose()
        for engine in engines:
            await engine.dispose()


async def test_a_request_path_gives_its_token_back_and_answers_503_rather_than_wait(
    scratch_db: URL, emulator: EmulatorServer, user_id: str
):
    engine = create_engine(scratch_db, process="tests")
    gateway = make_gateway(emulator, max_wait_s=0.2, rate_reserve=None)
    gateway.tenant_budget = TenantBudget(engine, "free")
    try:
        # The burst of 2 is spent by the first calls; a call that would then wait longer
        # than 0.2 s is refused. (Looped: on a loaded machine the calls may be slow enough
        # for the bucket to refill a token between them, which only defers the refusal.)
        async def calls() -> None:
            for _ in range(12):
                await gateway.get_user(user_id)

        with pytest.raises(ServiceUnavailable) as caught:
            await calls()
        assert caught.value.headers is not None
        assert "Retry-After" in caught.value.headers
        async with engine.connect() as connection:
            tokens = await connection.scalar(sa.select(Auth0RateBudget.__table__.c.tokens))
        assert tokens is not None
        assert tokens > -1.0  # the refused call's reservation was returned
    finally:
        await gateway.aclose()
        await engine.dispose()


async def test_a_bucket_spent_by_someone_else_is_waited_for_not_hit(
    emulator: EmulatorServer, user_id: str
):
    """Another client of the tenant (an Action, a script) spends the bucket: the answers'
    X-RateLimit-Remaining tell this process to hold its next call instead of taking a 429."""
    gateway = make_gateway(emulator, rate_reserve=0)
    try:
        await gateway.get_user(user_id)
        emulator.state.set_rate_limit("free")
        token = await gateway.tokens.get()
        async with httpx.AsyncClient(base_url=emulator.base_url) as other:
            await other.get("/api/v2/roles", headers={"Authorization": f"Bearer {token}"})
        await gateway.get_user(user_id)  # learns: nothing left
        await gateway.get_user(user_id)
        assert gateway.stats.throttled == 0
        assert gateway.stats.held == 1
    finally:
        await gateway.aclose()


def test_self_service_operations_spend_from_their_endpoint_buckets():
    assert bucket_of("self-service", "users.get").name == "read users"
    assert bucket_of("self-service", "users.update").name == "write users"
    assert bucket_of("self-service", "users.delete").name == "delete users"
    assert bucket_of("self-service", "roles.users.list").name == "all other endpoints"
    assert bucket_of("enterprise", "roles.users.list").name == "management"


def test_the_plans_settings_accept_are_the_plans_the_budget_knows():
    (plans, _none) = get_args(Settings.model_fields["auth0_plan"].annotation)
    assert set(get_args(plans)) == set(PLANS)
