"""Job `sync.outbox`: deliver pending Auth0 role grants/revokes recorded by the API.

Each entry is claimed with `FOR UPDATE SKIP LOCKED` (two schedulers never deliver the same
one), sent, and marked done; a failure is retried with exponential backoff until
OUTBOX_MAX_ATTEMPTS, then left `failed` with its last error for ops to see.
"""

import sqlalchemy as sa
from sqlmodel import col, select

from db.base import utcnow
from db.models import Auth0OutboxEntry
from db.types import OutboxStatus
from services.memberships.outbox import deliver
from services.sync.runs import JobContext

BATCH = 50


async def deliver_outbox(ctx: JobContext) -> None:
    while True:
        async with ctx.transaction() as session:
            now = utcnow()
            due = (
                select(Auth0OutboxEntry)
                .where(
                    col(Auth0OutboxEntry.status) == OutboxStatus.PENDING,
                    sa.or_(
                        col(Auth0OutboxEntry.next_attempt_at).is_(None),
                        col(Auth0OutboxEntry.next_attempt_at) <= now,
                    ),
                )
                .order_by(col(Auth0OutboxEntry.id))
                .limit(BATCH)
                .with_for_update(skip_locked=True)
            )
            entries = (await session.exec(due)).all()
            if not entries:
                return
            for entry in entries:
                if ctx.dry_run:
                    ctx.count("would_deliver")
                    continue
                await _deliver(ctx, entry)
            if ctx.dry_run:
                return


async def _deliver(ctx: JobContext, entry: Auth0OutboxEntry) -> None:
    ctx.count(await deliver(ctx.auth0, entry, max_attempts=ctx.settings.outbox_max_attempts))
