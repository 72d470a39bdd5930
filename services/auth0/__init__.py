"""Everything that talks to Auth0's Management API goes through `Auth0Gateway`.

`gateway` holds one method per Management API operation; `transport` how each request is
made (token, pacing, breaker, retries, the request-path deadline, errors); `pacing` and
`breaker` the two throttles; `credentials` the client-credentials token.
"""

from services.auth0.credentials import ManagementTokenProvider
from services.auth0.gateway import Auth0Gateway
from services.auth0.transport import Auth0Stats

__all__ = ["Auth0Gateway", "Auth0Stats", "ManagementTokenProvider"]
