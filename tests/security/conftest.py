from tests.routers.admin_world import world
from tests.services.sync.conftest import sync_ctx, tenant_server

__all__ = ["sync_ctx", "tenant_server", "world"]
