"""Mixed portal load at 100,000 users while the scheduler runs full syncs.

    uv run python -m scripts.bench.load [--users 100000] [--clients 32] [--seconds 60]
                                        [--rate 40] [--auth0-outage 15] [--nice 19]

Setup: an Auth0 emulator seeded with the bench tenant (3 platform roles on ~70% of users,
2 group roles on ~20%); a migrated Postgres filled by the real initial sync (roles, users,
memberships); 6,000 pending SBP requests for admins to approve; then the tenant changes
behind our back (new users with Galaxy, Galaxy removed from others, profile edits) so the
sync during the load has work to do.

Load: N closed-loop keep-alive clients for the given time against the API under uvicorn
(2 workers), each request drawn from a mix of portal reads (`/me/profile`,
`/me/platforms`, `/me/groups`), admin pages (user list first page, search, filtered page,
counts, one user) and writes (group requests by users who have not asked before,
approvals of pending SBP requests by a general admin). Meanwhile `run_scheduler.py
--immediate` (roles, users, memberships, outbox, email, cleanup) runs back to back in its
own process for the whole window. `--auth0-outage S` takes the emulator down for S seconds
in the middle: reads must still answer from Postgres and approvals queue (202).

Prints, per endpoint: requests/s, p50/p95/p99, errors and statuses; reads' p99 while a sync
was running; peak memory of each API worker and of each scheduler run. Afterwards one more
sync, then checks that Postgres and Auth0 agree on every role's members and that no
outbox entry is left. Targets: zero errors, reads p99 <= 100 ms while the sync runs.

Needs PostgreSQL at TEST_DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/postgres).
"""

import argparse
import asyncio
import os
import random
import secrets
import subprocess
import sys
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.engine import URL
from sqlmodel import col, func, select

from db.admin import create_database, drop_database
from db.base import utcnow
from db.migrations import upgrade_head
from db.models import Auth0OutboxEntry
from db.types import ApprovalStatus, OutboxStatus
from run_scheduler import build_context, close_context
from scripts.bench.admin_lists import GALAXY_ADMIN_ROLE, GENERAL_ROLE
from scripts.bench.harness import (
    Connection,
    bench_settings,
    cpu_seconds,
    mint,
    mint_many,
    peak_rss_mb,
    percentile,
    postgres_cpu_seconds,
    process_peak_rss_mb,
    raw_connection,
    start_api,
    stop,
    worker_pids,
)
from scripts.bench.sync import start_emulator
from services.auth0 import Auth0Gateway
from services.memberships.kinds import kind_named
from services.settings import to_async_url
from services.sync.jobs import JOBS_BY_NAME
from services.sync.member_import import load_targets
from services.sync.runs import JobContext, run_job

REPO_ROOT = Path(__file__).resolve().parents[2]
WARMUP_S = 3.0
READ_TARGET_MS = 100.0
PENDING_APPROVALS = 6_000
REQUESTERS = 6_000
READERS = 1_000
CHURN = 500  # new users, role removals and profile edits each
TSI = "biocommons/group/tsi"
BENCH_EMAIL = "bench{:07d}@example.org"


@dataclass
class World:
    base_url: str
    general: str  # general admin's token
    galaxy: str  # Galaxy admin's token
    readers: list[str]  # tokens of ordinary synced users
    requesters: list[str]  # tokens of users with no TSI membership yet
    pending: list[str]  # user ids with a pending SBP request
    sample_ids: list[str]  # user ids for the single-user admin page


@dataclass
class Call:
    method: str
    path: str
    token: str
    body: Any = None
    accept: tuple[int, ...] = (200,)
    expect: bytes = b""  # what an accepted answer's body must contain


@dataclass
class Operation:
    name: str
    weight: int
    read: bool
    make: Callable[[World, random.Random], Call | None]


def _search(world: World, rng: random.Random) -> Call:
    return Call("GET", f"/admin/users?search=bench{rng.randrange(0, 1000):03d}1", world.galaxy)


def _filtered(world: World, rng: random.Random) -> Call:
    path = f"/admin/users?platform=galaxy&platform_approval_status=pending&page={rng.randint(1, 5)}"
    return Call("GET", path, world.galaxy)


def _request_group(world: World, _rng: random.Random) -> Call | None:
    if not world.requesters:
        return None
    token = world.requesters.pop()
    # 200 carries a result per group: anything but "pending" is wrong here.
    body = {"group_id": TSI, "request_reason": "load"}
    return Call("POST", "/me/groups/request", token, body, expect=b'"pending"')


def _approve(world: World, _rng: random.Random) -> Call | None:
    if not world.pending:
        return None
    user_id = world.pending.pop()
    # 202: the database has the approval and the role change waits in the outbox.
    return Call(
        "POST", f"/admin/users/{user_id}/platforms/sbp/approve", world.general, accept=(200, 202)
    )


OPERATIONS = [
    Operation(
        "GET /me/profile", 24, True, lambda w, r: Call("GET", "/me/profile", r.choice(w.readers))
    ),
    Operation(
        "GET /me/platforms",
        10,
        True,
        lambda w, r: Call("GET", "/me/platforms", r.choice(w.readers)),
    ),
    Operation(
        "GET /me/groups", 8, True, lambda w, r: Call("GET", "/me/groups", r.choice(w.readers))
    ),
    Operation(
        "GET /admin/users (first page)",
        8,
        True,
        lambda w, r: Call("GET", "/admin/users?page=1&per_page=50", w.general),
    ),
    Operation("GET /admin/users (search)", 6, True, _search),
    Operation("GET /admin/users (galaxy pending)", 6, True, _filtered),
    Operation(
        "GET /admin/users/counts",
        6,
        True,
        lambda w, r: Call("GET", "/admin/users/counts", w.general),
    ),
    Operation(
        "GET /admin/users/{id}",
        6,
        True,
        lambda w, r: Call("GET", f"/admin/users/{r.choice(w.sample_ids)}", w.general),
    ),
    Operation("POST /me/groups/request", 6, False, _request_group),
    Operation("POST /admin/.../approve", 6, False, _approve),
]


@dataclass
class Sample:
    operation: str
    at: float  # seconds since the measured window began
    latency: float
    status: int  # 0: connection failed
    ok: bool


@dataclass
class SyncRun:
    started: float
    ended: float | None = None
    exit_code: int | None = None
    peak_rss_mb: float = 0.0
    cpu_s: float = 0.0


@dataclass
class Outcome:
    """What the run showed; `met` applies the targets."""

    requests: Counter[str] = field(default_factory=Counter)
    errors: int = 0
    read_p99_ms: float = 0.0
    statuses: Counter[int] = field(default_factory=Counter)
    sync_exit_codes: list[int | None] = field(default_factory=list)
    final_sync_exit_code: int | None = None
    disagreements: list[str] = field(default_factory=list)

    def met(self, *, outage: bool) -> bool:
        return (
            self.errors == 0
            and 0 < self.read_p99_ms <= READ_TARGET_MS
            # While Auth0 is down the scheduler's runs fail, as they should.
            and (outage or all(code == 0 for code in self.sync_exit_codes))
            and self.final_sync_exit_code == 0
            and not self.disagreements
        )


# ---- setup ------------------------------------------------------------------------


async def initial_sync(db_url: URL, emulator_url: str) -> None:
    ctx = build_context(bench_settings(db_url, emulator_url), dry_run=False)
    try:
        for job in ("sync.roles", "sync.users.full", "sync.memberships"):
            started = time.perf_counter()
            run = await run_job(ctx, job, JOBS_BY_NAME[job].body)
            print(
                f"  {job}: {run.status.value} in {time.perf_counter() - started:.1f} s", flush=True
            )
            if run.error:
                raise RuntimeError(f"{job} failed: {run.error}")
    finally:
        await close_context(ctx)


async def seed_pending(db_url: URL, skip: set[str]) -> list[str]:
    """Pending SBP requests from users without SBP, for admins to approve."""
    async with raw_connection(db_url) as connection:
        rows = await connection.fetch(
            """
            SELECT u.id FROM app_user u
            WHERE NOT EXISTS (
                SELECT 1 FROM platform_membership m
                WHERE m.user_id = u.id AND m.platform_id = 'sbp')
            ORDER BY u.id LIMIT $1
            """,
            PENDING_APPROVALS + len(skip),
        )
        users = [row["id"] for row in rows if row["id"] not in skip][:PENDING_APPROVALS]
        now = datetime.now(UTC)
        memberships = [(uuid.uuid4(), "sbp", user, "pending", now, now) for user in users]
        columns = ["id", "platform_id", "user_id", "approval_status", "created_at", "updated_at"]
        await connection.copy_records_to_table(
            "platform_membership", records=memberships, columns=columns
        )
        await connection.execute("ANALYZE platform_membership")
    return users


async def pick_users(db_url: URL, skip: set[str]) -> tuple[list[str], list[str], list[str]]:
    """(readers, requesters without TSI, sample) — emails for tokens, ids for the sample."""
    async with raw_connection(db_url) as connection:
        readers = await connection.fetch(
            "SELECT id, email FROM app_user ORDER BY md5(id) LIMIT $1", READERS + len(skip)
        )
        requesters = await connection.fetch(
            """
            SELECT u.id, u.email FROM app_user u
            WHERE NOT EXISTS (
                SELECT 1 FROM group_membership m WHERE m.user_id = u.id AND m.group_id = $1)
            ORDER BY md5(u.id || 'r') LIMIT $2
            """,
            TSI,
            REQUESTERS + len(skip),
        )
    reader_rows = [r for r in readers if r["id"] not in skip][:READERS]
    requester_rows = [r for r in requesters if r["id"] not in skip][:REQUESTERS]
    return (
        [r["email"] for r in reader_rows],
        [r["email"] for r in requester_rows],
        [r["id"] for r in reader_rows],
    )


async def churn_tenant(emulator_url: str, users: int, churn: int, avoid: set[str]) -> None:
    """Change the tenant behind the database's back, so the sync under load has work."""
    settings = bench_settings(URL.create("postgresql"), emulator_url)
    gateway = Auth0Gateway.from_settings(settings)
    try:
        roles = {role["name"]: role["id"] for role in await gateway.list_roles()}
        galaxy = roles["biocommons/platform/galaxy"]
        semaphore = asyncio.Semaphore(16)

        async def limited(coroutine: Any) -> None:
            async with semaphore:
                await coroutine

        async def new_user(index: int) -> None:
            created = await gateway.create_user(
                connection="Username-Password-Authentication",
                email=f"churn{index:05d}@example.org",
                username=f"churn{index:05d}",
                password="Bench-password-1",  # noqa: S106 - emulator tenant
                email_verified=True,
            )
            await gateway.assign_roles(created["user_id"], [galaxy])

        members = [m["user_id"] async for m in gateway.iter_role_members(galaxy, take=100)]
        rng = random.Random(3)
        removable = [m for m in members if m not in avoid]
        removed = rng.sample(removable, min(churn, len(removable)))
        edited = rng.sample([f"auth0|{i:07d}bench" for i in range(2, users)], churn)
        await asyncio.gather(
            *(limited(new_user(i)) for i in range(churn)),
            *(limited(gateway.remove_roles(user, [galaxy])) for user in removed),
            *(limited(gateway.update_user(user, given_name="Edited")) for user in edited),
        )
    finally:
        await gateway.aclose()


# ---- the run ----------------------------------------------------------------------


async def drive(
    world: World, clients: int, seconds: float, begin: float, rate: float | None
) -> tuple[list[Sample], Counter[str]]:
    """Closed loop (each client sends again as soon as it has its answer), or with `rate`
    paced: each client keeps its own schedule and latency counts from the scheduled
    moment, so a slow answer that delays the next send is not hidden."""
    samples: list[Sample] = []
    skipped: Counter[str] = Counter()
    stop = begin + seconds
    weights = [op.weight for op in OPERATIONS]
    # The warm-up only reads: the writes draw on finite pools (pending requests, users
    # who may still ask), which a fast warm-up would otherwise spend before the count.
    reads = [op for op in OPERATIONS if op.read]
    read_weights = [op.weight for op in reads]
    interval = clients / rate if rate else 0.0

    async def client(number: int) -> None:
        rng = random.Random(number)
        connection = Connection(world.base_url)
        scheduled = time.perf_counter() + rng.random() * interval
        try:
            while True:
                if interval:
                    await asyncio.sleep(max(0.0, scheduled - time.perf_counter()))
                    started, scheduled = scheduled, scheduled + interval
                else:
                    started = time.perf_counter()
                if started >= stop:
                    break
                if started < begin:
                    operation = rng.choices(reads, read_weights)[0]
                else:
                    operation = rng.choices(OPERATIONS, weights)[0]
                call = operation.make(world, rng)
                if call is None:
                    skipped[operation.name] += 1
                    continue
                try:
                    status, body = await connection.request(
                        call.method, call.path, call.token, call.body
                    )
                    ok = status in call.accept and call.expect in body
                except (OSError, ValueError):
                    status, ok = 0, False
                    await connection.reset()
                if started >= begin:
                    elapsed = time.perf_counter() - started
                    samples.append(Sample(operation.name, started - begin, elapsed, status, ok))
        finally:
            await connection.close()

    await asyncio.gather(*(client(n) for n in range(clients)))
    return samples, skipped


def scheduler_env(db_url: URL, emulator_url: str, rps: float) -> dict[str, str]:
    env = {
        **os.environ,
        "DB_URL": db_url.render_as_string(hide_password=False),
        "AUTH0_DOMAIN": emulator_url,
        "AUTH0_MGMT_RPS": str(rps),
        "AUTH0_MGMT_BURST": str(int(rps)),
        "LOG_LEVEL": "warning",
        "EMAIL_BACKEND": "console",
    }
    env.pop("DB_HOST", None)
    return env


def _scheduler_once(env: dict[str, str], nice: int, *args: str) -> tuple[int, float, float]:
    """Exit code, peak RSS (MB) and CPU seconds of one `run_scheduler.py` run."""
    process = subprocess.Popen(
        [sys.executable, str(REPO_ROOT / "run_scheduler.py"), *(args or ("--immediate",))],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    if nice:
        os.setpriority(os.PRIO_PROCESS, process.pid, nice)
    # wait4 reports the finished child's peak RSS, which /proc no longer can.
    _pid, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return process.returncode, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime


async def run_scheduler_once(
    env: dict[str, str], begin: float, runs: list[SyncRun], *args: str, nice: int = 0
) -> None:
    run = SyncRun(started=time.perf_counter() - begin)
    runs.append(run)
    run.exit_code, run.peak_rss_mb, run.cpu_s = await asyncio.to_thread(
        _scheduler_once, env, nice, *args
    )
    run.ended = time.perf_counter() - begin


async def keep_syncing(
    env: dict[str, str], begin: float, seconds: float, nice: int
) -> list[SyncRun]:
    runs: list[SyncRun] = []
    while time.perf_counter() - begin < seconds:
        await run_scheduler_once(env, begin, runs, nice=nice)
        if runs[-1].exit_code:
            # As a deployment's next scheduled run would, rather than at once.
            await asyncio.sleep(2)
    return runs


async def outage(emulator_url: str, begin: float, at: float, seconds: float) -> None:
    async with httpx.AsyncClient(base_url=emulator_url, timeout=10) as control:
        await asyncio.sleep(max(0.0, begin + at - time.perf_counter()))
        await control.post("/_emulator/config", json={"down": True})
        await asyncio.sleep(seconds)
        await control.post("/_emulator/config", json={"down": False})


def cpu_use(api_pid: int, emulator_pid: int) -> dict[str, float]:
    return {
        "API workers": sum(cpu_seconds(pid) for pid in worker_pids(api_pid)),
        "Postgres": postgres_cpu_seconds(),
        "Auth0 emulator": cpu_seconds(emulator_pid),
        "load generator": cpu_seconds(os.getpid()),
    }


# ---- checks and report ------------------------------------------------------------


async def outbox_wait_s(ctx: JobContext) -> float | None:
    """Seconds until the last queued outbox entry is due (0 if due now), None if none is."""
    async with ctx.sessions() as session:
        due = (
            await session.exec(
                select(func.count(), func.max(col(Auth0OutboxEntry.next_attempt_at))).where(
                    col(Auth0OutboxEntry.status).in_(
                        [OutboxStatus.PENDING, OutboxStatus.IN_PROGRESS]
                    )
                )
            )
        ).one()
    queued, last = due
    if not queued:
        return None
    return max(0.0, (last - utcnow()).total_seconds()) if last else 0.0


async def agreement(ctx: JobContext) -> list[str]:
    """Roles whose Auth0 members differ from the approved memberships here, and leftovers."""
    problems = []
    async with ctx.sessions() as session:
        for target in await load_targets(session):
            kind = kind_named(target.kind)
            members = select(kind.memberships.c.user_id).where(
                kind.target == target.id,
                kind.memberships.c.approval_status == ApprovalStatus.APPROVED,
            )
            here = set((await session.exec(members)).all())
            there = {m["user_id"] async for m in ctx.auth0.iter_role_members(target.role_id)}
            if here != there:
                problems.append(
                    f"{target.id}: {len(here - there)} approved here only, "
                    f"{len(there - here)} in Auth0 only"
                )
            else:
                print(f"  {target.id}: {len(here)} members, Postgres and Auth0 agree")
        left = await session.scalar(
            select(func.count()).where(col(Auth0OutboxEntry.status) != OutboxStatus.DONE)
        )
    if left:
        problems.append(f"{left} outbox entries not completed")
    return problems


def write_samples(path: str, samples: list[Sample]) -> None:
    lines = ["at_s,operation,latency_ms,status"]
    lines += [f"{s.at:.3f},{s.operation},{s.latency * 1000:.1f},{s.status}" for s in samples]
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")


def report(
    samples: list[Sample],
    seconds: float,
    runs: list[SyncRun],
    skipped: Counter[str],
    outcome: Outcome,
) -> None:
    by_operation: dict[str, list[Sample]] = defaultdict(list)
    for sample in samples:
        by_operation[sample.operation].append(sample)
    accepted = {op.name: op for op in OPERATIONS}
    print("| endpoint | requests/s | p50 ms | p95 ms | p99 ms | errors | statuses |")
    print("|---|---|---|---|---|---|---|")
    errors_total = 0
    for operation in OPERATIONS:
        rows = by_operation.get(operation.name, [])
        latencies = sorted(s.latency * 1000 for s in rows)
        errors = sum(1 for s in rows if not s.ok)
        errors_total += errors
        statuses = Counter(s.status for s in rows)
        shown = " ".join(f"{code}: {count}" for code, count in sorted(statuses.items()))
        print(
            f"| {operation.name} | {len(rows) / seconds:.1f} | {percentile(latencies, 0.5):.1f} | "
            f"{percentile(latencies, 0.95):.1f} | {percentile(latencies, 0.99):.1f} | {errors} | "
            f"{shown} |"
        )
    all_latencies = sorted(s.latency * 1000 for s in samples)
    print(
        f"| all | {len(samples) / seconds:.1f} | {percentile(all_latencies, 0.5):.1f} | "
        f"{percentile(all_latencies, 0.95):.1f} | {percentile(all_latencies, 0.99):.1f} | "
        f"{errors_total} | |"
    )
    if skipped:
        print(f"(pools ran dry, calls skipped: {dict(skipped)})")

    windows = [(run.started, run.ended if run.ended is not None else seconds) for run in runs]
    during = sorted(
        s.latency * 1000
        for s in samples
        if accepted[s.operation].read and (not runs or any(a <= s.at <= b for a, b in windows))
    )
    p99 = percentile(during, 0.99)
    print(
        f"\nreads{' while a sync was running' if runs else ''}: {len(during)} requests, "
        f"p50 {percentile(during, 0.5):.1f} ms, p95 {percentile(during, 0.95):.1f} ms, "
        f"p99 {p99:.1f} ms (target {READ_TARGET_MS:.0f})"
    )
    outcome.errors = errors_total
    outcome.read_p99_ms = p99
    outcome.requests.update(s.operation for s in samples)
    outcome.statuses.update(s.status for s in samples)


async def main_async(args: argparse.Namespace) -> Outcome:
    server = to_async_url(
        os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    )
    started = time.perf_counter()
    emulator, emulator_url = start_emulator(args.users)
    print(f"emulator seeded with {args.users} users in {time.perf_counter() - started:.1f} s")
    if args.nice:
        os.setpriority(os.PRIO_PROCESS, emulator.pid, args.nice)
    name = f"aai_bench_load_{secrets.token_hex(3)}"
    db_url = server.set(database=name)
    api = None
    try:
        await create_database(server, name)
        await upgrade_head(db_url)
        print("initial sync:")
        await initial_sync(db_url, emulator_url)
        general_token, general_id = await mint(emulator_url, BENCH_EMAIL.format(1), GENERAL_ROLE)
        galaxy_token, galaxy_id = await mint(emulator_url, BENCH_EMAIL.format(0), GALAXY_ADMIN_ROLE)
        admins = {general_id, galaxy_id}
        pending = await seed_pending(db_url, admins)
        readers, requesters, sample_ids = await pick_users(db_url, admins)
        started = time.perf_counter()
        reader_tokens = [t for t, _ in await mint_many(emulator_url, readers)]
        requester_tokens = [t for t, _ in await mint_many(emulator_url, requesters)]
        print(
            f"{len(pending)} pending SBP requests; {len(reader_tokens) + len(requester_tokens)} "
            f"tokens minted in {time.perf_counter() - started:.1f} s"
        )
        started = time.perf_counter()
        churn = min(CHURN, args.users // 50)
        await churn_tenant(emulator_url, args.users, churn, admins | set(pending))
        print(
            f"tenant changed behind the database: {churn} new users with Galaxy, Galaxy removed "
            f"from {churn}, {churn} profiles edited ({time.perf_counter() - started:.1f} s)"
        )

        api, base_url = start_api(
            db_url,
            emulator_url,
            {
                "ADMIN_ROLES": f'["{GENERAL_ROLE}"]',
                "AUTH0_MGMT_RPS": str(args.auth0_rps),
                "AUTH0_MGMT_BURST": str(int(args.auth0_rps)),
                "EMAIL_BACKEND": "console",
            },
        )
        world = World(
            base_url,
            general_token,
            galaxy_token,
            reader_tokens,
            requester_tokens,
            pending,
            sample_ids,
        )
        begin = time.perf_counter() + WARMUP_S
        env = scheduler_env(db_url, emulator_url, args.auth0_rps)

        async def syncs() -> list[SyncRun]:
            if args.no_sync:
                return []
            await asyncio.sleep(WARMUP_S)
            return await keep_syncing(env, begin, args.seconds, args.nice)

        extra = []
        if args.auth0_outage:
            extra.append(
                outage(
                    emulator_url, begin, (args.seconds - args.auth0_outage) / 2, args.auth0_outage
                )
            )
        print(
            f"\n{args.users} users, {args.clients} clients "
            + (f"paced at {args.rate:.0f} requests/s" if args.rate else "in a closed loop")
            + f", {args.seconds:.0f} s, uvicorn 2 workers, "
            + ("no scheduler" if args.no_sync else "scheduler full syncs back to back")
            + f", Auth0 limit {args.auth0_rps:.0f} rps per process"
            + (f", Auth0 down for {args.auth0_outage:.0f} s mid-run" if args.auth0_outage else "")
            + (f", scheduler and emulator at nice {args.nice}" if args.nice else "")
            + "\n",
            flush=True,
        )

        async def measured_cpu() -> dict[str, float]:
            await asyncio.sleep(max(0.0, begin - time.perf_counter()))
            before = cpu_use(api.pid, emulator.pid)
            await asyncio.sleep(args.seconds)
            after = cpu_use(api.pid, emulator.pid)
            return {name: after[name] - before[name] for name in before}

        driven = asyncio.create_task(drive(world, args.clients, args.seconds, begin, args.rate))
        synced = asyncio.create_task(syncs())
        measured = asyncio.create_task(measured_cpu())
        await asyncio.gather(driven, synced, measured, *extra)
        (samples, skipped), runs, cpu = driven.result(), synced.result(), measured.result()
        outcome = Outcome()
        report(samples, args.seconds, runs, skipped, outcome)
        if args.samples:
            write_samples(args.samples, samples)
        cpu["scheduler (whole runs)"] = sum(run.cpu_s for run in runs)
        print(
            f"\nCPU seconds in the {args.seconds:.0f} s window ({os.cpu_count()} cores = "
            f"{args.seconds * (os.cpu_count() or 1):.0f} available): "
            + ", ".join(f"{name} {seconds:.1f}" for name, seconds in cpu.items())
        )

        print("\nsync runs during the load (run_scheduler.py --immediate):")
        for run in runs:
            print(
                f"  {run.started:5.1f} s → {run.ended or 0:5.1f} s: exit {run.exit_code}, "
                f"peak RSS {run.peak_rss_mb:.0f} MB"
            )
        outcome.sync_exit_codes = [run.exit_code for run in runs]
        # The workers are still running, so their high-water marks cover the whole load.
        api_peaks = ", ".join(f"{process_peak_rss_mb(pid):.0f} MB" for pid in worker_pids(api.pid))
        print(f"API workers' peak RSS: {api_peaks}")

        print("\nafter the load: one more sync, then Postgres against Auth0")
        after: list[SyncRun] = []
        await run_scheduler_once(env, time.perf_counter(), after)
        print(f"  sync exit {after[0].exit_code} in {after[0].ended:.1f} s")
        checker = build_context(bench_settings(db_url, emulator_url), dry_run=False)
        try:
            waiting = await outbox_wait_s(checker)
            if waiting is not None:
                # Entries that failed while Auth0 was down wait out their backoff; the
                # scheduler's next outbox run after that delivers them.
                print(f"  outbox entries still queued; the next is due in {waiting:.0f} s")
                await asyncio.sleep(min(waiting + 1, 300))
                await run_scheduler_once(env, time.perf_counter(), after, "--job", "sync.outbox")
                print(f"  sync.outbox exit {after[-1].exit_code}")
            outcome.disagreements = await agreement(checker)
        finally:
            await close_context(checker)
        outcome.final_sync_exit_code = max(run.exit_code or 0 for run in after)
        for problem in outcome.disagreements:
            print(f"  DISAGREE {problem}")
        print(f"\nload generator peak RSS {peak_rss_mb():.0f} MB")
        met = outcome.met(outage=bool(args.auth0_outage))
        print("targets met" if met else "targets MISSED")
        return outcome
    finally:
        stop(api, emulator)
        if args.keep:
            print(f"database kept: {db_url.render_as_string(hide_password=False)}")
        else:
            await drop_database(server, name)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument(
        "--auth0-outage", type=float, default=0.0, help="seconds of Auth0 outage mid-run"
    )
    parser.add_argument(
        "--auth0-rps",
        type=float,
        default=50.0,
        help="Management API requests/s each process allows itself (AUTH0_MGMT_RPS)",
    )
    parser.add_argument(
        "--rate", type=float, help="paced: this many requests/s in all instead of a closed loop"
    )
    parser.add_argument(
        "--no-sync", action="store_true", help="leave the scheduler out (a baseline)"
    )
    parser.add_argument(
        "--nice",
        type=int,
        default=0,
        choices=range(20),
        metavar="0-19",
        help="lower the scheduler's and the emulator's CPU priority: in production they do "
        "not share the API's CPUs (the scheduler has its own task, Auth0 is elsewhere)",
    )
    parser.add_argument("--samples", help="write every request's timing to this CSV file")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    return parser


def main() -> None:
    args = build_parser().parse_args()
    outcome = asyncio.run(main_async(args))
    sys.exit(0 if outcome.met(outage=bool(args.auth0_outage)) else 1)


if __name__ == "__main__":
    main()
