"""/db-admin test data: a migrated database of its own (the dashboard reads through its
own connections, so the rolled-back test session would be invisible to it), seeded once
per module, and people to log in as through the Auth0 emulator."""

import secrets
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from sqlalchemy.engine import URL

from db.admin import create_database, drop_database
from db.base import utcnow
from db.engine import create_engine, create_session_factory
from db.migrations import upgrade_head
from db.models import (
    EmailChangeOtp,
    EmailNotification,
    GroupMembership,
    PlatformMembership,
    SyncRun,
    User,
    UserHistory,
)
from db.types import ApprovalStatus, EmailStatus, SyncRunStatus, UserChange
from scripts.auth0_emulator.server import EmulatorServer
from scripts.auth0_emulator.tenant import DEFAULT_CONNECTION
from services.auth0 import Auth0Gateway
from services.settings import Settings
from services.sync.jobs import JOBS_BY_NAME
from services.sync.runs import JobContext, run_job
from tests.conftest import emulator_settings, make_settings

OTP_HASH = "f" * 64
CODE_IN_BODY = "918273"


async def _seed(url: URL, emulator: EmulatorServer) -> None:
    settings = make_settings(url, **emulator_settings(emulator))
    engine = create_engine(url, process="tests")
    sessions = create_session_factory(engine)
    gateway = Auth0Gateway.from_settings(settings)
    ctx = JobContext(settings, engine, sessions, gateway)
    await run_job(ctx, "sync.roles", JOBS_BY_NAME["sync.roles"].body)
    await gateway.aclose()
    now = utcnow()
    async with sessions() as session:
        for n in range(40):
            session.add(
                User(
                    id=f"auth0|dash{n:03d}",
                    email=f"dash{n:03d}@example.org",
                    username=f"dash_user_{n:03d}",
                    email_verified=n % 3 != 0,
                    is_deleted=n >= 37,
                    blocked=n >= 37,
                    deleted_at=now if n >= 37 else None,
                    deletion_reason="spam" if n >= 37 else None,
                    created_at=now - timedelta(minutes=n),
                )
            )
        await session.flush()
        for n in range(20):
            session.add(
                PlatformMembership(
                    platform_id="galaxy",
                    user_id=f"auth0|dash{n:03d}",
                    approval_status=ApprovalStatus.PENDING if n % 2 else ApprovalStatus.APPROVED,
                )
            )
        session.add(
            GroupMembership(
                group_id="biocommons/group/tsi",
                user_id="auth0|dash001",
                approval_status=ApprovalStatus.PENDING,
            )
        )
        session.add(
            UserHistory(
                user_id="auth0|dash000", change=UserChange.CREATED, email="dash000@example.org"
            )
        )
        session.add(
            EmailNotification(
                id=uuid.uuid4(),
                to_address="dash000@example.org",
                subject="Your code",
                body_html=f"<p>{CODE_IN_BODY}</p>",
                body_text=f"code {CODE_IN_BODY}",
                template="email_change_code",
                status=EmailStatus.FAILED,
                attempts=8,
                last_error="attempt 8: SMTP 451 try later",
            )
        )
        session.add(
            EmailChangeOtp(
                user_id="auth0|dash000",
                target_email="new@example.org",
                otp_hash=OTP_HASH,
                expires_at=now + timedelta(minutes=10),
            )
        )
        session.add(
            SyncRun(job="sync.users.full", status=SyncRunStatus.SUCCEEDED, counts={"created": 3})
        )
        await session.commit()
    await engine.dispose()


@pytest.fixture(scope="module")
async def dashboard_db(pg_server_url: URL, emulator_server: EmulatorServer) -> AsyncIterator[URL]:
    name = f"aai_dash_{secrets.token_hex(4)}"
    url = await create_database(pg_server_url, name)
    await upgrade_head(url)
    await _seed(url, emulator_server)
    yield url
    await drop_database(pg_server_url, name)


def dashboard_settings(url: URL, emulator: EmulatorServer, **overrides: Any) -> Settings:
    return make_settings(
        url, **{**emulator_settings(emulator), "enable_admin_dashboard": True, **overrides}
    )


def person(emulator: EmulatorServer, *roles: str) -> str:
    email = f"ops.{secrets.token_hex(3)}@example.org"
    user = emulator.tenant.create_user(
        {"connection": DEFAULT_CONNECTION, "email": email, "password": "long-enough-1"}
    )
    for name in roles:
        role = emulator.tenant.role_by_name(name) or emulator.tenant.create_role(name)
        emulator.tenant.assign_roles(user["user_id"], [role["id"]])
    return email


def as_user(authorize_url: str, email: str) -> str:
    """The emulator's login page, answered: log in as `email`."""
    return f"{authorize_url}&{urlencode({'login_hint': email})}"
