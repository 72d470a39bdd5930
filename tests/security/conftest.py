import secrets

import pytest
from sqlmodel.ext.asyncio.session import AsyncSession

from db.models import Auth0Role, PlatformAdminRole
from scripts.auth0_emulator.server import EmulatorServer
from tests.routers.admin_world import World, world
from tests.routers.db_admin_world import dashboard_db
from tests.services.sync.conftest import sync_ctx, tenant_server

__all__ = ["dashboard_db", "linked_role", "sync_ctx", "tenant_server", "world"]


@pytest.fixture
async def linked_role(session: AsyncSession, emulator: EmulatorServer, world: World) -> str:
    """A role with an ordinary name that a general admin linked as BPA's admin role."""
    name = f"bpa-curators-{secrets.token_hex(3)}"
    role = emulator.tenant.create_role(name, "BPA curators")
    session.add(Auth0Role(id=role["id"], name=name))
    await session.flush()
    session.add(PlatformAdminRole(platform_id="bpa_data_portal", role_id=role["id"]))
    await session.flush()
    return name
