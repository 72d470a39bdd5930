"""The email queue against a real SMTP server: what arrives, how failures are treated."""

from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from db.base import utcnow
from db.models import EmailNotification
from db.types import EmailStatus
from scripts.auth0_emulator.server import free_port
from services.email.backends import build_backend
from services.email.delivery import LEASE_EXPIRED, deliver
from services.email.queue import enqueue
from services.settings import Settings
from tests.services.email.conftest import Sink, body_text, smtp_settings

t = EmailNotification.__table__


async def queue(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    to: str,
    message: str = "membership_approved",
    **context: object,
) -> None:
    async with sessions() as session:
        await enqueue(
            session,
            settings,
            message,
            to=to,
            context=context or {"target_name": "Galaxy Australia"},
        )
        await session.commit()


async def run(sessions: async_sessionmaker[AsyncSession], settings: Settings):
    backend = build_backend(settings)
    try:
        return await deliver(sessions, backend, settings)
    finally:
        await backend.aclose()


async def lease(
    sessions: async_sessionmaker[AsyncSession], *, attempts: int, expires_in: timedelta
) -> None:
    """Every queued row as a sender leaves it mid-send: claimed, lease ending then."""
    async with sessions() as session:
        await session.execute(
            sa.update(t).values(
                status=EmailStatus.SENDING,
                attempts=attempts,
                lease_expires_at=utcnow() + expires_in,
            )
        )
        await session.commit()


async def row(sessions: async_sessionmaker[AsyncSession], to: str) -> sa.Row:
    async with sessions() as session:
        return (await session.execute(sa.select(t).where(t.c.to_address == to))).one()


async def queue_code(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, to: str
) -> None:
    """An email-change code: sent before anything else, dropped once its 10 minutes pass."""
    await queue(
        sessions, settings, to, "email_change_code", code="123456", minutes=10, new_email=to
    )


async def test_a_queued_message_arrives_with_recipient_subject_and_both_parts(
    sessions, db_engine, smtp_sink: tuple[Sink, int]
):
    sink, port = smtp_sink
    settings = smtp_settings(db_engine.url, port)
    await queue(sessions, settings, "ada@example.org", target_name="Galaxy <Australia>")

    stats = await run(sessions, settings)

    assert stats.sent == 1
    [message] = sink.to("ada@example.org")
    assert sink.envelopes == [("no-reply@aai.test", ["ada@example.org"])]
    assert message["Subject"] == "Your access to Galaxy <Australia> was approved"
    assert message["From"] == "no-reply@aai.test"
    text = body_text(message, "plain")
    html = body_text(message, "html")
    assert "Galaxy <Australia> was approved" in text
    assert "Galaxy &lt;Australia&gt;" in html  # user-given text is escaped in HTML
    assert "https://portal.test" in text
    assert 'href="https://portal.test"' in html
    stored = await row(sessions, "ada@example.org")
    assert stored.status == EmailStatus.SENT
    assert stored.attempts == 1
    assert stored.sent_at is not None
    assert stored.lease_expires_at is None
    assert message["Message-ID"] == f"<{stored.id}@aai.test>"


async def test_temporary_smtp_replies_are_retried_later_with_backoff(
    sessions, db_engine, smtp_sink: tuple[Sink, int]
):
    sink, port = smtp_sink
    sink.rcpt_replies = {"busy": "451 4.3.0 try again later", "closing": "421 4.3.2 shutting down"}
    settings = smtp_settings(db_engine.url, port, email_retry_base_s=60)
    for to in ("busy@example.org", "closing@example.org", "fine@example.org"):
        await queue(sessions, settings, to)

    before = utcnow()
    stats = await run(sessions, settings)

    assert (stats.sent, stats.retried, stats.failed) == (1, 2, 0)
    for to, code in (("busy@example.org", "451"), ("closing@example.org", "421")):
        stored = await row(sessions, to)
        assert stored.status == EmailStatus.PENDING
        assert stored.attempts == 1
        assert code in stored.last_error
        # base 60 s ± 50% jitter: not retried within this run, and due within 90 s
        assert (
            before + timedelta(seconds=29) <= stored.send_after <= utcnow() + timedelta(seconds=91)
        )
    assert sink.to("fine@example.org")


async def test_a_permanent_refusal_fails_at_once_and_keeps_the_error(
    sessions, db_engine, smtp_sink: tuple[Sink, int]
):
    sink, port = smtp_sink
    sink.rcpt_replies = {"nobody": "550 5.1.1 no such mailbox"}
    settings = smtp_settings(db_engine.url, port)
    await queue(sessions, settings, "nobody@example.org")

    stats = await run(sessions, settings)

    assert (stats.sent, stats.failed) == (0, 1)
    stored = await row(sessions, "nobody@example.org")
    assert stored.status == EmailStatus.FAILED
    assert "550" in stored.last_error
    assert "no such mailbox" in stored.last_error
    assert not sink.accepted


async def test_connection_refused_is_temporary(sessions, db_engine):
    settings = smtp_settings(db_engine.url, free_port())  # nothing listens there
    await queue(sessions, settings, "ada@example.org")

    stats = await run(sessions, settings)

    assert stats.retried == 1
    stored = await row(sessions, "ada@example.org")
    assert stored.status == EmailStatus.PENDING
    assert "SMTP" in stored.last_error


async def test_attempts_run_out_into_failed_with_the_last_error(
    sessions, db_engine, smtp_sink: tuple[Sink, int]
):
    sink, port = smtp_sink
    sink.rcpt_replies = {"busy": "451 4.3.0 try again later"}
    settings = smtp_settings(db_engine.url, port, email_max_attempts=3, email_retry_base_s=60)
    await queue(sessions, settings, "busy@example.org")

    outcomes = []
    for _ in range(4):
        async with sessions() as session:
            # make it due again at once
            await session.execute(sa.update(t).values(send_after=utcnow() - timedelta(seconds=1)))
            await session.commit()
        stats = await run(sessions, settings)
        outcomes.append((stats.retried, stats.failed))

    assert outcomes == [(1, 0), (1, 0), (0, 1), (0, 0)]
    stored = await row(sessions, "busy@example.org")
    assert stored.status == EmailStatus.FAILED
    assert stored.attempts == 3
    assert stored.last_error.startswith("attempt 3: SMTP recipient refused: 451")


async def test_too_old_and_expired_messages_fail_without_being_sent(
    sessions, db_engine, smtp_sink: tuple[Sink, int]
):
    sink, port = smtp_sink
    settings = smtp_settings(db_engine.url, port, email_max_age_s=3600)
    await queue(sessions, settings, "old@example.org")
    await queue_code(sessions, settings, "code@example.org")
    async with sessions() as session:
        await session.execute(
            sa.update(t)
            .where(t.c.to_address == "old@example.org")
            .values(created_at=utcnow() - timedelta(hours=2))
        )
        await session.execute(
            sa.update(t)
            .where(t.c.to_address == "code@example.org")
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
        await session.commit()

    stats = await run(sessions, settings)

    assert (stats.sent, stats.expired) == (0, 2)
    assert not sink.accepted
    assert "EMAIL_MAX_AGE_S" in (await row(sessions, "old@example.org")).last_error
    code = await row(sessions, "code@example.org")
    assert code.status == EmailStatus.FAILED
    assert code.last_error == "expired before it could be sent"


async def test_codes_go_first_and_one_run_drains_many_batches(
    sessions, db_engine, smtp_sink: tuple[Sink, int]
):
    sink, port = smtp_sink
    settings = smtp_settings(db_engine.url, port, email_batch_size=5, email_concurrency=1)
    for n in range(12):
        await queue(sessions, settings, f"user{n}@example.org")
    await queue_code(sessions, settings, "code@example.org")

    stats = await run(sessions, settings)

    assert stats.sent == 13
    assert stats.batches == 3  # not capped by one batch per run
    assert sink.accepted[0]["To"] == "code@example.org"


async def test_a_lease_left_by_a_dead_sender_is_retried(
    sessions, db_engine, smtp_sink: tuple[Sink, int]
):
    sink, port = smtp_sink
    settings = smtp_settings(db_engine.url, port)
    await queue(sessions, settings, "ada@example.org")
    await lease(sessions, attempts=1, expires_in=timedelta(seconds=-1))

    stats = await run(sessions, settings)

    assert (stats.reclaimed, stats.sent) == (1, 1)
    stored = await row(sessions, "ada@example.org")
    assert stored.status == EmailStatus.SENT
    assert stored.attempts == 2
    assert len(sink.to("ada@example.org")) == 1


async def test_a_row_still_leased_by_another_sender_is_left_alone(
    sessions, db_engine, smtp_sink: tuple[Sink, int]
):
    sink, port = smtp_sink
    settings = smtp_settings(db_engine.url, port)
    await queue(sessions, settings, "ada@example.org")
    await lease(sessions, attempts=1, expires_in=timedelta(minutes=1))

    stats = await run(sessions, settings)

    assert stats.sent == 0
    assert not sink.accepted
    assert (await row(sessions, "ada@example.org")).status == EmailStatus.SENDING


async def test_a_sender_killed_on_its_last_attempt_fails_the_row(sessions, db_engine):
    settings = smtp_settings(db_engine.url, free_port(), email_max_attempts=2)
    await queue(sessions, settings, "ada@example.org")
    await lease(sessions, attempts=2, expires_in=timedelta(seconds=-1))

    await run(sessions, settings)

    stored = await row(sessions, "ada@example.org")
    assert stored.status == EmailStatus.FAILED
    assert "last attempt" in stored.last_error
    assert stored.last_error != LEASE_EXPIRED
