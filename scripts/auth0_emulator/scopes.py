"""Which Management API scope each emulated endpoint needs.

Auth0 checks the scopes of the Management API token against the endpoint: a token without
one of them is refused 403 `{"errorCode": "insufficient_scope", "message": "Insufficient
scope, expected any of: read:users,read:current_user,read:user_idp_tokens"}` (the body
quoted in raster-foundry/raster-foundry#2030 and auth0/auth0-cli#538; "any of": one listed
scope is enough). A client-credentials token carries exactly the scopes of the client's
grant on the Management API (auth0/auth0-java#145: scopes ticked in the dashboard appear
in new tokens only), and asking for a scope the grant lacks is refused at the token
endpoint.

The lists are those of the Management API v2 reference, one page per endpoint
(https://auth0.com/docs/api/management/v2/users/get-users, .../users/patch-users-by-id,
.../roles/get-role-user, .../jobs/post-users-exports, .../tickets/post-password-change,
.../users/delete-refresh-tokens-for-user, ...). Keys are the route templates under /api/v2.
"""

ENDPOINT_SCOPES: dict[tuple[str, str], tuple[str, ...]] = {
    ("GET", "/users"): ("read:users",),
    ("POST", "/users"): ("create:users",),
    ("GET", "/users/{user_id}"): ("read:users", "read:current_user", "read:user_idp_tokens"),
    ("PATCH", "/users/{user_id}"): (
        "update:users",
        "update:users_app_metadata",
        "update:current_user_metadata",
    ),
    ("DELETE", "/users/{user_id}"): ("delete:users", "delete:current_user"),
    ("GET", "/users-by-email"): ("read:users",),
    ("GET", "/users/{user_id}/roles"): ("read:users", "read:roles", "read:role_members"),
    ("POST", "/users/{user_id}/roles"): ("update:users", "create:role_members"),
    ("DELETE", "/users/{user_id}/roles"): ("update:users", "delete:role_members"),
    ("DELETE", "/users/{user_id}/refresh-tokens"): ("delete:refresh_tokens",),
    ("POST", "/users/{user_id}/identities"): ("update:users", "update:current_user_identities"),
    ("GET", "/roles"): ("read:roles",),
    ("POST", "/roles"): ("create:roles",),
    ("GET", "/roles/{role_id}"): ("read:roles",),
    ("PATCH", "/roles/{role_id}"): ("update:roles",),
    ("DELETE", "/roles/{role_id}"): ("delete:roles",),
    ("GET", "/roles/{role_id}/users"): ("read:users", "read:roles", "read:role_members"),
    ("POST", "/roles/{role_id}/users"): ("update:roles", "create:role_members"),
    ("POST", "/jobs/users-exports"): ("read:users",),
    ("GET", "/jobs/{job_id}"): ("create:users", "read:users"),
    ("POST", "/jobs/verification-email"): ("update:users",),
    ("POST", "/tickets/password-change"): ("create:user_tickets",),
}

ALL_SCOPES: frozenset[str] = frozenset(
    scope for scopes in ENDPOINT_SCOPES.values() for scope in scopes
)


def insufficient(needed: tuple[str, ...], held: frozenset[str]) -> bool:
    return not held.intersection(needed)
