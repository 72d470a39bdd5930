"""Creating and dropping whole databases on a PostgreSQL server (tests, migration checks)."""

import re

from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import create_async_engine

_SAFE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


async def _execute_autocommit(server: URL, statement: str, *, timeout_s: float) -> None:
    engine = create_async_engine(
        server, isolation_level="AUTOCOMMIT", connect_args={"timeout": timeout_s}
    )
    try:
        async with engine.connect() as conn:
            await conn.execute(text(statement))
    finally:
        await engine.dispose()


def _checked(name: str) -> str:
    if not _SAFE_NAME.match(name):
        raise ValueError(f"refusing unusual database name {name!r}")
    return name


async def create_database(server: URL, name: str, *, timeout_s: float = 10.0) -> URL:
    """Create `name` on the server `server` points at; returns its URL."""
    await _execute_autocommit(server, f'CREATE DATABASE "{_checked(name)}"', timeout_s=timeout_s)
    return server.set(database=name)


async def drop_database(server: URL, name: str, *, timeout_s: float = 10.0) -> None:
    await _execute_autocommit(
        server, f'DROP DATABASE IF EXISTS "{_checked(name)}" WITH (FORCE)', timeout_s=timeout_s
    )
