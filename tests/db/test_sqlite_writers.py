"""The embedded default with two writers (the API and the scheduler share one file)."""

import asyncio
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from db.base import utcnow
from db.engine import create_engine
from db.migrations import upgrade_head
from db.models import SyncRun


def row(job: str) -> dict[str, object]:
    return {"job": job, "status": "running", "dry_run": False, "started_at": utcnow(), "counts": {}}


async def test_a_reader_that_then_writes_waits_for_the_other_writer(tmp_path: Path):
    url = make_url(f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}")
    await upgrade_head(url)
    runs = SyncRun.__table__
    first, second = create_engine(url), create_engine(url)

    async def read_then_write() -> None:
        async with first.begin() as conn:
            await conn.execute(sa.select(sa.func.count()).select_from(runs))
            await asyncio.sleep(0.3)  # the other process writes meanwhile
            await conn.execute(sa.insert(runs).values(row("a")))

    async def write() -> None:
        await asyncio.sleep(0.05)
        async with second.begin() as conn:
            await conn.execute(sa.insert(runs).values(row("b")))

    try:
        await asyncio.gather(read_then_write(), write())
        async with first.connect() as conn:
            jobs = sorted((await conn.execute(sa.select(runs.c.job))).scalars())
    finally:
        await first.dispose()
        await second.dispose()
    assert jobs == ["a", "b"]
