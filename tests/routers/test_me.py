import asyncio
from collections.abc import Sequence

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy.engine import URL
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from db.engine import create_engine, create_session_factory
from db.models import (
    Auth0Role,
    EmailNotification,
    GroupAdminRole,
    GroupMembership,
    GroupMembershipHistory,
    PlatformMembership,
    User,
)
from db.types import ApprovalStatus
from main import create_app
from scripts.auth0_emulator.server import EmulatorServer
from scripts.auth0_emulator.tenant import DEFAULT_CONNECTION
from services.settings import Settings
from tests.clock import FakeClock
from tests.conftest import emulator_settings, make_settings
from tests.factories import TSI, add_catalog, db_user


def bearer(emulator: EmulatorServer, user_id: str, roles: Sequence[str] = ()) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {emulator.tenant.mint_access_token(user_id, roles=list(roles))}"
    }


@pytest.fixture
async def member(session: AsyncSession) -> User:
    await add_catalog(session)
    user = await db_user(
        session, "auth0|member", username="member", given_name="Mem", name="Mem Ber"
    )
    session.add_all(
        [
            PlatformMembership(
                platform_id="galaxy", user_id=user.id, approval_status=ApprovalStatus.APPROVED
            ),
            PlatformMembership(
                platform_id="bpa_data_portal",
                user_id=user.id,
                approval_status=ApprovalStatus.REVOKED,
            ),
            GroupMembership(group_id=TSI, user_id=user.id, approval_status=ApprovalStatus.PENDING),
        ]
    )
    await session.flush()
    return user


class TestProfile:
    async def test_profile_from_the_database_without_revoked_memberships(
        self, client: httpx.AsyncClient, emulator: EmulatorServer, member: User
    ):
        before = emulator.state.requests.get("GET /api/v2/users/{id}", 0)
        response = await client.get("/me/profile", headers=bearer(emulator, member.id))
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["user_id"], body["username"], body["given_name"], body["email_verified"]) == (
            "auth0|member",
            "member",
            "Mem",
            True,
        )
        assert body["platform_memberships"] == [
            {
                "platform_id": "galaxy",
                "platform_name": "Galaxy Australia",
                "approval_status": "approved",
            }
        ]
        assert body["group_memberships"] == [
            {
                "group_id": TSI,
                "group_name": "Threatened Species Initiative",
                "group_short_name": "TSI",
                "approval_status": "pending",
            }
        ]
        assert emulator.state.requests.get("GET /api/v2/users/{id}", 0) == before  # no Auth0 call

    async def test_a_user_not_synced_yet_is_fetched_and_created(
        self, client: httpx.AsyncClient, emulator: EmulatorServer, session: AsyncSession
    ):
        created = emulator.tenant.create_user(
            {
                "connection": DEFAULT_CONNECTION,
                "email": "fresh.signup@example.org",
                "username": "freshsignup",
                "password": "long-enough-1",
            }
        )
        response = await client.get("/me/profile", headers=bearer(emulator, created["user_id"]))
        assert response.status_code == 200, response.text
        assert response.json()["email"] == "fresh.signup@example.org"
        assert (await session.get_one(User, created["user_id"])).username == "freshsignup"

    async def test_a_token_for_a_user_auth0_does_not_know_is_401(
        self, client: httpx.AsyncClient, emulator: EmulatorServer
    ):
        response = await client.get("/me/profile", headers=bearer(emulator, "auth0|ghost"))
        assert response.status_code == 401
        assert response.json()["detail"] == "this account no longer exists"


class TestMembershipLists:
    async def test_platform_lists(
        self, client: httpx.AsyncClient, emulator: EmulatorServer, member: User
    ):
        headers = bearer(emulator, member.id)
        every = (await client.get("/me/platforms", headers=headers)).json()
        assert [(p["platform_id"], p["approval_status"]) for p in every] == [
            ("bpa_data_portal", "revoked"),
            ("galaxy", "approved"),
        ]
        assert [
            p["platform_id"]
            for p in (await client.get("/me/platforms/approved", headers=headers)).json()
        ] == ["galaxy"]
        assert (await client.get("/me/platforms/pending", headers=headers)).json() == []

    async def test_group_lists_and_all_pending(
        self, client: httpx.AsyncClient, emulator: EmulatorServer, member: User
    ):
        headers = bearer(emulator, member.id)
        assert [
            g["group_id"] for g in (await client.get("/me/groups/pending", headers=headers)).json()
        ] == [TSI]
        assert (await client.get("/me/groups/approved", headers=headers)).json() == []
        pending = (await client.get("/me/all/pending", headers=headers)).json()
        assert pending == {
            "platforms": [],
            "groups": [
                {
                    "group_id": TSI,
                    "group_name": "Threatened Species Initiative",
                    "group_short_name": "TSI",
                    "approval_status": "pending",
                }
            ],
        }

    @pytest.mark.parametrize(
        ("roles", "platforms", "groups"),
        [
            ([], [], []),
            (["biocommons/role/galaxy/admin"], ["galaxy"], []),
            (["biocommons/role/tsi/admin"], [], [TSI]),
            (["Admin"], ["bpa_data_portal", "galaxy"], ["biocommons/group/cohort", TSI]),
        ],
    )
    async def test_admin_roles(
        self,
        client: httpx.AsyncClient,
        emulator: EmulatorServer,
        session: AsyncSession,
        roles: list[str],
        platforms: list[str],
        groups: list[str],
    ):
        await add_catalog(session)
        headers = bearer(emulator, "auth0|someadmin", roles)
        assert [
            p["id"] for p in (await client.get("/me/platforms/admin-roles", headers=headers)).json()
        ] == platforms
        assert [
            g["id"] for g in (await client.get("/me/groups/admin-roles", headers=headers)).json()
        ] == groups


class TestGroupRequests:
    async def history(self, session: AsyncSession, user_id: str) -> list[ApprovalStatus]:
        rows = await session.exec(
            select(col(GroupMembershipHistory.approval_status))
            .where(col(GroupMembershipHistory.user_id) == user_id)
            .order_by(col(GroupMembershipHistory.id))
        )
        return list(rows.all())

    async def test_new_request_is_pending_with_history(
        self,
        client: httpx.AsyncClient,
        emulator: EmulatorServer,
        session: AsyncSession,
        member: User,
    ):
        response = await client.post(
            "/me/groups/request",
            json={"group_id": "biocommons/group/cohort", "request_reason": "my thesis"},
            headers=bearer(emulator, member.id),
        )
        assert response.status_code == 200, response.text
        assert response.json() == [
            {
                "group_id": "biocommons/group/cohort",
                "status": "pending",
                "message": "request sent to the group's administrators",
            }
        ]
        row = (
            await session.exec(
                select(GroupMembership).where(
                    col(GroupMembership.group_id) == "biocommons/group/cohort"
                )
            )
        ).one()
        assert (row.approval_status, row.request_reason, row.updated_by_id) == (
            ApprovalStatus.PENDING,
            "my thesis",
            member.id,
        )
        assert await self.history(session, member.id) == [ApprovalStatus.PENDING]

    @pytest.mark.parametrize(
        ("status", "message"),
        [
            (ApprovalStatus.PENDING, "already waiting"),
            (ApprovalStatus.APPROVED, "already a member"),
            (ApprovalStatus.REVOKED, "contact support"),
        ],
    )
    async def test_existing_membership_is_a_conflict(
        self,
        client: httpx.AsyncClient,
        emulator: EmulatorServer,
        session: AsyncSession,
        member: User,
        status: ApprovalStatus,
        message: str,
    ):
        session.add(
            GroupMembership(
                group_id="biocommons/group/cohort", user_id=member.id, approval_status=status
            )
        )
        await session.flush()
        response = await client.post(
            "/me/groups/request",
            json={"group_id": "biocommons/group/cohort"},
            headers=bearer(emulator, member.id),
        )
        assert response.status_code == 409
        body = response.json()
        assert message in body["detail"]
        assert body["results"][0]["status"] == "conflict"

    async def test_rejected_can_ask_again(
        self,
        client: httpx.AsyncClient,
        emulator: EmulatorServer,
        session: AsyncSession,
        member: User,
    ):
        session.add(
            GroupMembership(
                group_id="biocommons/group/cohort",
                user_id=member.id,
                approval_status=ApprovalStatus.REJECTED,
                rejection_reason="incomplete",
            )
        )
        await session.flush()
        response = await client.post(
            "/me/groups/request",
            json={"group_id": "biocommons/group/cohort", "request_reason": "now complete"},
            headers=bearer(emulator, member.id),
        )
        assert response.status_code == 200
        assert response.json()[0]["message"] == "request sent again"
        row = (
            await session.exec(
                select(GroupMembership).where(
                    col(GroupMembership.group_id) == "biocommons/group/cohort"
                )
            )
        ).one()
        await session.refresh(row)
        assert (row.approval_status, row.rejection_reason, row.request_reason) == (
            ApprovalStatus.PENDING,
            None,
            "now complete",
        )
        # The confirmation is keyed on this request's history row, so asking again after
        # a rejection mails again while a retried request would not.
        history = (
            await session.exec(
                select(GroupMembershipHistory).where(
                    col(GroupMembershipHistory.user_id) == row.user_id
                )
            )
        ).one()
        mail = (
            await session.exec(
                select(EmailNotification).where(
                    col(EmailNotification.template) == "group_request_confirmation"
                )
            )
        ).one()
        assert mail.dedupe_key == f"group-request:{history.id}"

    async def test_unknown_group_is_404(
        self, client: httpx.AsyncClient, emulator: EmulatorServer, member: User
    ):
        response = await client.post(
            "/me/groups/request",
            json={"group_id": "biocommons/group/nope"},
            headers=bearer(emulator, member.id),
        )
        assert response.status_code == 404
        assert response.json()["results"] == [
            {"group_id": "biocommons/group/nope", "status": "not_found", "message": "no such group"}
        ]

    async def test_several_groups_get_one_result_each(
        self, client: httpx.AsyncClient, emulator: EmulatorServer, member: User
    ):
        response = await client.post(
            "/me/groups/request",
            json={
                "groups": [
                    {"group_id": "biocommons/group/cohort", "request_reason": "x"},
                    {"group_id": TSI},
                    {"group_id": "biocommons/group/nope"},
                ]
            },
            headers=bearer(emulator, member.id),
        )
        assert response.status_code == 200
        assert [(r["group_id"], r["status"]) for r in response.json()] == [
            ("biocommons/group/cohort", "pending"),
            (TSI, "conflict"),
            ("biocommons/group/nope", "not_found"),
        ]

    @pytest.mark.parametrize(
        "body",
        [
            {},
            {"group_id": TSI, "groups": [{"group_id": TSI}]},
            {"group_id": ""},
            {"group_id": 12},
            {"group_id": TSI, "request_reason": "x" * 256},
            {"groups": []},
            {"groups": [{"group_id": "g"}] * 21},
            {"groups": "tsi"},
            [],
        ],
    )
    async def test_bad_bodies_are_422(
        self, client: httpx.AsyncClient, emulator: EmulatorServer, member: User, body: object
    ):
        response = await client.post(
            "/me/groups/request", json=body, headers=bearer(emulator, member.id)
        )
        assert response.status_code == 422, response.text
        assert "detail" in response.json()

    async def test_requires_a_token(self, client: httpx.AsyncClient):
        assert (await client.post("/me/groups/request", json={"group_id": TSI})).status_code == 401


async def test_two_identical_requests_at_once_make_one_row(
    scratch_db: URL, emulator: EmulatorServer
):
    engine = create_engine(scratch_db, process="tests")
    try:
        async with create_session_factory(engine)() as session:
            await add_catalog(session)
            await db_user(session, "auth0|racer")
            await session.commit()
        app = create_app(make_settings(scratch_db, **emulator_settings(emulator)))
        async with LifespanManager(app) as manager:
            transport = httpx.ASGITransport(app=manager.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                headers = bearer(emulator, "auth0|racer")
                responses = await asyncio.gather(
                    *(
                        client.post("/me/groups/request", json={"group_id": TSI}, headers=headers)
                        for _ in range(2)
                    )
                )
        assert sorted(r.status_code for r in responses) == [200, 409]
        async with create_session_factory(engine)() as session:
            rows = (
                await session.exec(
                    select(func.count())
                    .select_from(GroupMembership)
                    .where(col(GroupMembership.user_id) == "auth0|racer")
                )
            ).one()
            history = (
                await session.exec(select(func.count()).select_from(GroupMembershipHistory))
            ).one()
        assert (rows, history) == (1, 1)
    finally:
        await engine.dispose()


async def link_admin_role(session: AsyncSession, emulator: EmulatorServer) -> str:
    role = emulator.tenant.role_by_name(
        "biocommons/role/cohort/admin"
    ) or emulator.tenant.create_role("biocommons/role/cohort/admin", "Cohort admins")
    session.add(Auth0Role(id=role["id"], name=role["name"]))
    await session.flush()
    session.add(GroupAdminRole(group_id="biocommons/group/cohort", role_id=role["id"]))
    await session.flush()
    return str(role["id"])


def add_cohort_admin(emulator: EmulatorServer, role_id: str) -> None:
    admin = emulator.tenant.create_user(
        {
            "connection": DEFAULT_CONNECTION,
            "email": "cohort.admin@example.org",
            "password": "long-enough-1",
        }
    )
    emulator.tenant.assign_roles(admin["user_id"], [role_id])


class TestGroupRequestEmails:
    async def test_requester_and_group_admins_are_emailed(
        self,
        client: httpx.AsyncClient,
        emulator: EmulatorServer,
        session: AsyncSession,
        member: User,
    ):
        add_cohort_admin(emulator, await link_admin_role(session, emulator))
        response = await client.post(
            "/me/groups/request",
            json={"group_id": "biocommons/group/cohort"},
            headers=bearer(emulator, member.id),
        )
        assert response.status_code == 200
        mails = (
            await session.exec(
                select(col(EmailNotification.to_address), col(EmailNotification.template))
            )
        ).all()
        assert sorted(mails) == [
            ("cohort.admin@example.org", "group_request_admin"),
            ("member@example.org", "group_request_confirmation"),
        ]

    async def test_auth0_outage_does_not_lose_the_request(
        self,
        client: httpx.AsyncClient,
        emulator: EmulatorServer,
        session: AsyncSession,
        member: User,
    ):
        await link_admin_role(session, emulator)
        emulator.state.faults.down = True
        response = await client.post(
            "/me/groups/request",
            json={"group_id": "biocommons/group/cohort"},
            headers=bearer(emulator, member.id),
        )
        assert response.status_code == 200
        requested = (
            await session.exec(
                select(GroupMembership).where(
                    col(GroupMembership.group_id) == "biocommons/group/cohort"
                )
            )
        ).one()
        assert requested.approval_status is ApprovalStatus.PENDING
        templates = (await session.exec(select(col(EmailNotification.template)))).all()
        assert templates == ["group_request_confirmation"]


class TestGroupAdminsLookup:
    CACHE_S = 30

    @pytest.fixture
    def settings(self, pg_url: URL, emulator: EmulatorServer) -> Settings:
        return make_settings(
            pg_url, **emulator_settings(emulator), group_admins_cache_s=self.CACHE_S
        )

    @pytest.fixture
    def clock(self) -> FakeClock:
        return FakeClock()

    async def test_admins_are_read_once_per_period_and_still_notified_while_auth0_is_down(
        self,
        client: httpx.AsyncClient,
        emulator: EmulatorServer,
        session: AsyncSession,
        member: User,
        clock: FakeClock,
    ):
        add_cohort_admin(emulator, await link_admin_role(session, emulator))
        requesters = [member] + [await db_user(session, f"auth0|asker{i}") for i in (1, 2)]
        lookups = "GET /api/v2/roles/{id}/users"

        async def request(user: User) -> None:
            response = await client.post(
                "/me/groups/request",
                json={"group_id": "biocommons/group/cohort"},
                headers=bearer(emulator, user.id),
            )
            assert response.status_code == 200, response.text

        before = emulator.state.requests.get(lookups, 0)
        await request(requesters[0])
        await request(requesters[1])
        assert emulator.state.requests.get(lookups, 0) - before == 1
        clock.advance(self.CACHE_S + 1)
        emulator.state.faults.down = True
        await request(requesters[2])

        notices = (
            await session.exec(
                select(col(EmailNotification.to_address)).where(
                    col(EmailNotification.template) == "group_request_admin"
                )
            )
        ).all()
        assert notices == ["cohort.admin@example.org"] * 3
