"""The Management API scopes this service needs: the grant the management client must hold
(README, "Tenant setup"), one per gateway operation.

Auth0 refuses an endpoint with 403 `insufficient_scope` unless the token holds one of the
endpoint's scopes (Management API v2 reference, each endpoint's "Scopes"); the scope named
here is the narrowest that endpoint accepts. `check-auth0` (scripts/entrypoint.py)
compares a fresh token's scopes with this list.
"""

OPERATION_SCOPES: dict[str, str] = {
    "users.get": "read:users",
    "users.by_email": "read:users",
    "users.list": "read:users",
    "users.create": "create:users",
    "users.update": "update:users",
    "users.delete": "delete:users",
    "users.refresh_tokens.delete": "delete:refresh_tokens",
    "users.roles.list": "read:users",
    "users.roles.assign": "update:users",
    "users.roles.delete": "update:users",
    "roles.list": "read:roles",
    "roles.create": "create:roles",
    "roles.update": "update:roles",
    "roles.delete": "delete:roles",
    "roles.users.list": "read:role_members",
    "jobs.users_exports.create": "read:users",
    "jobs.get": "read:users",
    "jobs.verification_email": "update:users",
    "tickets.password_change": "create:user_tickets",
}

REQUIRED_SCOPES: tuple[str, ...] = tuple(sorted(set(OPERATION_SCOPES.values())))


def missing_scopes(granted: frozenset[str] | set[str]) -> list[str]:
    return [scope for scope in REQUIRED_SCOPES if scope not in granted]
