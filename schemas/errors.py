"""The error bodies every route may answer with, for the OpenAPI document (one handler
renders them: main.py). Routers add the groups that apply to them."""

from typing import Any

from pydantic import BaseModel, ConfigDict


class ErrorBody(BaseModel):
    """`{"detail": "...", "message": "...", "error": "<code>"}` (`message` repeats `detail`
    for the portal's alerts), sometimes with more context (`current_status`,
    `field`, or a form's `message` and `field_errors`)."""

    model_config = ConfigDict(extra="allow")

    detail: str
    error: str


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description}


# Every route: the database (or Auth0, where a route needs it) is down.
UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    502: _error("Auth0 answered with an error"),
    503: _error("The database or Auth0 is unavailable; retry after Retry-After seconds"),
}
# Routes behind a bearer token.
AUTHENTICATED: dict[int | str, dict[str, Any]] = {
    401: _error("Missing, malformed, expired or forged access token, or a deactivated account"),
    403: _error("The token is valid but does not allow this"),
}
# Routes that look things up or change state.
LOOKUPS: dict[int | str, dict[str, Any]] = {
    400: _error(
        "Invalid input: forms answer `{message, field_errors: [{field, message}]}` as well"
    ),
    404: _error("No such user, platform or group"),
    409: _error("Conflicts with the current state (the body says which)"),
}
RATE_LIMITED: dict[int | str, dict[str, Any]] = {
    429: _error("Too many requests from this client; retry after Retry-After seconds"),
}
# The inboxes Auth0 pushes to.
INBOX: dict[int | str, dict[str, Any]] = {
    400: _error("The body is not a well-formed batch; nothing was stored"),
    401: _error("The Authorization header does not carry the inbox's secret"),
    404: _error("This inbox is not enabled (its secret is not set)"),
    413: _error("The body is larger than EVENTS_MAX_BODY_BYTES"),
}
