"""Benchmark of the /db-admin pages at 100,000 users.

    uv run python -m scripts.bench.db_admin [--users 100000] [--requests 30] [--db NAME]

Seeds a migrated Postgres database like scripts.bench.admin_lists (users, ~95k platform
and ~15k group memberships, COPY), logs in to the dashboard through the Auth0 emulator
as a general admin, then requests each page sequentially in-process and prints p50/p95
per page, plus the plan of the users list query (it must be an index scan). `--db NAME`
reuses a seeded database (e.g. one kept by admin_lists --keep).
"""

import argparse
import asyncio
import os
import secrets
import sys
import time
from urllib.parse import urlencode, urlsplit

import httpx
from asgi_lifespan import LifespanManager

from db.admin import create_database, drop_database
from db.migrations import upgrade_head
from main import create_app
from scripts.bench.admin_lists import GENERAL_ROLE, build_catalog, seed
from scripts.bench.harness import mint, percentile, raw_connection, stop
from scripts.bench.sync import start_emulator
from services.auth0 import Auth0Gateway
from services.settings import load_settings, to_async_url

PAGES = [
    ("users, first page", "/db-admin/users/list"),
    ("users, page 200", "/db-admin/users/list?page=200"),
    ("users, search", "/db-admin/users/list?q=user0421"),
    ("deleted users", "/db-admin/deleted-users/list"),
    ("user detail", "/db-admin/users/detail?pk={user}"),
    ("platform memberships", "/db-admin/platform-memberships/list"),
    ("platform memberships, by user", "/db-admin/platform-memberships/list?q={user}"),
    ("group memberships", "/db-admin/group-memberships/list"),
    ("membership history", "/db-admin/platform-membership-history/list"),
    ("email queue", "/db-admin/email-queue/list"),
    ("scheduler runs", "/db-admin/scheduler-runs/list"),
]


async def log_in(client: httpx.AsyncClient, email: str) -> None:
    to_auth0 = await client.get("/db-admin/login")
    async with httpx.AsyncClient() as auth0:
        consent = await auth0.get(
            f"{to_auth0.headers['location']}&{urlencode({'login_hint': email})}"
        )
    back = urlsplit(consent.headers["location"])
    done = await client.get(f"{back.path}?{back.query}")
    if done.status_code != 303:
        raise RuntimeError(f"login failed: {done.status_code} {done.text[:200]}")


async def main_async(args: argparse.Namespace) -> int:
    server = to_async_url(
        os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    )
    emulator, emulator_url = start_emulator(2)
    name = args.db or f"aai_bench_dash_{secrets.token_hex(3)}"
    db_url = server.set(database=name)
    try:
        _token, other_id = await mint(emulator_url, "bench0000000@example.org", GENERAL_ROLE)
        _token, admin_id = await mint(emulator_url, "bench0000001@example.org", GENERAL_ROLE)
        if args.db is None:
            await create_database(server, name)
            await upgrade_head(db_url)
            await build_catalog(db_url, emulator_url)
            await seed(db_url, args.users, [other_id, admin_id])
        settings = load_settings(
            _env_file=None,
            db_url=db_url.render_as_string(hide_password=False),
            db_host=None,
            auth0_domain=emulator_url,
            admin_roles=f'["{GENERAL_ROLE}"]',
            enable_admin_dashboard=True,
        )
        # The ID token carries the tenant's roles: give the admin the role there.
        gateway = Auth0Gateway.from_settings(settings)
        try:
            role = await gateway.find_role(GENERAL_ROLE) or await gateway.create_role(GENERAL_ROLE)
            await gateway.assign_roles(admin_id, [role["id"]])
        finally:
            await gateway.aclose()
        async with raw_connection(db_url) as connection:
            user = await connection.fetchval(
                "SELECT id FROM app_user ORDER BY created_at DESC LIMIT 1 OFFSET 500"
            )
            plan = await connection.fetch(
                "EXPLAIN SELECT * FROM app_user WHERE is_deleted IS false "
                "ORDER BY created_at DESC LIMIT 25 OFFSET 0"
            )
        app = create_app(settings)
        async with LifespanManager(app) as manager:
            transport = httpx.ASGITransport(app=manager.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
                await log_in(client, "bench0000001@example.org")
                print(
                    f"\n/db-admin at {args.users} users, {args.requests} sequential requests per page, in-process\n"
                )
                print("| page | p50 ms | p95 ms | status |")
                print("|---|---|---|---|")
                for label, path in PAGES:
                    times, statuses = [], set()
                    for _ in range(args.requests):
                        started = time.perf_counter()
                        response = await client.get(path.format(user=user))
                        times.append((time.perf_counter() - started) * 1000)
                        statuses.add(response.status_code)
                    times.sort()
                    print(
                        f"| {label} | {percentile(times, 0.5):.1f} | {percentile(times, 0.95):.1f} "
                        f"| {sorted(statuses)} |"
                    )
        print("\nusers list plan:\n  " + "\n  ".join(r[0] for r in plan))
        return 0
    finally:
        stop(emulator)
        if args.db is None:
            await drop_database(server, name)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--db", help="reuse this already seeded database")
    sys.exit(asyncio.run(main_async(parser.parse_args())))


if __name__ == "__main__":
    main()
