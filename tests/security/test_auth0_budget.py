"""The Auth0 budget from the attacker's side: anonymous callers cannot queue signed-in
users' calls behind theirs, and no request waits long for Auth0 capacity.

Before: 40 anonymous registration-info calls queued in the one client-side bucket and a
signed-in user's Auth0 call waited 20 s behind them (2 requests/s)."""

import asyncio
import time

import httpx
import pytest
from sqlmodel.ext.asyncio.session import AsyncSession

from db.models import User
from scripts.auth0_emulator.server import EmulatorServer
from services.errors import ServiceUnavailable
from tests.factories import make_gateway

BY_EMAIL = "GET /api/v2/users-by-email"


async def test_anonymous_calls_get_their_own_small_share(emulator: EmulatorServer):
    user = emulator.tenant.create_user(
        {
            "connection": "Username-Password-Authentication",
            "email": "signed.in@example.org",
            "password": "long-enough-1",
        }
    )
    gateway = make_gateway(
        emulator,
        jobs=True,
        rps=2.0,
        burst=2,
        max_wait_s=3.0,
        anonymous_share=0.25,
        max_retries=0,
    )
    try:
        await gateway.get_user(user["user_id"])  # a token in hand, as in a running API
        flood = [
            asyncio.create_task(gateway.users_by_email(f"n{i}@example.org", anonymous=True))
            for i in range(40)
        ]
        await asyncio.sleep(0)  # the flood is queued first
        started = time.monotonic()
        await gateway.get_user(user["user_id"])
        waited = time.monotonic() - started
        outcomes = await asyncio.gather(*flood, return_exceptions=True)
    finally:
        await gateway.aclose()
    refused = [o for o in outcomes if isinstance(o, ServiceUnavailable)]
    answered = [o for o in outcomes if isinstance(o, list)]
    assert len(refused) + len(answered) == 40
    # The anonymous share (0.5 requests/s, 3 s of queue at most) lets a couple through...
    assert 1 <= len(answered) <= 3
    # ...and refuses the rest at once, saying when to come back.
    assert all(int((r.headers or {})["Retry-After"]) >= 1 for r in refused)
    # The signed-in user's call waited for at most the few anonymous calls let in.
    assert waited < 3.0


async def test_no_request_waits_longer_than_the_limit_for_a_turn(emulator: EmulatorServer):
    gateway = make_gateway(emulator, rps=2.0, burst=2, max_wait_s=2.0, max_retries=0, jobs=True)
    try:
        started = time.monotonic()
        outcomes = await asyncio.gather(
            *(gateway.users_by_email(f"q{i}@example.org") for i in range(20)),
            return_exceptions=True,
        )
        elapsed = time.monotonic() - started
    finally:
        await gateway.aclose()
    assert sum(isinstance(o, ServiceUnavailable) for o in outcomes) >= 14
    assert elapsed < 4.0  # before: 20 calls at 2/s, the last one ten seconds later


@pytest.mark.usefixtures("world")
async def test_registration_info_is_answered_from_postgres_when_it_can_be(
    client: httpx.AsyncClient, session: AsyncSession, emulator: EmulatorServer
):
    session.add(User(id="auth0|known", email="Known@Example.org", registration_from="galaxy"))
    await session.flush()
    before = emulator.state.requests.get(BY_EMAIL, 0)
    known = await client.get(
        "/utils/register/registration-info", params={"user_email": "known@example.org"}
    )
    assert known.json() == {"app": "galaxy"}
    assert emulator.state.requests.get(BY_EMAIL, 0) == before
    unknown = await client.get(
        "/utils/register/registration-info", params={"user_email": "stranger@example.org"}
    )
    assert unknown.json() == {"app": None}
    assert emulator.state.requests.get(BY_EMAIL, 0) == before + 1
