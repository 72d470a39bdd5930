"""What every scheduled job shares: its context, a cross-process lock, a recorded run, progress."""

import logging
import socket
import sys
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from db.base import utcnow
from db.engine import SessionFactory
from db.models import SyncRun
from db.types import SyncRunStatus
from services.auth0 import Auth0Gateway
from services.settings import Settings

logger = logging.getLogger("aai.sync")


class SyncAborted(Exception):
    """A job stopped on purpose (a safety limit); its run is recorded as failed with this reason."""


@dataclass
class JobContext:
    settings: Settings
    engine: AsyncEngine
    sessions: SessionFactory
    auth0: Auth0Gateway
    dry_run: bool = False
    counts: dict[str, Any] = field(default_factory=dict)
    # Counts a run starts with (the scheduler's note on why it polls).
    preset: dict[str, Any] = field(default_factory=dict)

    def count(self, name: str, value: int = 1) -> None:
        self.counts[name] = self.counts.get(name, 0) + value

    @asynccontextmanager
    async def timed(self, step: str) -> AsyncIterator[None]:
        """Adds the step's wall time to counts["timings_ms"], so slow runs explain themselves."""
        started = time.perf_counter()
        try:
            yield
        finally:
            timings = self.counts.setdefault("timings_ms", {})
            timings[step] = timings.get(step, 0) + round(1000 * (time.perf_counter() - started))

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """The job's unit of work: committed, or rolled back on error and in a dry run."""
        async with self.sessions() as session:
            try:
                yield session
            except BaseException:
                await session.rollback()
                raise
            if self.dry_run:
                await session.rollback()
            else:
                await session.commit()


def lock_key(job: str) -> int:
    # A stable 63-bit key per job name, so every container agrees without configuration.
    return zlib.crc32(f"aai-backend:{job}".encode()) | (0x2A << 32)


@asynccontextmanager
async def job_lock(engine: AsyncEngine, job: str) -> AsyncIterator[bool]:
    """A Postgres session advisory lock on a dedicated connection, released in `finally`.

    Yields False when another process holds it. SQLite (the single-process dev default)
    always gets the lock.
    """
    if engine.dialect.name != "postgresql":
        yield True
        return
    key = lock_key(job)
    async with engine.connect() as conn:
        acquired = bool(
            (await conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key})).scalar()
        )
        await conn.commit()
        try:
            yield acquired
        finally:
            if acquired:
                await conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                await conn.commit()


async def _save_run(sessions: SessionFactory, run: SyncRun) -> SyncRun:
    async with sessions() as session:
        merged = await session.merge(run)
        await session.commit()
        return merged


async def _close_abandoned(sessions: SessionFactory, job: str) -> None:
    """Runs still marked running while we hold the job's lock died with their process."""
    async with sessions() as session:
        await session.execute(
            update(SyncRun)
            .where(col(SyncRun.job) == job, col(SyncRun.status) == SyncRunStatus.RUNNING)
            .values(
                status=SyncRunStatus.FAILED,
                finished_at=utcnow(),
                error="abandoned: the scheduler stopped mid-run",
            )
        )
        await session.commit()


JobBody = Callable[[JobContext], Awaitable[None]]


async def run_job(ctx: JobContext, name: str, body: JobBody, *, quiet: bool = False) -> SyncRun:
    """Run one job under its lock and record it. Never raises: a failure is a failed run.

    `quiet` jobs run every few seconds (the email queue) and recover from a crash by
    themselves (leases): they are recorded once, when they finish, and only if they did
    something or failed, so the run history shows work, not polling."""
    host = socket.gethostname()
    async with job_lock(ctx.engine, name) as acquired:
        if not acquired:
            skipped = SyncRun(
                job=name,
                status=SyncRunStatus.SKIPPED,
                dry_run=ctx.dry_run,
                host=host,
                finished_at=utcnow(),
                error="another scheduler holds this job's lock",
            )
            if quiet:
                return skipped
            logger.info("job %s skipped: another scheduler holds its lock", name)
            return await _save_run(ctx.sessions, skipped)
        run = SyncRun(job=name, status=SyncRunStatus.RUNNING, dry_run=ctx.dry_run, host=host)
        if not quiet:
            await _close_abandoned(ctx.sessions, name)
            run = await _save_run(ctx.sessions, run)
        requests_before = ctx.auth0.stats.requests
        started = time.monotonic()
        ctx.counts = dict(ctx.preset)
        if not quiet:
            logger.info("job %s started%s", name, " (dry run)" if ctx.dry_run else "")
        try:
            await body(ctx)
        except Exception as exc:
            run.status = SyncRunStatus.FAILED
            run.error = f"{type(exc).__name__}: {exc}"
            if not isinstance(exc, SyncAborted):
                logger.exception("job %s failed", name)
        else:
            run.status = SyncRunStatus.SUCCEEDED
        run.finished_at = utcnow()
        idle = run.status is SyncRunStatus.SUCCEEDED and not ctx.counts
        run.counts = {**ctx.counts, "auth0_requests": ctx.auth0.stats.requests - requests_before}
        if quiet and idle:
            return run
        run = await _save_run(ctx.sessions, run)
        logger.info(
            "job %s %s in %.1fs: %s%s",
            name,
            run.status.value,
            time.monotonic() - started,
            run.counts,
            f" error={run.error}" if run.error else "",
            # Alarms match these fields (deploy/stack.py: FailedSchedulerRuns).
            extra={"event": "job_finished", "job": name, "outcome": run.status.value},
        )
        return run


class Progress:
    """Counts, rate and ETA: a live line on a terminal, a log line every few seconds otherwise."""

    def __init__(self, label: str, total: int | None = None, every_s: float = 5.0) -> None:
        self.label = label
        self.total = total
        self.done = 0
        self._started = time.monotonic()
        self._last = self._started
        self._every = every_s
        self._tty = sys.stderr.isatty()

    def advance(self, amount: int = 1) -> None:
        self.done += amount
        now = time.monotonic()
        if self._tty and now - self._last >= 0.2:
            self._last = now
            sys.stderr.write(f"\r{self.render(now)}\x1b[K")
            sys.stderr.flush()
        elif not self._tty and now - self._last >= self._every:
            self._last = now
            logger.info("%s", self.render(now))

    def render(self, now: float) -> str:
        elapsed = max(now - self._started, 1e-6)
        rate = self.done / elapsed
        if self.total:
            eta = (self.total - self.done) / rate if rate else float("inf")
            return f"{self.label}: {self.done}/{self.total} ({rate:.0f}/s, ETA {eta:.0f}s)"
        return f"{self.label}: {self.done} ({rate:.0f}/s)"

    def close(self) -> None:
        if self._tty:
            sys.stderr.write(f"\r{self.render(time.monotonic())}\x1b[K\n")
            sys.stderr.flush()
