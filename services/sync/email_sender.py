"""Job `email.deliver`: send the email queue (services/email/delivery.py) until nothing is due."""

import sqlalchemy as sa

from db.base import utcnow
from db.models import EmailNotification
from db.types import EmailStatus
from services.email.backends import build_backend
from services.email.delivery import deliver
from services.sync.runs import JobContext


async def deliver_emails(ctx: JobContext) -> None:
    if ctx.dry_run:
        t = EmailNotification.__table__
        async with ctx.sessions() as session:
            due = await session.scalar(
                sa.select(sa.func.count())
                .select_from(t)
                .where(t.c.status == EmailStatus.PENDING, t.c.send_after <= utcnow())
            )
        if due:
            ctx.count("would_send", due)
        return
    backend = build_backend(ctx.settings)
    try:
        stats = await deliver(ctx.sessions, backend, ctx.settings)
    finally:
        await backend.aclose()
    ctx.counts.update(stats.as_counts())
