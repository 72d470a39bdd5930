"""One read statement on a pooled connection, outside the ORM: the hot reads' way in.

The hot reads (admin lists, `/me/profile`, a user's details) send one statement whose
answer Postgres builds as JSON. Through a session each of them cost a checkout ping, a
BEGIN, the statement, a COMMIT and SQLAlchemy's compile and result machinery: about 6 ms
of Python per request against 1 ms in Postgres. Here the statement goes straight to the
pooled connection's asyncpg driver, in autocommit, as a prepared statement asyncpg caches
per connection.

Failover. The pool pings only connections that sat idle (db/engine.py), so a statement
may meet a connection that died a moment ago (a failover, a restarted server). These
statements only read, so the first such failure drops the pool's connections and runs the
statement once more on a fresh one: no failed request, and no ping on the way in.
"""

import asyncio
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager, nullcontext
from typing import Any, Protocol

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.util import greenlet_spawn
from sqlmodel.ext.asyncio.session import AsyncSession

# What a dead or dropped connection raises in asyncpg: the server closed it (terminated
# backend, failover), the socket broke, or asyncpg already knows it is closed.
DISCONNECTS: tuple[type[BaseException], ...] = (
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.InterfaceError,
    ConnectionError,
    OSError,
)


class Reader(Protocol):
    """Where the hot reads send their statement: the pool (`PoolReader`), or in tests the
    test's own connection, inside its rolled-back transaction."""

    @property
    def dialect(self) -> str: ...

    async def fetch_row(self, sql: str, args: Sequence[Any]) -> asyncpg.Record | None: ...


class RequestReader:
    """A request's reader: on the connection its session already holds, if any, else on
    the pool. A request that read through its session first (a catalog lookup, the
    caller's scope) still holds that connection until it ends; taking a second one from
    the pool would let every request hold one and wait for another, and with the pool
    sized to the load they all waited until the pool's timeout."""

    def __init__(self, session: AsyncSession, pool: "PoolReader") -> None:
        self.session, self.pool = session, pool

    @property
    def dialect(self) -> str:
        return self.pool.dialect

    async def fetch_row(self, sql: str, args: Sequence[Any]) -> asyncpg.Record | None:
        if not self.session.in_transaction():
            return await self.pool.fetch_row(sql, args)
        return await fetch_on_session(self.session, sql, args)


async def fetch_on_session(
    session: AsyncSession, sql: str, args: Sequence[Any]
) -> asyncpg.Record | None:
    """The statement on the connection `session` holds (or takes), inside its transaction."""
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver: asyncpg.Connection = raw.driver_connection
    return await driver.fetchrow(sql, *args)


class PoolReader:
    """The pool's way in for the hot reads, at most `concurrency` statements at once.

    A hot read costs Postgres about a millisecond of CPU and no I/O; sending more of them
    at once than the database has cores to run them only makes each wait for a CPU,
    mixed in with the API's workers. Under `scripts/bench/admin_lists` (16 clients, 2
    workers, one 2-core machine) every request's statement in flight (a pool of 10)
    measured list p99s of 88-181 ms, with statements of 1 ms of CPU taking 20-140 ms in
    the server; two at once per worker, the others queued here in arrival order, measured
    26-56 ms at about the same throughput (3 at once: 43-69 ms). The gate is taken before
    the connection and only on this path: a request waiting here holds no connection, so
    it can never starve the requests it waits for (the session path of `RequestReader`,
    which already holds one, is not gated)."""

    def __init__(self, engine: AsyncEngine, concurrency: int | None = None) -> None:
        self.engine = engine
        self.gate: AbstractAsyncContextManager[Any] = (
            asyncio.Semaphore(concurrency) if concurrency else nullcontext()
        )

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    async def fetch_row(self, sql: str, args: Sequence[Any]) -> asyncpg.Record | None:
        async with self.gate:
            return await fetch_row(self.engine, sql, args)


async def fetch_row(engine: AsyncEngine, sql: str, args: Sequence[Any]) -> asyncpg.Record | None:
    """The first row of one read-only statement (`$1`… placeholders), retried once on a
    fresh connection if the pooled one turns out dead."""
    for attempt in (1, 2):
        pooled = await engine.raw_connection()
        try:
            driver: asyncpg.Connection = pooled.driver_connection
            try:
                return await driver.fetchrow(sql, *args)
            except DISCONNECTS:
                await greenlet_spawn(pooled.invalidate)
                if attempt == 2:
                    raise
                # Its neighbours in the pool died with it: start them afresh. Connections
                # other requests hold are left to them and dropped when returned.
                await engine.dispose()
        finally:
            # Back to the pool inside a greenlet: the pool may close it (an overflow
            # connection, a recycled one), which SQLAlchemy's asyncpg adapter awaits.
            await greenlet_spawn(pooled.close)
    raise AssertionError("unreachable")
