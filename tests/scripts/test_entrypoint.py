"""The container entrypoint run directly (no Docker): each role, and its refusals."""

import os
import secrets
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import URL
from sqlmodel import select

from db.admin import create_database, drop_database
from db.engine import create_engine, create_session_factory
from db.migrations import current_revisions, head_revisions
from db.models import SyncRun
from scripts.auth0_emulator.server import EmulatorServer, free_port
from tests.processes import run_python, serving


def environment(db: URL | str, **extra: str) -> dict[str, str]:
    url = db.render_as_string(hide_password=False) if isinstance(db, URL) else db
    return {**os.environ, "DB_URL": url, "DB_HOST": "", "DB_WAIT_TIMEOUT_S": "20", **extra}


async def entrypoint(repo_root: Path, env: dict[str, str], *args: str) -> tuple[int, str, float]:
    started = time.monotonic()
    code, output = await run_python(repo_root, env, "-m", "scripts.entrypoint", *args)
    return code, output, time.monotonic() - started


@pytest.fixture
async def empty_db(pg_server_url: URL) -> AsyncIterator[URL]:
    name = f"aai_entry_{secrets.token_hex(4)}"
    url = await create_database(pg_server_url, name)
    yield url
    await drop_database(pg_server_url, name)


async def revisions(url: URL) -> frozenset[str]:
    engine = create_engine(url, process="tests")
    try:
        async with engine.connect() as conn:
            return await current_revisions(conn)
    finally:
        await engine.dispose()


async def test_migrate_brings_an_empty_database_to_head_and_api_refuses_before(
    empty_db: URL, repo_root: Path
):
    code, output, _ = await entrypoint(repo_root, environment(empty_db), "api")
    assert code == 4, output
    assert "run the `migrate` role first" in output

    code, output, _ = await entrypoint(repo_root, environment(empty_db), "migrate")
    assert code == 0, output
    assert await revisions(empty_db) == head_revisions()
    code, output, _ = await entrypoint(repo_root, environment(empty_db), "migrate")
    assert code == 0, output  # running it again is harmless


async def test_an_unreachable_database_fails_after_the_timeout_with_a_clear_message(
    repo_root: Path,
):
    dead = f"postgresql://postgres@127.0.0.1:{free_port()}/nothing"
    code, output, took = await entrypoint(
        repo_root, environment(dead, DB_WAIT_TIMEOUT_S="2"), "migrate"
    )
    assert code == 3
    assert "did not answer within 2 s" in output
    assert "waiting for the database" in output
    assert 2 <= took < 30


async def test_api_role_serves_with_workers_sharing_metrics_until_sigterm(
    scratch_db: URL, repo_root: Path
):
    port = free_port()
    env = environment(
        scratch_db,
        PORT=str(port),
        WEB_CONCURRENCY="2",
        HOST="127.0.0.1",
        ENABLE_PROMETHEUS_METRICS="true",
    )
    async with (
        serving(repo_root, env, port, "-m", "scripts.entrypoint", "api"),
        httpx.AsyncClient() as client,
    ):
        ready = await client.get(f"http://127.0.0.1:{port}/health/ready")
        for _ in range(20):
            assert (await client.get(f"http://127.0.0.1:{port}/health/live")).status_code == 200
        # Whichever worker answers, the count covers both.
        scrapes = [(await client.get(f"http://127.0.0.1:{port}/metrics")).text for _ in range(4)]
    assert ready.status_code == 200, ready.text
    for text in scrapes:
        assert (
            'aai_http_request_duration_seconds_count{method="GET",route="/health/live",status="200"} 20.0'
            in text
        )


async def test_scheduler_role_runs_the_scheduler(scratch_db: URL, repo_root: Path):
    code, output, _ = await entrypoint(
        repo_root, environment(scratch_db), "scheduler", "--job", "otp.cleanup"
    )
    assert code == 0, output
    engine = create_engine(scratch_db, process="tests")
    async with create_session_factory(engine)() as session:
        runs = (await session.exec(select(SyncRun))).all()
    await engine.dispose()
    assert [(r.job, r.status.value) for r in runs] == [("otp.cleanup", "succeeded")]


async def test_import_legacy_role_runs_the_import_script(scratch_db: URL, repo_root: Path):
    code, output, _ = await entrypoint(
        repo_root, environment(scratch_db), "import-legacy", "--from", "sqlite://"
    )
    assert code == 2, output
    assert "--from must be a PostgreSQL URL" in output


async def test_an_unknown_role_is_a_usage_error(repo_root: Path):
    code, output, _ = await entrypoint(repo_root, environment("sqlite://"), "worker")
    assert code == 64
    assert "usage: entrypoint {api|scheduler|migrate|check-auth0|import-legacy}" in output


async def test_check_auth0_passes_a_good_tenant_and_names_the_custom_domain_mistake(
    repo_root: Path, emulator: EmulatorServer
):
    assert emulator.custom_url is not None
    base = {
        **os.environ,
        "AUTH0_CUSTOM_DOMAIN": emulator.custom_url,
        "AUTH0_MANAGEMENT_ID": emulator.tenant.management_client_id,
        "AUTH0_MANAGEMENT_SECRET": emulator.tenant.management_client_secret,
    }
    good = {**base, "AUTH0_DOMAIN": emulator.base_url}
    code, output, _ = await entrypoint(repo_root, good, "check-auth0")
    assert code == 0, output
    assert "granted scopes: " in output
    assert "FAULT" not in output

    wrong = {**base, "AUTH0_DOMAIN": emulator.custom_url}
    code, output, _ = await entrypoint(repo_root, wrong, "check-auth0")
    assert code == 5, output
    assert "FAULT: management token" in output
    assert "Service not enabled within domain" in output

    unreachable = {**base, "AUTH0_DOMAIN": f"http://127.0.0.1:{free_port()}"}
    code, output, _ = await entrypoint(repo_root, unreachable, "check-auth0")
    assert code == 6, output
