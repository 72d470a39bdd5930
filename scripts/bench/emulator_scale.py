"""How the Auth0 emulator and the gateway cope with a large tenant.

    uv run python -m scripts.bench.emulator_scale --users 100000

Seeds the tenant in memory, then measures through the real gateway over loopback HTTP:
a searched user list, a full checkpoint walk of one role's members, and a full user
export (gzip NDJSON). Prints one line per figure.
"""

import argparse
import asyncio
import time

from scripts.auth0_emulator.seed import seed_roles
from scripts.auth0_emulator.server import EmulatorServer
from scripts.auth0_emulator.tenant import DEFAULT_CONNECTION
from scripts.bench.harness import peak_rss_mb
from services.auth0 import Auth0Gateway


async def measure(server: EmulatorServer, users: int) -> None:
    gateway = Auth0Gateway(
        base_url=server.base_url,
        client_id=server.tenant.management_client_id,
        client_secret=server.tenant.management_client_secret,
        rps=1000,
    )
    try:
        galaxy = server.tenant.role_by_name("biocommons/platform/galaxy")
        assert galaxy is not None
        started = time.perf_counter()
        _found, total = await gateway.list_users_page(
            page=0, per_page=10, q=f'email:"bench{users - 1}@example.org"'
        )
        print(
            f"search one user by email (among {users}): {1000 * (time.perf_counter() - started):.0f} ms, total={total}"
        )

        started = time.perf_counter()
        members = 0
        async for _member in gateway.iter_role_members(galaxy["id"], take=100):
            members += 1
        elapsed = time.perf_counter() - started
        print(
            f"checkpoint walk of {members} role members: {elapsed:.2f} s ({members / elapsed:.0f} members/s)"
        )

        server.state.faults.export_delay_s = 0.1
        started = time.perf_counter()
        exported = 0
        async for _user in gateway.export_users(
            ["user_id", "email", "username", "email_verified", "blocked", "created_at"],
            poll_interval_s=0.1,
        ):
            exported += 1
        elapsed = time.perf_counter() - started
        print(
            f"export job of {exported} users (create, poll, download, gunzip, parse): {elapsed:.2f} s"
        )
        print(f"gateway requests: {gateway.stats.requests}, by status {gateway.stats.by_status}")
    finally:
        await gateway.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=100_000)
    args = parser.parse_args()
    with EmulatorServer(audience="https://api.bench") as server:
        roles = seed_roles(server.tenant)
        galaxy = roles["biocommons/platform/galaxy"]
        started = time.perf_counter()
        for index in range(args.users):
            user = server.tenant.create_user(
                {
                    "connection": DEFAULT_CONNECTION,
                    "user_id": f"bench{index:07d}",
                    "email": f"bench{index}@example.org",
                    "username": f"bench{index}",
                    "password": "long-enough-1",
                }
            )
            if index % 2 == 0:
                server.tenant.assign_roles(user["user_id"], [galaxy])
        print(
            f"seeded {args.users} users ({args.users // 2} with one role) in {time.perf_counter() - started:.1f} s; peak RSS {peak_rss_mb():.0f} MB"
        )
        asyncio.run(measure(server, args.users))
        print(f"peak RSS after the run: {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
