"""Benchmark of the Auth0 → Postgres sync: time, Auth0 requests and peak memory per size.

    uv run python -m scripts.bench.sync --users 10000 100000 1000000
        [--before DIR] [--no-enterprise] [--no-floor]

For each size: an emulator process (rate limit off) seeded with N users, 3 platform roles
on ~70% of users and 2 group roles on ~20%; then, in a process of its own on an empty,
migrated Postgres database (scripts/bench/sync_child.py): the roles sync, the full user
sync, the membership sync, and a second run of both with nothing changed; the process's
peak RSS is the memory that size needed. `--before DIR` runs the same in the code of
another checkout (e.g. `git worktree add /tmp/before <rev>`) first, on a database of its
own, so before and after come from one run on one machine.

The floor (scripts/bench/sync_floor.py, on a fresh database; skip with `--no-floor`):
the same users and members written with raw COPY and one set-based upsert per table. The
sync's write time is its run time less the time the floor took to read the same data
from the emulator (the export; the role members), and is printed against the floor's.

Finally (skip with `--no-enterprise`, as at a million users it takes many minutes) the
membership sync against the Enterprise preset (16 rps, burst 50) with AUTH0_PLAN=
enterprise (the budget shared through Postgres), compared with the floor that rate limit
allows. The emulator is the strict one (audience, scopes). Prints a table per size.

Needs PostgreSQL at TEST_DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/postgres).
"""

import argparse
import asyncio
import json
import math
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

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
from scripts.bench.harness import bench_settings, stop
from services.settings import to_async_url
from services.sync.runs import JobContext

ENTERPRISE_RPS, ENTERPRISE_BURST = 16.0, 50
HERE = Path(__file__).resolve().parent
THIS = HERE.parents[1]


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


async def fresh_database(server: URL) -> tuple[str, URL]:
    name = f"aai_bench_{secrets.token_hex(3)}"
    db_url = await create_database(server, name)
    await upgrade_head(db_url)
    return name, db_url


def run_script(script: str, code: Path, *args: str) -> dict[str, Any]:
    """One of this directory's scripts, run as a file with `code` first on the path."""
    started = time.perf_counter()
    done = subprocess.run(
        # -P: the script's own directory stays off the path (scripts/bench/email.py would
        # stand in for the standard library's email).
        [sys.executable, "-P", str(HERE / script), *args],
        cwd=code,
        env={**os.environ, "PYTHONPATH": str(code), "LOG_LEVEL": "warning"},
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{script} failed ({done.returncode}):\n{done.stderr[-4000:]}")
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    report["process_seconds"] = time.perf_counter() - started
    return report


async def bench_size(server: URL, users: int, args: argparse.Namespace) -> None:
    emulator, base_url = start_emulator(users)
    print(f"\n## {users:,} users\n", flush=True)
    try:
        codes = ([("before", Path(args.before))] if args.before else []) + [("this", THIS)]
        results: dict[str, dict[str, Any]] = {}
        for label, code in codes:
            name, db_url = await fresh_database(server)
            try:
                enterprise = not args.no_enterprise and label == "this"
                results[label] = run_script(
                    "sync_child.py",
                    code,
                    db_url.render_as_string(hide_password=False),
                    base_url,
                    *(["--enterprise"] if enterprise else []),
                )
                if enterprise:
                    ctx = build_context(bench_settings(db_url, base_url), dry_run=False)
                    try:
                        pages = sum(math.ceil(n / 100) for n in await _member_counts(ctx))
                    finally:
                        await close_context(ctx)
                    results[label]["enterprise"]["pages"] = pages
                    async with httpx.AsyncClient(base_url=base_url, timeout=10) as control:
                        await control.post("/_emulator/config", json={"rate_limit": "off"})
            finally:
                await drop_database(server, name)
        floor: dict[str, Any] | None = None
        if not args.no_floor:
            name, db_url = await fresh_database(server)
            try:
                floor = run_script(
                    "sync_floor.py", THIS, db_url.render_as_string(hide_password=False), base_url
                )
            finally:
                await drop_database(server, name)
        report(results, floor)
    finally:
        stop(emulator)


def report(results: dict[str, dict[str, Any]], floor: dict[str, Any] | None) -> None:
    labels = list(results)
    print("| run | " + " | ".join(labels) + " |")
    print("|---|" + "---|" * len(labels))
    runs = [run["label"] for run in results[labels[-1]]["runs"]]
    for index, run_label in enumerate(runs):
        cells = []
        for label in labels:
            run = results[label]["runs"][index]
            requests = run["counts"].get("auth0_requests", "?")
            cells.append(f"{run['seconds']:.1f} s, {requests} requests ({run['status']})")
        print(f"| {run_label} | " + " | ".join(cells) + " |")
    timings = {run["label"]: run["counts"].get("timings_ms") for run in results[labels[-1]]["runs"]}
    print(
        "| phases of this code's runs (ms) | "
        + "; ".join(f"{label}: {phases}" for label, phases in timings.items() if phases)
        + " |"
    )
    print(
        "| peak RSS of the sync process | "
        + " | ".join(f"{results[label]['peak_rss_mb']:.0f} MB" for label in labels)
        + " |"
    )
    if floor is not None:
        print(
            f"\nfloor ({floor['users']:,} users, {floor['members']:,} members; raw COPY + one "
            f"upsert per table): users {floor['users_write_seconds']:.2f} s, members "
            f"{floor['members_write_seconds']:.2f} s (reading them took "
            f"{floor['export_read_seconds']:.2f} s and {floor['members_read_seconds']:.2f} s)"
        )
        for label in labels:
            runs_by = {run["label"]: run for run in results[label]["runs"]}
            users_write = runs_by["users full (first)"]["seconds"] - floor["export_read_seconds"]
            members_write = (
                runs_by["memberships (first)"]["seconds"] - floor["members_read_seconds"]
            )
            print(
                f"- {label}: user writes {users_write:.2f} s = "
                f"{users_write / floor['users_write_seconds']:.2f}x the floor; membership "
                f"writes {members_write:.2f} s = "
                f"{members_write / floor['members_write_seconds']:.2f}x the floor"
            )
    enterprise = results[labels[-1]].get("enterprise")
    if enterprise:
        pages = enterprise["pages"]
        wait = max(pages - ENTERPRISE_BURST, 0) / ENTERPRISE_RPS
        print(
            f"\nmemberships at Enterprise 16 rps: {enterprise['seconds']:.1f} s vs floor "
            f"{wait:.1f} s ({pages} pages, ⌈members/100⌉ per role) = "
            f"{enterprise['seconds'] / wait if wait else float('nan'):.2f}x; "
            f"{enterprise['requests']} requests, {enterprise['throttled']} throttled, "
            f"{enterprise['held']} held for the shared budget",
            flush=True,
        )


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
    parser.add_argument("--before", help="a checkout of the code to compare against")
    parser.add_argument("--no-enterprise", action="store_true")
    parser.add_argument("--no-floor", action="store_true")
    args = parser.parse_args()
    server = to_async_url(
        os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    )
    for users in args.users:
        asyncio.run(bench_size(server, users, args))


if __name__ == "__main__":
    main()
