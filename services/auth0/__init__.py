"""Everything that talks to Auth0's Management API goes through `Auth0Gateway`."""

from services.auth0.gateway import Auth0Gateway, Auth0Stats
from services.auth0.token import ManagementTokenProvider

__all__ = ["Auth0Gateway", "Auth0Stats", "ManagementTokenProvider"]
