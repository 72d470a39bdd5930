"""Enqueueing rides on the caller's transaction and is deduplicated."""

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import EmailNotification
from services.email.queue import enqueue
from services.email.templates import PRIORITY_CODE, PRIORITY_NORMAL
from tests.conftest import make_settings

t = EmailNotification.__table__


async def count(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as session:
        return await session.scalar(sa.select(sa.func.count()).select_from(t)) or 0


async def test_a_rolled_back_change_takes_its_email_with_it(sessions, db_engine):
    settings = make_settings(db_engine.url)
    async with sessions() as session:
        await enqueue(session, settings, "welcome", to="a@example.org", context={"name": "A"})
        await session.rollback()
    assert await count(sessions) == 0


async def test_the_same_dedupe_key_is_queued_once(sessions, db_engine):
    settings = make_settings(db_engine.url)
    async with sessions() as session:
        first = await enqueue(
            session, settings, "welcome", to="a@example.org", context={"name": "A"}, dedupe_key="k"
        )
        again = await enqueue(
            session, settings, "welcome", to="a@example.org", context={"name": "A"}, dedupe_key="k"
        )
        await session.commit()
    assert (first, again) == (True, False)
    assert await count(sessions) == 1


async def test_codes_are_queued_first_and_expire_with_the_code(sessions, db_engine):
    settings = make_settings(db_engine.url, no_reply_email_sender="no-reply@aai.test")
    context = {"code": "123456", "minutes": 10, "new_email": "a@example.org"}
    async with sessions() as session:
        await enqueue(session, settings, "email_change_code", to="a@example.org", context=context)
        await enqueue(session, settings, "welcome", to="b@example.org", context={"name": "B"})
        await session.commit()
        rows = {r.to_address: r for r in (await session.execute(sa.select(t))).all()}
    code, welcome = rows["a@example.org"], rows["b@example.org"]
    assert (code.priority, welcome.priority) == (PRIORITY_CODE, PRIORITY_NORMAL)
    assert code.expires_at is not None
    assert 599 <= (code.expires_at - code.created_at).total_seconds() <= 601
    assert welcome.expires_at is None
    assert code.from_address == "no-reply@aai.test"
    assert code.template == "email_change_code"
