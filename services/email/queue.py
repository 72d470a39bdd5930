"""Enqueueing. A row is written in the caller's transaction, so it is sent only if the
change that caused it commits; `dedupe_key` makes a retried request (or a double click)
enqueue nothing new."""

import uuid
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from db.base import utcnow
from db.bulk import affected, dialect_insert
from db.models import EmailNotification
from db.types import EmailStatus
from services.email.templates import MESSAGES, render
from services.settings import Settings


async def enqueue(
    session: AsyncSession,
    settings: Settings,
    message: str,
    *,
    to: str,
    context: dict[str, Any],
    dedupe_key: str | None = None,
) -> bool:
    """Render `message` for `to` and queue it; False when the dedupe key was queued before."""
    rendered = render(message, settings, context)
    definition = MESSAGES[message]
    now = utcnow()
    statement = (
        dialect_insert(session, EmailNotification.__table__)
        .values(
            id=uuid.uuid4(),
            to_address=to,
            from_address=settings.no_reply_email_sender,
            subject=rendered.subject,
            body_html=rendered.html,
            body_text=rendered.text,
            template=message,
            dedupe_key=dedupe_key,
            priority=definition.priority,
            status=EmailStatus.PENDING,
            attempts=0,
            send_after=now,
            expires_at=now + definition.lifetime if definition.lifetime else None,
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
    )
    result = await session.execute(statement)
    return affected(result) > 0


async def queue_welcome(
    session: AsyncSession, settings: Settings, *, to: str, user_id: str, name: str | None
) -> bool:
    """The welcome email, at most once per user whichever flow asks for it."""
    return await enqueue(
        session,
        settings,
        "welcome",
        to=to,
        context={"name": name or "there"},
        dedupe_key=f"welcome:{user_id}",
    )
