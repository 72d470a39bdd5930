"""General admins shaping the catalog: roles, platforms, groups, extra admin roles."""

import secrets

import pytest
from sqlmodel import col, select

from db.models import Auth0Role, Platform, PlatformAdminRole
from db.types import ApprovalStatus
from services.sync.role_import import sync_roles
from services.sync.runs import JobContext
from tests.conftest import savepoint_sessions
from tests.factories import make_gateway
from tests.routers.admin_world import admin, membership


def new_id() -> str:
    return f"plat{secrets.token_hex(3)}"


class TestRoles:
    async def test_create_is_get_or_create(self, client, session, emulator, world):
        headers = admin(emulator, "Admin")
        name = f"Curators{secrets.token_hex(2)}"
        first = await client.post(
            "/biocommons-admin/roles/create",
            json={"name": name, "description": "Curators"},
            headers=headers,
        )
        assert first.status_code == 200, first.text
        assert first.json()["created"] is True
        again = await client.post(
            "/biocommons-admin/roles/create", json={"name": name}, headers=headers
        )
        assert again.json() == {**first.json(), "created": False}
        assert emulator.tenant.role_by_name(name)["id"] == first.json()["id"]
        assert (await session.get(Auth0Role, first.json()["id"])).name == name

    async def test_only_general_admins(self, client, emulator, world):
        response = await client.post(
            "/biocommons-admin/roles/create",
            json={"name": "x"},
            headers=admin(emulator, "biocommons/role/galaxy/admin"),
        )
        assert response.status_code == 403

    async def test_bad_input_is_a_field_error(self, client, emulator, world):
        response = await client.post(
            "/biocommons-admin/roles/create",
            json={"name": "has spaces"},
            headers=admin(emulator, "Admin"),
        )
        assert response.status_code == 400
        assert response.json()["field_errors"][0]["field"] == "name"


class TestPlatforms:
    async def test_create_makes_the_roles_in_auth0_and_the_platform_here(
        self, client, session, emulator, world
    ):
        platform_id = new_id()
        response = await client.post(
            "/biocommons-admin/platforms/create",
            json={"id": platform_id, "name": "Shiny Portal"},
            headers=admin(emulator, "Admin"),
        )
        assert response.status_code == 200, response.text
        assert response.json() == {
            "type": "platform",
            "id": platform_id,
            "name": "Shiny Portal",
            "short_name": platform_id,
            "admin_roles": [f"biocommons/role/{platform_id}/admin"],
        }
        access = emulator.tenant.role_by_name(f"biocommons/platform/{platform_id}")
        assert access["description"] == "Shiny Portal"
        platform = await session.get(Platform, platform_id)
        assert platform.access_role_id == access["id"]
        # Its own admin role administers it at once.
        filters = await client.get(
            "/admin/filters", headers=admin(emulator, f"biocommons/role/{platform_id}/admin")
        )
        assert filters.json() == [{"id": platform_id, "name": "Shiny Portal", "type": "platform"}]

    async def test_unknown_admin_roles_are_refused(self, client, emulator, world):
        response = await client.post(
            "/biocommons-admin/platforms/create",
            json={"id": new_id(), "name": "X", "admin_roles": ["NoSuchRole"]},
            headers=admin(emulator, "Admin"),
        )
        assert response.status_code == 400
        assert "NoSuchRole" in response.json()["field_errors"][0]["message"]

    async def test_extra_admin_roles_grant_admin_rights_and_survive_the_sync(
        self, client, session, emulator, world, settings, pg_engine
    ):
        headers = admin(emulator, "Admin")
        role = f"GalaxyStewards{secrets.token_hex(2)}"
        await client.post("/biocommons-admin/roles/create", json={"name": role}, headers=headers)
        steward = admin(emulator, role)
        await membership(session, world, "platform", "galaxy", ApprovalStatus.PENDING)
        assert (await client.get("/admin/users", headers=steward)).status_code == 403

        response = await client.post(
            "/biocommons-admin/platforms/galaxy/set-admin-roles",
            json={"role_names": [role]},
            headers=headers,
        )
        assert response.status_code == 200, response.text
        assert role in response.json()["admin_roles"]
        listed = await client.get("/admin/users", headers=steward)
        assert [u["id"] for u in listed.json()] == [world.subject]

        # The roles sync owns only the links named after a platform; this one stays.
        connection = await session.connection()
        gateway = make_gateway(emulator, jobs=True)
        try:
            await sync_roles(
                JobContext(settings, pg_engine, savepoint_sessions(connection), gateway)
            )
        finally:
            await gateway.aclose()
        linked = (
            await session.exec(
                select(col(Auth0Role.name))
                .join(PlatformAdminRole, col(PlatformAdminRole.role_id) == col(Auth0Role.id))
                .where(col(PlatformAdminRole.platform_id) == "galaxy")
            )
        ).all()
        assert role in linked

        # An empty list removes it again.
        cleared = await client.post(
            "/biocommons-admin/platforms/galaxy/set-admin-roles",
            json={"role_names": []},
            headers=headers,
        )
        assert role not in cleared.json()["admin_roles"]

    async def test_unknown_platform_is_404(self, client, emulator, world):
        response = await client.post(
            "/biocommons-admin/platforms/nope/set-admin-roles",
            json={"role_names": []},
            headers=admin(emulator, "Admin"),
        )
        assert response.status_code == 404


class TestGroups:
    async def test_create_and_set_admin_roles_by_short_id(self, client, emulator, world):
        headers = admin(emulator, "Admin")
        short = f"grp{secrets.token_hex(3)}"
        created = await client.post(
            "/biocommons-admin/groups/create",
            json={"group_id": f"biocommons/group/{short}", "name": "Marine Genomics"},
            headers=headers,
        )
        assert created.status_code == 200, created.text
        assert created.json()["short_name"] == "MG"
        assert emulator.tenant.role_by_name(f"biocommons/role/{short}/admin") is not None
        extra = f"MarineLeads{secrets.token_hex(2)}"
        await client.post("/biocommons-admin/roles/create", json={"name": extra}, headers=headers)
        updated = await client.post(
            f"/biocommons-admin/groups/{short}/set-admin-roles",
            json={"role_names": [extra]},
            headers=headers,
        )
        assert updated.status_code == 200, updated.text
        # Its own admin role cannot be unlinked; the extra one is added.
        assert sorted(updated.json()["admin_roles"]) == sorted(
            [f"biocommons/role/{short}/admin", extra]
        )

    @pytest.mark.parametrize("group_id", ["tsi", "other/group/x", "biocommons/platform/x"])
    async def test_group_ids_follow_the_role_scheme(self, client, emulator, world, group_id):
        response = await client.post(
            "/biocommons-admin/groups/create",
            json={"group_id": group_id, "name": "X"},
            headers=admin(emulator, "Admin"),
        )
        assert response.status_code == 400
        assert response.json()["field_errors"][0]["field"] == "group_id"
