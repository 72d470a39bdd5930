"""Job `sync.outbox`: deliver pending Auth0 role grants/revokes recorded by the API.

Each entry is claimed with `FOR UPDATE SKIP LOCKED` (two schedulers never deliver the same
one), sent, and marked done; a failure is retried with exponential backoff until
OUTBOX_MAX_ATTEMPTS, then left `failed` with its last error for ops to see.
"""

import random
from datetime import timedelta

import sqlalchemy as sa
from sqlmodel import select

from db.base import utcnow
from db.models import Auth0OutboxEntry
from db.types import OutboxOperation, OutboxStatus
from services.errors import AppError, BadRequest, NotFound
from services.sync.runs import JobContext

BATCH = 50


def backoff(attempts: int) -> timedelta:
    seconds = min(30 * 2 ** max(attempts - 1, 0), 3600)
    return timedelta(seconds=seconds * (0.8 + random.random() * 0.4))


async def deliver_outbox(ctx: JobContext) -> None:
    while True:
        async with ctx.transaction() as session:
            now = utcnow()
            due = (
                select(Auth0OutboxEntry)
                .where(
                    Auth0OutboxEntry.status == OutboxStatus.PENDING,
                    sa.or_(
                        Auth0OutboxEntry.next_attempt_at.is_(None),
                        Auth0OutboxEntry.next_attempt_at <= now,
                    ),
                )
                .order_by(Auth0OutboxEntry.id)
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
    now = utcnow()
    entry.attempts += 1
    entry.updated_at = now
    try:
        if entry.operation is OutboxOperation.GRANT_ROLE:
            await ctx.auth0.assign_roles(entry.user_id, [entry.role_id])
        else:
            await ctx.auth0.remove_roles(entry.user_id, [entry.role_id])
    except (NotFound, BadRequest) as exc:
        # The user or role no longer exists: retrying cannot help.
        entry.status = OutboxStatus.FAILED
        entry.last_error = f"{type(exc).__name__}: {exc.detail}"
        ctx.count("failed")
        return
    except AppError as exc:
        entry.last_error = f"{type(exc).__name__}: {exc.detail}"
        if entry.attempts >= ctx.settings.outbox_max_attempts:
            entry.status = OutboxStatus.FAILED
            ctx.count("failed")
        else:
            entry.next_attempt_at = now + backoff(entry.attempts)
            ctx.count("retry_later")
        return
    entry.status = OutboxStatus.DONE
    entry.completed_at = utcnow()
    entry.last_error = None
    ctx.count("delivered")
