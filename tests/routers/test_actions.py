"""Flows handed over by Auth0 Actions, with their signed session tokens."""

import logging
import secrets
import time
from collections.abc import AsyncIterator

import httpx
import jwt
import pytest
from asgi_lifespan import LifespanManager
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from db.models import EmailNotification
from scripts.auth0_emulator.server import EmulatorServer
from scripts.auth0_emulator.tenant import DEFAULT_CONNECTION
from services.settings import Settings


def action_token(settings: Settings, sub: str, intent: str, **changes: object) -> str:
    now = int(time.time())
    claims: dict[str, object] = {
        "iss": settings.auth0_issuers[0],
        "aud": settings.auth0_action_token_audience,
        "sub": sub,
        "purpose": intent,
        "iat": now,
        "exp": now + 300,
    }
    secret = str(changes.pop("secret", settings.auth0_action_token_secret.get_secret_value()))
    claims.update(changes)
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(claims, secret, algorithm="HS256")


@pytest.fixture
def auth0_user(emulator: EmulatorServer) -> dict[str, object]:
    return emulator.tenant.create_user(
        {
            "connection": DEFAULT_CONNECTION,
            "email": f"act.{secrets.token_hex(3)}@example.org",
            "password": "Long-enough-1",
            "app_metadata": {"user_needs_migration": True},
        }
    )


class TestResendVerification:
    async def test_sends_the_verification_email(
        self, client: httpx.AsyncClient, settings: Settings, emulator: EmulatorServer, auth0_user
    ):
        token = action_token(settings, auth0_user["user_id"], "unverified_email_resend")
        response = await client.post(
            "/me/email-verification/resend", json={"session_token": token, "recaptcha_token": "ok"}
        )
        assert response.status_code == 200, response.text
        assert {
            "type": "verification_email",
            "user_id": auth0_user["user_id"],
            "email": auth0_user["email"],
        } in emulator.tenant.outbox

    @pytest.mark.parametrize(
        ("changes", "reason"),
        [
            ({"purpose": "password_migration"}, "not for this action"),
            ({"exp": int(time.time()) - 60, "iat": int(time.time()) - 120}, "expired"),
            ({"aud": "someone-else"}, "invalid session token"),
            ({"iss": "https://evil.example/"}, "invalid session token"),
            ({"secret": "guessed-secret-guessed-secret-32b"}, "invalid session token"),
            ({"exp": int(time.time()) + 7200}, "lives too long"),
            ({"purpose": None}, "invalid session token"),
        ],
    )
    async def test_bad_tokens_are_401(
        self, client: httpx.AsyncClient, settings: Settings, auth0_user, changes, reason
    ):
        token = action_token(settings, auth0_user["user_id"], "unverified_email_resend", **changes)
        response = await client.post(
            "/me/email-verification/resend", json={"session_token": token, "recaptcha_token": "ok"}
        )
        assert response.status_code == 401
        assert reason in response.json()["detail"]

    async def test_unsigned_token_is_401(
        self, client: httpx.AsyncClient, settings: Settings, auth0_user
    ):
        token = jwt.encode(
            {"sub": auth0_user["user_id"], "purpose": "unverified_email_resend"},
            "",
            algorithm="none",
        )
        response = await client.post(
            "/me/email-verification/resend", json={"session_token": token, "recaptcha_token": "ok"}
        )
        assert response.status_code == 401

    async def test_failed_recaptcha_is_400(
        self, client: httpx.AsyncClient, settings: Settings, auth0_user
    ):
        token = action_token(settings, auth0_user["user_id"], "unverified_email_resend")
        response = await client.post(
            "/me/email-verification/resend", json={"session_token": token, "recaptcha_token": "bad"}
        )
        assert response.status_code == 400
        assert response.json()["field_errors"][0]["field"] == "recaptcha_token"


class TestPasswordMigration:
    async def test_start_sends_a_reset_email(
        self, client: httpx.AsyncClient, settings: Settings, emulator: EmulatorServer, auth0_user
    ):
        token = action_token(settings, auth0_user["user_id"], "password_migration")
        response = await client.post(
            "/me/migration/update-password",
            json={"session_token": token, "client_id": settings.auth0_management_id},
        )
        assert response.status_code == 200, response.text
        assert {"type": "change_password", "email": auth0_user["email"]} in emulator.tenant.outbox

    async def test_finish_marks_done_welcomes_once_and_continues_the_login(
        self,
        client: httpx.AsyncClient,
        settings: Settings,
        emulator: EmulatorServer,
        session: AsyncSession,
        auth0_user,
    ):
        token = action_token(settings, auth0_user["user_id"], "password_migration")
        for _ in range(2):
            response = await client.get(
                "/me/migration/password-changed",
                params={"state": "st a/te", "session_token": token},
            )
            assert response.status_code == 307
            # Back to the login on the custom domain, where the Action paused it.
            assert response.headers["location"] == (
                f"{emulator.custom_url}/continue?state=st%20a%2Fte"
            )
        assert (
            emulator.tenant.get_user(auth0_user["user_id"])["app_metadata"]["user_needs_migration"]
            is False
        )
        welcomes = (
            await session.exec(
                select(EmailNotification).where(
                    col(EmailNotification.to_address) == auth0_user["email"]
                )
            )
        ).all()
        assert [w.template for w in welcomes] == ["welcome"]

        # The portal's banner (contract call 4, `show_welcome_message`): once.
        bearer = {
            "Authorization": f"Bearer {emulator.tenant.mint_access_token(auth0_user['user_id'])}"
        }
        first = await client.get("/me/profile", headers=bearer)
        assert first.json()["show_welcome_message"] is True
        again = await client.get("/me/profile", headers=bearer)
        assert again.json()["show_welcome_message"] is False

    async def test_finish_refuses_a_resend_token(
        self, client: httpx.AsyncClient, settings: Settings, auth0_user
    ):
        token = action_token(settings, auth0_user["user_id"], "unverified_email_resend")
        response = await client.get(
            "/me/migration/password-changed", params={"state": "s", "session_token": token}
        )
        assert response.status_code == 401

    async def test_missing_parameters_are_422(self, client: httpx.AsyncClient):
        assert (
            await client.get("/me/migration/password-changed", params={"state": "s"})
        ).status_code == 422


def legacy_token(settings: Settings, claims: dict[str, object], lifetime_s: int = 300) -> str:
    """A session token as the old backend's deployed Actions sign it: the management
    client's secret, `exp` and no audience or issuer."""
    secret = settings.auth0_management_secret.get_secret_value()
    return jwt.encode({**claims, "exp": int(time.time()) + lifetime_s}, secret, algorithm="HS256")


# The emulator's placeholder management secret is short (Auth0's are 64 characters).
@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
class TestLegacyActionTokens:
    """Until the Actions are redeployed: AUTH0_ACTION_LEGACY_TOKENS (portal contract 17)."""

    @pytest.fixture
    async def transition(
        self, app_factory, settings: Settings, caplog: pytest.LogCaptureFixture
    ) -> AsyncIterator[httpx.AsyncClient]:
        on = settings.model_copy(update={"auth0_action_legacy_tokens": True})
        with caplog.at_level(logging.INFO):
            async with LifespanManager(app_factory(on)) as manager:
                transport = httpx.ASGITransport(app=manager.app, client=("127.8.8.8", 1))
                async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                    yield client

    async def test_refused_unless_the_transition_is_on(
        self, client: httpx.AsyncClient, settings: Settings, auth0_user
    ):
        token = legacy_token(settings, {"sub": auth0_user["user_id"]})
        response = await client.get(
            "/me/migration/password-changed", params={"state": "s", "session_token": token}
        )
        assert response.status_code == 401

    async def test_accepted_during_the_transition_and_logged(
        self,
        transition: httpx.AsyncClient,
        settings: Settings,
        emulator: EmulatorServer,
        auth0_user,
        caplog: pytest.LogCaptureFixture,
    ):
        user_id = str(auth0_user["user_id"])
        started = caplog.get_records("setup")  # the app started in the fixture
        assert any("AUTH0_ACTION_LEGACY_TOKENS is on" in r.getMessage() for r in started)
        finished = await transition.get(
            "/me/migration/password-changed",
            params={"state": "s", "session_token": legacy_token(settings, {"sub": user_id})},
        )
        assert finished.status_code == 307
        # The old resend read `user_id` and required the purpose.
        resend = legacy_token(settings, {"user_id": user_id, "purpose": "unverified_email_resend"})
        sent = await transition.post(
            "/me/email-verification/resend",
            json={"session_token": resend, "recaptcha_token": "ok"},
        )
        assert sent.status_code == 200, sent.text
        assert any("old contract accepted" in r.getMessage() for r in caplog.records)

    @pytest.mark.parametrize(
        ("claims", "lifetime_s"),
        [
            ({"user_id": "x"}, 300),  # a resend without its purpose
            ({"purpose": "password_migration"}, 300),  # a token for the other flow
            ({}, 7200),  # living too long
        ],
    )
    async def test_the_old_contract_is_still_checked(
        self, transition: httpx.AsyncClient, settings: Settings, auth0_user, claims, lifetime_s
    ):
        claims = {"sub": auth0_user["user_id"], **claims}
        token = legacy_token(settings, claims, lifetime_s)
        response = await transition.post(
            "/me/email-verification/resend", json={"session_token": token, "recaptcha_token": "ok"}
        )
        assert response.status_code == 401
