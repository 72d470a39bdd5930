"""Small set-based helpers that work on both PostgreSQL and SQLite."""

from collections.abc import Iterable, Sequence
from typing import Any, cast

import asyncpg
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession

BATCH = 5000


def affected(result: sa.Result[Any]) -> int:
    """Rows an INSERT/UPDATE/DELETE touched (the driver's count; 0 when it has none).
    `Session.execute` is typed as returning a plain Result; DML gives a CursorResult."""
    return max(cast(sa.CursorResult[Any], result).rowcount or 0, 0)


def dialect_insert(bind: AsyncSession | AsyncEngine, table: sa.Table) -> Any:
    """An INSERT with ON CONFLICT for the backend behind `bind` (a session or an engine)."""
    dialect = bind.get_bind().dialect if isinstance(bind, AsyncSession) else bind.dialect
    return postgresql.insert(table) if dialect.name == "postgresql" else sqlite.insert(table)


def changed(table: sa.Table, excluded: Any, columns: Iterable[str]) -> sa.ColumnElement[bool]:
    """True when any of `columns` differs from the incoming row (NULL-safe)."""
    return sa.or_(*(table.c[name].is_distinct_from(excluded[name]) for name in columns))


async def upsert(
    session: AsyncSession,
    table: sa.Table,
    rows: Sequence[dict[str, Any]],
    *,
    key: Sequence[str],
    update: Sequence[str],
    extra_set: dict[str, Any] | None = None,
) -> int:
    """Insert rows, updating only those whose `update` columns changed; returns rows written."""
    written = 0
    for start in range(0, len(rows), BATCH):
        statement = dialect_insert(session, table).values(list(rows[start : start + BATCH]))
        excluded = statement.excluded
        statement = statement.on_conflict_do_update(
            index_elements=list(key),
            set_={**{name: excluded[name] for name in update}, **(extra_set or {})},
            where=changed(table, excluded, update),
        )
        result = await session.execute(statement)
        written += affected(result)
    return written


async def insert_rows(
    session: AsyncSession, table: sa.Table, rows: Sequence[dict[str, Any]]
) -> None:
    for start in range(0, len(rows), BATCH):
        await session.execute(sa.insert(table), list(rows[start : start + BATCH]))


async def analyze(session: AsyncSession, table: sa.Table) -> None:
    """Autovacuum never analyzes temporary tables; without statistics the planner guesses badly."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(sa.text(f"ANALYZE {table.name}"))


async def bulk_load(session: AsyncSession, table: sa.Table, rows: Sequence[dict[str, Any]]) -> None:
    """Fill a (stage) table as fast as the backend allows: COPY on PostgreSQL."""
    if not rows:
        return
    if session.get_bind().dialect.name != "postgresql":
        await insert_rows(session, table, rows)
        return
    await _copy(session, table, rows)


async def _copy(session: AsyncSession, table: sa.Table, rows: Sequence[dict[str, Any]]) -> None:
    """COPY `rows` into `table` on the session's connection (Postgres). The columns are
    those the rows carry; the others take their defaults (identity ids, NULLs)."""
    columns = [column.name for column in table.columns if column.name in rows[0]]
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver: asyncpg.Connection = raw.driver_connection
    records = [tuple(row.get(name) for name in columns) for row in rows]
    await driver.copy_records_to_table(table.name, records=records, columns=columns)


async def create_stage(
    session: AsyncSession, table: sa.Table, rows: Sequence[dict[str, Any]]
) -> None:
    """A fresh temporary table holding `rows`, with planner statistics."""
    connection = await session.connection()
    await connection.run_sync(lambda sync: table.drop(sync, checkfirst=True))
    await connection.run_sync(lambda sync: table.create(sync))
    await bulk_load(session, table, rows)
    await analyze(session, table)


async def drop_stage(session: AsyncSession, table: sa.Table) -> None:
    connection = await session.connection()
    await connection.run_sync(lambda sync: table.drop(sync, checkfirst=True))


class StageLoader:
    """Fills a stage table as rows arrive, `chunk` rows at a time, so a sync holds one
    chunk in memory whatever the tenant's size (a million users once held ~1.5 GB of
    dicts). COPY on Postgres; a row whose key an earlier chunk already loaded (an export
    naming a user twice) makes that chunk go in as an upsert instead, the later row
    winning, as the dict the rows were once collected in did."""

    def __init__(
        self, session: AsyncSession, table: sa.Table, *, key: str, chunk: int = BATCH
    ) -> None:
        self.session, self.table, self.key, self.chunk = session, table, key, chunk
        self.loaded = 0
        self._pending: dict[Any, dict[str, Any]] = {}

    async def add(self, row: dict[str, Any]) -> None:
        self._pending[row[self.key]] = row  # within a chunk, the later row wins
        if len(self._pending) >= self.chunk:
            await self.flush()

    async def flush(self) -> None:
        rows = list(self._pending.values())
        self._pending = {}
        if not rows:
            return
        if self.session.get_bind().dialect.name == "postgresql":
            try:
                async with self.session.begin_nested():
                    await _copy(self.session, self.table, rows)
            except asyncpg.UniqueViolationError:
                await self._upsert(rows)
        else:
            await self._upsert(rows)
        self.loaded += len(rows)

    async def _upsert(self, rows: list[dict[str, Any]]) -> None:
        others = [name for name in rows[0] if name != self.key]
        # A statement's parameters stay under SQLite's limit (32,766).
        for start in range(0, len(rows), 1000):
            statement = dialect_insert(self.session, self.table).values(rows[start : start + 1000])
            await self.session.execute(
                statement.on_conflict_do_update(
                    index_elements=[self.key],
                    set_={name: statement.excluded[name] for name in others},
                )
            )
