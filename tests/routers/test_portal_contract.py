"""The portal's calls, as ../shared/reference/portal-contract.md documents them: per call, the
fields the portal reads (with their types) and the statuses and error fields it branches on.
A renamed or dropped field fails here. Calls only one portal version makes are marked
[5f1] (the portal that ran beside the old backend) or [b95] (the newest)."""

import secrets
from datetime import datetime
from typing import Any

import httpx
import pytest
from sqlmodel.ext.asyncio.session import AsyncSession

from db.models import Group, Platform, PlatformMembership, User
from db.types import ApprovalStatus
from scripts.auth0_emulator.server import EmulatorServer
from scripts.auth0_emulator.tenant import DEFAULT_CONNECTION
from tests.factories import portal_user
from tests.routers.admin_world import TSI, World, admin, membership

STATUSES = {"approved", "pending", "revoked", "rejected"}


class Optional:
    """A field the portal reads when present (`x?` in the contract): absent or None is fine."""

    def __init__(self, shape: object) -> None:
        self.shape = shape


def date_time(value: object) -> bool:
    return isinstance(value, str) and bool(datetime.fromisoformat(value))


def conforms(value: Any, shape: object, where: str = "body") -> None:
    """`shape`: a type, a tuple of types, a dict of field → shape, a one-item list (every
    element), a set (one of its values), a predicate, or Optional(shape)."""
    if isinstance(shape, Optional):
        if value is not None:
            conforms(value, shape.shape, where)
    elif isinstance(shape, dict):
        assert isinstance(value, dict), f"{where}: {value!r} is not an object"
        for name, inner in shape.items():
            if isinstance(inner, Optional) and name not in value:
                continue
            assert name in value, f"{where}: the portal reads `{name}`, which is missing"
            conforms(value[name], inner, f"{where}.{name}")
    elif isinstance(shape, list):
        assert isinstance(value, list), f"{where}: {value!r} is not a list"
        for index, item in enumerate(value):
            conforms(item, shape[0], f"{where}[{index}]")
    elif isinstance(shape, set):
        assert value in shape, f"{where}: {value!r} is not one of {sorted(shape)}"
    elif callable(shape) and not isinstance(shape, type | tuple):
        assert shape(value), f"{where}: {value!r} is not what the portal expects"
    else:
        assert isinstance(shape, type | tuple)
        assert isinstance(value, shape), f"{where}: {value!r} is not {shape}"
        # bool is an int to isinstance: a count must not be a boolean.
        assert not (isinstance(value, bool) and shape is int), f"{where}: {value!r} is a bool"


def form_error(response: httpx.Response, field: str) -> None:
    """The portal applies `field_errors` only with `message` beside them (contract §3)."""
    body = response.json()
    assert isinstance(body.get("message"), str)
    assert field in {error["field"] for error in body["field_errors"]}


PROFILE = {
    "name": Optional(str),
    "given_name": Optional(str),
    "family_name": Optional(str),
    "username": Optional(str),
    "email": Optional(str),
    "email_verified": bool,
    "picture": Optional(str),
    "show_welcome_message": Optional(bool),
    "platform_memberships": [
        {"platform_id": str, "platform_name": str, "approval_status": STATUSES}
    ],
    "group_memberships": [{"group_id": str, "group_name": str, "approval_status": STATUSES}],
}
LIST_PLATFORM = {
    "id": str,
    "platform_id": str,
    "platform_name": str,
    "approval_status": STATUSES,
    "revocation_reason": Optional(str),
    "updated_by": str,
    "updated_at": date_time,
    "request_reason": Optional(str),
}
LIST_GROUP = {
    "id": str,
    "group_id": str,
    "group_short_name": str,
    "approval_status": STATUSES,
    "revocation_reason": Optional(str),
    "rejection_reason": Optional(str),
    "updated_by": str,
    "updated_at": date_time,
    "request_reason": Optional(str),
    "requested_at": Optional(date_time),  # [b95]
}
LIST_USER = {
    "id": str,
    "email": Optional(str),
    "email_verified": bool,
    "created_at": date_time,  # [b95]
    "platform_memberships": [LIST_PLATFORM],
    "group_memberships": [LIST_GROUP],
}
DETAILS = {
    "user_id": str,  # every action URL on the page is built from it
    "name": Optional(str),
    "username": Optional(str),
    "email": Optional(str),
    "email_verified": bool,
    "picture": Optional(str),
    "created_at": date_time,
    "last_login": Optional(date_time),
    "updated_at": date_time,
    "platform_memberships": [LIST_PLATFORM],
    "group_memberships": [LIST_GROUP],
}


def user_headers(emulator: EmulatorServer, user_id: str) -> dict[str, str]:
    token = emulator.tenant.mint_access_token(user_id, roles=[])
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def subject(
    client: httpx.AsyncClient, session: AsyncSession, emulator: EmulatorServer, world: World
) -> dict[str, str]:
    """The world's subject, as the portal's signed-in user: galaxy approved, TSI pending."""
    await membership(session, world, "platform", "galaxy", ApprovalStatus.APPROVED)
    await membership(session, world, "group", TSI, ApprovalStatus.PENDING)
    return user_headers(emulator, world.subject)


class TestSignedInUser:
    async def test_1_is_general_admin_is_a_bare_boolean(
        self, client: httpx.AsyncClient, emulator: EmulatorServer, subject: dict[str, str]
    ):
        assert (await client.get("/me/is-general-admin", headers=subject)).json() is False
        general = admin(emulator, "Admin")
        assert (await client.get("/me/is-general-admin", headers=general)).json() is True

    async def test_2_and_3_admin_roles(
        self, client: httpx.AsyncClient, emulator: EmulatorServer, world: World
    ):
        headers = admin(emulator, "biocommons/role/galaxy/admin", "biocommons/role/tsi/admin")
        platforms = (await client.get("/me/platforms/admin-roles", headers=headers)).json()
        conforms(platforms, [{"id": {"galaxy", "bpa_data_portal", "sbp"}, "name": str}])
        assert [p["id"] for p in platforms] == ["galaxy"]
        groups = (await client.get("/me/groups/admin-roles", headers=headers)).json()
        conforms(groups, [{"id": str, "name": str, "short_name": str}])
        assert [g["id"] for g in groups] == [TSI]  # the full group id

    async def test_4_profile(self, client: httpx.AsyncClient, subject: dict[str, str]):
        body = (await client.get("/me/profile", headers=subject)).json()
        conforms(body, PROFILE)
        assert {m["platform_id"] for m in body["platform_memberships"]} == {"galaxy"}

    async def test_5_name_update_and_its_error_detail(
        self, client: httpx.AsyncClient, subject: dict[str, str]
    ):
        done = await client.post(
            "/me/profile/name/update",
            json={"first_name": "Ada", "last_name": "King"},
            headers=subject,
        )
        assert done.is_success
        refused = await client.post(
            "/me/profile/name/update", json={"first_name": "", "last_name": "K"}, headers=subject
        )
        assert refused.status_code == 400
        assert isinstance(refused.json()["detail"], str)

    async def test_6_username_update_and_its_field_error(
        self,
        client: httpx.AsyncClient,
        session: AsyncSession,
        emulator: EmulatorServer,
        subject: dict[str, str],
    ):
        name = f"u{secrets.token_hex(4)}"
        assert (
            await client.post(
                "/me/profile/username/update", json={"username": name}, headers=subject
            )
        ).is_success
        session.add(User(id=f"auth0|{secrets.token_hex(4)}", email=None, username="held_name"))
        await session.flush()
        taken = await client.post(
            "/me/profile/username/update", json={"username": "held_name"}, headers=subject
        )
        assert taken.status_code == 400
        form_error(taken, "username")

    async def test_7_and_8_email_code_and_its_errors(
        self, client: httpx.AsyncClient, subject: dict[str, str]
    ):
        sent = await client.post(
            "/me/profile/email/update", json={"email": "new.place@example.org"}, headers=subject
        )
        assert sent.is_success
        conforms(sent.json(), {"message": str})  # shown as the modal's notice
        bad = await client.post(
            "/me/profile/email/update", json={"email": "not-an-address"}, headers=subject
        )
        assert bad.status_code == 400
        form_error(bad, "email")
        wrong = await client.post(
            "/me/profile/email/continue", json={"otp": "000000"}, headers=subject
        )
        assert wrong.status_code == 400
        assert isinstance(wrong.json()["detail"], str)  # shown under the code input

    async def test_9_wrong_current_password_keeps_the_modal_open(
        self, client: httpx.AsyncClient, emulator: EmulatorServer
    ):
        created = emulator.tenant.create_user(
            {
                "connection": DEFAULT_CONNECTION,
                "email": f"pw.{secrets.token_hex(3)}@example.org",
                "password": "Right-password-1",
            }
        )
        headers = user_headers(emulator, created["user_id"])
        wrong = await client.post(
            "/me/profile/password/update",
            json={"current_password": "nope", "new_password": "New-password-2"},
            headers=headers,
        )
        assert wrong.status_code == 400
        form_error(wrong, "currentPassword")

    async def test_10_delete(self, client: httpx.AsyncClient, subject: dict[str, str]):
        assert (await client.post("/me/profile/delete", json={}, headers=subject)).is_success

    async def test_11_australian_research_institution_b95(self, client: httpx.AsyncClient):
        response = await client.get(
            "/utils/register/check-australian-research-institution",
            params={"email": "someone@uq.edu.au"},
        )
        conforms(response.json(), {"is_australian_research_institution": bool})

    async def test_12_groups(self, client: httpx.AsyncClient, subject: dict[str, str]):
        body = (await client.get("/me/groups", headers=subject)).json()
        conforms(body, [{"group_id": str, "approval_status": STATUSES}])
        assert [(g["group_id"], g["approval_status"]) for g in body] == [(TSI, "pending")]

    async def test_13_group_request_in_both_bodies(
        self, client: httpx.AsyncClient, session: AsyncSession, emulator: EmulatorServer, world
    ):
        session.add(Group(id="biocommons/group/extra", name="Extra", short_name="EX"))
        await session.flush()
        headers = user_headers(emulator, world.subject)
        b95 = await client.post(
            "/me/groups/request",
            json={"groups": [{"group_id": TSI, "request_reason": "koalas"}]},
            headers=headers,
        )
        assert b95.is_success, b95.text
        f5 = await client.post(
            "/me/groups/request",
            json={"group_id": "biocommons/group/extra", "request_reason": "more"},
            headers=headers,
        )
        assert f5.is_success, f5.text


class TestAdminPages:
    @pytest.fixture
    def general(self, emulator: EmulatorServer) -> dict[str, str]:
        return admin(emulator, "Admin")

    async def test_14_and_15_the_list_and_its_pages(
        self,
        client: httpx.AsyncClient,
        session: AsyncSession,
        world: World,
        general: dict[str, str],
    ):
        await membership(session, world, "platform", "galaxy", ApprovalStatus.REVOKED)
        await membership(session, world, "group", TSI, ApprovalStatus.PENDING)
        params = {"page": 1, "per_page": 50}
        rows = (await client.get("/admin/users", params=params, headers=general)).json()
        conforms(rows, [LIST_USER])
        assert world.subject in {row["id"] for row in rows}
        pages = (await client.get("/admin/users/pages", params=params, headers=general)).json()
        conforms(pages, {"total": int, "pages": int})
        for extra in (
            {"approval_status": "pending"},
            {"approval_status": "revoked"},
            {"platform": "galaxy", "platform_approval_status": "revoked"},
            {"email_verified": "false"},
            {"search": "subject"},
        ):
            page = await client.get("/admin/users", params={**params, **extra}, headers=general)
            assert page.status_code == 200, (extra, page.text)
            conforms(page.json(), [LIST_USER])

    async def test_14_and_18_a_pending_request_carries_when_it_was_made_b95(
        self,
        client: httpx.AsyncClient,
        emulator: EmulatorServer,
        world: World,
        general: dict[str, str],
    ):
        """The [b95] pending tooltip reads `requested_at` (contract item 20)."""
        asked = await client.post(
            "/me/groups/request",
            json={"groups": [{"group_id": TSI, "request_reason": "koalas"}]},
            headers=user_headers(emulator, world.subject),
        )
        assert asked.is_success, asked.text
        details = (
            await client.get(f"/admin/users/{world.subject}/details", headers=general)
        ).json()
        [group] = details["group_memberships"]
        assert group["approval_status"] == "pending"
        assert date_time(group["requested_at"])
        rows = (
            await client.get(
                "/admin/users",
                params={"page": 1, "per_page": 50, "approval_status": "pending"},
                headers=general,
            )
        ).json()
        [row] = [r for r in rows if r["id"] == world.subject]
        assert row["group_memberships"][0]["requested_at"] == group["requested_at"]

    async def test_16_and_17_filters_and_counts(
        self, client: httpx.AsyncClient, world: World, general: dict[str, str]
    ):
        filters = (await client.get("/admin/filters", headers=general)).json()
        conforms(filters, [{"id": str, "name": str}])
        chosen = filters[0]["id"]
        filtered = await client.get(
            "/admin/users", params={"page": 1, "per_page": 50, "filter_by": chosen}, headers=general
        )
        assert filtered.status_code == 200
        counts = (await client.get("/admin/users/counts", headers=general)).json()
        conforms(counts, {"pending": int, "revoked": int, "unverified": int})

    async def test_18_details(
        self,
        client: httpx.AsyncClient,
        session: AsyncSession,
        world: World,
        general: dict[str, str],
    ):
        await membership(session, world, "group", TSI, ApprovalStatus.REJECTED)
        session.add(
            PlatformMembership(
                platform_id="galaxy",
                user_id=world.subject,
                approval_status=ApprovalStatus.REVOKED,
                revocation_reason="left the project",
            )
        )
        await session.flush()
        body = (await client.get(f"/admin/users/{world.subject}/details", headers=general)).json()
        conforms(body, DETAILS)
        assert body["user_id"] == world.subject
        # The pipe may come raw or as %7C (contract §1).
        encoded = world.subject.replace("|", "%7C")
        again = await client.get(f"/admin/users/{encoded}/details", headers=general)
        assert again.json()["user_id"] == world.subject

    @pytest.mark.parametrize(
        ("kind", "target", "start", "action", "body"),
        [
            ("platform", "galaxy", ApprovalStatus.PENDING, "approve", {}),  # 19
            ("platform", "galaxy", ApprovalStatus.APPROVED, "revoke", {"reason": "left"}),  # 20
            ("group", TSI, ApprovalStatus.PENDING, "approve", {}),  # 21
            ("group", TSI, ApprovalStatus.PENDING, "reject", {"reason": "no"}),  # 22
            ("group", TSI, ApprovalStatus.REJECTED, "unreject", {}),  # 23
            ("group", TSI, ApprovalStatus.APPROVED, "revoke", {"reason": "left"}),  # 24
        ],
    )
    async def test_19_to_24_decisions_are_2xx_at_the_path_the_page_builds(
        self,
        client: httpx.AsyncClient,
        session: AsyncSession,
        emulator: EmulatorServer,
        world: World,
        general: dict[str, str],
        kind: str,
        target: str,
        start: ApprovalStatus,
        action: str,
        body: dict[str, str],
    ):
        await membership(session, world, kind, target, start)
        if start is ApprovalStatus.APPROVED:
            role = "biocommons/platform/galaxy" if kind == "platform" else TSI
            emulator.tenant.assign_roles(world.subject, [emulator.tenant.role_id(role)])
        details = await client.get(f"/admin/users/{world.subject}/details", headers=general)
        uid = details.json()["user_id"]  # as the page does
        response = await client.post(
            f"/admin/users/{uid}/{kind}s/{target}/{action}", json=body, headers=general
        )
        assert response.is_success, response.text

    async def test_25_to_30_account_actions(
        self,
        client: httpx.AsyncClient,
        session: AsyncSession,
        emulator: EmulatorServer,
        world: World,
        general: dict[str, str],
    ):
        base = f"/admin/users/{world.subject}"
        resend = await client.post(f"{base}/verification-email/resend", json={}, headers=general)
        assert resend.is_success, resend.text  # 25
        name = f"n{secrets.token_hex(4)}"
        renamed = await client.post(
            f"{base}/username/update", json={"username": name}, headers=general
        )
        assert renamed.is_success, renamed.text  # 26
        bad = await client.post(f"{base}/username/update", json={"username": "X"}, headers=general)
        assert bad.status_code == 400
        form_error(bad, "username")
        moved = await client.post(
            f"{base}/email/update",
            json={"email": f"moved.{secrets.token_hex(3)}@example.org"},
            headers=general,
        )
        assert moved.is_success, moved.text  # 27
        conforms(moved.json(), {"message": str})  # the success alert's text
        reset = await client.post(f"{base}/password-reset-email", json={}, headers=general)
        assert reset.is_success, reset.text  # 28
        other = await portal_user(session, emulator, name=f"typo{secrets.token_hex(3)}")
        inform = await client.post(
            f"/admin/users/{other.id}/delete_invalid_email",
            json={"correct_email": f"fixed.{secrets.token_hex(3)}@example.org"},
            headers=general,
        )
        assert inform.is_success, inform.text  # 30 [b95]
        deleted = await client.post(f"{base}/delete", json={"reason": "asked"}, headers=general)
        assert deleted.is_success, deleted.text  # 29


class TestPublicCalls:
    async def test_31_register_in_both_bodies(self, client: httpx.AsyncClient, world: World):
        def person(tag: str) -> dict[str, str]:
            return {
                "first_name": "Ada",
                "last_name": "Lovelace",
                "email": f"{tag}.{secrets.token_hex(3)}@example.org",
                "username": f"{tag}{secrets.token_hex(3)}",
                "password": "Analytical-Engine-1",
                "recaptcha_token": "ok",
            }

        b95 = await client.post(
            "/biocommons/register",
            json={**person("b"), "bundles": [{"bundle_id": "tsi", "reason": "quolls"}]},
        )
        assert b95.is_success, b95.text
        assert b95.json() is not None
        f5 = await client.post(
            "/biocommons/register",
            json={**person("f"), "bundle": "tsi", "request_reason": "quolls"},
        )
        assert f5.is_success, f5.text
        taken = await client.post("/biocommons/register", json={**person("f"), "username": "X"})
        assert taken.status_code == 400
        form_error(taken, "username")

    async def test_34_send_welcome_email_answers_2xx_whoever_asks(self, client: httpx.AsyncClient):
        response = await client.post(
            "/utils/send-welcome-email", json={"email": "nobody@example.org"}
        )
        assert response.is_success

    async def test_35_sbp_register_without_a_recaptcha_token_5f1(
        self, client: httpx.AsyncClient, session: AsyncSession, world: World
    ):
        """The [5f1] SBP page sends no reCAPTCHA token (non-production builds only)."""
        session.add(Platform(id="sbp", name="Structural Biology Platform"))
        await session.flush()
        response = await client.post(
            "/sbp/register",
            json={
                "first_name": "Ros",
                "last_name": "Franklin",
                "email": f"ros.{secrets.token_hex(3)}@uq.edu.au",
                "username": f"ros{secrets.token_hex(3)}",
                "request_reason": "crystals",
                "password": "Photo-fifty-1",
            },
        )
        assert response.is_success, response.text
