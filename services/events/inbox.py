"""Accepting Auth0's pushes: authenticate, bound, parse, store, answer, nothing else.

Auth0 retries a delivery that gets no 2xx and redelivers some that did, in no guaranteed
order ("Events Best Practices": ignore duplicate events, handle out-of-sequence events,
answer 2xx at once and process asynchronously:
https://auth0.com/docs/customize/events/events-best-practices). So a request only checks
the secret, parses the body whole (a malformed one is refused with nothing stored, and
Auth0 tries again), and inserts the events keyed by their own id, where a redelivery
changes nothing. No Auth0 call is made here; the scheduler's `events.apply` does the rest.

- **Event Streams** (webhook destination) post CloudEvents, `{id, source, specversion,
  type, time, data: {object}}`, one per request, `type` `user.created`/`user.updated`/
  `user.deleted` with the user object (https://auth0.com/docs/customize/events/event-types);
  its webhook authenticates with a bearer token, basic auth or a custom header
  (EventStreamWebhookAuthorization in the Management API). A JSON array of events is
  accepted too.
- **A Log Stream** (custom webhook) posts tenant log entries, `{log_id, data: {type, date,
  user_id, details, …}}`, as a JSON array, JSON lines or one object per request (the
  stream's Content Format), with a static Authorization header
  (https://auth0.com/docs/customize/log-streams/custom-log-streams).
"""

import base64
import binascii
import hmac
import json
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from pydantic import SecretStr
from sqlmodel.ext.asyncio.session import AsyncSession

from db.bulk import dialect_insert
from db.models import Auth0Event
from db.types import EventSource, EventStatus
from services.errors import BadRequest, NotFound, PayloadTooLarge, Unauthorized
from services.settings import Settings

MAX_EVENTS_PER_REQUEST = 10_000
INSERT_BATCH = 1000
_USER_IN_PATH = re.compile(r"^/api/v2/users/([^/?]+)")


def check_secret(configured: SecretStr | None, authorization: str | None, what: str) -> None:
    """The inbox is off (404) without its secret; otherwise the Authorization header must
    carry it, as `Bearer <secret>` or as the password of basic auth, compared in constant
    time."""
    secret = configured.get_secret_value() if configured else ""
    if not secret:
        raise NotFound(f"the {what} inbox is not enabled")
    presented = _presented(authorization or "")
    if not hmac.compare_digest(presented.encode(), secret.encode()):
        raise Unauthorized(f"the {what} inbox needs its secret", headers={})


def _presented(header: str) -> str:
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() == "bearer":
        return value.strip()
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return ""
        return decoded.partition(":")[2]
    return header.strip()  # a Log Stream sends its Authorization value as typed


def check_size(body: bytes, limit: int) -> None:
    if len(body) > limit:
        raise PayloadTooLarge(f"the body is {len(body)} bytes; the inbox takes at most {limit}")


def parse_timestamp(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _text(value: Any, limit: int) -> str | None:
    return value if isinstance(value, str) and 0 < len(value) <= limit else None


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"the body is not JSON: {exc}") from None


def _too_many(count: int) -> None:
    if count > MAX_EVENTS_PER_REQUEST:
        raise BadRequest(f"{count} events in one request; at most {MAX_EVENTS_PER_REQUEST}")


def parse_cloud_events(body: bytes) -> list[dict[str, Any]]:
    """Event Streams' CloudEvents as inbox rows; any malformed event refuses the request."""
    data = _json(body)
    events = data if isinstance(data, list) else [data]
    _too_many(len(events))
    rows = []
    for index, event in enumerate(events):
        where = f"event {index}"
        if not isinstance(event, dict):
            raise BadRequest(f"{where}: not a JSON object")
        event_id, kind = _text(event.get("id"), 255), _text(event.get("type"), 128)
        if event_id is None or kind is None:
            raise BadRequest(f"{where}: `id` and `type` must be non-empty strings")
        kind = kind.removeprefix("com.auth0.")  # the schema pages name types in full
        occurred = parse_timestamp(event.get("time"))
        if occurred is None:
            raise BadRequest(f"{where} ({event_id}): `time` must be an ISO-8601 timestamp")
        payload = event.get("data")
        if not isinstance(payload, dict):
            raise BadRequest(f"{where} ({event_id}): `data` must be an object")
        user_id = None
        if kind.startswith("user."):
            obj = payload.get("object")
            user_id = _text(obj.get("user_id"), 255) if isinstance(obj, dict) else None
            if user_id is None:
                raise BadRequest(f"{where} ({event_id}): `data.object.user_id` is missing")
        rows.append(
            {
                "source": EventSource.EVENT_STREAM,
                "event_id": event_id,
                "type": kind[:64],
                "user_id": user_id,
                "occurred_at": occurred,
                "body": event,
            }
        )
    return rows


def parse_log_entries(body: bytes) -> list[dict[str, Any]]:
    """A Log Stream's batch as inbox rows: a JSON array, one JSON object, or JSON lines."""
    try:
        data = json.loads(body)
        entries = data if isinstance(data, list) else [data]
    except (ValueError, UnicodeDecodeError):
        entries = [_json(line) for line in body.splitlines() if line.strip()]
    _too_many(len(entries))
    rows = []
    for index, entry in enumerate(entries):
        where = f"entry {index}"
        if not isinstance(entry, dict):
            raise BadRequest(f"{where}: not a JSON object")
        log = entry.get("data", entry)
        log_id = _text(
            entry.get("log_id") or (log.get("log_id") if isinstance(log, dict) else None), 255
        )
        if log_id is None or not isinstance(log, dict):
            raise BadRequest(f"{where}: `log_id` and the `data` object are required")
        kind = _text(log.get("type"), 64)
        if kind is None:
            raise BadRequest(f"{where} ({log_id}): `data.type` must be a non-empty string")
        rows.append(
            {
                "source": EventSource.LOG_STREAM,
                "event_id": log_id,
                "type": kind,
                "user_id": _log_user(log),
                "occurred_at": parse_timestamp(log.get("date")),
                "body": log,
            }
        )
    return rows


def _log_user(log: dict[str, Any]) -> str | None:
    details = log.get("details")
    request = details.get("request") if isinstance(details, dict) else None
    path = request.get("path") if isinstance(request, dict) else None
    if isinstance(path, str) and (match := _USER_IN_PATH.match(path)):
        return unquote(match.group(1))[:255]
    return _text(log.get("user_id"), 255)


async def store(session: AsyncSession, rows: list[dict[str, Any]]) -> tuple[int, int]:
    """Insert what is new; returns (stored, duplicates)."""
    table = Auth0Event.__table__
    stored = 0
    for start in range(0, len(rows), INSERT_BATCH):
        chunk = [
            {**row, "status": EventStatus.PENDING} for row in rows[start : start + INSERT_BATCH]
        ]
        statement = (
            dialect_insert(session, table)
            .values(chunk)
            .on_conflict_do_nothing(index_elements=["source", "event_id"])
            .returning(table.c.id)
        )
        stored += len((await session.execute(statement)).all())
    return stored, len(rows) - stored


async def receive(
    session: AsyncSession,
    settings: Settings,
    source: EventSource,
    authorization: str | None,
    body: bytes,
) -> dict[str, int]:
    """One delivery: checked, parsed whole, stored; returns what was received and stored."""
    if source is EventSource.EVENT_STREAM:
        check_secret(settings.events_stream_secret, authorization, "Event Streams")
    else:
        check_secret(settings.log_stream_secret, authorization, "Log Stream")
    check_size(body, settings.events_max_body_bytes)
    rows = (
        parse_cloud_events(body) if source is EventSource.EVENT_STREAM else parse_log_entries(body)
    )
    stored, duplicates = await store(session, rows) if rows else (0, 0)
    return {"received": len(rows), "stored": stored, "duplicates": duplicates}
