"""Delivery where several engines or processes meet on one database: concurrent
deliverers, and a scheduler killed with SIGKILL in the middle of a send."""

import asyncio
import os
import signal
import sys
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import URL

from db.base import utcnow
from db.engine import create_engine, create_session_factory
from db.models import EmailNotification
from db.types import EmailStatus
from services.email.backends import build_backend
from services.email.delivery import DeliveryStats, deliver
from services.email.queue import enqueue
from services.settings import Settings
from tests.services.email.conftest import Sink, smtp_settings

t = EmailNotification.__table__


async def fill(settings: Settings, addresses: list[str]) -> None:
    engine = create_engine(settings.database_url, process="tests")
    try:
        async with create_session_factory(engine)() as session:
            for to in addresses:
                await enqueue(
                    session, settings, "welcome", to=to, context={"name": to.split("@")[0]}
                )
            await session.commit()
    finally:
        await engine.dispose()


async def deliverer(settings: Settings, clock: Callable[[], datetime] = utcnow) -> DeliveryStats:
    engine = create_engine(settings.database_url, process="tests")
    backend = build_backend(settings)
    try:
        return await deliver(create_session_factory(engine), backend, settings, clock=clock)
    finally:
        await backend.aclose()
        await engine.dispose()


async def statuses(settings: Settings) -> dict[str, tuple[EmailStatus, int]]:
    engine = create_engine(settings.database_url, process="tests")
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(sa.select(t.c.to_address, t.c.status, t.c.attempts))).all()
    finally:
        await engine.dispose()
    return {to: (EmailStatus(status), attempts) for to, status, attempts in rows}


async def test_two_concurrent_deliverers_send_each_message_once(
    scratch_db: URL, smtp_sink: tuple[Sink, int]
):
    sink, port = smtp_sink
    settings = smtp_settings(scratch_db, port, email_batch_size=20, email_concurrency=4)
    addresses = [f"user{n}@example.org" for n in range(300)]
    await fill(settings, addresses)

    first, second = await asyncio.gather(deliverer(settings), deliverer(settings))

    ids = sink.message_ids()
    assert len(ids) == 300
    assert Counter(ids).most_common(1)[0][1] == 1  # no message twice
    assert first.sent + second.sent == 300
    assert first.sent > 0
    assert second.sent > 0
    assert {status for status, _ in (await statuses(settings)).values()} == {EmailStatus.SENT}


async def test_a_scheduler_killed_mid_send_loses_nothing_and_sends_nothing_twice(
    scratch_db: URL, smtp_sink: tuple[Sink, int], repo_root: Path
):
    sink, port = smtp_sink
    sink.hold = {"held@example.org"}
    settings = smtp_settings(scratch_db, port, email_lease_s=60, email_concurrency=2)
    others = [f"user{n}@example.org" for n in range(5)]
    await fill(settings, ["held@example.org", *others])
    env = {
        **os.environ,
        "DB_URL": scratch_db.render_as_string(hide_password=False),
        "DB_HOST": "",
        "EMAIL_BACKEND": "smtp",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(port),
        "SMTP_SECURITY": "none",
        "EMAIL_LEASE_S": "2",
        "EMAIL_CONCURRENCY": "2",
        "NO_REPLY_EMAIL_SENDER": "no-reply@aai.test",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "run_scheduler.py",
        "--job",
        "email.deliver",
        cwd=repo_root,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        # The held message is mid-send (the server has its data, no reply yet) and the
        # others have been accepted and recorded.
        for _ in range(400):
            state = await statuses(settings)
            if sink.held.is_set() and all(state[o][0] is EmailStatus.SENT for o in others):
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError(f"the deliverer never got there: {await statuses(settings)}")
    finally:
        process.send_signal(signal.SIGKILL)
        assert await process.wait() == -signal.SIGKILL

    assert (await statuses(settings))["held@example.org"] == (EmailStatus.SENDING, 1)
    sink.hold = set()
    # A deliverer that runs after the dead sender's lease ran out.
    stats = await deliverer(settings, clock=lambda: utcnow() + timedelta(seconds=61))

    assert (stats.reclaimed, stats.sent) == (1, 1)
    final = await statuses(settings)
    assert final["held@example.org"] == (EmailStatus.SENT, 2)
    assert all(final[o] == (EmailStatus.SENT, 1) for o in others)
    ids = sink.message_ids()
    assert len(ids) == 6
    assert len(set(ids)) == 6
