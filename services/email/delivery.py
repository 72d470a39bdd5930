"""Delivering the queue: claim, send, record — safe with any number of deliverers.

1. Claim (one short transaction): rows that are due, one-time codes first, locked with
   `FOR UPDATE SKIP LOCKED` so concurrent deliverers take disjoint rows, are marked
   `sending` with a lease and their attempt counted. Rows whose lease ran out (their
   sender died mid-send) are put back first; rows past their expiry or the maximum age
   are failed instead of sent.
2. Send, EMAIL_CONCURRENCY at a time, outside any transaction.
3. Record (one short transaction): sent; or back to `pending` with exponential backoff
   and jitter; or `failed` (permanent error, or attempts used up) with the last error
   kept. A result is only written while the row still carries this claim's lease, so a
   deliverer that overran its lease cannot overwrite a newer attempt.

`deliver` keeps claiming while work is ready, so throughput is bounded by the backend,
not by the job's interval. The only case that sends twice is a sender killed after the
server accepted a message but before the result was recorded; the message keeps its
Message-ID, so the copy is recognisable.
"""

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel.ext.asyncio.session import AsyncSession

from db.base import utcnow
from db.bulk import affected
from db.engine import SessionFactory
from db.models import EmailNotification
from db.types import EmailStatus
from services.email.backends import DeliveryError, EmailBackend, OutgoingEmail
from services.settings import Settings

t = EmailNotification.__table__
LEASE_EXPIRED = "lease expired: the sender stopped before recording a result; retrying"
LEASE_EXPIRED_LAST = "lease expired on the last attempt: the sender stopped mid-send; not retried"


@dataclass
class DeliveryStats:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    expired: int = 0
    reclaimed: int = 0
    batches: int = 0
    errors: dict[str, int] = field(default_factory=dict)

    def as_counts(self) -> dict[str, object]:
        counts: dict[str, object] = {k: v for k, v in vars(self).items() if k != "errors" and v}
        if self.errors:
            counts["errors"] = dict(sorted(self.errors.items(), key=lambda kv: -kv[1])[:5])
        return counts


@dataclass(frozen=True)
class Claim:
    message: OutgoingEmail
    attempts: int
    lease: datetime


@dataclass(frozen=True)
class Result:
    claim: Claim
    error: DeliveryError | None


def backoff(settings: Settings, attempts: int) -> timedelta:
    """Exponential from EMAIL_RETRY_BASE_S, capped at EMAIL_RETRY_MAX_S, ±50% jitter so
    a burst of failures does not come back as a burst."""
    delay = min(settings.email_retry_base_s * 2 ** max(attempts - 1, 0), settings.email_retry_max_s)
    return timedelta(seconds=delay * random.uniform(0.5, 1.5))


async def deliver(
    sessions: SessionFactory,
    backend: EmailBackend,
    settings: Settings,
    *,
    max_seconds: float | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> DeliveryStats:
    """Send until nothing is due (or `max_seconds` have passed). `clock` says what time
    it is for leases and due dates (tests move it instead of waiting)."""
    stats = DeliveryStats()
    deadline = None if max_seconds is None else time.monotonic() + max_seconds
    async with sessions() as session:
        stats.reclaimed = await release_expired_leases(session, settings, now=clock())
        await session.commit()
    while deadline is None or time.monotonic() < deadline:
        async with sessions() as session:
            claims = await claim(session, settings, stats, now=clock())
            await session.commit()
        if not claims:
            break
        stats.batches += 1
        await _send_batch(sessions, backend, settings, claims, stats)
    return stats


async def _send_batch(
    sessions: SessionFactory,
    backend: EmailBackend,
    settings: Settings,
    claims: list[Claim],
    stats: DeliveryStats,
) -> None:
    """Send EMAIL_CONCURRENCY at a time; results are recorded as they come, several per
    transaction under load, so a sender killed mid-batch leaves only its in-flight rows
    to be retried (not the ones already accepted by the server)."""
    gate = asyncio.Semaphore(settings.email_concurrency)
    done: asyncio.Queue[Result | None] = asyncio.Queue()

    async def one(item: Claim) -> None:
        async with gate:
            try:
                await backend.send(item.message)
            except DeliveryError as exc:
                done.put_nowait(Result(item, exc))
            else:
                done.put_nowait(Result(item, None))

    async def recorder() -> None:
        finished = False
        while not finished:
            results = [await done.get()]
            while not done.empty():
                results.append(done.get_nowait())
            finished = results[-1] is None
            ready = [r for r in results if r is not None]
            if ready:
                async with sessions() as session:
                    await record(session, settings, ready, stats)
                    await session.commit()

    writer = asyncio.create_task(recorder())
    try:
        await asyncio.gather(*(one(item) for item in claims))
    finally:
        done.put_nowait(None)
        await writer


async def release_expired_leases(
    session: AsyncSession, settings: Settings, *, now: datetime | None = None
) -> int:
    """Rows left `sending` by a deliverer that died: due again now (the attempt counts),
    or failed if that was the last attempt (a message that kills its sender every time
    must not be retried forever)."""
    now = now or utcnow()
    expired = (t.c.status == EmailStatus.SENDING, t.c.lease_expires_at < now)
    common = {"lease_expires_at": None, "updated_at": now}
    given_up = await session.execute(
        sa.update(t)
        .where(*expired, t.c.attempts >= settings.email_max_attempts)
        .values(status=EmailStatus.FAILED, last_error=LEASE_EXPIRED_LAST, **common)
    )
    retried = await session.execute(
        sa.update(t)
        .where(*expired)
        .values(status=EmailStatus.PENDING, send_after=now, last_error=LEASE_EXPIRED, **common)
    )
    return affected(given_up) + affected(retried)


async def claim(
    session: AsyncSession, settings: Settings, stats: DeliveryStats, *, now: datetime | None = None
) -> list[Claim]:
    now = now or utcnow()
    rows = (
        await session.execute(
            sa.select(
                t.c.id,
                t.c.to_address,
                t.c.from_address,
                t.c.subject,
                t.c.body_html,
                t.c.body_text,
                t.c.attempts,
                t.c.created_at,
                t.c.expires_at,
            )
            .where(t.c.status == EmailStatus.PENDING, t.c.send_after <= now)
            .order_by(t.c.priority, t.c.send_after)
            .limit(settings.email_batch_size)
            .with_for_update(skip_locked=True)
        )
    ).all()
    oldest = now - timedelta(seconds=settings.email_max_age_s)
    expired = [r.id for r in rows if r.expires_at is not None and r.expires_at <= now]
    too_old = [r.id for r in rows if r.id not in expired and r.created_at < oldest]
    for ids, reason in (
        (expired, "expired before it could be sent"),
        (too_old, f"not sent within EMAIL_MAX_AGE_S ({settings.email_max_age_s} s)"),
    ):
        if ids:
            await session.execute(
                sa.update(t)
                .where(t.c.id.in_(ids))
                .values(
                    status=EmailStatus.FAILED,
                    # Keep the last delivery error if there was one: it says why it never went.
                    last_error=sa.func.coalesce(t.c.last_error + " | ", "") + reason,
                    updated_at=now,
                )
            )
    stale = {*expired, *too_old}
    stats.expired += len(stale)
    due = [row for row in rows if row.id not in stale]
    if not due:
        return []
    lease = now + timedelta(seconds=settings.email_lease_s)
    await session.execute(
        sa.update(t)
        .where(t.c.id.in_([row.id for row in due]))
        .values(
            status=EmailStatus.SENDING,
            lease_expires_at=lease,
            attempts=t.c.attempts + 1,
            last_attempt_at=now,
            updated_at=now,
        )
    )
    return [
        Claim(
            OutgoingEmail(
                id=row.id,
                sender=row.from_address or settings.no_reply_email_sender,
                to=row.to_address,
                subject=row.subject,
                html=row.body_html,
                text=row.body_text,
            ),
            attempts=row.attempts + 1,
            lease=lease,
        )
        for row in due
    ]


async def record(
    session: AsyncSession, settings: Settings, results: list[Result], stats: DeliveryStats
) -> None:
    now = utcnow()
    sent = [r.claim for r in results if r.error is None]
    if sent:
        # Rows claimed together share one lease; a row re-claimed since carries another.
        for lease in {item.lease for item in sent}:
            await session.execute(
                sa.update(t)
                .where(
                    t.c.id.in_([item.message.id for item in sent if item.lease == lease]),
                    t.c.status == EmailStatus.SENDING,
                    t.c.lease_expires_at == lease,
                )
                .values(
                    status=EmailStatus.SENT,
                    sent_at=now,
                    lease_expires_at=None,
                    last_error=None,
                    updated_at=now,
                )
            )
        stats.sent += len(sent)
    for result in results:
        if result.error is None:
            continue
        item, error = result.claim, result.error
        key = str(error).split(":")[0][:60]
        stats.errors[key] = stats.errors.get(key, 0) + 1
        give_up = error.permanent or item.attempts >= settings.email_max_attempts
        values: dict[str, object] = {
            "last_error": f"attempt {item.attempts}: {error}"[:2000],
            "lease_expires_at": None,
            "updated_at": now,
        }
        if give_up:
            values["status"] = EmailStatus.FAILED
            stats.failed += 1
        else:
            values["status"] = EmailStatus.PENDING
            values["send_after"] = now + backoff(settings, item.attempts)
            stats.retried += 1
        await session.execute(
            sa.update(t)
            .where(
                t.c.id == item.message.id,
                t.c.status == EmailStatus.SENDING,
                t.c.lease_expires_at == item.lease,
            )
            .values(**values)
        )
