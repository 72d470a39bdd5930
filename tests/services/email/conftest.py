"""A real SMTP server (aiosmtpd, on its own thread and port) that records what it accepts
and can be told to refuse, defer or stall chosen recipients."""

import asyncio
import threading
from collections.abc import Iterator
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from scripts.auth0_emulator.server import free_port
from services.settings import Settings
from tests.conftest import make_settings, savepoint_sessions


class Sink:
    def __init__(self) -> None:
        self.accepted: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        # recipient local part prefix → SMTP reply at RCPT ("451 4.3.0 try later")
        self.rcpt_replies: dict[str, str] = {}
        # recipients whose DATA is held (no reply) until `release` is set
        self.hold: set[str] = set()
        self.held = threading.Event()
        self.release: asyncio.Event | None = None
        self.lock = threading.Lock()

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        for prefix, reply in self.rcpt_replies.items():
            if address.startswith(prefix):
                return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.hold & set(envelope.rcpt_tos):
            self.release = self.release or asyncio.Event()
            self.held.set()
            await self.release.wait()
            return "451 4.3.0 held by the test"
        message = message_from_bytes(envelope.content, policy=default_policy)
        with self.lock:
            self.accepted.append(message)
            self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 2.0.0 accepted"

    def message_ids(self) -> list[str]:
        with self.lock:
            return [str(m["Message-ID"]) for m in self.accepted]

    def to(self, address: str) -> list[EmailMessage]:
        with self.lock:
            return [m for m in self.accepted if m["To"] == address]


@pytest.fixture
def smtp_sink() -> Iterator[tuple[Sink, int]]:
    sink = Sink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield sink, port
    finally:
        if sink.release is not None:
            controller.loop.call_soon_threadsafe(sink.release.set)
        controller.stop()


def smtp_settings(db_url: URL | str, port: int, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "email_backend": "smtp",
        "smtp_host": "127.0.0.1",
        "smtp_port": port,
        "smtp_security": "none",
        "smtp_timeout_s": 5,
        "email_retry_base_s": 60,
        "no_reply_email_sender": "no-reply@aai.test",
        "aai_portal_url": "https://portal.test",
        **overrides,
    }
    return make_settings(db_url, **values)


@pytest.fixture
async def sessions(db_session: AsyncSession) -> async_sessionmaker[AsyncSession]:
    """Delivery commits as in production; here each commit is a savepoint of the test."""
    return savepoint_sessions(await db_session.connection())


def body_text(message: EmailMessage, subtype: str) -> str:
    """The text of a message's `plain` or `html` part (which must exist)."""
    part = message.get_body(preferencelist=(subtype,))
    assert part is not None, f"no {subtype} part"
    return str(part.get_content())
