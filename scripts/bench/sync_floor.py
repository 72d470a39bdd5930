# ruff: noqa: S608  (table and column names are this file's constants; values are bound)
"""The floor for the sync's writes: raw COPY and one set-based upsert per table.

    python scripts/bench/sync_floor.py DB_URL EMULATOR_URL

Reads the emulated tenant first (the user export and every platform and group role's
members, through the real gateway; not timed), then times only the writes into a freshly
migrated database whose catalog the roles sync filled: every user COPYed into a temporary
stage and upserted into app_user in one statement, then each role's members COPYed into
a stage and upserted into its membership table with their history rows in one statement.
Nothing else: no change detection beyond the upsert's, no conflicts, no outbox guard,
no reports. scripts/bench/sync.py compares the sync's own write time with this, on the
same machine in the same run. Prints one JSON object.
"""

import asyncio
import json
import sys
import time
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

from run_scheduler import build_context, close_context
from scripts.bench.harness import bench_settings
from services.sync.jobs import JOBS_BY_NAME
from services.sync.member_import import load_targets
from services.sync.runs import run_job
from services.sync.user_import import EXPORT_FIELDS, USER_STAGE
from services.users.auth0_records import user_row

# What the sync stages of a user (its own bookkeeping columns left out), in its order.
USER_COLUMNS = [c.name for c in USER_STAGE.columns if c.name not in ("skip_reason", "state")]


async def main(db_url: str, emulator_url: str) -> dict[str, Any]:
    settings = bench_settings(make_url(db_url), emulator_url)
    ctx = build_context(settings, dry_run=False)
    try:
        await run_job(ctx, "sync.roles", JOBS_BY_NAME["sync.roles"].body)
        started = time.perf_counter()
        users = []
        async for raw in ctx.auth0.export_users(EXPORT_FIELDS):
            row = user_row(raw)
            if row:
                users.append(tuple(row[c] for c in USER_COLUMNS))
        export_read = time.perf_counter() - started
        async with ctx.sessions() as session:
            targets = await load_targets(session)
        started = time.perf_counter()
        members: dict[tuple[str, str], list[tuple[str]]] = {}
        for target in targets:
            found = members.setdefault((target.kind, target.id), [])
            async for member in ctx.auth0.iter_role_members(target.role_id, take=100):
                found.append((member["user_id"],))
        members_read = time.perf_counter() - started
    finally:
        await close_context(ctx)

    dsn = make_url(db_url).set(drivername="postgresql").render_as_string(hide_password=False)
    connection = await asyncpg.connect(dsn)
    try:
        started = time.perf_counter()
        async with connection.transaction():
            await connection.execute(
                f"CREATE TEMPORARY TABLE floor_users ON COMMIT DROP AS "
                f"SELECT {', '.join(USER_COLUMNS)} FROM app_user WITH NO DATA"
            )
            await connection.copy_records_to_table(
                "floor_users", records=users, columns=USER_COLUMNS
            )
            updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in USER_COLUMNS[1:])
            differs = " OR ".join(
                f"app_user.{c} IS DISTINCT FROM EXCLUDED.{c}" for c in USER_COLUMNS[1:]
            )
            await connection.execute(
                f"INSERT INTO app_user ({', '.join(USER_COLUMNS)}, updated_at, last_synced_at, is_deleted) "
                f"SELECT {', '.join(USER_COLUMNS[:-3])}, coalesce(created_at, now()), "
                "last_login, auth0_updated_at, now(), now(), blocked FROM floor_users "
                f"ON CONFLICT (id) DO UPDATE SET {updates}, updated_at = now() WHERE {differs}"
            )
        users_write = time.perf_counter() - started

        started = time.perf_counter()
        async with connection.transaction():
            for (kind, target_id), ids in members.items():
                table, column = (
                    ("platform_membership", "platform_id")
                    if kind == "platform"
                    else ("group_membership", "group_id")
                )
                await connection.execute(
                    "CREATE TEMPORARY TABLE floor_members (user_id varchar(255) PRIMARY KEY) "
                    "ON COMMIT DROP"
                )
                await connection.copy_records_to_table(
                    "floor_members", records=ids, columns=["user_id"]
                )
                await connection.execute(
                    f"WITH written AS (INSERT INTO {table} (id, {column}, user_id, approval_status, "
                    "created_at, updated_at) SELECT gen_random_uuid(), $1, s.user_id, 'approved', "
                    "now(), now() FROM floor_members s JOIN app_user u ON u.id = s.user_id "
                    f"ON CONFLICT ({column}, user_id) DO UPDATE SET approval_status = 'approved', "
                    f"updated_at = now() WHERE {table}.approval_status <> 'approved' "
                    "RETURNING id, user_id, approval_status) "
                    f"INSERT INTO {table}_history (membership_id, {column}, user_id, "
                    "approval_status, created_at) SELECT id, $1, user_id, approval_status, now() "
                    "FROM written",
                    target_id,
                )
                await connection.execute("DROP TABLE floor_members")
        members_write = time.perf_counter() - started
    finally:
        await connection.close()
    return {
        "users": len(users),
        "members": sum(len(ids) for ids in members.values()),
        "export_read_seconds": export_read,
        "members_read_seconds": members_read,
        "users_write_seconds": users_write,
        "members_write_seconds": members_write,
    }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1], sys.argv[2]))))
