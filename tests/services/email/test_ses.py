"""The SES backend: boto3's real SESv2 client over HTTP to a local SESv2-speaking server."""

import base64
import json
import threading
from collections.abc import Iterator
from email import message_from_bytes
from email.policy import default as default_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import sqlalchemy as sa

from db.models import EmailNotification
from db.types import EmailStatus
from scripts.auth0_emulator.server import free_port
from services.email.backends import build_backend
from services.email.delivery import deliver
from services.email.queue import enqueue
from tests.conftest import make_settings
from tests.services.email.conftest import body_text

t = EmailNotification.__table__

# recipient prefix → (HTTP status, SES error type)
ERRORS = {
    "throttled": (429, "TooManyRequestsException"),
    "rejected": (400, "MessageRejected"),
    "broken": (500, "InternalFailure"),
}


class SesServer:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                assert self.path == "/v2/email/outbound-emails"
                assert self.headers["Authorization"].startswith("AWS4-HMAC-SHA256")
                to = body["Destination"]["ToAddresses"][0]
                for prefix, (status, error) in ERRORS.items():
                    if to.startswith(prefix):
                        return self._reply(status, {"message": f"{error} for {to}"}, error)
                sink.requests.append(body)
                return self._reply(200, {"MessageId": f"ses-{len(sink.requests)}"})

            def _reply(self, status: int, payload: dict[str, str], error: str = "") -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                if error:
                    self.send_header("x-amzn-ErrorType", error)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                return None

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)


@pytest.fixture
def ses(monkeypatch: pytest.MonkeyPatch) -> Iterator[SesServer]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "test-secret",
        "AWS_CONFIG_FILE": "/nonexistent",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
    }.items():
        monkeypatch.setenv(name, value)
    server = SesServer()
    server.thread.start()
    yield server
    server.server.shutdown()


async def test_ses_sends_raw_mime_and_sorts_errors(sessions, db_engine, ses: SesServer):
    settings = make_settings(
        db_engine.url,
        email_backend="ses",
        ses_region="ap-southeast-2",
        ses_endpoint_url=f"http://127.0.0.1:{ses.port}",
        no_reply_email_sender="no-reply@aai.test",
        # The old backend's SES_RESOURCE_ARN: sending as another account's identity.
        ses_resource_arn="arn:aws:ses:ap-southeast-2:123456789012:identity/aai.test",
    )
    async with sessions() as session:
        for to in (
            "ada@example.org",
            "throttled@example.org",
            "rejected@example.org",
            "broken@example.org",
        ):
            await enqueue(session, settings, "welcome", to=to, context={"name": "Ada"})
        await session.commit()

    backend = build_backend(settings)
    try:
        stats = await deliver(sessions, backend, settings)
    finally:
        await backend.aclose()

    assert (stats.sent, stats.retried, stats.failed) == (1, 2, 1)
    [request] = ses.requests
    assert request["FromEmailAddress"] == "no-reply@aai.test"
    assert request["FromEmailAddressIdentityArn"] == (
        "arn:aws:ses:ap-southeast-2:123456789012:identity/aai.test"
    )
    mime = message_from_bytes(
        base64.b64decode(request["Content"]["Raw"]["Data"]), policy=default_policy
    )
    assert mime["Subject"] == "Welcome to BioCommons Access"
    assert "Hello Ada" in body_text(mime, "plain")
    assert "Hello Ada" in body_text(mime, "html")
    async with sessions() as session:
        rows = {r.to_address: r for r in (await session.execute(sa.select(t))).all()}
    assert rows["ada@example.org"].status == EmailStatus.SENT
    assert rows["throttled@example.org"].status == EmailStatus.PENDING
    assert "TooManyRequestsException" in rows["throttled@example.org"].last_error
    assert rows["broken@example.org"].status == EmailStatus.PENDING
    assert rows["rejected@example.org"].status == EmailStatus.FAILED
    assert "MessageRejected" in rows["rejected@example.org"].last_error
