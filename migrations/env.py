"""Alembic environment: async engines, the same settings as the service.

The URL comes from (first match) the URL handed over by `db.migrations.alembic_config`,
`alembic -x db_url=...`, or the service settings (DB_URL / DB_HOST / the SQLite default).
"""

import asyncio
import logging
from typing import Any, Literal

import sqlalchemy as sa
from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool
from sqlmodel import SQLModel
from sqlmodel.sql.sqltypes import AutoString

import db.models  # noqa: F401 - registers every table on the metadata
from db.base import UTCDateTime
from db.engine import tls_options
from services.settings import get_settings, to_async_url

config = context.config
target_metadata = SQLModel.metadata

if config.cmd_opts is not None and not logging.getLogger().handlers:
    # From the `alembic` command line there is no ini file to configure logging.
    logging.basicConfig(level=logging.INFO, format="%(levelname)s [%(name)s] %(message)s")


def _database_url() -> sa.engine.URL:
    configured = config.attributes.get("database_url")
    if configured is not None:
        return configured
    from_cli = context.get_x_argument(as_dictionary=True).get("db_url")
    if from_cli:
        return to_async_url(from_cli)
    return get_settings().database_url


def _render_item(type_: str, obj: Any, _autogen_context: AutogenContext) -> str | Literal[False]:
    """Render project column types as plain SQLAlchemy types, so revisions don't import app code."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    if type_ == "type" and isinstance(obj, AutoString):
        return f"sa.String(length={obj.length})" if obj.length else "sa.String()"
    return False


def _configure(connection: Connection | None = None, **kwargs: Any) -> None:
    context.configure(
        target_metadata=target_metadata,
        compare_type=True,
        render_item=_render_item,
        render_as_batch=True,
        connection=connection,
        **kwargs,
    )


def run_migrations_offline() -> None:
    _configure(url=_database_url(), literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def _run_sync(connection: Connection) -> None:
    _configure(connection)
    with context.begin_transaction():
        context.run_migrations()


async def run_migrations_online() -> None:
    url, tls = tls_options(_database_url())
    engine = create_async_engine(url, poolclass=NullPool, connect_args=tls)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run_sync)
            await connection.commit()
    finally:
        await engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    asyncio.run(run_migrations_online())
