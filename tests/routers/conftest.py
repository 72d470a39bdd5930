from tests.routers.admin_world import world
from tests.routers.db_admin_world import dashboard_db

__all__ = ["dashboard_db", "world"]
