"""A failover costs no failed request: the hot reads retry once on a dead connection, and
the pool pings a connection that sat idle before handing it out."""

import asyncio
import secrets

import asyncpg
import sqlalchemy as sa
from sqlalchemy.engine import URL

from db.engine import create_engine
from db.reads import PoolReader


async def terminate(url: URL, application_name: str) -> int:
    """What a failover does to a pool: every connection of it is closed by the server."""
    dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    admin = await asyncpg.connect(dsn)
    try:
        return len(
            await admin.fetch(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = $1",
                application_name,
            )
        )
    finally:
        await admin.close()


async def test_a_hot_read_survives_its_pool_being_killed(pg_url: URL) -> None:
    process = f"failover-{secrets.token_hex(3)}"
    engine = create_engine(pg_url, process=process, pool_size=4, max_overflow=0)
    reader = PoolReader(engine)
    try:
        # Fill the pool, then have the server close every connection in it.
        rows = await asyncio.gather(*(reader.fetch_row("SELECT $1::int", [n]) for n in range(4)))
        assert [row[0] for row in rows if row] == [0, 1, 2, 3]
        assert await terminate(pg_url, f"aai-backend.{process}") == 4
        await asyncio.sleep(0.1)  # the server's goodbye reaches the pooled sockets
        # Used moments ago, so not pinged: the read meets a dead connection and retries.
        after = await asyncio.gather(*(reader.fetch_row("SELECT $1::int", [n]) for n in range(4)))
        assert [row[0] for row in after if row] == [0, 1, 2, 3]
    finally:
        await engine.dispose()


async def test_an_idle_connection_is_pinged_before_use(pg_url: URL) -> None:
    process = f"idle-{secrets.token_hex(3)}"
    # Every connection counts as idle: each checkout pings, as after a quiet second.
    engine = create_engine(pg_url, process=process, pool_size=2, max_overflow=0, idle_ping_s=0)
    try:
        async with engine.connect() as connection:
            assert await connection.scalar(sa.text("SELECT 1")) == 1
        assert await terminate(pg_url, f"aai-backend.{process}") == 1
        await asyncio.sleep(0.1)
        # Through the ORM's own path (no retry there): the ping finds it dead first.
        async with engine.connect() as connection:
            assert await connection.scalar(sa.text("SELECT 2")) == 2
    finally:
        await engine.dispose()


# Each statement counts the gated statements running in the server as it starts, itself
# included; the pg_sleep keeps it running while the others start.
PROBE = (
    "SELECT (SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
    "AND query LIKE '%hot-read-gate-' || $1 || '%')::int, pg_sleep(0.05)"
)


async def test_hot_reads_run_at_most_concurrency_statements_at_once(pg_url: URL) -> None:
    process = f"gate-{secrets.token_hex(3)}"
    engine = create_engine(pg_url, process=process, pool_size=6, max_overflow=0)
    marker = secrets.token_hex(4)
    sql = f"{PROBE} -- hot-read-gate-{marker}"
    try:
        gated = PoolReader(engine, 2)
        rows = await asyncio.gather(*(gated.fetch_row(sql, [marker]) for _ in range(6)))
        seen = [row[0] for row in rows if row]
        assert len(seen) == 6
        assert max(seen) <= 2
        # The same six with no gate are all in the server at once: the probe can tell.
        ungated = PoolReader(engine)
        rows = await asyncio.gather(*(ungated.fetch_row(sql, [marker]) for _ in range(6)))
        assert max(row[0] for row in rows if row) > 2
    finally:
        await engine.dispose()
