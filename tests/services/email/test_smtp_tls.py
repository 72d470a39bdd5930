"""SMTP with STARTTLS or implicit TLS and a login, against aiosmtpd with a certificate
from a test CA: the certificate is verified, the login is used, bad credentials retry."""

import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from db.models import EmailNotification
from db.types import EmailStatus
from scripts.auth0_emulator.server import free_port
from services.email.backends import build_backend
from services.email.delivery import deliver
from services.email.queue import enqueue
from tests.certificates import make_certificate
from tests.services.email.conftest import Sink, smtp_settings

# The implicit-TLS test server allows AUTH on what aiosmtpd cannot tell is a TLS socket.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
t = EmailNotification.__table__
USER, PASSWORD = "mailer", "s3cret-pass"


def authenticator(
    server: Any, session: Any, envelope: Any, mechanism: str, data: Any
) -> AuthResult:
    def text(value: str | bytes) -> str:
        return value.decode() if isinstance(value, bytes) else value

    ok = isinstance(data, LoginPassword) and (text(data.login), text(data.password)) == (
        USER,
        PASSWORD,
    )
    if ok:
        return AuthResult(success=True)
    # Spelled out: this aiosmtpd version leaves a bare failure unanswered.
    return AuthResult(success=False, handled=False, message="535 5.7.8 credentials invalid")


@pytest.fixture(params=["starttls", "tls"])
def tls_sink(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[Sink, int, str, Path]]:
    cert, key = make_certificate(tmp_path, "smtp")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    sink, port, mode = Sink(), free_port(), request.param
    options: dict[str, Any] = {"authenticator": authenticator, "auth_required": True}
    if mode == "starttls":
        options |= {"tls_context": context, "require_starttls": True}
    else:
        # aiosmtpd does not count implicit TLS as TLS for AUTH; the socket is TLS anyway.
        options |= {"ssl_context": context, "auth_require_tls": False}
    controller = Controller(sink, hostname="127.0.0.1", port=port, **options)
    controller.start()
    yield sink, port, mode, cert
    controller.stop()


async def send_one(sessions, settings) -> sa.Row:
    async with sessions() as session:
        await enqueue(session, settings, "welcome", to="ada@example.org", context={"name": "Ada"})
        await session.commit()
    backend = build_backend(settings)
    try:
        await deliver(sessions, backend, settings)
    finally:
        await backend.aclose()
    async with sessions() as session:
        return (await session.execute(sa.select(t))).one()


def login_settings(db_engine, tls_sink, *, password: str = PASSWORD, trust_ca: bool = True):
    """Settings logging in over the sink's TLS mode, trusting the test CA unless told not to."""
    _sink, port, mode, cert = tls_sink
    return smtp_settings(
        db_engine.url,
        port,
        smtp_security=mode,
        smtp_username=USER,
        smtp_password=password,
        smtp_ca_file=str(cert) if trust_ca else None,
    )


async def test_tls_with_login_delivers(sessions, db_engine, tls_sink):
    sink = tls_sink[0]
    settings = login_settings(db_engine, tls_sink)
    row = await send_one(sessions, settings)
    assert row.status == EmailStatus.SENT, row.last_error
    assert sink.to("ada@example.org")


async def test_a_wrong_password_is_retried_not_dropped(sessions, db_engine, tls_sink):
    sink = tls_sink[0]
    settings = login_settings(db_engine, tls_sink, password="wrong")
    row = await send_one(sessions, settings)
    assert row.status == EmailStatus.PENDING
    assert "535" in row.last_error
    assert not sink.accepted


async def test_an_untrusted_certificate_is_refused(sessions, db_engine, tls_sink):
    sink = tls_sink[0]
    settings = login_settings(db_engine, tls_sink, trust_ca=False)
    row = await send_one(sessions, settings)
    assert row.status == EmailStatus.PENDING
    assert "CERTIFICATE_VERIFY_FAILED" in row.last_error or "certificate" in row.last_error.lower()
    assert not sink.accepted
