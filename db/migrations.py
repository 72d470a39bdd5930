"""Alembic from code: the config, the code's head, a database's current revision, upgrade."""

import asyncio
from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import URL, Connection
from sqlalchemy.ext.asyncio import AsyncConnection

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def alembic_config(url: URL | None = None) -> Config:
    config = Config(toml_file=str(PROJECT_ROOT / "pyproject.toml"))
    if url is not None:
        # Read by migrations/env.py; an attribute keeps the URL object (and its
        # password) out of configparser's '%' interpolation.
        config.attributes["database_url"] = url
    return config


@cache
def head_revisions() -> frozenset[str]:
    """The code's head revisions (read once: the scripts do not change under a process)."""
    return frozenset(ScriptDirectory.from_config(alembic_config()).get_heads())


def _current(sync_conn: Connection) -> frozenset[str]:
    return frozenset(MigrationContext.configure(sync_conn).get_current_heads())


async def current_revisions(conn: AsyncConnection) -> frozenset[str]:
    """The revisions a database is at; empty when it was never migrated."""
    return await conn.run_sync(_current)


async def upgrade_head(url: URL) -> None:
    # env.py runs its own event loop, so Alembic gets a worker thread.
    await asyncio.to_thread(command.upgrade, alembic_config(url), "head")


async def downgrade_base(url: URL) -> None:
    await asyncio.to_thread(command.downgrade, alembic_config(url), "base")
