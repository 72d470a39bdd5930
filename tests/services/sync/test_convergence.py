"""The sync converges: after a run, Postgres says what Auth0 says, whatever happened before.

The property test draws random tenants and random mutations (new users, email/username
changes, blocks, unblocks, deletions, role grants and removals) and compares the database
with the tenant after each sync. The fault tests do the same under 429 storms and 5xx,
and after a scheduler killed with SIGKILL mid-run.
"""

import asyncio
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from db.engine import create_engine, create_session_factory
from db.models import SyncRun, User
from db.types import SyncRunStatus
from scripts.auth0_emulator.seed import seed_roles
from scripts.auth0_emulator.server import EmulatorServer
from scripts.auth0_emulator.tenant import Tenant
from services.sync.runs import JobContext
from tests.conftest import TEST_AUDIENCE, savepoint_sessions
from tests.factories import auth0_user, make_gateway
from tests.services.sync.conftest import sync_settings
from tests.services.sync.helpers import approved, full_sync, live_users, revoked

ROLES = [
    "biocommons/platform/galaxy",
    "biocommons/platform/bpa_data_portal",
    "biocommons/platform/sbp",
    "biocommons/group/tsi",
]
MUTATIONS = [
    "new_user",
    "change_email",
    "change_username",
    "block",
    "unblock",
    "delete",
    "grant",
    "revoke",
]


@dataclass
class Model:
    """Drives the tenant with unique values, as Auth0 would accept them."""

    tenant: Tenant
    counter: int = 0

    def fresh(self) -> int:
        self.counter += 1
        return self.counter

    def role_id(self, index: int) -> str:
        role = self.tenant.role_by_name(ROLES[index % len(ROLES)])
        assert role is not None
        return str(role["id"])

    def new_user(self, roles: list[int], blocked: bool = False) -> None:
        n = self.fresh()
        user_id = auth0_user(self.tenant, f"p{n}", blocked=blocked)
        if roles:
            self.tenant.assign_roles(user_id, [self.role_id(r) for r in roles])

    def apply(self, kind: str, pick: int, role: int) -> None:
        ids = list(self.tenant.user_order)
        if kind == "new_user" or not ids:
            self.new_user([role])
            return
        user_id = ids[pick % len(ids)]
        n = self.fresh()
        if kind == "change_email":
            self.tenant.update_user(user_id, {"email": f"changed{n}@example.org"})
        elif kind == "change_username":
            self.tenant.update_user(user_id, {"username": f"renamed{n}"})
        elif kind in ("block", "unblock"):
            self.tenant.update_user(user_id, {"blocked": kind == "block"})
        elif kind == "delete":
            self.tenant.delete_user(user_id)
        elif kind == "grant":
            self.tenant.assign_roles(user_id, [self.role_id(role)])
        else:
            self.tenant.remove_roles(user_id, [self.role_id(role)])


def expected_users(tenant: Tenant) -> dict[str, dict[str, object]]:
    return {
        user_id: {"email": user["email"], "username": user["username"], "blocked": False}
        for user_id, user in tenant.users.items()
        if not user["blocked"]
    }


def expected_memberships(tenant: Tenant) -> set[tuple[str, str]]:
    return {
        (role["name"], user_id)
        for user_id in tenant.users
        for role in tenant.roles_of(user_id)
        if role["name"] in ROLES
    }


async def assert_converged(session: AsyncSession, tenant: Tenant) -> None:
    assert await live_users(session) == expected_users(tenant)
    assert await approved(session) == expected_memberships(tenant)


initial_users = st.lists(
    st.tuples(st.lists(st.integers(0, 3), max_size=3, unique=True), st.booleans()), max_size=10
)
mutations = st.lists(
    st.tuples(st.sampled_from(MUTATIONS), st.integers(0, 50), st.integers(0, 3)), max_size=15
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(initial=initial_users, changes=mutations)
async def test_sync_converges_for_random_tenants_and_mutations(
    session: AsyncSession,
    pg_engine: AsyncEngine,
    pg_url: URL,
    initial: list[tuple[list[int], bool]],
    changes: list[tuple[str, int, int]],
):
    connection = await session.connection()
    savepoint = await connection.begin_nested()
    try:
        with EmulatorServer(audience=TEST_AUDIENCE) as server:
            server.state.faults.export_delay_s = 0.0
            seed_roles(server.tenant)
            model = Model(server.tenant)
            for roles, blocked in initial:
                model.new_user(roles, blocked=blocked)
            sessions = savepoint_sessions(connection)
            gateway = make_gateway(server, jobs=True)
            ctx = JobContext(sync_settings(pg_url, server), pg_engine, sessions, gateway)
            try:
                runs = await full_sync(ctx)
                assert [r.status.value for r in runs] == ["succeeded"] * 3, [r.error for r in runs]
                await assert_converged(session, server.tenant)
                for kind, pick, role in changes:
                    model.apply(kind, pick, role)
                runs = await full_sync(ctx)
                assert [r.status.value for r in runs] == ["succeeded"] * 3, [r.error for r in runs]
                await assert_converged(session, server.tenant)
            finally:
                await gateway.aclose()
    finally:
        await savepoint.rollback()


async def test_converges_through_429_storms_and_injected_5xx(
    sync_ctx: JobContext, session: AsyncSession, tenant_server: EmulatorServer
):
    model = Model(tenant_server.tenant)
    for index in range(40):
        model.new_user([index % 4, (index + 1) % 4])
    tenant_server.state.set_rate_limit("free")  # 2 requests/s, burst 2
    tenant_server.state.faults.error_rate = 0.05
    tenant_server.state.faults._random.seed(5)
    runs = await full_sync(sync_ctx)
    assert [r.status.value for r in runs] == ["succeeded"] * 3, [r.error for r in runs]
    for index, kind in enumerate(
        ["grant", "revoke", "change_email", "block", "delete", "new_user"] * 2
    ):
        model.apply(kind, index * 7, index)
    runs = await full_sync(sync_ctx)
    assert [r.status.value for r in runs] == ["succeeded"] * 3, [r.error for r in runs]
    await assert_converged(session, tenant_server.tenant)
    assert sync_ctx.auth0.stats.throttled > 0
    assert tenant_server.state.throttled > 0


async def _run_and_kill(ctx: JobContext, repo_root: Path, env: dict[str, str], job: str) -> SyncRun:
    """Start `run_scheduler.py --job`, wait until its run is recorded as running, SIGKILL it."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "run_scheduler.py",
        "--job",
        job,
        cwd=repo_root,
        env={**os.environ, **env},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        for _ in range(300):
            async with ctx.sessions() as session:
                run = (
                    await session.exec(
                        select(SyncRun).where(
                            col(SyncRun.job) == job, col(SyncRun.status) == SyncRunStatus.RUNNING
                        )
                    )
                ).first()
            if run is not None:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError(f"{job} never started")
        await asyncio.sleep(0.4)  # into the job: its first Auth0 answers take 300 ms each
    finally:
        process.send_signal(signal.SIGKILL)
        assert await process.wait() == -signal.SIGKILL
    return run


async def test_scheduler_killed_mid_run_loses_nothing_and_the_next_run_converges(
    scratch_db: URL, tenant_server: EmulatorServer, repo_root: Path
):
    model = Model(tenant_server.tenant)
    for index in range(120):
        model.new_user([index % 4])
    engine = create_engine(scratch_db, process="tests")
    gateway = make_gateway(tenant_server, jobs=True)
    ctx = JobContext(
        sync_settings(scratch_db, tenant_server), engine, create_session_factory(engine), gateway
    )
    try:
        await full_sync(ctx)
        for index, kind in enumerate(["revoke", "grant", "delete", "change_email", "block"] * 6):
            model.apply(kind, index * 5, index)
        env = {
            "DB_URL": scratch_db.render_as_string(hide_password=False),
            "AUTH0_DOMAIN": tenant_server.base_url,
            "AUTH0_AUDIENCE": TEST_AUDIENCE,
            "AUTH0_MGMT_RPS": "1000",
            "AUTH0_MGMT_BURST": "1000",
            "SYNC_MAX_DELETE_FRACTION": "1",
        }
        tenant_server.state.faults.latency_ms = 300  # slow enough to be mid-run when killed
        for job in ("sync.users.full", "sync.memberships"):
            killed = await _run_and_kill(ctx, repo_root, env, job)
            async with ctx.sessions() as session:
                # Killed mid-run: its run record never reached an outcome.
                assert (await session.get_one(SyncRun, killed.id)).status is SyncRunStatus.RUNNING
        # Nothing the tenant still grants was revoked, and nobody it still has was deleted.
        async with ctx.sessions() as session:
            wrongly_revoked = await revoked(session) & expected_memberships(tenant_server.tenant)
            deleted = set(
                (await session.exec(select(col(User.id)).where(col(User.is_deleted)))).all()
            )
        assert wrongly_revoked == set()
        assert {u for u in deleted if u in expected_users(tenant_server.tenant)} == set()
        tenant_server.state.faults.latency_ms = 0
        runs = await full_sync(ctx)
        assert [r.status.value for r in runs] == ["succeeded"] * 3, [r.error for r in runs]
        async with ctx.sessions() as session:
            await assert_converged(session, tenant_server.tenant)
            abandoned = (
                await session.exec(
                    select(SyncRun).where(col(SyncRun.error).startswith("abandoned"))
                )
            ).all()
        assert len(abandoned) == 2
    finally:
        await gateway.aclose()
        await engine.dispose()
