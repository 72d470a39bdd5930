"""The hot reads' fast lane (routers/hot_reads.py): it answers the plain 200s of
/admin/users, /admin/users/pages and /me/profile without the routes, gives the routes'
answer byte for byte, and leaves every other answer to them."""

import secrets
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlmodel.ext.asyncio.session import AsyncSession

from db.types import ApprovalStatus
from routers.deps import get_claimed_admin_scope, get_claimed_user
from scripts.auth0_emulator.server import EmulatorServer
from services.settings import Settings
from tests.conftest import client_address
from tests.factories import portal_user
from tests.routers.admin_world import TSI, World, admin

GALAXY_ADMIN = "biocommons/role/galaxy/admin"
PLAIN = [
    "/admin/users",
    "/admin/users?per_page=1&page=2",
    "/admin/users?platform=galaxy&platform_approval_status=pending",
    "/admin/users?search=lane&email_verified=true",
    "/admin/users/pages?per_page=1",
    "/admin/users/pages?filter_by=galaxy",
]


@pytest.fixture
async def crowd(session: AsyncSession, emulator: EmulatorServer, world: World) -> list[Any]:
    tag = secrets.token_hex(2)
    return [
        await portal_user(
            session,
            emulator,
            name=f"lane{tag}{index}",
            platforms={"galaxy": status},
            groups={TSI: ApprovalStatus.APPROVED} if index % 2 else {},
            age_minutes=index + 1,
        )
        for index, status in enumerate(
            [ApprovalStatus.PENDING, ApprovalStatus.APPROVED, ApprovalStatus.PENDING]
        )
    ]


def route_used(*_args: Any) -> None:
    raise AssertionError("the route answered what the lane should have")


@pytest.fixture
async def routes_and_client(
    app_factory: Callable[..., FastAPI], settings: Settings
) -> AsyncIterator[tuple[FastAPI, AsyncClient]]:
    """The app itself (its dependency overrides) and a client of it."""
    built = app_factory(settings)
    async with LifespanManager(built) as manager:
        transport = ASGITransport(app=manager.app, client=client_address())
        async with AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield built, client


async def test_the_lane_answers_without_the_routes(
    routes_and_client: tuple[FastAPI, AsyncClient], emulator: EmulatorServer, crowd: list[Any]
) -> None:
    app, client = routes_and_client
    member_id = crowd[0].id
    headers = admin(emulator, "Admin")
    warm = await client.get("/admin/users", headers=headers)  # the admin's first sign-in
    assert warm.status_code == 200
    app.dependency_overrides[get_claimed_admin_scope] = route_used
    app.dependency_overrides[get_claimed_user] = route_used
    for path in PLAIN:
        response = await client.get(path, headers=headers)
        assert response.status_code == 200, (path, response.text)
        assert response.headers["content-type"] == "application/json"
        # The middleware outside the lane still wraps its answers.
        assert response.headers["x-request-id"]
        assert response.headers["x-content-type-options"] == "nosniff"
    profile = await client.get(
        "/me/profile",
        headers={"Authorization": f"Bearer {emulator.tenant.mint_access_token(member_id)}"},
    )
    assert profile.status_code == 200
    assert profile.json()["user_id"] == member_id


@pytest.mark.parametrize("caller", ["Admin", GALAXY_ADMIN])
async def test_the_lane_gives_the_routes_answer(
    client: AsyncClient, emulator: EmulatorServer, crowd: list[Any], caller: str
) -> None:
    headers = admin(emulator, caller)
    users: list[dict[str, Any]] = []
    for path in PLAIN:
        # A parameter named twice is the routes' to judge (the lane leaves it): the same
        # request, answered by each.
        sep = "&" if "?" in path else "?"
        by_route = await client.get(f"{path}{sep}per_page=7&per_page=7", headers=headers)
        by_lane = await client.get(f"{path}{sep}per_page=7", headers=headers)
        assert by_lane.status_code == by_route.status_code == 200, path
        assert by_lane.content == by_route.content, path
        assert by_lane.headers["content-type"] == by_route.headers["content-type"]
        assert int(by_lane.headers["content-length"]) == len(by_lane.content)
        if path.startswith("/admin/users?") or path == "/admin/users":
            users += by_lane.json()
    # Real bodies were compared: the crowd's Galaxy memberships were in them.
    assert any(user["platform_memberships"] for user in users)


async def test_what_the_lane_leaves_is_answered_by_the_routes(
    client: AsyncClient, emulator: EmulatorServer, crowd: list[Any]
) -> None:
    member_id = crowd[0].id
    headers = admin(emulator, GALAXY_ADMIN)
    cases: list[tuple[str, dict[str, str], int, str]] = [
        ("/admin/users", {}, 401, "detail"),
        ("/admin/users", {"Authorization": "Bearer not-a-token"}, 401, "detail"),
        ("/admin/users?per_page=0", headers, 422, "detail"),
        ("/admin/users?colour=red", headers, 422, "detail"),
        ("/admin/users?filter_by=tsi", headers, 403, "detail"),
        (
            "/admin/users?approval_status=pending&platform_approval_status=pending",
            headers,
            400,
            "detail",
        ),
        ("/admin/users/pages?platform=nowhere", headers, 404, "detail"),
        ("/me/profile", {}, 401, "detail"),
    ]
    for path, given, status, field in cases:
        response = await client.get(path, headers=given)
        assert response.status_code == status, (path, response.text)
        assert field in response.json(), path
    # A plain user is not an admin: 403 from the route, as before the lane.
    token = {"Authorization": f"Bearer {emulator.tenant.mint_access_token(member_id)}"}
    assert (await client.get("/admin/users", headers=token)).status_code == 403
