"""Benchmark of pushed changes: Auth0 change → row in Postgres, through the streams.

    uv run python -m scripts.bench.events --users 100000 --changes-per-minute 1000 --seconds 60

An emulator (in this process, rate limit off) seeded with N users pushes its Event Stream and
Log Stream over HTTP to the API (uvicorn, 2 workers) with a few duplicates and shuffled order;
the scheduler (`run_scheduler.py`, as deployed) runs its first syncs and then `events.apply`
every EVENTS_APPLY_INTERVAL_S. The driver makes user changes at the given rate (a new name,
as an admin in the Auth0 Dashboard would) and some role grants, and watches Postgres for each
to land. Then it measures the inboxes alone: log batches of 100 and single CloudEvents posted
by 16 clients. Prints:

- change → row latency, p50/p99 (user changes; role grants apart);
- Management API requests the scheduler made per 1,000 user changes and per role grant;
- events accepted per second by the inboxes.

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
from typing import Any

from sqlalchemy.engine import URL

from db.admin import create_database, drop_database
from db.migrations import upgrade_head
from scripts.auth0_emulator.seed import seed_bench
from scripts.auth0_emulator.server import EmulatorServer
from scripts.auth0_emulator.streams import StreamDelivery, Target
from scripts.bench.harness import Connection, percentile, raw_connection, start_api, stop
from services.settings import to_async_url

EVENT_SECRET = secrets.token_hex(24)
LOG_SECRET = secrets.token_hex(24)
AUDIENCE = "https://api.aai-backend.bench"


def environment(db_url: URL, emulator: EmulatorServer) -> dict[str, str]:
    return {
        "DB_URL": db_url.render_as_string(hide_password=False),
        "DB_HOST": "",
        "AUTH0_DOMAIN": emulator.base_url,
        "AUTH0_AUDIENCE": AUDIENCE,
        "AUTH0_STARTUP_CHECK": "false",
        "AUTH0_MGMT_RPS": "1000",
        "AUTH0_MGMT_BURST": "1000",
        "EVENTS_STREAM_SECRET": EVENT_SECRET,
        "LOG_STREAM_SECRET": LOG_SECRET,
        "LOG_LEVEL": "warning",
        "PUBLIC_RATE_LIMIT_PER_MINUTE": "1000000",
    }


def start_scheduler(env: dict[str, str]) -> subprocess.Popen[bytes]:
    """The scheduler as deployed: its first syncs, then every job on its interval."""
    return subprocess.Popen(
        [sys.executable, "run_scheduler.py"],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def wait_for_first_syncs(db_url: URL, timeout_s: float = 900) -> None:
    deadline = time.monotonic() + timeout_s
    async with raw_connection(db_url) as connection:
        while time.monotonic() < deadline:
            done = await connection.fetchval(
                "SELECT count(*) FROM sync_run WHERE job = 'sync.memberships' "
                "AND status = 'succeeded'"
            )
            if done:
                return
            await asyncio.sleep(1)
    raise TimeoutError("the scheduler's first syncs did not finish")


def management_requests(emulator: EmulatorServer) -> dict[str, int]:
    return {k: v for k, v in emulator.state.requests.items() if " /api/v2/" in k}


async def drive(
    db_url: URL, emulator: EmulatorServer, per_minute: int, seconds: int, grants: int
) -> dict[str, Any]:
    tenant = emulator.tenant
    rng = random.Random(5)
    ids = list(tenant.user_order)
    galaxy = tenant.role_id("biocommons/platform/galaxy")
    without_galaxy = [u for u in ids if galaxy not in tenant.user_roles.get(u, set())]
    pending: dict[str, tuple[str, float]] = {}  # user id -> (name expected, when changed)
    pending_grants: dict[str, float] = {}
    latencies: list[float] = []
    grant_latencies: list[float] = []
    before = management_requests(emulator)
    interval = 60.0 / per_minute
    total = per_minute * seconds // 60
    grant_every = max(1, total // max(grants, 1))
    started = time.monotonic()

    async def watch() -> None:
        async with raw_connection(db_url) as connection:
            while pending or pending_grants or time.monotonic() - started < seconds:
                if pending:
                    rows = await connection.fetch(
                        "SELECT id, name FROM app_user WHERE id = ANY($1::text[])", list(pending)
                    )
                    now = time.monotonic()
                    for row in rows:
                        expected, at = pending.get(row["id"], (None, 0.0))
                        if row["name"] == expected:
                            latencies.append(now - at)
                            del pending[row["id"]]
                if pending_grants:
                    rows = await connection.fetch(
                        "SELECT user_id FROM platform_membership WHERE platform_id = 'galaxy' "
                        "AND approval_status = 'approved' AND user_id = ANY($1::text[])",
                        list(pending_grants),
                    )
                    now = time.monotonic()
                    for row in rows:
                        grant_latencies.append(now - pending_grants.pop(row["user_id"]))
                if time.monotonic() - started > seconds + 120:
                    break
                await asyncio.sleep(0.02)

    watcher = asyncio.create_task(watch())
    for n in range(total):
        target = started + n * interval
        await asyncio.sleep(max(0.0, target - time.monotonic()))
        user_id = rng.choice(ids)
        name = f"bench-{n}"
        # As an admin in the Auth0 Dashboard would; the tenant pushes the change.
        await asyncio.to_thread(tenant.update_user, user_id, {"name": name})
        pending[user_id] = (name, time.monotonic())
        if n % grant_every == 0 and without_galaxy and len(pending_grants) < grants:
            granted = without_galaxy.pop()
            await asyncio.to_thread(tenant.assign_roles, granted, [galaxy])
            pending_grants[granted] = time.monotonic()
    await watcher
    async with raw_connection(db_url) as connection:
        # Where the time goes: Auth0 (the emulator) → inbox, inbox → applied.
        stages = await connection.fetchrow(
            "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM received_at - occurred_at)) AS delivery,"
            " percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - received_at)) AS apply"
            " FROM auth0_event WHERE source = 'event_stream' AND finished_at IS NOT NULL"
        )
    after = management_requests(emulator)
    spent = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    spent = {k: v for k, v in spent.items() if v}
    user_reads = sum(
        v for k, v in spent.items() if k.startswith("GET /api/v2/users/{id}") and "roles" not in k
    )
    role_reads = sum(v for k, v in spent.items() if k.endswith("/roles"))
    latencies.sort()
    grant_latencies.sort()
    return {
        "changes": total,
        "landed": len(latencies),
        "lost": len(pending),
        "p50": percentile(latencies, 0.5),
        "p99": percentile(latencies, 0.99),
        "grants": len(grant_latencies) + len(pending_grants),
        "grant_p50": percentile(grant_latencies, 0.5),
        "grant_p99": percentile(grant_latencies, 0.99),
        "requests": spent,
        "delivery_p50": float(stages["delivery"] or 0),
        "apply_p50": float(stages["apply"] or 0),
        "per_1000_updates": (
            user_reads + sum(v for k, v in spent.items() if k.startswith("GET /api/v2/users?"))
        )
        * 1000
        / max(total, 1),
        "per_grant": role_reads / max(len(grant_latencies) + len(pending_grants), 1),
    }


async def inbox_throughput(
    base: str, *, batches: int = 300, singles: int = 3000
) -> dict[str, float]:
    """Events accepted per second by 16 keep-alive clients: Log Stream batches of 100, then
    single CloudEvents (harness.Connection: httpx's own CPU would be taken from the API)."""
    results: dict[str, float] = {}

    async def post_many(path: str, secret: str, bodies: list[Any]) -> float:
        queue = list(bodies)
        connections = [Connection(base) for _ in range(16)]
        started = time.monotonic()

        async def worker(connection: Connection) -> None:
            while queue:
                status, answer = await connection.request("POST", path, secret, queue.pop())
                assert status == 202, answer

        try:
            await asyncio.gather(*(worker(c) for c in connections))
        finally:
            for connection in connections:
                await connection.close()
        return time.monotonic() - started

    run = secrets.token_hex(3)
    batch_bodies = [
        [
            {
                "log_id": f"bench{run}{b:05d}{i:03d}",
                "data": {"type": "fp", "date": "2026-11-28T10:00:00Z"},
            }
            for i in range(100)
        ]
        for b in range(batches)
    ]
    elapsed = await post_many("/events/auth0/log-stream", LOG_SECRET, batch_bodies)
    results["log batches of 100 (events/s)"] = batches * 100 / elapsed
    single_bodies = [
        {
            "id": f"evt_bench{run}{i:06d}",
            "type": "user.updated",
            "specversion": "1.0",
            "source": "urn:auth0:bench:users",
            "time": "2026-11-28T10:00:00Z",
            "data": {
                "object": {"user_id": f"auth0|inbox{i}", "updated_at": "2020-01-01T00:00:00Z"}
            },
        }
        for i in range(singles)
    ]
    elapsed = await post_many("/events/auth0/event-stream", EVENT_SECRET, single_bodies)
    results["single CloudEvents (events/s)"] = singles / elapsed
    return results


async def run(
    users: int,
    per_minute: int,
    seconds: int,
    grants: int,
    *,
    batches: int = 300,
    singles: int = 3000,
) -> dict[str, Any]:
    server = to_async_url(
        os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    )
    name = f"aai_bench_events_{secrets.token_hex(3)}"
    db_url = await create_database(server, name)
    api = scheduler = None
    emulator = EmulatorServer(audience=AUDIENCE)
    try:
        await upgrade_head(db_url)
        emulator.state.faults.export_delay_s = 0.0
        seeding = time.monotonic()
        await asyncio.to_thread(seed_bench, emulator.tenant, users=users)
        # A tenant's users were not all changed in the last minute: the scheduler's first
        # incremental sync would otherwise page through every user, window by window.
        for user in emulator.tenant.users.values():
            user["updated_at"] = "2026-01-01T00:00:00.000Z"
        print(f"seeded {users} users in {time.monotonic() - seeding:.1f} s")
        emulator.start()
        env = environment(db_url, emulator)
        api, base = await asyncio.to_thread(start_api, db_url, emulator.base_url, env)
        scheduler = await asyncio.to_thread(start_scheduler, env)
        syncing = time.monotonic()
        await wait_for_first_syncs(db_url)
        print(f"first syncs done in {time.monotonic() - syncing:.1f} s")
        streams = StreamDelivery(
            emulator.tenant,
            events=Target(f"{base}/events/auth0/event-stream", f"Bearer {EVENT_SECRET}"),
            logs=Target(f"{base}/events/auth0/log-stream", f"Bearer {LOG_SECRET}"),
            duplicate_rate=0.02,
            reorder_window=4,
        ).start()
        try:
            result = await drive(db_url, emulator, per_minute, seconds, grants)
        finally:
            streams.stop()
        # The inboxes alone: what they accept, with nothing applying meanwhile.
        await asyncio.to_thread(stop, scheduler)
        scheduler = None
        throughput = await inbox_throughput(base, batches=batches, singles=singles)
    finally:
        await asyncio.to_thread(stop, api, scheduler)
        emulator.stop()
        await drop_database(server, name)
    ms = 1000
    print(
        f"\n{users} users, {result['changes']} changes at {per_minute}/min, {result['grants']} role grants"
    )
    print("| measure | value |")
    print("|---|---|")
    print(
        f"| user change → row, p50 / p99 | {result['p50'] * ms:.0f} ms / {result['p99'] * ms:.0f} ms |"
    )
    print(f"| changes landed / lost | {result['landed']} / {result['lost']} |")
    print(
        f"| of which: change → inbox p50, inbox → applied p50 | {result['delivery_p50'] * ms:.0f} ms, "
        f"{result['apply_p50'] * ms:.0f} ms |"
    )
    print(
        f"| role grant → membership, p50 / p99 | {result['grant_p50'] * ms:.0f} ms / {result['grant_p99'] * ms:.0f} ms |"
    )
    print(f"| Management API requests per 1,000 user changes | {result['per_1000_updates']:.1f} |")
    print(f"| Management API requests per role grant | {result['per_grant']:.2f} |")
    for label, value in throughput.items():
        print(f"| inbox: {label} | {value:,.0f} |")
    print(f"\nManagement API requests during the run: {result['requests']}")
    return {**result, "throughput": throughput}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--users", type=int, default=20000)
    parser.add_argument("--changes-per-minute", type=int, default=1000)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--grants", type=int, default=50)
    args = parser.parse_args()
    asyncio.run(run(args.users, args.changes_per_minute, args.seconds, args.grants))


if __name__ == "__main__":
    main()
