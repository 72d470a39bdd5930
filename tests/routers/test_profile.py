import logging
import re
import secrets
from datetime import timedelta

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from db.base import utcnow
from db.models import EmailChangeOtp, EmailNotification, User
from db.types import UserChange
from scripts.auth0_emulator.server import EmulatorServer
from scripts.auth0_emulator.tenant import DEFAULT_CONNECTION
from tests.conftest import emulator_settings, make_settings
from tests.factories import user_changes

PASSWORD = "Old-password-1"


@pytest.fixture
async def account(
    client: httpx.AsyncClient, emulator: EmulatorServer
) -> tuple[str, dict[str, str]]:
    """A user in Auth0 and (after a first call) in the database, with a token."""
    tag = secrets.token_hex(3)
    created = emulator.tenant.create_user(
        {
            "connection": DEFAULT_CONNECTION,
            "email": f"person.{tag}@example.org",
            "username": f"person_{tag}",
            "password": PASSWORD,
            "email_verified": True,
            "given_name": "Per",
            "family_name": "Son",
        }
    )
    headers = {
        "Authorization": f"Bearer {emulator.tenant.mint_access_token(created['user_id'], roles=[])}"
    }
    assert (await client.get("/me/profile", headers=headers)).status_code == 200
    return created["user_id"], headers


class TestName:
    async def test_the_initials_avatar_follows_the_name_a_chosen_picture_stays(
        self, client, emulator, account
    ):
        """The old backend set an initials picture on a name change (the navbar shows it,
        from the refreshed ID token); Auth0's default picture is replaced, not a social
        login's own."""
        user_id, headers = account
        response = await client.post(
            "/me/profile/name/update",
            json={"first_name": "Grace", "last_name": "Hopper"},
            headers=headers,
        )
        assert response.status_code == 200, response.text
        picture = emulator.tenant.get_user(user_id)["picture"]
        assert picture.startswith("https://ui-avatars.com/api/?name=GH")
        assert (await client.get("/me/profile", headers=headers)).json()["picture"] == picture

        social = emulator.tenant.create_user(
            {
                "connection": "google-oauth2",
                "user_id": f"g{secrets.token_hex(4)}",
                "email": f"own.{secrets.token_hex(3)}@example.org",
                "picture": "https://lh3.googleusercontent.com/a/own-photo",
            }
        )
        token = emulator.tenant.mint_access_token(social["user_id"], roles=[])
        bearer = {"Authorization": f"Bearer {token}"}
        assert (await client.get("/me/profile", headers=bearer)).status_code == 200
        renamed = await client.post(
            "/me/profile/name/update", json={"first_name": "Ada", "last_name": "K"}, headers=bearer
        )
        assert renamed.status_code == 200, renamed.text
        assert emulator.tenant.get_user(social["user_id"])["picture"].startswith(
            "https://lh3.googleusercontent.com/"
        )

    async def test_text_the_database_cannot_store_is_400_and_auth0_is_put_back(
        self, client, emulator, account
    ):
        """Found by fuzzing: a NUL in a name reached Auth0, then Postgres refused it; the
        answer was a 500 and the compensation crashed on the expired user row."""
        user_id, headers = account
        before = emulator.tenant.get_user(user_id)["name"]
        response = await client.post(
            "/me/profile/name/update",
            json={"first_name": "Ada\u0000", "last_name": "King"},
            headers=headers,
        )
        assert response.status_code == 400, response.text
        assert response.json()["error"] == "bad_request"
        assert emulator.tenant.get_user(user_id)["name"] == before

    async def test_updates_auth0_and_here(self, client, emulator, session, account):
        user_id, headers = account
        response = await client.post(
            "/me/profile/name/update",
            json={"first_name": "Ada", "last_name": "King"},
            headers=headers,
        )
        assert response.status_code == 200, response.text
        assert emulator.tenant.get_user(user_id)["name"] == "Ada King"
        session.expire_all()
        assert (await session.get_one(User, user_id)).given_name == "Ada"
        assert (await user_changes(session, user_id))[-1][0] is UserChange.PROFILE_UPDATE

    async def test_empty_name_is_a_field_error(self, client, account):
        response = await client.post(
            "/me/profile/name/update", json={"first_name": "", "last_name": "K"}, headers=account[1]
        )
        assert response.status_code == 400
        assert response.json()["field_errors"][0]["field"] == "first_name"


class TestUsername:
    async def test_updates_with_history(self, client, emulator, session, account):
        user_id, headers = account
        old = emulator.tenant.get_user(user_id)["username"]
        new = f"renamed_{secrets.token_hex(3)}"
        response = await client.post(
            "/me/profile/username/update", json={"username": new}, headers=headers
        )
        assert response.status_code == 200, response.text
        assert emulator.tenant.get_user(user_id)["username"] == new
        assert (await user_changes(session, user_id))[-1] == (UserChange.USERNAME_UPDATE, old, new)
        email = emulator.tenant.get_user(user_id)["email"]
        notice = (
            await session.exec(
                select(EmailNotification).where(
                    col(EmailNotification.template) == "username_changed_notice"
                )
            )
        ).one()
        assert notice.to_address == email
        assert new in (notice.body_text or "")
        assert "You changed" in (notice.body_text or "")

    async def test_a_past_username_stays_reserved(self, client, session, account):
        past = User(id="auth0|past", email="past@example.org", username="Used_Before")
        session.add(past)
        await session.flush()
        past.username = "now_other"  # renamed since
        await session.flush()
        response = await client.post(
            "/me/profile/username/update", json={"username": "used_before"}, headers=account[1]
        )
        assert response.status_code == 400
        assert response.json()["field_errors"] == [
            {"field": "username", "message": "Username is already taken"}
        ]

    async def test_taken_in_auth0_only(self, client, emulator, account):
        emulator.tenant.create_user(
            {
                "connection": DEFAULT_CONNECTION,
                "email": f"x{secrets.token_hex(3)}@example.org",
                "username": "auth0_only",
                "password": PASSWORD,
            }
        )
        response = await client.post(
            "/me/profile/username/update", json={"username": "auth0_only"}, headers=account[1]
        )
        assert response.status_code == 400
        assert response.json()["field_errors"][0]["message"] == "Username is already taken"

    @pytest.mark.parametrize("username", ["UPPER", "a", "has space", "x" * 129])
    async def test_invalid(self, client, account, username):
        response = await client.post(
            "/me/profile/username/update", json={"username": username}, headers=account[1]
        )
        assert response.status_code == 400
        assert response.json()["field_errors"][0]["field"] == "username"


async def age_codes(session: AsyncSession, user_id: str, *, minutes: int) -> None:
    """Move the user's codes into the past, as if `minutes` had gone by since they were sent."""
    codes = (
        await session.exec(select(EmailChangeOtp).where(col(EmailChangeOtp.user_id) == user_id))
    ).all()
    for code in codes:
        code.created_at -= timedelta(minutes=minutes)
    await session.flush()


class TestEmailChange:
    async def code_sent_to(self, session: AsyncSession, address: str) -> str:
        session.expire_all()
        mail = (
            await session.exec(
                select(EmailNotification)
                .where(col(EmailNotification.to_address) == address)
                .order_by(col(EmailNotification.created_at).desc())
            )
        ).first()
        assert mail is not None
        assert mail.priority == 10
        # The code stands on a line of its own (the address above may hold digits too).
        match = re.search(r"^\s+(\d{6})$", mail.body_text or "", re.MULTILINE)
        assert match is not None
        return match.group(1)

    async def test_code_then_change(self, client, emulator, session, account):
        user_id, headers = account
        old = emulator.tenant.get_user(user_id)["email"]
        new = f"new.{secrets.token_hex(3)}@example.org"
        assert (
            await client.post("/me/profile/email/update", json={"email": new}, headers=headers)
        ).status_code == 200
        code = await self.code_sent_to(session, new)
        stored = (
            await session.exec(select(EmailChangeOtp).where(col(EmailChangeOtp.user_id) == user_id))
        ).one()
        assert code not in stored.otp_hash
        response = await client.post(
            "/me/profile/email/continue", json={"otp": code}, headers=headers
        )
        assert response.status_code == 200, response.text
        auth0_user = emulator.tenant.get_user(user_id)
        assert (auth0_user["email"], auth0_user["email_verified"]) == (new, True)
        session.expire_all()
        assert (await session.get_one(User, user_id)).email == new
        assert (await user_changes(session, user_id))[-1] == (UserChange.EMAIL_UPDATE, old, new)
        notice = (
            await session.exec(
                select(EmailNotification).where(col(EmailNotification.to_address) == old)
            )
        ).one()
        assert notice.template == "email_changed_notice"
        again = await client.post("/me/profile/email/continue", json={"otp": code}, headers=headers)
        assert again.status_code == 400  # a code works once

    async def test_an_address_taken_meanwhile_is_409_and_the_code_stays(
        self, client, session, account
    ):
        """Portal contract, call 8: 409 is what the code modal explains as "already used by
        another account"; a wrong code gets its own reason in `detail`."""
        user_id, headers = account
        new = f"raced.{secrets.token_hex(3)}@example.org"
        await client.post("/me/profile/email/update", json={"email": new}, headers=headers)
        code = await self.code_sent_to(session, new)
        wrong = await client.post(
            "/me/profile/email/continue",
            json={"otp": "000000" if code != "000000" else "111111"},
            headers=headers,
        )
        assert (wrong.status_code, wrong.json()["detail"]) == (400, "The code is not correct")
        session.add(
            User(
                id=f"auth0|{secrets.token_hex(4)}", email=new.upper(), connection=DEFAULT_CONNECTION
            )
        )
        await session.flush()
        taken = await client.post("/me/profile/email/continue", json={"otp": code}, headers=headers)
        assert taken.status_code == 409, taken.text
        assert taken.json()["field"] == "email"
        active = (
            await session.exec(
                select(EmailChangeOtp).where(
                    col(EmailChangeOtp.user_id) == user_id, col(EmailChangeOtp.is_active)
                )
            )
        ).one()
        assert active.target_email == new

    async def test_a_new_code_voids_the_old_one(self, client, session, account):
        user_id, headers = account
        new = f"twice.{secrets.token_hex(3)}@example.org"
        await client.post("/me/profile/email/update", json={"email": new}, headers=headers)
        first = await self.code_sent_to(session, new)
        await age_codes(session, user_id, minutes=1)
        await client.post("/me/profile/email/update", json={"email": new}, headers=headers)
        second = await self.code_sent_to(session, new)
        active = (
            await session.exec(
                select(EmailChangeOtp).where(
                    col(EmailChangeOtp.user_id) == user_id, col(EmailChangeOtp.is_active)
                )
            )
        ).all()
        assert len(active) == 1
        if first != second:
            assert (
                await client.post(
                    "/me/profile/email/continue", json={"otp": first}, headers=headers
                )
            ).status_code == 400
        assert (
            await client.post("/me/profile/email/continue", json={"otp": second}, headers=headers)
        ).status_code == 200

    async def test_wrong_codes_count_and_lock(self, client, session, account):
        user_id, headers = account
        new = f"wrong.{secrets.token_hex(3)}@example.org"
        await client.post("/me/profile/email/update", json={"email": new}, headers=headers)
        code = await self.code_sent_to(session, new)
        wrong = f"{(int(code) + 1) % 1_000_000:06d}"
        statuses = [
            (
                await client.post(
                    "/me/profile/email/continue", json={"otp": wrong}, headers=headers
                )
            ).status_code
            for _ in range(5)
        ]
        assert statuses == [400] * 5
        session.expire_all()
        otp = (
            await session.exec(select(EmailChangeOtp).where(col(EmailChangeOtp.user_id) == user_id))
        ).one()
        assert (otp.attempts, otp.is_active) == (5, False)
        assert (
            await client.post("/me/profile/email/continue", json={"otp": code}, headers=headers)
        ).status_code == 400

    async def test_expired_code(self, client, session, account):
        user_id, headers = account
        new = f"late.{secrets.token_hex(3)}@example.org"
        await client.post("/me/profile/email/update", json={"email": new}, headers=headers)
        code = await self.code_sent_to(session, new)
        otp = (
            await session.exec(select(EmailChangeOtp).where(col(EmailChangeOtp.user_id) == user_id))
        ).one()
        otp.expires_at = utcnow() - timedelta(seconds=1)
        await session.flush()
        response = await client.post(
            "/me/profile/email/continue", json={"otp": code}, headers=headers
        )
        assert response.status_code == 400
        assert "expired" in response.json()["field_errors"][0]["message"]

    async def test_codes_per_hour_are_limited(self, client, session, account):
        user_id, headers = account
        codes = []
        for i in range(6):
            response = await client.post(
                "/me/profile/email/update",
                json={"email": f"n{i}.{secrets.token_hex(2)}@example.org"},
                headers=headers,
            )
            codes.append(response.status_code)
            await age_codes(session, user_id, minutes=1)
        assert codes == [200] * 5 + [429]

    async def test_a_second_code_moments_after_the_first_is_429(self, client, account):
        headers = account[1]
        new = f"again.{secrets.token_hex(3)}@example.org"
        first = await client.post("/me/profile/email/update", json={"email": new}, headers=headers)
        second = await client.post("/me/profile/email/update", json={"email": new}, headers=headers)
        assert (first.status_code, second.status_code) == (200, 429)
        assert 1 <= int(second.headers["retry-after"]) <= 30

    @pytest.mark.parametrize("body", [{"otp": "12345"}, {"otp": "abcdef"}, {"otp": 123456}, {}])
    async def test_malformed_code(self, client, account, body):
        assert (
            await client.post("/me/profile/email/continue", json=body, headers=account[1])
        ).status_code == 400

    async def test_address_in_use(self, client, session, account):
        session.add(
            User(id="auth0|holder", email="held@example.org", connection=DEFAULT_CONNECTION)
        )
        await session.flush()
        response = await client.post(
            "/me/profile/email/update", json={"email": "Held@example.org"}, headers=account[1]
        )
        assert response.status_code == 400


async def change_password(
    client: httpx.AsyncClient, headers: dict[str, str], current: str = PASSWORD
) -> httpx.Response:
    return await client.post(
        "/me/profile/password/update",
        json={"current_password": current, "new_password": "New-password-2"},
        headers=headers,
    )


class TestPassword:
    async def test_changes_after_checking_the_current_one(self, client, emulator, account):
        user_id, headers = account
        response = await change_password(client, headers)
        assert response.status_code == 200, response.text
        assert emulator.tenant.passwords[user_id] == "New-password-2"

    async def test_wrong_current_password(self, client, emulator, account):
        user_id, headers = account
        response = await change_password(client, headers, "nope")
        assert response.status_code == 400
        assert response.json()["field_errors"] == [
            # The name the portal's modal looks for (portal contract, call 9).
            {"field": "currentPassword", "message": "The current password is not correct"}
        ]
        assert emulator.tenant.passwords[user_id] == PASSWORD

    async def test_weak_new_password(self, client, account):
        response = await client.post(
            "/me/profile/password/update",
            json={"current_password": PASSWORD, "new_password": "weakpassword"},
            headers=account[1],
        )
        assert response.status_code == 400
        assert response.json()["field_errors"][0]["field"] == "newPassword"

    async def test_mfa_on_the_account_does_not_make_the_password_wrong(
        self, client, emulator, account
    ):
        """Auth0 answers a right password of an MFA user 403 mfa_required: the password
        was accepted, so the change goes ahead."""
        user_id, headers = account
        emulator.tenant.mfa_users.add(user_id)
        response = await change_password(client, headers)
        assert response.status_code == 200, response.text
        assert emulator.tenant.passwords[user_id] == "New-password-2"

    async def test_the_users_address_reaches_auth0_and_its_lockout_is_not_a_wrong_password(
        self, app, emulator, account
    ):
        user_id, headers = account
        transport = httpx.ASGITransport(app=app, client=("127.9.9.9", 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as own:
            body = {"current_password": "nope", "new_password": "New-password-2"}
            wrong = await own.post("/me/profile/password/update", json=body, headers=headers)
            assert wrong.status_code == 400
            # Auth0's brute-force protection counts the user's address, not this server's.
            assert emulator.tenant.login_addresses[-1] == "127.9.9.9"
            emulator.tenant.failed_logins[(user_id, "127.9.9.9")] = 10
            right = {"current_password": PASSWORD, "new_password": "New-password-2"}
            locked = await own.post("/me/profile/password/update", json=right, headers=headers)
        assert locked.status_code == 429
        assert "too many failed attempts" in locked.json()["message"]
        assert "field_errors" not in locked.json()
        assert emulator.tenant.passwords[user_id] == PASSWORD

    async def test_tries_are_limited_per_user_before_auth0_is_asked(
        self, client, emulator, account
    ):
        _, headers = account
        body = {"current_password": "nope", "new_password": "New-password-2"}
        for _ in range(5):
            response = await client.post("/me/profile/password/update", json=body, headers=headers)
            assert response.status_code == 400
        asked = len(emulator.tenant.login_addresses)
        limited = await client.post("/me/profile/password/update", json=body, headers=headers)
        assert limited.status_code == 429
        assert "Retry-After" in limited.headers
        assert len(emulator.tenant.login_addresses) == asked

    async def test_a_client_without_the_password_grant_is_503_for_ops_not_a_wrong_password(
        self, pg_url, emulator, app_factory, caplog
    ):
        """The old configuration (the management client) is refused by Auth0: the user is
        told to try later and ops get an error naming the setting, never 'not correct'."""
        settings = make_settings(
            pg_url,
            **{
                **emulator_settings(emulator),
                "auth0_password_client_id": emulator.tenant.management_client_id,
                "auth0_password_client_secret": emulator.tenant.management_client_secret,
            },
        )
        async with LifespanManager(app_factory(settings)) as manager:
            transport = httpx.ASGITransport(app=manager.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as own:
                user = emulator.tenant.create_user(
                    {
                        "connection": DEFAULT_CONNECTION,
                        "email": f"grant.{secrets.token_hex(3)}@example.org",
                        "password": PASSWORD,
                    }
                )
                token = emulator.tenant.mint_access_token(user["user_id"], roles=[])
                headers = {"Authorization": f"Bearer {token}"}
                assert (await own.get("/me/profile", headers=headers)).status_code == 200
                with caplog.at_level(logging.ERROR, logger="aai.auth0"):
                    response = await own.post(
                        "/me/profile/password/update",
                        json={"current_password": PASSWORD, "new_password": "New-password-2"},
                        headers=headers,
                    )
        assert response.status_code == 503
        assert "field_errors" not in response.json()
        assert any("AUTH0_PASSWORD_CLIENT_ID" in r.getMessage() for r in caplog.records)

    async def test_social_accounts_have_no_password_here(self, client, emulator):
        created = emulator.tenant.create_user(
            {
                "connection": "google-oauth2",
                "user_id": f"g{secrets.token_hex(4)}",
                "email": f"social.{secrets.token_hex(3)}@example.org",
            }
        )
        headers = {
            "Authorization": f"Bearer {emulator.tenant.mint_access_token(created['user_id'], roles=[])}"
        }
        response = await client.post(
            "/me/profile/password/update",
            json={"current_password": "x", "new_password": "New-password-2"},
            headers=headers,
        )
        assert response.status_code == 400
        assert "another provider" in response.json()["detail"]


class TestDelete:
    async def test_blocks_revokes_and_soft_deletes(self, client, emulator, session, account):
        user_id, headers = account
        response = await client.post("/me/profile/delete", headers=headers)
        assert response.status_code == 200, response.text
        assert emulator.tenant.get_user(user_id)["blocked"] is True
        assert emulator.tenant.revoked_refresh_tokens[user_id] == 1
        session.expire_all()
        user = await session.get_one(User, user_id)
        assert (user.is_deleted, user.deleted_by_id, user.deletion_reason) == (
            True,
            user_id,
            "deleted by the user",
        )
        assert (await user_changes(session, user_id))[-1][0] is UserChange.USER_DELETION
        after = await client.get("/me/profile", headers=headers)
        assert after.status_code == 401


class TestSeveralConnections:
    async def test_a_google_account_sharing_a_password_accounts_address_can_use_the_portal(
        self, client, emulator, account
    ):
        """Two Auth0 users with one address (a database and a social connection) are two
        accounts: the second signing in is not refused as "email already used"."""
        user_id, _ = account
        email = emulator.tenant.get_user(user_id)["email"]
        social = emulator.tenant.create_user(
            {
                "connection": "google-oauth2",
                "user_id": f"g{secrets.token_hex(4)}",
                "email": email,
                "email_verified": True,
            }
        )
        token = emulator.tenant.mint_access_token(social["user_id"], roles=[])
        response = await client.get("/me/profile", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200, response.text
        assert response.json()["email"] == email
