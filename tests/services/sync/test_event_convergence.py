"""Pushed changes converge: the emulator delivers its Event Stream and Log Stream to a real
API process over HTTP, with duplicates, in shuffled order and with retries while the API is
down; after the apply job drains the inbox, Postgres says what the tenant says. And a
scheduler killed mid-apply applies nothing twice and loses nothing."""

import asyncio
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import URL

from db.engine import create_engine, create_session_factory
from db.models import Auth0Event, UserHistory
from db.types import EventStatus, UserChange
from scripts.auth0_emulator.seed import seed_roles
from scripts.auth0_emulator.server import EmulatorServer, free_port
from scripts.auth0_emulator.streams import StreamDelivery, Target
from services.sync.event_apply import apply_events
from services.sync.runs import JobContext
from tests.conftest import TEST_AUDIENCE
from tests.factories import make_gateway
from tests.processes import serving
from tests.services.sync.conftest import sync_settings
from tests.services.sync.helpers import full_sync
from tests.services.sync.test_convergence import MUTATIONS, Model, assert_converged

EVENT_SECRET = "event-stream-secret-" + "x" * 20
LOG_SECRET = "log-stream-secret-" + "y" * 22


@pytest.fixture
def tenant() -> Iterator[EmulatorServer]:
    with EmulatorServer(audience=TEST_AUDIENCE) as server:
        server.state.faults.export_delay_s = 0.0
        seed_roles(server.tenant)
        yield server


def api_env(db: URL, emulator: EmulatorServer) -> dict[str, str]:
    return {
        **os.environ,
        "DB_URL": db.render_as_string(hide_password=False),
        "DB_HOST": "",
        "AUTH0_DOMAIN": emulator.base_url,
        "AUTH0_AUDIENCE": TEST_AUDIENCE,
        "AUTH0_STARTUP_CHECK": "false",
        "EVENTS_STREAM_SECRET": EVENT_SECRET,
        "LOG_STREAM_SECRET": LOG_SECRET,
    }


def delivery(emulator: EmulatorServer, port: int, **options: object) -> StreamDelivery:
    base = f"http://127.0.0.1:{port}/events/auth0"
    return StreamDelivery(
        emulator.tenant,
        events=Target(f"{base}/event-stream", f"Bearer {EVENT_SECRET}"),
        logs=Target(f"{base}/log-stream", f"Bearer {LOG_SECRET}", "JSONLINES"),
        **options,  # type: ignore[arg-type]  # test options, typed by StreamDelivery
    )


@pytest.fixture
async def ctx(scratch_db: URL, tenant: EmulatorServer) -> AsyncIterator[JobContext]:
    engine = create_engine(scratch_db, process="tests")
    gateway = make_gateway(tenant, jobs=True)
    yield JobContext(
        settings=sync_settings(
            scratch_db,
            tenant,
            events_stream_secret=EVENT_SECRET,
            log_stream_secret=LOG_SECRET,
        ),
        engine=engine,
        sessions=create_session_factory(engine),
        auth0=gateway,
    )
    await gateway.aclose()
    await engine.dispose()


def serve_api(repo_root: Path, db: URL, emulator: EmulatorServer, port: int) -> Any:
    return serving(
        repo_root,
        api_env(db, emulator),
        port,
        "-m",
        "uvicorn",
        "main:create_app",
        "--factory",
        "--port",
        str(port),
    )


@pytest.fixture
async def api_port(scratch_db: URL, tenant: EmulatorServer, repo_root: Path) -> AsyncIterator[int]:
    """The API as deployed, in a process of its own, serving the inboxes."""
    port = free_port()
    async with serve_api(repo_root, scratch_db, tenant, port):
        yield port


async def drain(ctx: JobContext, timeout_s: float = 30) -> None:
    """Apply until nothing is pending (a retried event waits its pause)."""
    table = Auth0Event.__table__
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        await apply_events(ctx)
        async with ctx.sessions() as session:
            pending = (
                await session.execute(
                    sa.select(sa.func.count()).where(table.c.status == EventStatus.PENDING)
                )
            ).scalar_one()
        if not pending:
            return
        await asyncio.sleep(0.2)
    raise AssertionError("the inbox did not drain")


mutations = st.lists(
    st.tuples(st.sampled_from(MUTATIONS), st.integers(0, 50), st.integers(0, 3)),
    min_size=1,
    max_size=12,
)


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(changes=mutations, duplicate_rate=st.sampled_from([0.0, 0.5]))
async def test_pushed_changes_converge_whatever_the_order_and_duplicates(
    ctx: JobContext,
    tenant: EmulatorServer,
    api_port: int,
    changes: list[tuple[str, int, int]],
    duplicate_rate: float,
) -> None:
    # The examples share the fixtures (one tenant, one database): one model drives them all,
    # so its fresh values stay fresh, and the first example starts from a synced tenant.
    model: Model | None = getattr(ctx, "model", None)
    if model is None:
        model = Model(tenant.tenant)
        for index in range(6):
            model.new_user([index % 4])
        runs = await full_sync(ctx)
        assert [r.status.value for r in runs] == ["succeeded"] * 3, [r.error for r in runs]
        object.__setattr__(ctx, "model", model)
    with delivery(tenant, api_port, duplicate_rate=duplicate_rate, reorder_window=8) as streams:
        for kind, pick, role in changes:
            model.apply(kind, pick, role)
        assert streams.wait_idle(30)
    await drain(ctx)
    async with ctx.sessions() as session:
        await assert_converged(session, tenant.tenant)


async def test_deliveries_made_while_the_api_is_down_arrive_once_it_is_up(
    ctx: JobContext, tenant: EmulatorServer, scratch_db: URL, repo_root: Path
) -> None:
    model = Model(tenant.tenant)
    for index in range(4):
        model.new_user([index % 4])
    assert all(r.status.value == "succeeded" for r in await full_sync(ctx))
    port = free_port()
    with delivery(tenant, port, retry_delays_s=(0.3, 0.6, 1.0)) as streams:
        for kind, pick in (("change_email", 1), ("grant", 2), ("block", 3), ("new_user", 0)):
            model.apply(kind, pick, 1)
        await asyncio.sleep(1.0)  # the stream is retrying against a closed port
        assert streams.stats["event"].refused > 0
        async with serve_api(repo_root, scratch_db, tenant, port):
            assert streams.wait_idle(30)
            await drain(ctx)
    assert streams.stats["event"].failed == 0
    async with ctx.sessions() as session:
        await assert_converged(session, tenant.tenant)


async def test_a_scheduler_killed_mid_apply_applies_nothing_twice(
    ctx: JobContext, tenant: EmulatorServer, scratch_db: URL, repo_root: Path
) -> None:
    model = Model(tenant.tenant)
    for index in range(30):
        model.new_user([index % 4])
    assert all(r.status.value == "succeeded" for r in await full_sync(ctx))
    port = free_port()
    async with serve_api(repo_root, scratch_db, tenant, port):
        with delivery(tenant, port) as streams:
            for round_ in range(20):
                for pick in range(30):
                    tenant.tenant.update_user(
                        tenant.tenant.user_order[pick], {"email": f"r{round_}.u{pick}@example.org"}
                    )
            assert streams.wait_idle(60)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "run_scheduler.py",
        "--job",
        "events.apply",
        cwd=repo_root,
        env=api_env(scratch_db, tenant),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    await asyncio.sleep(2.5)  # started, mid-way through the 600 events (or done)
    if process.returncode is None:
        process.send_signal(signal.SIGKILL)
    await process.wait()
    await drain(ctx)
    async with ctx.sessions() as session:
        await assert_converged(session, tenant.tenant)
        history = UserHistory.__table__
        renames = (
            await session.execute(
                sa.select(history.c.user_id, history.c.new_value).where(
                    history.c.change == UserChange.EMAIL_UPDATE
                )
            )
        ).all()
    # Each change recorded at most once (events of one user coalesce to the newest, so
    # fewer than 600 is expected), never the same one twice.
    assert len(renames) == len(set(renames))
    assert len(renames) >= 30
