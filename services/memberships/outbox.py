"""The Auth0 outbox: role grants and revokes written with the membership change that
needs them, delivered at once by the API when it can and otherwise by the scheduler."""

import random
from datetime import timedelta
from typing import Literal

from sqlmodel.ext.asyncio.session import AsyncSession

from db.base import utcnow
from db.models import Auth0OutboxEntry
from db.types import OutboxOperation, OutboxStatus
from services.auth0 import Auth0Gateway
from services.errors import AppError, BadRequest, NotFound

Outcome = Literal["delivered", "retry_later", "failed"]


def backoff(attempts: int) -> timedelta:
    seconds = min(30 * 2 ** max(attempts - 1, 0), 3600)
    return timedelta(seconds=seconds * (0.8 + random.random() * 0.4))


async def queue(
    session: AsyncSession,
    operation: OutboxOperation,
    *,
    user_id: str,
    role_id: str,
    requested_by: str | None,
) -> Auth0OutboxEntry:
    entry = Auth0OutboxEntry(
        operation=operation, user_id=user_id, role_id=role_id, requested_by_id=requested_by
    )
    session.add(entry)
    await session.flush()
    return entry


async def deliver(auth0: Auth0Gateway, entry: Auth0OutboxEntry, *, max_attempts: int) -> Outcome:
    """One attempt; the entry records the outcome (the caller's transaction saves it)."""
    now = utcnow()
    entry.attempts += 1
    entry.updated_at = now
    try:
        if entry.operation is OutboxOperation.GRANT_ROLE:
            await auth0.assign_roles(entry.user_id, [entry.role_id])
        else:
            await auth0.remove_roles(entry.user_id, [entry.role_id])
    except (NotFound, BadRequest) as exc:
        # The user or role no longer exists: retrying cannot help.
        entry.status = OutboxStatus.FAILED
        entry.last_error = f"{type(exc).__name__}: {exc.detail}"
        return "failed"
    except AppError as exc:
        entry.last_error = f"{type(exc).__name__}: {exc.detail}"
        if entry.attempts >= max_attempts:
            entry.status = OutboxStatus.FAILED
            return "failed"
        entry.next_attempt_at = now + backoff(entry.attempts)
        return "retry_later"
    entry.status = OutboxStatus.DONE
    entry.completed_at = utcnow()
    entry.last_error = None
    return "delivered"
