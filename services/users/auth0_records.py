"""An Auth0 user object (or a line of a users export) as an `app_user` row.

Shared by the request path (a user who signed up moments ago is created from Auth0 on first
sight) and the scheduler's users sync, so both write the same columns the same way.
"""

from datetime import UTC, datetime
from typing import Any

BLOCKED_REASON = "blocked in Auth0"
GONE_REASON = "deleted in Auth0"


def _timestamp(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _clip(value: Any, length: int) -> str | None:
    return str(value)[:length] if value not in (None, "") else None


def user_row(raw: dict[str, Any]) -> dict[str, Any] | None:
    """One Auth0 user (export line or API object) as a stage row."""
    user_id = raw.get("user_id")
    if not user_id:
        return None
    connection = raw.get("identities[0].connection")
    if connection is None and raw.get("identities"):
        connection = raw["identities"][0].get("connection")
    return {
        "id": str(user_id),
        "email": _clip(raw.get("email"), 320),
        "email_verified": bool(raw.get("email_verified")),
        "username": _clip(raw.get("username"), 128),
        "name": _clip(raw.get("name"), 255),
        "given_name": _clip(raw.get("given_name"), 255),
        "family_name": _clip(raw.get("family_name"), 255),
        "picture": raw.get("picture"),
        "connection": _clip(connection, 128),
        # An export line names the field by its path; an API object nests it.
        "registration_from": _clip(
            raw.get("app_metadata.registration_from")
            or (raw.get("app_metadata") or {}).get("registration_from"),
            64,
        ),
        "blocked": bool(raw.get("blocked")),
        "created_at": _timestamp(raw.get("created_at")),
        "last_login": _timestamp(raw.get("last_login")),
        # How new this profile is on Auth0's clock (events older than the row's are stale).
        "auth0_updated_at": _timestamp(raw.get("updated_at")),
    }
