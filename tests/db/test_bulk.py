"""StageLoader: a stage filled in bounded chunks, on both backends."""

import sqlalchemy as sa
from sqlmodel.ext.asyncio.session import AsyncSession

from db.bulk import StageLoader, create_stage, drop_stage

STAGE = sa.Table(
    "test_bulk_stage",
    sa.MetaData(),
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("value", sa.String(64)),
    prefixes=["TEMPORARY"],
)


async def test_chunks_load_and_a_repeated_key_keeps_the_later_row(db_session: AsyncSession):
    await create_stage(db_session, STAGE, [])
    try:
        loader = StageLoader(db_session, STAGE, key="id", chunk=3)
        for index in range(10):
            await loader.add({"id": f"u{index}", "value": f"first {index}"})
        # Named again: u1 in a later chunk (already loaded), u9 within the pending chunk.
        await loader.add({"id": "u1", "value": "second 1"})
        await loader.add({"id": "u9", "value": "second 9"})
        await loader.flush()
        rows = dict((await db_session.execute(sa.select(STAGE.c.id, STAGE.c.value))).all())
    finally:
        await drop_stage(db_session, STAGE)
    assert len(rows) == 10
    assert rows["u1"] == "second 1"
    assert rows["u9"] == "second 9"
    assert rows["u0"] == "first 0"
