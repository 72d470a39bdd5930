import secrets
from collections.abc import Callable

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from db.models import (
    Auth0OutboxEntry,
    Auth0Role,
    EmailNotification,
    GroupAdminRole,
    GroupMembership,
    Platform,
    PlatformAdminRole,
    PlatformMembership,
    User,
    UserHistory,
)
from db.types import ApprovalStatus, UserChange
from scripts.auth0_emulator.server import EmulatorServer
from scripts.auth0_emulator.tenant import DEFAULT_CONNECTION
from services.settings import Settings
from tests.conftest import client_address
from tests.factories import add_catalog, add_group, auth0_user

GOOD = {
    "first_name": "Ada",
    "last_name": "Lovelace",
    "email": "Ada.Lovelace@Example.org",
    "username": "ada_l",
    "password": "Analytical-Engine-1",
    "recaptcha_token": "ok-token",
}


async def register(client: httpx.AsyncClient, **changes: object) -> httpx.Response:
    return await client.post("/biocommons/register", json={**GOOD, **changes})


def field_errors(response: httpx.Response) -> dict[str, str]:
    body = response.json()
    errors = {error["field"]: error["message"] for error in body["field_errors"]}
    # The portal shows `message` where a field has no place on the page: the reason
    # itself when there is one (the old backend's way), a summary otherwise.
    assert body["message"] == (
        next(iter(errors.values())) if len(errors) == 1 else "Invalid data submitted"
    )
    return errors


class TestRegister:
    async def test_creates_the_account_everywhere(
        self, client: httpx.AsyncClient, session: AsyncSession, emulator: EmulatorServer
    ):
        await add_catalog(session)
        response = await register(client, bundle="tsi", request_reason="I study quolls")
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["email"], body["username"], body["platforms"], body["groups_requested"]) == (
            "ada.lovelace@example.org",
            "ada_l",
            ["bpa_data_portal", "galaxy"],
            ["biocommons/group/tsi"],
        )
        (auth0_user,) = emulator.tenant.users_by_email("ada.lovelace@example.org")
        assert auth0_user["app_metadata"] == {"registration_from": "biocommons"}
        assert auth0_user["given_name"] == "Ada"
        user = await session.get_one(User, body["user_id"])
        assert (user.username, user.email_verified) == ("ada_l", False)
        platforms = (
            await session.exec(
                select(PlatformMembership).where(col(PlatformMembership.user_id) == user.id)
            )
        ).all()
        assert {(p.platform_id, p.approval_status) for p in platforms} == {
            ("galaxy", ApprovalStatus.APPROVED),
            ("bpa_data_portal", ApprovalStatus.APPROVED),
        }
        grants = (
            await session.exec(
                select(col(Auth0OutboxEntry.role_id)).where(
                    col(Auth0OutboxEntry.user_id) == user.id
                )
            )
        ).all()
        assert sorted(grants) == ["rol_bpa", "rol_galaxy"]
        group = (
            await session.exec(
                select(GroupMembership).where(col(GroupMembership.user_id) == user.id)
            )
        ).one()
        assert (group.group_id, group.approval_status, group.request_reason) == (
            "biocommons/group/tsi",
            ApprovalStatus.PENDING,
            "I study quolls",
        )
        emails = (
            await session.exec(
                select(EmailNotification).where(
                    col(EmailNotification.to_address) == "ada.lovelace@example.org"
                )
            )
        ).all()
        # The sign-up's, and the bundle request's as the old backend sent it.
        assert sorted(str(e.template) for e in emails) == [
            "group_request_confirmation",
            "registration_received",
        ]
        history = (
            await session.exec(
                select(col(UserHistory.change)).where(col(UserHistory.user_id) == user.id)
            )
        ).all()
        assert history == [UserChange.CREATED]

    async def test_failed_recaptcha(self, client: httpx.AsyncClient, emulator: EmulatorServer):
        response = await register(client, recaptcha_token="bad-token")
        assert response.status_code == 400
        # Contract: a field error the sign-up form cannot show would be kept by the portal
        # and refuse every later submit; the reason goes in `message` only.
        assert response.json()["field_errors"] == []
        assert "reCAPTCHA" in response.json()["message"]
        assert emulator.tenant.users_by_email(GOOD["email"]) == []

    @pytest.mark.parametrize(
        ("changes", "field", "fragment"),
        [
            ({"password": "short1!"}, "password", "at least 8"),
            ({"password": "alllowercase1!"}, "password", "uppercase"),
            ({"password": "NoDigits-Here"}, "password", "digit"),
            ({"password": "NoSpecial123"}, "password", "special"),
            ({"password": "A1!" + "a" * 70}, "password", "at most 72"),
            ({"username": "Ada"}, "username", "lowercase"),
            ({"username": "-ada"}, "username", "lowercase"),
            ({"username": "ad"}, "username", "at least 3"),
            ({"email": "not-an-email"}, "email", "valid email"),
            ({"first_name": ""}, "first_name", "at least 1"),
            ({"first_name": "x" * 151}, "first_name", "at most 150"),
            ({"first_name": 12}, "first_name", "valid string"),
            ({"nickname": "extra"}, "nickname", "not permitted"),
            (
                {"bundle": "tsi", "bundles": [{"bundle_id": "tsi"}]},
                "body",
                "either bundle or bundles",
            ),
        ],
    )
    async def test_invalid_fields(
        self, client: httpx.AsyncClient, changes: dict[str, object], field: str, fragment: str
    ):
        response = await register(client, **changes)
        assert response.status_code == 400, response.text
        errors = field_errors(response)
        assert fragment in errors[field], errors

    async def test_missing_fields_and_non_json(self, client: httpx.AsyncClient):
        response = await client.post("/biocommons/register", json={"email": "a@b.org"})
        assert response.status_code == 400
        assert {"first_name", "last_name", "username", "password", "recaptcha_token"} <= set(
            field_errors(response)
        )
        garbage = await client.post(
            "/biocommons/register", content=b"{nope", headers={"content-type": "application/json"}
        )
        assert garbage.status_code == 400
        assert field_errors(garbage) == {"body": "The request body must be JSON"}

    async def test_username_used_before_is_refused_without_asking_auth0(
        self, client: httpx.AsyncClient, session: AsyncSession, emulator: EmulatorServer
    ):
        # Someone held "Ada_L" and has since been renamed.
        old = User(id="auth0|old", email="old@example.org", username="Ada_L")
        session.add(old)
        await session.flush()
        old.username = "someone_else"
        await session.flush()
        before = emulator.state.requests.get("POST /api/v2/users", 0)
        response = await register(client)
        assert response.status_code == 400
        assert field_errors(response) == {"username": "Username is already taken"}
        assert emulator.state.requests.get("POST /api/v2/users", 0) == before

    async def test_auth0_conflict_names_the_field(
        self, client: httpx.AsyncClient, emulator: EmulatorServer
    ):
        emulator.tenant.create_user(
            {
                "connection": DEFAULT_CONNECTION,
                "email": "taken@example.org",
                "password": "long-enough-1",
            }
        )
        response = await register(client, email="taken@example.org")
        assert response.status_code == 400
        assert field_errors(response) == {"email": "Email is already taken"}

    async def test_a_username_longer_than_the_connection_allows_is_a_field_error(
        self, client: httpx.AsyncClient, emulator: EmulatorServer
    ):
        """Auth0's database connection allows 1 to 15 characters by default and would refuse
        a longer one: it is the username's field error, before Auth0 is asked."""
        before = emulator.state.requests.get("POST /api/v2/users", 0)
        response = await register(client, username="a-sixteen-chars-")
        assert response.status_code == 400
        assert field_errors(response) == {"username": "Username must be 3 to 15 characters long"}
        assert emulator.state.requests.get("POST /api/v2/users", 0) == before
        availability = await client.get(
            "/utils/register/check-username-availability", params={"username": "a-sixteen-chars-"}
        )
        assert availability.json()["available"] is False

    async def test_auth0_password_policy_refusal_is_a_message_not_a_field(
        self, client: httpx.AsyncClient, emulator: EmulatorServer
    ):
        """The tenant's policy is stricter than the form's rules: Auth0 answers 400
        "PasswordStrengthError: Password is too weak". A `password` field error would be kept
        by the portal's sign-up form and block every later submit (portal-contract §3)."""
        emulator.tenant.password_min_length = 40
        try:
            response = await register(client)
        finally:
            emulator.tenant.password_min_length = 8
        assert response.status_code == 400
        assert response.json()["field_errors"] == []
        assert response.json()["message"] == "PasswordStrengthError: Password is too weak"
        assert emulator.tenant.users_by_email(GOOD["email"]) == []

    async def test_database_failure_after_auth0_removes_the_auth0_user(
        self, client: httpx.AsyncClient, session: AsyncSession, emulator: EmulatorServer
    ):
        # A live local user Auth0 no longer has (deleted there, the sync not run yet).
        session.add(
            User(
                id="auth0|stale",
                email="ada.lovelace@example.org",
                username="stale",
                connection=DEFAULT_CONNECTION,
            )
        )
        await session.flush()
        response = await register(client)
        assert response.status_code == 409, response.text
        assert emulator.state.requests.get("DELETE /api/v2/users/{id}", 0) >= 1
        assert (
            emulator.tenant.users_by_email("ada.lovelace@example.org") == []
        )  # no orphan in Auth0
        assert (
            await session.exec(select(User).where(col(User.username) == "ada_l"))
        ).first() is None

    async def test_unknown_bundle(self, client: httpx.AsyncClient, session: AsyncSession):
        await add_catalog(session)
        response = await register(client, bundles=[{"bundle_id": "nope"}])
        assert response.status_code == 400
        assert response.json()["field_errors"] == []
        assert response.json()["message"] == "Unknown bundle 'nope'"

    async def test_every_catalog_group_is_a_bundle_by_its_short_id(
        self, client: httpx.AsyncClient, session: AsyncSession
    ):
        # The newest portal offers `sbp_workflow_execution`; REGISTRATION_BUNDLES does not
        # name it, and only its group in the catalog makes it a bundle.
        await add_catalog(session)
        await add_group(session, "sbp_workflow_execution", "SBP workflow execution")
        response = await register(
            client, bundles=[{"bundle_id": "sbp_workflow_execution"}, {"bundle_id": "cohort"}]
        )
        assert response.status_code == 200, response.text
        assert response.json()["groups_requested"] == [
            "biocommons/group/sbp_workflow_execution",
            "biocommons/group/cohort",
        ]
        requested = (
            await session.exec(
                select(col(GroupMembership.group_id), col(GroupMembership.approval_status)).where(
                    col(GroupMembership.user_id) == response.json()["user_id"]
                )
            )
        ).all()
        assert sorted(requested) == [
            ("biocommons/group/cohort", ApprovalStatus.PENDING),
            ("biocommons/group/sbp_workflow_execution", ApprovalStatus.PENDING),
        ]

    async def test_rate_limited_per_client(
        self, app_factory: Callable[[Settings], FastAPI], settings: Settings
    ):
        app = app_factory(settings.model_copy(update={"public_rate_limit_per_minute": 2}))
        async with LifespanManager(app) as manager:
            transport = httpx.ASGITransport(app=manager.app, client=client_address())
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                codes = [
                    (await register(client, recaptcha_token="bad")).status_code for _ in range(3)
                ]
                limited = await register(client, recaptcha_token="bad")
        assert codes[:2] == [400, 400]
        assert limited.status_code == 429
        assert int(limited.headers["retry-after"]) >= 1


class TestUtils:
    async def test_username_availability(self, client: httpx.AsyncClient, session: AsyncSession):
        session.add(User(id="auth0|u", email="u@example.org", username="Taken_Name"))
        await session.flush()
        taken = (
            await client.get(
                "/utils/register/check-username-availability", params={"username": "taken_name"}
            )
        ).json()
        assert taken == {
            "available": False,
            "field_errors": [{"field": "username", "message": "Username is already taken"}],
        }
        invalid = (
            await client.get(
                "/utils/register/check-username-availability", params={"username": "No Spaces"}
            )
        ).json()
        assert invalid["available"] is False
        free = (
            await client.get(
                "/utils/register/check-username-availability", params={"username": "free_name"}
            )
        ).json()
        assert free == {"available": True, "field_errors": []}

    async def test_email_availability(self, client: httpx.AsyncClient, session: AsyncSession):
        session.add(User(id="auth0|e", email="here@example.org", connection=DEFAULT_CONNECTION))
        # A social account's address may also be a password account's (Auth0 keeps emails
        # unique per connection): it does not make the address unavailable.
        session.add(
            User(id="google-oauth2|e", email="social@example.org", connection="google-oauth2")
        )
        await session.flush()
        assert (
            await client.get(
                "/utils/register/check-email-availability", params={"email": "HERE@example.org"}
            )
        ).json()["available"] is False
        assert (
            await client.get(
                "/utils/register/check-email-availability", params={"email": "social@example.org"}
            )
        ).json()["available"] is True
        assert (
            await client.get(
                "/utils/register/check-email-availability", params={"email": "new@example.org"}
            )
        ).json()["available"] is True
        assert (
            await client.get(
                "/utils/register/check-email-availability", params={"email": "x" * 400}
            )
        ).status_code == 422

    async def test_registration_info(self, client: httpx.AsyncClient, emulator: EmulatorServer):
        emulator.tenant.create_user(
            {
                "connection": DEFAULT_CONNECTION,
                "email": "sbp.person@example.org",
                "password": "long-enough-1",
                "app_metadata": {"registration_from": "sbp"},
            }
        )
        response = await client.get(
            "/utils/register/registration-info", params={"user_email": "sbp.person@example.org"}
        )
        assert response.json() == {"app": "sbp"}
        unknown = await client.get(
            "/utils/register/registration-info", params={"user_email": "nobody@example.org"}
        )
        assert unknown.json() == {"app": None}

    async def test_welcome_email_once_and_only_when_verified(
        self, client: httpx.AsyncClient, session: AsyncSession
    ):
        session.add_all(
            [
                User(id="auth0|v", email="verified@example.org", email_verified=True),
                User(id="auth0|n", email="unverified@example.org", email_verified=False),
            ]
        )
        await session.flush()
        answers = set()
        for email in (
            "verified@example.org",
            "verified@example.org",
            "unverified@example.org",
            "nobody@example.org",
        ):
            response = await client.post("/utils/send-welcome-email", json={"email": email})
            assert response.status_code == 200
            answers.add(response.json()["message"])
        assert len(answers) == 1  # reveals nothing about the account
        queued = (
            await session.exec(
                select(col(EmailNotification.to_address)).where(
                    col(EmailNotification.template) == "welcome"
                )
            )
        ).all()
        assert queued == ["verified@example.org"]

    async def test_welcome_for_an_address_verified_moments_ago(
        self, client: httpx.AsyncClient, session: AsyncSession, emulator: EmulatorServer
    ):
        """Portal contract, known difference 16: the portal asks right after verification,
        before the sync has seen it; the welcome went nowhere."""
        created = emulator.tenant.create_user(
            {
                "connection": DEFAULT_CONNECTION,
                "email": "just.verified@example.org",
                "password": "long-enough-1",
                "email_verified": True,
            }
        )
        session.add(
            User(id=created["user_id"], email="just.verified@example.org", email_verified=False)
        )
        await session.flush()
        response = await client.post(
            "/utils/send-welcome-email", json={"email": "Just.Verified@example.org"}
        )
        assert response.status_code == 200
        queued = (
            await session.exec(
                select(col(EmailNotification.to_address)).where(
                    col(EmailNotification.template) == "welcome"
                )
            )
        ).all()
        assert queued == ["just.verified@example.org"]
        session.expire_all()
        assert (await session.get_one(User, created["user_id"])).email_verified is True


class TestSbpRegister:
    async def test_institution_email_gets_a_pending_sbp_membership(
        self, client: httpx.AsyncClient, session: AsyncSession, emulator: EmulatorServer
    ):
        await add_catalog(session)
        session.add(
            Platform(
                id="sbp",
                name="Structural Biology Platform",
                access_role_id="rol_bpa_sbp_missing_ok",
            )
        )
        session.add(Auth0Role(id="rol_bpa_sbp_missing_ok", name="biocommons/platform/sbp"))
        await session.flush()
        response = await client.post(
            "/sbp/register",
            json={**GOOD, "email": "res.earcher@uq.edu.au", "request_reason": "crystals"},
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["platforms"] == []  # nothing granted before an SBP admin approves
        (auth0_user,) = emulator.tenant.users_by_email("res.earcher@uq.edu.au")
        assert auth0_user["app_metadata"] == {"registration_from": "sbp"}
        membership = (
            await session.exec(
                select(PlatformMembership).where(col(PlatformMembership.user_id) == body["user_id"])
            )
        ).one()
        assert (membership.platform_id, membership.approval_status, membership.request_reason) == (
            "sbp",
            ApprovalStatus.PENDING,
            "crystals",
        )

    async def test_other_email_domains_are_refused(
        self, client: httpx.AsyncClient, emulator: EmulatorServer
    ):
        response = await client.post("/sbp/register", json={**GOOD, "email": "someone@gmail.com"})
        assert response.status_code == 400
        assert field_errors(response) == {
            "email": "Use an email address of a participating institution"
        }
        assert emulator.tenant.users_by_email("someone@gmail.com") == []

    async def test_not_mounted_when_disabled(
        self, app_factory: Callable[[Settings], FastAPI], settings: Settings
    ):
        app = app_factory(settings.model_copy(update={"enable_sbp_registration": False}))
        async with LifespanManager(app) as manager:
            transport = httpx.ASGITransport(app=manager.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                assert (await client.post("/sbp/register", json=GOOD)).status_code == 404


async def test_the_password_is_kept_exactly_as_typed(
    client: httpx.AsyncClient, session: AsyncSession, emulator: EmulatorServer
):
    """Portal contract, known difference 14: every string was stripped, the password too,
    so a password with a trailing space could not be used to sign in."""
    await add_catalog(session)
    response = await register(client, password=" Analytical-Engine-1 ")
    assert response.status_code == 200, response.text
    user_id = response.json()["user_id"]
    assert emulator.tenant.passwords[user_id] == " Analytical-Engine-1 "


@pytest.mark.parametrize(
    ("email", "expected"),
    [
        ("ada@uq.edu.au", True),
        ("ada@biology.UQ.edu.au", True),
        ("ada@example.org", False),
        ("ada@notuq.edu.au", False),
    ],
)
async def test_australian_research_institution_check(
    client: httpx.AsyncClient, email: str, expected: bool
):
    """Portal contract, call 11: the profile page asks while an SBP member types a new
    address, without a token; 404 before, so the warning never showed."""
    response = await client.get(
        "/utils/register/check-australian-research-institution", params={"email": email}
    )
    assert response.status_code == 200
    assert response.json() == {"is_australian_research_institution": expected}


class TestRequestMailAtSignUp:
    """The old backend mailed these at sign-up; this one had dropped them (#20)."""

    async def admin_of(
        self, session: AsyncSession, emulator: EmulatorServer, role_name: str, link: object
    ) -> str:
        """An admin in Auth0 holding `role_name`, the role linked here by `link`."""
        role = emulator.tenant.role_by_name(role_name)
        assert role is not None
        session.add(Auth0Role(id=role["id"], name=role_name))
        await session.flush()
        session.add(link)
        await session.flush()
        admin = auth0_user(emulator.tenant, f"adm{secrets.token_hex(3)}", roles=[role_name])
        return str(emulator.tenant.get_user(admin)["email"])

    async def mail_to(self, session: AsyncSession, address: str) -> list[EmailNotification]:
        return list(
            (
                await session.exec(
                    select(EmailNotification).where(col(EmailNotification.to_address) == address)
                )
            ).all()
        )

    async def test_a_bundle_chosen_at_sign_up_is_mailed_to_the_groups_admins(
        self, client: httpx.AsyncClient, session: AsyncSession, emulator: EmulatorServer
    ):
        await add_catalog(session)
        role = emulator.tenant.role_by_name("biocommons/role/tsi/admin")
        assert role is not None
        admin = await self.admin_of(
            session,
            emulator,
            "biocommons/role/tsi/admin",
            GroupAdminRole(group_id="biocommons/group/tsi", role_id=role["id"]),
        )
        response = await register(client, bundle="tsi", request_reason="I study quolls")
        assert response.status_code == 200, response.text
        [notice] = await self.mail_to(session, admin)
        assert notice.template == "group_request_admin"
        assert "Threatened Species Initiative" in notice.subject
        assert notice.body_text is not None
        # A page the portal has (its /requests does not exist): the requester's.
        user_id = response.json()["user_id"]
        assert f"/user/{user_id.replace('|', '%7C')}" in notice.body_text

    async def test_an_sbp_sign_up_is_mailed_to_the_sbp_admins(
        self, client: httpx.AsyncClient, session: AsyncSession, emulator: EmulatorServer
    ):
        await add_catalog(session)
        session.add(Platform(id="sbp", name="Structural Biology Platform"))
        await session.flush()
        role = emulator.tenant.role_by_name("biocommons/role/sbp/admin")
        assert role is not None
        admin = await self.admin_of(
            session,
            emulator,
            "biocommons/role/sbp/admin",
            PlatformAdminRole(platform_id="sbp", role_id=role["id"]),
        )
        response = await client.post(
            "/sbp/register",
            json={**GOOD, "email": "crystal@uq.edu.au", "request_reason": "crystals"},
        )
        assert response.status_code == 200, response.text
        [notice] = await self.mail_to(session, admin)
        assert "Structural Biology Platform" in notice.subject
        assert notice.body_text is not None
        assert "crystals" in notice.body_text
