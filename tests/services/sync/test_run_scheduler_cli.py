"""run_scheduler.py as ops run it: a real process against Postgres and the emulator."""

import asyncio
import os
import secrets
import signal
import sys
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import URL
from sqlmodel import col, select

from db.admin import create_database, drop_database
from db.engine import create_engine, create_session_factory
from db.models import EmailNotification, SyncRun, User
from db.types import EmailStatus, SyncRunStatus
from scripts.auth0_emulator.server import EmulatorServer
from services.email.queue import enqueue
from tests.conftest import TEST_AUDIENCE, make_settings
from tests.factories import auth0_user
from tests.processes import run_python


def environment(db: URL, server: EmulatorServer, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "DB_URL": db.render_as_string(hide_password=False),
        "AUTH0_DOMAIN": server.base_url,
        "AUTH0_AUDIENCE": TEST_AUDIENCE,
        "AUTH0_MGMT_RPS": "1000",
        "AUTH0_MGMT_BURST": "1000",
        **extra,
    }


async def run_cli(repo_root: Path, env: dict[str, str], *args: str) -> tuple[int, str]:
    return await run_python(repo_root, env, "run_scheduler.py", *args)


async def runs_of(db: URL) -> list[SyncRun]:
    engine = create_engine(db, process="tests")
    try:
        async with create_session_factory(engine)() as session:
            return list((await session.exec(select(SyncRun).order_by(col(SyncRun.id)))).all())
    finally:
        await engine.dispose()


async def test_immediate_runs_every_job_in_order(
    scratch_db: URL, tenant_server: EmulatorServer, repo_root: Path
):
    auth0_user(tenant_server.tenant, "cli", roles=["biocommons/platform/galaxy"])
    code, output = await run_cli(repo_root, environment(scratch_db, tenant_server), "--immediate")
    assert code == 0, output
    assert [run.job for run in await runs_of(scratch_db)] == [
        "sync.roles",
        "sync.users.full",
        "sync.memberships",
        "sync.outbox",
        "email.deliver",
        "otp.cleanup",
        "users.expire_unverified",
    ]
    assert "sync.memberships         succeeded" in output


async def test_immediate_exits_non_zero_when_a_job_fails(
    scratch_db: URL, tenant_server: EmulatorServer, repo_root: Path
):
    tenant_server.state.faults.down = True
    code, output = await run_cli(
        repo_root,
        environment(scratch_db, tenant_server, AUTH0_MAX_RETRIES="0"),
        "--immediate",
        "--skip-full-sync",
    )
    assert code == 1
    assert "sync.roles               failed" in output


async def test_dry_run_prints_and_writes_nothing(
    scratch_db: URL, tenant_server: EmulatorServer, repo_root: Path
):
    auth0_user(tenant_server.tenant, "dry")
    code, output = await run_cli(
        repo_root, environment(scratch_db, tenant_server), "--job", "sync.users.full", "--dry-run"
    )
    assert code == 0, output
    assert "'created': 1" in output
    engine = create_engine(scratch_db, process="tests")
    try:
        async with create_session_factory(engine)() as session:
            assert (await session.exec(select(User))).all() == []
    finally:
        await engine.dispose()


async def test_unknown_job_is_a_usage_error(
    scratch_db: URL, tenant_server: EmulatorServer, repo_root: Path
):
    code, output = await run_cli(
        repo_root, environment(scratch_db, tenant_server), "--job", "sync.nothing"
    )
    assert code == 2
    assert "unknown job" in output


async def test_scheduler_runs_on_its_own_and_stops_on_sigterm(
    scratch_db: URL, tenant_server: EmulatorServer, repo_root: Path
):
    env = environment(
        scratch_db, tenant_server, SYNC_ROLES_INTERVAL_S="10", SYNC_OUTBOX_INTERVAL_S="1"
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "run_scheduler.py",
        cwd=repo_root,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            runs = await runs_of(scratch_db)
            if (
                sum(
                    run.job == "sync.outbox" and run.status is SyncRunStatus.SUCCEEDED
                    for run in runs
                )
                >= 2
            ):
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the scheduler never ran the outbox job twice")
    finally:
        process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(process.wait(), timeout=40)
    assert code == 0
    assert {run.job for run in await runs_of(scratch_db)} == {
        "sync.roles",
        "sync.users.full",
        "sync.users.incremental",
        "sync.memberships",
        "sync.outbox",
        # email.deliver ran too, from the start, but an idle run of it leaves no row.
        "otp.cleanup",
        "users.expire_unverified",
    }


async def test_email_goes_out_at_once_after_a_restart_not_after_the_full_sync(
    scratch_db: URL, tenant_server: EmulatorServer, repo_root: Path
):
    """The first pass of syncs may take minutes (a large export): email, the outbox and
    the code clean-up do not wait for it."""
    settings = make_settings(scratch_db)
    engine = create_engine(scratch_db, process="tests")
    try:
        async with create_session_factory(engine)() as session:
            await enqueue(session, settings, "welcome", to="ada@example.org", context={"name": "A"})
            await session.commit()
        tenant_server.state.faults.export_delay_s = 30.0  # the full user sync takes that long
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "run_scheduler.py",
            cwd=repo_root,
            env=environment(scratch_db, tenant_server, EMAIL_INTERVAL_S="1"),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            for _ in range(150):
                async with create_session_factory(engine)() as session:
                    status = await session.scalar(sa.select(EmailNotification.__table__.c.status))
                if status == EmailStatus.SENT:
                    break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError("the email waited")
            runs = await runs_of(scratch_db)
            assert not any(r.job == "sync.users.full" and r.finished_at for r in runs)
        finally:
            process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(process.wait(), timeout=40)
    finally:
        await engine.dispose()


async def test_an_unmigrated_database_says_what_to_run(
    pg_server_url: URL, tenant_server: EmulatorServer, repo_root: Path
):
    name = f"aai_bare_{secrets.token_hex(4)}"
    bare = await create_database(pg_server_url, name)
    try:
        code, output = await run_cli(repo_root, environment(bare, tenant_server), "--immediate")
    finally:
        await drop_database(pg_server_url, name)
    assert code == 4
    assert "scripts.entrypoint migrate" in output
    assert "no such table" not in output


async def test_the_embedded_sqlite_database_is_migrated_as_the_api_does(
    tmp_path: Path, tenant_server: EmulatorServer, repo_root: Path
):
    env = {
        **environment(
            URL.create("sqlite+aiosqlite", database=str(tmp_path / "s.db")), tenant_server
        ),
        "DB_URL": f"sqlite:///{tmp_path / 's.db'}",
    }
    code, output = await run_cli(repo_root, env, "--job", "otp.cleanup")
    assert code == 0, output
    assert "succeeded" in output
