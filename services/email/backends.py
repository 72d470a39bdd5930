"""Where messages go: SMTP, Amazon SES (v2), or, in development, the log or .eml files.

Every backend raises `DeliveryError` for a failed send and says whether trying again
can help: a full mailbox server, a throttle or a dropped connection can; an address the
server refuses, or a message it rejects, cannot. Misconfiguration (bad credentials, a
sender the server refuses) counts as temporary: once ops fix it, the queue drains.
"""

import asyncio
import logging
import uuid
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import formatdate
from pathlib import Path
from typing import Any, Protocol

import aiosmtplib

from services.settings import Settings

logger = logging.getLogger("aai.email")


@dataclass(frozen=True)
class OutgoingEmail:
    id: uuid.UUID
    sender: str
    to: str
    subject: str
    html: str
    text: str | None

    def mime(self) -> EmailMessage:
        message = EmailMessage(policy=SMTP_POLICY)
        message["From"] = self.sender
        message["To"] = self.to
        message["Subject"] = self.subject
        message["Date"] = formatdate(usegmt=True)
        # Stable per queue row: if a send is ever repeated (a sender killed after the
        # server accepted), receivers and ops can tell it is the same message.
        domain = self.sender.rpartition("@")[2] or "aai.localhost"
        message["Message-ID"] = f"<{self.id}@{domain}>"
        message.set_content(self.text or "")
        message.add_alternative(self.html, subtype="html")
        return message


class DeliveryError(Exception):
    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


class EmailBackend(Protocol):
    async def send(self, message: OutgoingEmail) -> None: ...

    async def aclose(self) -> None: ...


def build_backend(settings: Settings) -> EmailBackend:
    if settings.email_backend == "smtp":
        return SmtpBackend(settings)
    if settings.email_backend == "ses":
        return SesBackend(settings)
    if settings.email_backend == "file":
        return FileBackend(Path(settings.email_file_dir))
    return ConsoleBackend()


# ---------------------------------------------------------------------------- SMTP

# Replies that mean "our side is misconfigured", whatever their class: retried, so
# nothing is lost while ops fix it.
SMTP_CONFIG_CODES = frozenset({530, 534, 535, 538})


class SmtpBackend:
    """aiosmtplib over up to EMAIL_CONCURRENCY kept-open connections; a connection that
    saw any error is dropped, so the next send starts from a clean session."""

    def __init__(self, settings: Settings) -> None:
        if not settings.smtp_host:
            raise ValueError("EMAIL_BACKEND=smtp needs SMTP_HOST")
        self._host = settings.smtp_host
        self._port = settings.smtp_port
        self._security = settings.smtp_security
        self._username = settings.smtp_username
        self._password = (
            settings.smtp_password.get_secret_value() if settings.smtp_password else None
        )
        self._timeout = settings.smtp_timeout_s
        self._ca_file = settings.smtp_ca_file
        self._idle: list[aiosmtplib.SMTP] = []

    async def _connect(self) -> aiosmtplib.SMTP:
        client = aiosmtplib.SMTP(
            hostname=self._host,
            port=self._port,
            use_tls=self._security == "tls",
            start_tls=self._security == "starttls",
            username=self._username,
            password=self._password,
            timeout=self._timeout,
            cert_bundle=self._ca_file,
        )
        await client.connect()
        return client

    async def send(self, message: OutgoingEmail) -> None:
        client = self._idle.pop() if self._idle else None
        try:
            if client is None or not client.is_connected:
                client = await self._connect()
            await client.send_message(message.mime())
        except aiosmtplib.SMTPRecipientsRefused as exc:
            await _discard(client)
            codes = [refused.code for refused in exc.recipients]
            detail = "; ".join(f"{r.code} {r.message}" for r in exc.recipients)
            raise DeliveryError(
                f"SMTP recipient refused: {detail}", permanent=_smtp_permanent(codes)
            ) from None
        except aiosmtplib.SMTPResponseException as exc:
            await _discard(client)
            permanent = _smtp_permanent([exc.code]) and not isinstance(
                exc, aiosmtplib.SMTPSenderRefused | aiosmtplib.SMTPAuthenticationError
            )
            raise DeliveryError(f"SMTP {exc.code} {exc.message}", permanent=permanent) from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            await _discard(client)
            raise DeliveryError(
                f"SMTP {type(exc).__name__}: {str(exc) or 'no detail'}", permanent=False
            ) from None
        self._idle.append(client)

    async def aclose(self) -> None:
        idle, self._idle = self._idle, []
        for client in idle:
            try:
                await client.quit()
            except (aiosmtplib.SMTPException, OSError, TimeoutError):
                client.close()


def _smtp_permanent(codes: Iterable[int]) -> bool:
    """5xx is permanent, 4xx temporary (RFC 5321); configuration replies are retried."""
    codes = list(codes)
    return bool(codes) and all(500 <= c < 600 and c not in SMTP_CONFIG_CODES for c in codes)


async def _discard(client: aiosmtplib.SMTP | None) -> None:
    if client is not None and client.is_connected:
        client.close()


# ---------------------------------------------------------------------------- SES

# SESv2 errors that are about this message, not about us or the service: retrying
# would fail the same way.
SES_PERMANENT = frozenset(
    {"MessageRejected", "BadRequestException", "MailFromDomainNotVerifiedException"}
)


class SesBackend:
    """boto3's SESv2 client (synchronous) on a thread pool of its own, sized to
    EMAIL_CONCURRENCY, so sends never block the event loop. boto3's own retries are
    off: the queue's backoff owns retrying."""

    def __init__(self, settings: Settings) -> None:
        import boto3
        from botocore.config import Config

        self._pool = ThreadPoolExecutor(
            max_workers=settings.email_concurrency, thread_name_prefix="ses"
        )
        self._client: Any = boto3.session.Session().client(
            "sesv2",
            region_name=settings.ses_region or "us-east-1",
            endpoint_url=settings.ses_endpoint_url,
            config=Config(
                retries={"total_max_attempts": 1, "mode": "standard"},
                connect_timeout=10,
                read_timeout=settings.smtp_timeout_s,
                max_pool_connections=settings.email_concurrency,
            ),
        )
        self._configuration_set = settings.ses_configuration_set
        self._identity_arn = settings.ses_resource_arn

    def _send(self, message: OutgoingEmail) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        request: dict[str, Any] = {
            "FromEmailAddress": message.sender,
            "Destination": {"ToAddresses": [message.to]},
            "Content": {"Raw": {"Data": message.mime().as_bytes()}},
        }
        if self._configuration_set:
            request["ConfigurationSetName"] = self._configuration_set
        if self._identity_arn:
            request["FromEmailAddressIdentityArn"] = self._identity_arn
        try:
            self._client.send_email(**request)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = error.get("Code", "Unknown")
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            raise DeliveryError(
                f"SES {status} {code}: {error.get('Message', '')}".strip(),
                permanent=code in SES_PERMANENT,
            ) from None
        except BotoCoreError as exc:
            raise DeliveryError(f"SES {type(exc).__name__}: {exc}", permanent=False) from None

    async def send(self, message: OutgoingEmail) -> None:
        await asyncio.get_running_loop().run_in_executor(self._pool, self._send, message)

    async def aclose(self) -> None:
        self._pool.shutdown(wait=False)


# ---------------------------------------------------------------------------- dev


class ConsoleBackend:
    """Development: each message is logged, nothing leaves the machine."""

    async def send(self, message: OutgoingEmail) -> None:
        logger.info(
            "email (console backend) to=%s subject=%r\n%s",
            message.to,
            message.subject,
            message.text,
        )

    async def aclose(self) -> None:
        return None


class FileBackend:
    """Development and tests: each message becomes an .eml file any mail client opens."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory

    def _write(self, message: OutgoingEmail) -> None:
        self._directory.mkdir(parents=True, exist_ok=True)
        (self._directory / f"{message.id}.eml").write_bytes(message.mime().as_bytes())

    async def send(self, message: OutgoingEmail) -> None:
        try:
            await asyncio.to_thread(self._write, message)
        except OSError as exc:
            raise DeliveryError(f"file backend: {exc}", permanent=False) from None

    async def aclose(self) -> None:
        return None
