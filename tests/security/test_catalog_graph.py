"""The admin-role graph: no link may hand one target's admins another target, or make
every member of a role an admin."""

import secrets

import pytest

from db.models import Auth0Role
from scripts.auth0_emulator.server import EmulatorServer
from tests.routers.admin_world import TSI, World, admin


async def test_a_group_cannot_take_a_platforms_id(client, emulator: EmulatorServer, world: World):
    response = await client.post(
        "/biocommons-admin/groups/create",
        json={"group_id": "biocommons/group/galaxy", "name": "Galaxy fan club"},
        headers=admin(emulator, "Admin"),
    )
    assert response.status_code == 400, response.text
    (error,) = response.json()["field_errors"]
    assert error["field"] == "group_id"
    assert "biocommons/role/galaxy/admin" in error["message"]
    assert emulator.tenant.role_by_name("biocommons/group/galaxy") is None


async def test_a_platform_cannot_take_a_groups_short_id(
    client, emulator: EmulatorServer, world: World
):
    response = await client.post(
        "/biocommons-admin/platforms/create",
        json={"id": "tsi", "name": "TSI portal"},
        headers=admin(emulator, "Admin"),
    )
    assert response.status_code == 400, response.text
    assert response.json()["field_errors"][0]["field"] == "id"
    assert emulator.tenant.role_by_name("biocommons/platform/tsi") is None


@pytest.mark.parametrize(
    ("role", "why"),
    [
        ("biocommons/platform/bpa_data_portal", "access role"),
        (TSI, "access role"),
        ("Admin", "general admin role"),
        ("biocommons/role/bpa_data_portal/admin", "admin role of 'bpa_data_portal'"),
        ("bpa curators", "already administers platform 'bpa_data_portal'"),
    ],
)
async def test_set_admin_roles_refuses_roles_that_would_widen_someones_reach(
    client, session, emulator: EmulatorServer, world: World, linked_role, role, why
):
    if role == "bpa curators":
        role = linked_role
    for name in ("Admin", "biocommons/role/bpa_data_portal/admin"):
        found = emulator.tenant.role_by_name(name) or emulator.tenant.create_role(name)
        if await session.get(Auth0Role, found["id"]) is None:
            session.add(Auth0Role(id=found["id"], name=name))
    await session.flush()
    headers = admin(emulator, "Admin")
    response = await client.post(
        "/biocommons-admin/platforms/galaxy/set-admin-roles",
        json={"role_names": [role]},
        headers=headers,
    )
    assert response.status_code == 400, response.text
    (error,) = response.json()["field_errors"]
    assert error["field"] == "role_names"
    assert why in error["message"]


async def test_set_admin_roles_takes_an_ordinary_role(
    client, session, emulator: EmulatorServer, world: World
):
    name = f"galaxy-curators-{secrets.token_hex(3)}"
    role = emulator.tenant.create_role(name, "Galaxy curators")
    session.add(Auth0Role(id=role["id"], name=name))
    await session.flush()
    response = await client.post(
        "/biocommons-admin/platforms/galaxy/set-admin-roles",
        json={"role_names": [name]},
        headers=admin(emulator, "Admin"),
    )
    assert response.status_code == 200, response.text
    assert name in response.json()["admin_roles"]


async def test_a_removed_general_admin_cannot_change_the_catalog(
    client, emulator: EmulatorServer, world: World
):
    """The token (issued before the role was removed in Auth0) still says Admin."""
    user = emulator.tenant.create_user(
        {
            "connection": "Username-Password-Authentication",
            "email": f"former.{secrets.token_hex(3)}@example.org",
            "password": "long-enough-1",
        }
    )
    token = emulator.tenant.mint_access_token(user["user_id"], roles=["Admin"])
    name = f"sneaky-{secrets.token_hex(3)}"
    response = await client.post(
        "/biocommons-admin/roles/create",
        json={"name": name},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 403, response.text
    assert emulator.tenant.role_by_name(name) is None
