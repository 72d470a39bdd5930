"""Engine and session factory. Each process (api, scheduler, script) builds its own
with `create_engine`, names it, and disposes it on shutdown.

SQLAlchemy asyncio: https://docs.sqlalchemy.org/en/20/orm/extensions/asyncio.html
"""

import logging
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event, exc
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.pool import StaticPool
from sqlmodel.ext.asyncio.session import AsyncSession

SessionFactory = async_sessionmaker[AsyncSession]
logger = logging.getLogger("aai.db")

# A pooled connection idle longer than this is pinged before use (see `_ping_idle`).
IDLE_PING_S = 1.0


def tls_options(url: URL) -> tuple[URL, dict[str, Any]]:
    """libpq's `sslmode` and `sslrootcert` in a Postgres URL, as asyncpg takes them.

    asyncpg reads a mode from `ssl` but has no argument for the CA file, so both are taken
    out of the URL and become one `ssl` connect argument: for `verify-ca`/`verify-full` a
    context trusting `sslrootcert` (the RDS bundle in production) that checks the
    certificate, and for `verify-full` the host name too."""
    query = dict(url.query)
    mode = query.pop("sslmode", None)
    root = query.pop("sslrootcert", None)
    if mode is None and root is None:
        return url, {}
    url = url.set(query=query)
    mode = str(mode or "verify-full")
    if mode in ("verify-ca", "verify-full"):
        context = ssl.create_default_context(cafile=str(root) if root else None)
        context.check_hostname = mode == "verify-full"
        return url, {"ssl": context}
    return url, {"ssl": mode}


def create_engine(
    url: URL,
    *,
    process: str = "api",
    pool_size: int = 5,
    max_overflow: int = 5,
    connect_timeout_s: float = 10.0,
    statement_timeout_s: float = 30.0,
    idle_ping_s: float = IDLE_PING_S,
    echo: bool = False,
) -> AsyncEngine:
    backend = url.get_backend_name()
    if backend == "postgresql":
        url, tls = tls_options(url)
        engine = create_async_engine(
            url,
            echo=echo,
            pool_size=pool_size,
            max_overflow=max_overflow,
            # Pinged when idle instead (`_ping_idle`): a ping on every checkout was a
            # round trip and a greenlet switch on every request.
            pool_pre_ping=False,
            pool_recycle=1800,
            pool_timeout=connect_timeout_s,
            connect_args={
                **tls,
                "timeout": connect_timeout_s,
                "command_timeout": statement_timeout_s + 5,
                "server_settings": {
                    "application_name": f"aai-backend.{process}",
                    "statement_timeout": str(int(statement_timeout_s * 1000)),
                },
            },
        )
        _ping_idle(engine, idle_ping_s)
        return engine
    if backend == "sqlite":
        return _create_sqlite_engine(url, echo=echo)
    raise ValueError(f"unsupported database backend {backend!r}; use PostgreSQL or SQLite")


def _ping_idle(engine: AsyncEngine, idle_s: float = IDLE_PING_S) -> None:
    """Ping a pooled connection before use only when it sat idle longer than `idle_s`.

    Under load connections go back out within milliseconds and are not pinged; one that
    waited (a quiet spell, a database that restarted meanwhile) is checked, and a dead one
    replaced before anyone uses it (SQLAlchemy's "pessimistic disconnect handling" with
    a custom check: raising DisconnectionError on checkout makes the pool connect anew).
    A connection that died within the last `idle_s` while busy is caught where it is used:
    SQLAlchemy then drops every connection of the pool older than the failure, and the hot
    reads retry once (db/reads.py)."""
    pool = engine.sync_engine.pool

    @event.listens_for(pool, "checkin")
    def _returned(_dbapi_connection: Any, record: Any) -> None:
        if record is not None:
            record.info["returned_at"] = time.monotonic()

    @event.listens_for(pool, "checkout")
    def _check(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        returned = record.info.get("returned_at")
        if returned is None or time.monotonic() - returned < idle_s:
            return
        try:
            dbapi_connection.ping()
        except Exception as error:
            raise exc.DisconnectionError(f"idle connection is gone: {error!r}") from error


def _create_sqlite_engine(url: URL, *, echo: bool) -> AsyncEngine:
    kwargs: dict[str, Any] = {"connect_args": {"timeout": 30}}
    if url.database in (None, "", ":memory:"):
        # One shared connection, or every session would see its own empty database.
        kwargs["poolclass"] = StaticPool
    engine = create_async_engine(url, echo=echo, **kwargs)

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # pysqlite's own transaction handling breaks SAVEPOINT; take it over (the
        # recipe from SQLAlchemy's SQLite dialect docs) and turn on foreign keys.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        # IMMEDIATE takes the write lock up front, where busy_timeout waits for it. A
        # deferred BEGIN that later writes fails at once ("database is locked") when the
        # API and the scheduler (two processes on one file) write at the same moment.
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def create_session_factory(engine: AsyncEngine) -> SessionFactory:
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


Compensation = Callable[[], Awaitable[object]]


def on_rollback(session: AsyncSession, compensation: Compensation) -> None:
    """Undo something outside the database (an Auth0 user created) if this unit of work
    does not commit."""
    session.info.setdefault("compensations", []).append(compensation)


async def _compensate(session: AsyncSession) -> None:
    for compensation in reversed(session.info.pop("compensations", [])):
        try:
            await compensation()
        except Exception:
            logger.exception("compensation failed; the outside change needs a manual repair")


@asynccontextmanager
async def unit_of_work(session: AsyncSession) -> AsyncIterator[AsyncSession]:
    """Commit when the block succeeds, roll back (and compensate) when it raises or the
    commit fails. An exception with `keep_changes = True` (an expected failure that must
    still be recorded, like a wrong one-time code counting as an attempt) commits first."""
    try:
        yield session
    except BaseException as exc:
        if getattr(exc, "keep_changes", False):
            await session.commit()
            session.info.pop("compensations", None)
            raise
        await session.rollback()
        await _compensate(session)
        raise
    try:
        await session.commit()
    except BaseException:
        await _compensate(session)
        raise
    session.info.pop("compensations", None)


@asynccontextmanager
async def session_scope(factory: SessionFactory) -> AsyncIterator[AsyncSession]:
    """A new session as one unit of work (requests, jobs, scripts)."""
    async with factory() as session, unit_of_work(session):
        yield session
