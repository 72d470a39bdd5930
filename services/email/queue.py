"""Enqueueing. A row is written in the caller's transaction, so it is sent only if the
change that caused it commits; `dedupe_key` makes a retried request enqueue nothing new."""

import uuid

from sqlmodel.ext.asyncio.session import AsyncSession

from db.base import utcnow
from db.models import EmailNotification
from db.types import EmailStatus
from services.sync.sql import dialect_insert

PRIORITY_CODE = 10  # one-time codes go first
PRIORITY_NORMAL = 100


async def enqueue(
    session: AsyncSession,
    *,
    to: str,
    subject: str,
    body_html: str,
    body_text: str,
    template: str,
    dedupe_key: str | None = None,
    sender: str | None = None,
    priority: int = PRIORITY_NORMAL,
) -> bool:
    """Queue one message; False when the same dedupe key was queued before."""
    now = utcnow()
    statement = (
        dialect_insert(session, EmailNotification.__table__)
        .values(
            id=uuid.uuid4(),
            to_address=to,
            from_address=sender,
            subject=subject,
            body_html=body_html,
            body_text=body_text,
            template=template,
            dedupe_key=dedupe_key,
            priority=priority,
            status=EmailStatus.PENDING,
            attempts=0,
            send_after=now,
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
    )
    result = await session.execute(statement)
    return (result.rowcount or 0) > 0
