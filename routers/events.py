"""The inboxes Auth0 pushes to (README "Event and Log Streams"): each stores the delivery
and answers 202 at once; the scheduler applies it."""

from typing import Annotated

from fastapi import APIRouter, Header, Request
from pydantic import BaseModel

from db.types import EventSource
from routers.deps import SessionDep, SettingsDep
from schemas.errors import INBOX, UNAVAILABLE
from services.events import inbox

# The route's own cap, over the app's usual one: a Log Stream batch may be large.
# EVENTS_MAX_BODY_BYTES (at most this) is the limit that applies.
BODY_CAP = 16 * 1024 * 1024

router = APIRouter(
    prefix="/events/auth0",
    tags=["events"],
    responses={**INBOX, **UNAVAILABLE},
)


class InboxReceipt(BaseModel):
    received: int
    stored: int
    duplicates: int


Authorization = Annotated[str | None, Header()]


async def _receive(
    source: EventSource,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    authorization: str | None,
) -> InboxReceipt:
    body = await request.body()
    return InboxReceipt(**await inbox.receive(session, settings, source, authorization, body))


@router.post("/event-stream", status_code=202, max_body_size=BODY_CAP)
async def event_stream(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    authorization: Authorization = None,
) -> InboxReceipt:
    """Auth0 Event Streams (webhook destination): CloudEvents about users."""
    return await _receive(EventSource.EVENT_STREAM, request, session, settings, authorization)


@router.post("/log-stream", status_code=202, max_body_size=BODY_CAP)
async def log_stream(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    authorization: Authorization = None,
) -> InboxReceipt:
    """An Auth0 Log Stream (custom webhook): batches of tenant log entries."""
    return await _receive(EventSource.LOG_STREAM, request, session, settings, authorization)
