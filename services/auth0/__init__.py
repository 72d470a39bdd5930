"""Everything that talks to Auth0's Management API goes through `Auth0Gateway`."""

from services.auth0.credentials import ManagementTokenProvider
from services.auth0.gateway import Auth0Gateway, Auth0Stats

__all__ = ["Auth0Gateway", "Auth0Stats", "ManagementTokenProvider"]
