"""The hot reads (one SQL statement each, services/users/json_reads.py) from the
attacker's side: they check the caller's deactivation in that statement instead of in
the usual dependency, and skip the catalog lookup for filters inside a scoped admin's
scope, so each is tried here by deactivated callers, and against admins as targets."""

import pytest
from sqlmodel.ext.asyncio.session import AsyncSession

from db.models import PlatformMembership, User
from db.types import ApprovalStatus
from scripts.auth0_emulator.server import EmulatorServer
from tests.routers.admin_world import World, admin_user

GALAXY_ADMIN = "biocommons/role/galaxy/admin"


def hot_paths(world: World) -> list[str]:
    return [
        "/admin/users",
        "/admin/users/pages",
        "/admin/users?platform=galaxy&platform_approval_status=pending",
        "/admin/users/pages?platform=galaxy&platform_approval_status=pending",
        f"/admin/users/{world.subject}/details",
        "/admin/users/auth0|nobody-at-all/details",
        "/me/profile",
    ]


@pytest.mark.parametrize(
    ("roles", "how"),
    [
        (["Admin"], "deleted"),
        (["Admin"], "blocked"),
        ([GALAXY_ADMIN], "deleted"),
        ([], "deleted"),  # no admin either: 401, not 403
    ],
)
async def test_a_deactivated_caller_reads_nothing(
    client, session: AsyncSession, emulator: EmulatorServer, world: World, roles, how
):
    caller, headers = admin_user(emulator, *roles)
    session.add(
        User(
            id=caller,
            email=f"{caller.split('|')[-1]}@example.org",
            is_deleted=how == "deleted",
            blocked=how == "blocked",
        )
    )
    await session.flush()
    for path in hot_paths(world):
        response = await client.get(path, headers=headers)
        assert response.status_code == 401, (path, response.text)
        assert "deactivated" in response.json()["detail"], path


async def test_a_platform_admin_reads_no_admin_outside_their_platform(
    client, session: AsyncSession, emulator: EmulatorServer, world: World
):
    _, headers = admin_user(emulator, GALAXY_ADMIN)
    general, _ = admin_user(emulator, "Admin")
    galaxy_peer, _ = admin_user(emulator, GALAXY_ADMIN)
    session.add_all(
        [
            User(id=general, email=f"{general.split('|')[-1]}@example.org"),
            User(id=galaxy_peer, email=f"{galaxy_peer.split('|')[-1]}@example.org"),
        ]
    )
    await session.flush()
    session.add(
        PlatformMembership(
            platform_id="galaxy", user_id=galaxy_peer, approval_status=ApprovalStatus.APPROVED
        )
    )
    await session.flush()

    outside = await client.get(f"/admin/users/{general}/details", headers=headers)
    assert outside.status_code == 403, outside.text
    listed = await client.get("/admin/users?per_page=100", headers=headers)
    assert listed.status_code == 200
    assert general not in {user["id"] for user in listed.json()}
    # An admin with a Galaxy membership is in the Galaxy admin's view (to read, not to
    # change: account actions are refused, tests/security/test_admin_scope.py).
    inside = await client.get(f"/admin/users/{galaxy_peer}/details", headers=headers)
    assert inside.status_code == 200, inside.text
    assert [m["platform_id"] for m in inside.json()["platform_memberships"]] == ["galaxy"]
    # A platform the caller does not administer is refused, not quietly read.
    other = await client.get("/admin/users?platform=bpa_data_portal", headers=headers)
    assert other.status_code == 403, other.text
