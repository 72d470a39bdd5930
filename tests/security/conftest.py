from tests.routers.admin_world import world
from tests.routers.db_admin_world import dashboard_db
from tests.services.sync.conftest import sync_ctx, tenant_server

__all__ = ["dashboard_db", "sync_ctx", "tenant_server", "world"]
