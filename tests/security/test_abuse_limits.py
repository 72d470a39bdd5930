"""Public rate limits from the attacker's side: a client may not choose its own address,
and more workers do not mean more requests."""

from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from scripts.auth0_emulator.server import free_port
from services.settings import Settings
from tests.conftest import client_address
from tests.processes import serving
from tests.scripts.test_entrypoint import environment

AVAILABILITY = "/utils/register/check-username-availability"


@pytest.fixture
def limited(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"public_rate_limit_per_minute": 5, "forwarded_allow_ips": ["127.0.0.1"]}
    )


async def statuses(client: httpx.AsyncClient, count: int, spoof: bool) -> list[int]:
    """`count` availability checks, each claiming a new address in X-Forwarded-For when
    `spoof`; the load balancer (the peer) appends the address it really saw."""
    codes = []
    for n in range(count):
        headers = {"X-Forwarded-For": f"198.51.100.{n}, 203.0.113.7"} if spoof else {}
        response = await client.get(AVAILABILITY, params={"username": f"x{n}"}, headers=headers)
        codes.append(response.status_code)
    return codes


@pytest.fixture
async def apps(app_factory: Callable[..., FastAPI], limited: Settings) -> AsyncIterator[list[Any]]:
    """Two API processes' worth of app: each its own lifespan, engine and limiter."""
    async with AsyncExitStack() as stack:
        yield [
            (await stack.enter_async_context(LifespanManager(app_factory(limited)))).app
            for _ in range(2)
        ]


async def test_rotating_the_forwarded_for_header_does_not_escape_the_limit(apps):
    # Through the load balancer (127.0.0.1 here, the VPC in production).
    transport = httpx.ASGITransport(app=apps[0], client=("127.0.0.1", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        codes = await statuses(client, 8, spoof=True)
    # Before: the left-most entry was the client; 8 times 200 against a limit of 5.
    assert codes == [200] * 5 + [429] * 3


async def test_a_client_that_is_not_the_proxy_cannot_forward_at_all(apps):
    transport = httpx.ASGITransport(app=apps[0], client=client_address())
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        codes = await statuses(client, 8, spoof=True)
    assert codes == [200] * 5 + [429] * 3


async def test_the_limit_holds_across_processes(apps):
    address = client_address()
    codes = []
    clients = [
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, client=address), base_url="http://t"
        )
        for app in apps
    ]
    try:
        for n in range(8):
            response = await clients[n % 2].get(AVAILABILITY, params={"username": f"y{n}"})
            codes.append(response.status_code)
    finally:
        for client in clients:
            await client.aclose()
    # Before: each process counted its own, so two workers allowed twice 5.
    assert codes == [200] * 5 + [429] * 3


async def test_the_production_entrypoint_keys_limits_on_the_real_client(scratch_db, repo_root):
    """The real thing: `entrypoint api` with two uvicorn workers and no FORWARDED_ALLOW_IPS
    set. Before: uvicorn believed X-Forwarded-For from anyone (`*`) and took its left-most
    entry, so rotating it passed 8 requests against a limit of 5; and each worker counted
    on its own."""
    port = free_port()
    env = {
        key: value for key, value in environment(scratch_db).items() if key != "FORWARDED_ALLOW_IPS"
    }
    env.update(
        PORT=str(port), WEB_CONCURRENCY="2", HOST="127.0.0.1", PUBLIC_RATE_LIMIT_PER_MINUTE="5"
    )
    async with (
        serving(repo_root, env, port, "-m", "scripts.entrypoint", "api"),
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client,
    ):
        codes = await statuses(client, 8, spoof=True)
    assert codes == [200] * 5 + [429] * 3
