"""The scheduler process: keeps Postgres in step with Auth0 and delivers the outbox.

    uv run python run_scheduler.py                 # run until SIGTERM/SIGINT
    uv run python run_scheduler.py --immediate     # every job once, in order, then exit
    uv run python run_scheduler.py --job sync.users.full --dry-run

One scheduler per deployment is intended; a second one started by accident does no harm:
every job takes a Postgres advisory lock and skips when another process holds it.
"""

import asyncio
import logging
import signal
import sys
from collections.abc import Coroutine, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from db.engine import create_engine, create_session_factory
from db.migrations import head_revisions, upgrade_head
from db.models import SyncRun
from db.types import SyncRunStatus
from services.auth0 import Auth0Gateway
from services.auth0.budget import TenantBudget
from services.kit.health import readiness
from services.kit.observability import configure_logging
from services.settings import ConfigError, Settings, get_settings
from services.sync.jobs import Job, select_jobs
from services.sync.net import net_decision
from services.sync.runs import JobContext, run_job

logger = logging.getLogger("aai.scheduler")
app = typer.Typer(add_completion=False, help=__doc__)


def build_context(settings: Settings, *, dry_run: bool) -> JobContext:
    engine = create_engine(
        settings.database_url,
        process="scheduler",
        # Each running job holds two connections (its advisory lock's and its session's),
        # the jobs that start at once run side by side with the first syncs, events.apply
        # may run the roles sync inside its own run, and the Auth0 budget takes one per
        # call: a pool smaller than that waits on itself until the checkout times out.
        pool_size=4,
        max_overflow=16,
        connect_timeout_s=settings.db_connect_timeout_s,
        # Bulk sync statements on 100k rows need more than a request's budget.
        statement_timeout_s=max(settings.db_statement_timeout_s, 600),
    )
    # Jobs can afford to wait longer for Auth0 than a request can.
    gateway = Auth0Gateway.from_settings(
        settings,
        max_retries=max(settings.auth0_max_retries, 6),
        timeout_s=max(settings.auth0_timeout_s, 30),
        max_wait_s=120,
        breaker_threshold=0,
        deadline_s=None,
    )
    if settings.auth0_plan:
        gateway.tenant_budget = TenantBudget(engine, settings.auth0_plan)
    return JobContext(
        settings=settings,
        engine=engine,
        sessions=create_session_factory(engine),
        auth0=gateway,
        dry_run=dry_run,
    )


async def close_context(ctx: JobContext) -> None:
    await ctx.auth0.aclose()
    await ctx.engine.dispose()


async def run_once(ctx: JobContext, jobs: Sequence[Job]) -> list[SyncRun]:
    runs = []
    for job in jobs:
        if not job.enabled(ctx.settings):
            continue
        runs.append(await run_job(ctx, job.name, job.body))
    return runs


async def run_forever(ctx: JobContext, jobs: Sequence[Job]) -> None:
    """Once through every job in dependency order, then each on its own interval."""
    jobs = [job for job in jobs if job.enabled(ctx.settings)]
    scheduler = AsyncIOScheduler(timezone="UTC")
    running: set[asyncio.Task[object]] = set()

    def track(coroutine: Coroutine[Any, Any, object]) -> asyncio.Task[object]:
        task = asyncio.ensure_future(coroutine)
        running.add(task)
        task.add_done_callback(running.discard)
        return task

    async def fire(job: Job) -> None:
        # Each run gets its own context: counts are per run.
        job_ctx = JobContext(ctx.settings, ctx.engine, ctx.sessions, ctx.auth0, ctx.dry_run)
        if job.net is not None:
            # A healthy stream stands in for this poll between net runs.
            deferred, job_ctx.preset = await net_decision(job_ctx, job.name, job.net)
            if deferred:
                logger.debug("%s not needed now: %s", job.name, deferred)
                return
        await track(run_job(job_ctx, job.name, job.body, quiet=job.quiet))

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)

    def schedule(job: Job, *, now: bool) -> None:
        scheduler.add_job(
            fire,
            "interval",
            args=[job],
            id=job.name,
            name=job.name,
            seconds=job.interval_s(ctx.settings),
            coalesce=True,
            max_instances=1,
            misfire_grace_time=ctx.settings.sync_misfire_grace_s,
            replace_existing=True,
            **({"next_run_time": datetime.now(UTC)} if now else {}),
        )

    async def start() -> None:
        # Jobs that need no sync (email, the outbox, code clean-up) start at once; the
        # syncs run once in dependency order (a full user sync may take minutes), then
        # join them on their intervals.
        scheduler.start()
        for job in jobs:
            if not job.after_syncs:
                schedule(job, now=True)
        await run_once(ctx, [job for job in jobs if job.after_syncs])
        for job in jobs:
            if job.after_syncs:
                schedule(job, now=False)
        logger.info(
            "scheduler started: %s",
            ", ".join(f"{j.name} every {j.interval_s(ctx.settings)}s" for j in jobs),
        )

    track(start())
    await stop.wait()
    logger.info("stopping: no new runs; waiting up to 30s for %d running job(s)", len(running))
    if scheduler.running:
        scheduler.shutdown(wait=False)
    if running:
        _done, pending = await asyncio.wait(set(running), timeout=30)
        for task in pending:
            # Abandoned mid-run: its transaction rolls back, and the next run converges.
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)


async def _database_problem(ctx: JobContext) -> str | None:
    """None when the database can take the jobs. The embedded SQLite database is migrated
    here, as the API does; a PostgreSQL one not at the code's head is refused with what to
    run (the scheduler used to crash on it with "no such table: sync_run")."""
    url = ctx.settings.database_url
    if url.get_backend_name() == "sqlite":
        await upgrade_head(url)
        return None
    report = await readiness(ctx.engine, head_revisions(), verbose=True)
    for check in ("database", "migrations"):
        if not report.checks[check].ok:
            return (
                f"{report.checks[check].detail}; migrate first: "
                "`python -m scripts.entrypoint migrate` (or `alembic upgrade head`)"
            )
    return None


@app.command()
def main(
    immediate: Annotated[
        bool, typer.Option("--immediate", help="Run every job once, in order, then exit.")
    ] = False,
    skip_full_sync: Annotated[
        bool, typer.Option("--skip-full-sync", help="Leave out the user and membership syncs.")
    ] = False,
    email_only: Annotated[bool, typer.Option("--email-only", help="Only the email jobs.")] = False,
    job: Annotated[
        str | None, typer.Option("--job", help="Run this one job once, then exit.")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Compute and print what would change; write nothing.")
    ] = False,
) -> None:
    try:
        settings = get_settings()
    except ConfigError as exc:
        typer.echo(f"run_scheduler: {exc}", err=True)
        raise typer.Exit(2) from None
    configure_logging(settings.effective_log_format, settings.log_level, process="scheduler")
    try:
        jobs = select_jobs(
            only=job,
            skip_full_sync=skip_full_sync,
            email_only=email_only,
            immediate=immediate or job is not None,
        )
    except KeyError as exc:
        typer.echo(f"run_scheduler: {exc.args[0]}", err=True)
        raise typer.Exit(2) from None

    async def go() -> int:
        ctx = build_context(settings, dry_run=dry_run)
        try:
            problem = await _database_problem(ctx)
            if problem:
                typer.echo(f"run_scheduler: {problem}", err=True)
                return 4
            if immediate or job is not None or dry_run:
                runs = await run_once(ctx, jobs)
                for run in runs:
                    typer.echo(
                        f"{run.job:<24} {run.status.value:<9} {run.counts}{'  ' + run.error if run.error else ''}"
                    )
                return 1 if any(run.status is SyncRunStatus.FAILED for run in runs) else 0
            await run_forever(ctx, jobs)
            return 0
        finally:
            await close_context(ctx)

    raise typer.Exit(asyncio.run(go()))


if __name__ == "__main__":
    sys.exit(app())
