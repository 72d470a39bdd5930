"""Two email-change code requests at once, each in its own transaction as in production.
Before: both inserted an active code and the loser's unique violation was a 500."""

import asyncio
import secrets

import httpx
import sqlalchemy as sa
from asgi_lifespan import LifespanManager
from sqlalchemy.engine import URL

from db.engine import create_engine
from db.models import EmailChangeOtp
from main import create_app
from scripts.auth0_emulator.server import EmulatorServer
from scripts.auth0_emulator.tenant import DEFAULT_CONNECTION
from tests.conftest import client_address, emulator_settings, make_settings


async def test_concurrent_code_requests_answer_200_and_429_never_500(
    scratch_db: URL, emulator: EmulatorServer
):
    user = emulator.tenant.create_user(
        {
            "connection": DEFAULT_CONNECTION,
            "email": f"racer.{secrets.token_hex(3)}@example.org",
            "password": "long-enough-1",
        }
    )
    token = emulator.tenant.mint_access_token(user["user_id"], roles=[])
    headers = {"Authorization": f"Bearer {token}"}
    app = create_app(make_settings(scratch_db, **emulator_settings(emulator)))
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app, client=client_address())
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            assert (await client.get("/me/profile", headers=headers)).status_code == 200
            responses = await asyncio.gather(
                *(
                    client.post(
                        "/me/profile/email/update",
                        json={"email": f"new.{n}.{secrets.token_hex(2)}@example.org"},
                        headers=headers,
                    )
                    for n in range(2)
                )
            )
    assert sorted(r.status_code for r in responses) == [200, 429], [r.text for r in responses]
    engine = create_engine(scratch_db, process="tests")
    try:
        async with engine.connect() as connection:
            active = await connection.scalar(
                sa.select(sa.func.count())
                .select_from(EmailChangeOtp.__table__)
                .where(EmailChangeOtp.__table__.c.is_active)
            )
    finally:
        await engine.dispose()
    assert active == 1
