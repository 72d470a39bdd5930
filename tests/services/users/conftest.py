from tests.routers.admin_world import world

__all__ = ["world"]
