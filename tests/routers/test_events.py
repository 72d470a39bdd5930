"""The inboxes Auth0 pushes to: authenticated, bounded, parsed whole, stored once."""

import base64
import json
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL
from sqlmodel.ext.asyncio.session import AsyncSession

from db.models import Auth0Event
from scripts.auth0_emulator.server import EmulatorServer
from services.settings import Settings
from tests.conftest import emulator_settings, make_settings

EVENT_SECRET = "e" * 40
LOG_SECRET = "l" * 40
STREAM = "/events/auth0/event-stream"
LOGS = "/events/auth0/log-stream"


@pytest.fixture
def settings(pg_url: URL, emulator: EmulatorServer) -> Settings:
    return make_settings(
        pg_url,
        **emulator_settings(emulator),
        events_stream_secret=EVENT_SECRET,
        log_stream_secret=LOG_SECRET,
        events_max_body_bytes=64 * 1024,
    )


def cloud_event(event_id: str, kind: str = "user.updated", **obj: Any) -> dict[str, Any]:
    return {
        "id": event_id,
        "source": "urn:auth0:test:users",
        "specversion": "1.0",
        "type": kind,
        "time": "2026-11-28T10:00:00.000Z",
        "data": {"object": {"user_id": "auth0|u1", "updated_at": "2026-11-28T10:00:00Z", **obj}},
    }


def log_entry(log_id: str, kind: str = "sapi", **data: Any) -> dict[str, Any]:
    return {"log_id": log_id, "data": {"type": kind, "date": "2026-11-28T10:00:00Z", **data}}


def bearer(secret: str) -> dict[str, str]:
    return {"authorization": f"Bearer {secret}"}


async def stored(session: AsyncSession) -> list[tuple[str, str, str | None]]:
    table = Auth0Event.__table__
    rows = await session.execute(
        sa.select(table.c.event_id, table.c.type, table.c.user_id).order_by(table.c.id)
    )
    return [tuple(row) for row in rows.all()]


async def test_an_event_is_stored_once_whatever_the_redeliveries(
    client: httpx.AsyncClient, session: AsyncSession
):
    body = cloud_event("evt_1", email="a@example.org")
    first = await client.post(STREAM, json=body, headers=bearer(EVENT_SECRET))
    assert first.status_code == 202
    assert first.json() == {"received": 1, "stored": 1, "duplicates": 0}
    again = await client.post(STREAM, json=body, headers=bearer(EVENT_SECRET))
    assert again.json() == {"received": 1, "stored": 0, "duplicates": 1}
    assert await stored(session) == [("evt_1", "user.updated", "auth0|u1")]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        bearer("wrong"),
        bearer(LOG_SECRET),  # the other inbox's secret
        {"authorization": EVENT_SECRET[:-1]},
    ],
)
async def test_a_delivery_without_the_secret_is_refused_and_stores_nothing(
    client: httpx.AsyncClient, session: AsyncSession, headers: dict[str, str]
):
    response = await client.post(STREAM, json=cloud_event("evt_x"), headers=headers)
    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"
    assert await stored(session) == []


async def test_basic_auth_carries_the_secret_as_its_password(
    client: httpx.AsyncClient, session: AsyncSession
):
    token = base64.b64encode(f"auth0:{EVENT_SECRET}".encode()).decode()
    response = await client.post(
        STREAM, json=cloud_event("evt_b"), headers={"authorization": f"Basic {token}"}
    )
    assert response.status_code == 202


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"{not json", "not JSON"),
        (json.dumps([cloud_event("evt_ok"), {"id": "evt_bad", "type": "user.updated"}]), "time"),
        (json.dumps({**cloud_event("evt_u"), "data": {"object": {}}}), "user_id"),
        (json.dumps({**cloud_event("evt_t"), "time": "yesterday"}), "time"),
    ],
)
async def test_a_malformed_batch_is_refused_whole(
    client: httpx.AsyncClient, session: AsyncSession, body: str | bytes, problem: str
):
    response = await client.post(
        STREAM, content=body, headers={**bearer(EVENT_SECRET), "content-type": "application/json"}
    )
    assert response.status_code == 400
    assert problem in response.json()["detail"]
    assert await stored(session) == []


async def test_a_body_over_the_limit_is_refused(client: httpx.AsyncClient, session: AsyncSession):
    big = cloud_event("evt_big", name="x" * (70 * 1024))
    response = await client.post(STREAM, json=big, headers=bearer(EVENT_SECRET))
    assert response.status_code == 413
    assert await stored(session) == []


@pytest.mark.parametrize("content_format", ["JSONARRAY", "JSONLINES", "JSONOBJECT"])
async def test_a_log_stream_batch_in_each_content_format(
    client: httpx.AsyncClient, session: AsyncSession, content_format: str
):
    entries = [
        log_entry(
            "90020001",
            details={"request": {"method": "post", "path": "/api/v2/users/auth0%7Cu2/roles"}},
        ),
        log_entry("90020002", "ss", user_id="auth0|u3"),
    ]
    if content_format == "JSONARRAY":
        bodies = [json.dumps(entries)]
    elif content_format == "JSONLINES":
        bodies = ["\n".join(json.dumps(e) for e in entries)]
    else:
        bodies = [json.dumps(e) for e in entries]
    for body in bodies:
        response = await client.post(LOGS, content=body, headers=bearer(LOG_SECRET))
        assert response.status_code == 202, response.text
    assert await stored(session) == [
        ("90020001", "sapi", "auth0|u2"),
        ("90020002", "ss", "auth0|u3"),
    ]


async def test_an_inbox_without_its_secret_is_off(
    app_factory: Any, pg_url: URL, emulator: EmulatorServer
):
    from asgi_lifespan import LifespanManager

    app = app_factory(make_settings(pg_url, **emulator_settings(emulator)))
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            response = await client.post(LOGS, json=[], headers=bearer(LOG_SECRET))
    assert response.status_code == 404
