"""Benchmark of the Auth0 → Postgres sync.

    uv run python -m scripts.bench.sync --users 10000 100000

For each size: an emulator process (rate limit off) seeded with N users, 3 platform roles
on ~70% of users and 2 group roles on ~20%; an empty, migrated Postgres database; then
the full user sync, the membership sync, and a second run of both with nothing changed.
Finally the membership sync again against the Enterprise preset (16 rps, burst 50) with
AUTH0_PLAN=enterprise (the budget shared through Postgres), compared with the floor that
rate limit allows. The emulator is the strict one (audience, scopes). Prints a table.

Needs PostgreSQL at TEST_DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/postgres).
"""

import argparse
import asyncio
import math
import os
import secrets
import subprocess
import sys
import time

import httpx
from sqlalchemy import func, select
from sqlalchemy.engine import URL
from sqlmodel import col

from db.admin import create_database, drop_database
from db.migrations import upgrade_head
from db.models import GroupMembership, PlatformMembership
from db.types import ApprovalStatus
from run_scheduler import build_context, close_context
from scripts.auth0_emulator.server import free_port
from scripts.bench.harness import bench_settings, peak_rss_mb, stop
from services.settings import to_async_url
from services.sync.jobs import JOBS_BY_NAME
from services.sync.runs import JobContext, run_job

ENTERPRISE_RPS, ENTERPRISE_BURST = 16.0, 50


def start_emulator(users: int) -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "scripts.auth0_emulator",
            "--port",
            str(port),
            "--seed",
            "bench",
            "--users",
            str(users),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("Auth0 emulator at"):
            break
    return process, f"http://127.0.0.1:{port}"


async def bench_size(server: URL, users: int) -> list[tuple[str, str]]:
    emulator, base_url = start_emulator(users)
    name = f"aai_bench_{secrets.token_hex(3)}"
    db_url = await create_database(server, name)
    rows: list[tuple[str, str]] = []
    try:
        await upgrade_head(db_url)
        settings = bench_settings(db_url, base_url, sync_user_source="auto")
        ctx = build_context(settings, dry_run=False)
        try:
            timings: dict[str, float] = {}
            for label, job in (
                ("roles", "sync.roles"),
                ("users full (first)", "sync.users.full"),
                ("memberships (first)", "sync.memberships"),
                ("users full (no change)", "sync.users.full"),
                ("memberships (no change)", "sync.memberships"),
            ):
                started = time.perf_counter()
                run = await run_job(ctx, job, JOBS_BY_NAME[job].body)
                timings[label] = time.perf_counter() - started
                counts = {k: v for k, v in run.counts.items() if v and k != "conflict_examples"}
                rows.append((f"{label}", f"{timings[label]:.2f} s  {run.status.value}  {counts}"))
            async with httpx.AsyncClient(base_url=base_url, timeout=10) as control:
                members = (await control.get("/_emulator/state")).json()
                await control.post("/_emulator/config", json={"rate_limit": "enterprise"})
            pages = sum(math.ceil(n / 100) for n in await _member_counts(ctx))
            rows.append(
                (
                    "Auth0 request floor for memberships",
                    f"{pages} pages (⌈members/100⌉ per role); {members['users']} users in tenant",
                )
            )

            # Start with a full bucket, as a real run would.
            await asyncio.sleep(ENTERPRISE_BURST / ENTERPRISE_RPS + 1)
            enterprise = build_context(
                settings.model_copy(
                    update={
                        "auth0_mgmt_rps": ENTERPRISE_RPS,
                        "auth0_mgmt_burst": ENTERPRISE_BURST,
                        "auth0_plan": "enterprise",
                    }
                ),
                dry_run=False,
            )
            try:
                started = time.perf_counter()
                run = await run_job(
                    enterprise, "sync.memberships", JOBS_BY_NAME["sync.memberships"].body
                )
                elapsed = time.perf_counter() - started
            finally:
                await close_context(enterprise)
            floor = max(pages - ENTERPRISE_BURST, 0) / ENTERPRISE_RPS
            rows.append(
                (
                    "memberships at Enterprise 16 rps",
                    f"{elapsed:.1f} s vs floor {floor:.1f} s = {elapsed / floor if floor else float('nan'):.2f}x; "
                    f"{run.counts.get('auth0_requests')} requests, {enterprise.auth0.stats.throttled} throttled, "
                    f"{enterprise.auth0.stats.held} held for the shared budget",
                )
            )
        finally:
            await close_context(ctx)
        rows.append(("peak RSS of the sync process", f"{peak_rss_mb():.0f} MB"))
    finally:
        stop(emulator)
        await drop_database(server, name)
    return rows


async def _member_counts(ctx: JobContext) -> list[int]:
    counts: list[int] = []
    async with ctx.sessions() as session:
        for model, column in (
            (PlatformMembership, col(PlatformMembership.platform_id)),
            (GroupMembership, col(GroupMembership.group_id)),
        ):
            result = await session.execute(
                select(column, func.count())
                .where(col(model.approval_status) == ApprovalStatus.APPROVED)
                .group_by(column)
            )
            counts.extend(count for _target, count in result.all())
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, nargs="+", default=[10_000, 100_000])
    args = parser.parse_args()
    server = to_async_url(
        os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    )
    for users in args.users:
        print(f"\n## {users} users")
        for label, figure in asyncio.run(bench_size(server, users)):
            print(f"| {label} | {figure} |")


if __name__ == "__main__":
    main()
