"""Admins deciding on memberships: state machine, permissions, and Auth0 kept in step."""

import secrets
from dataclasses import dataclass

import pytest
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from db.models import (
    Auth0OutboxEntry,
    Auth0Role,
    EmailNotification,
    Group,
    GroupMembership,
    Platform,
    PlatformMembership,
    PlatformMembershipHistory,
    User,
)
from db.types import ApprovalStatus, OutboxStatus
from scripts.auth0_emulator.server import EmulatorServer
from scripts.auth0_emulator.tenant import DEFAULT_CONNECTION
from services.settings import Settings
from services.sync.outbox import deliver_outbox
from services.sync.runs import JobContext
from tests.conftest import savepoint_sessions
from tests.services.sync.conftest import make_gateway

GALAXY, BPA = "biocommons/platform/galaxy", "biocommons/platform/bpa_data_portal"
TSI, COHORT = "biocommons/group/tsi", "biocommons/group/cohort"


@dataclass
class World:
    subject: str  # the user the admins decide about (in Auth0 and here)
    roles: dict[str, str]  # role name → Auth0 role id


@pytest.fixture
async def world(session: AsyncSession, emulator: EmulatorServer) -> World:
    tenant = emulator.tenant
    if tenant.role_by_name(COHORT) is None:
        tenant.create_role(COHORT, "Cohort Study")
    roles = {name: tenant.role_by_name(name)["id"] for name in (GALAXY, BPA, TSI, COHORT)}  # type: ignore[index]
    session.add_all([Auth0Role(id=role_id, name=name) for name, role_id in roles.items()])
    await session.flush()
    session.add_all(
        [
            Platform(id="galaxy", name="Galaxy Australia", access_role_id=roles[GALAXY]),
            Platform(id="bpa_data_portal", name="BPA Data Portal", access_role_id=roles[BPA]),
            Group(
                id=TSI,
                name="Threatened Species Initiative",
                short_name="TSI",
                access_role_id=roles[TSI],
            ),
            Group(id=COHORT, name="Cohort Study", short_name="CS", access_role_id=roles[COHORT]),
        ]
    )
    created = tenant.create_user(
        {
            "connection": DEFAULT_CONNECTION,
            "email": f"subject.{secrets.token_hex(3)}@example.org",
            "password": "long-enough-1",
        }
    )
    session.add(User(id=created["user_id"], email=created["email"]))
    await session.flush()
    return World(subject=created["user_id"], roles=roles)


async def membership(
    session: AsyncSession, world: World, kind: str, target: str, status: ApprovalStatus
) -> None:
    if kind == "platform":
        session.add(
            PlatformMembership(platform_id=target, user_id=world.subject, approval_status=status)
        )
    else:
        session.add(GroupMembership(group_id=target, user_id=world.subject, approval_status=status))
    await session.flush()


def admin(emulator: EmulatorServer, *roles: str) -> dict[str, str]:
    """A token for a real Auth0 user holding `roles` (its DB row is created on first use)."""
    user = emulator.tenant.create_user(
        {
            "connection": DEFAULT_CONNECTION,
            "email": f"admin.{secrets.token_hex(3)}@example.org",
            "password": "long-enough-1",
        }
    )
    token = emulator.tenant.mint_access_token(user["user_id"], roles=list(roles))
    return {"Authorization": f"Bearer {token}"}


def url(world: World, kind: str, target: str, action: str) -> str:
    return f"/admin/users/{world.subject}/{kind}s/{target}/{action}"


class TestPlatformDecisions:
    async def test_approve_grants_the_role_records_and_emails(
        self, client, session, emulator, world
    ):
        await membership(session, world, "platform", "galaxy", ApprovalStatus.PENDING)
        response = await client.post(
            url(world, "platform", "galaxy", "approve"),
            headers=admin(emulator, "biocommons/role/galaxy/admin"),
        )
        assert response.status_code == 200, response.text
        assert response.json() == {
            "status": "ok",
            "updated": True,
            "approval_status": "approved",
            "auth0": "done",
        }
        assert emulator.tenant.role_names_of(world.subject) == [GALAXY]
        entry = (
            await session.exec(
                select(Auth0OutboxEntry).where(Auth0OutboxEntry.user_id == world.subject)
            )
        ).one()
        assert entry.status is OutboxStatus.DONE
        history = (
            await session.exec(
                select(PlatformMembershipHistory).where(
                    PlatformMembershipHistory.user_id == world.subject
                )
            )
        ).all()
        assert [h.approval_status for h in history] == [ApprovalStatus.APPROVED]
        assert history[0].updated_by_id is not None
        emails = (
            await session.exec(
                select(EmailNotification.template).where(
                    EmailNotification.to_address.like("subject.%")
                )
            )
        ).all()
        assert emails == ["membership_approved"]

    async def test_a_retried_approve_changes_nothing_twice(self, client, session, emulator, world):
        await membership(session, world, "platform", "galaxy", ApprovalStatus.PENDING)
        headers = admin(emulator, "Admin")
        await client.post(url(world, "platform", "galaxy", "approve"), headers=headers)
        again = await client.post(url(world, "platform", "galaxy", "approve"), headers=headers)
        assert again.status_code == 200
        assert again.json()["updated"] is False
        assert len((await session.exec(select(Auth0OutboxEntry))).all()) == 1
        assert len((await session.exec(select(EmailNotification))).all()) == 1

    async def test_revoke_removes_the_role_with_a_reason(self, client, session, emulator, world):
        await membership(session, world, "platform", "galaxy", ApprovalStatus.APPROVED)
        emulator.tenant.assign_roles(world.subject, [world.roles[GALAXY]])
        response = await client.post(
            url(world, "platform", "galaxy", "revoke"),
            json={"reason": "left the lab"},
            headers=admin(emulator, "Admin"),
        )
        assert response.json()["auth0"] == "done"
        assert emulator.tenant.role_names_of(world.subject) == []
        row = (await session.exec(select(PlatformMembership))).one()
        assert (row.approval_status, row.revocation_reason) == (
            ApprovalStatus.REVOKED,
            "left the lab",
        )

    async def test_revoking_a_pending_request_needs_no_auth0_change(
        self, client, session, emulator, world
    ):
        await membership(session, world, "platform", "galaxy", ApprovalStatus.PENDING)
        response = await client.post(
            url(world, "platform", "galaxy", "revoke"), headers=admin(emulator, "Admin")
        )
        assert response.json()["auth0"] == "not_needed"

    async def test_platforms_cannot_be_rejected(self, client, session, emulator, world):
        await membership(session, world, "platform", "galaxy", ApprovalStatus.PENDING)
        assert (
            await client.post(
                url(world, "platform", "galaxy", "reject"),
                json={"reason": "x"},
                headers=admin(emulator, "Admin"),
            )
        ).status_code == 404


class TestGroupDecisions:
    async def test_reject_needs_a_reason_and_unreject_reopens(
        self, client, session, emulator, world
    ):
        await membership(session, world, "group", TSI, ApprovalStatus.PENDING)
        headers = admin(emulator, "biocommons/role/tsi/admin")
        assert (
            await client.post(url(world, "group", TSI, "reject"), headers=headers)
        ).status_code == 422
        assert (
            await client.post(
                url(world, "group", TSI, "reject"), json={"reason": ""}, headers=headers
            )
        ).status_code == 422
        assert (
            await client.post(
                url(world, "group", TSI, "reject"), json={"reason": "x" * 256}, headers=headers
            )
        ).status_code == 422
        rejected = await client.post(
            url(world, "group", TSI, "reject"),
            json={"reason": "not a member institution"},
            headers=headers,
        )
        assert rejected.json() == {
            "status": "ok",
            "updated": True,
            "approval_status": "rejected",
            "auth0": "not_needed",
        }
        row = (await session.exec(select(GroupMembership))).one()
        assert row.rejection_reason == "not a member institution"
        reopened = await client.post(url(world, "group", TSI, "unreject"), headers=headers)
        assert reopened.json()["approval_status"] == "pending"

    @pytest.mark.parametrize(
        ("start", "action", "body"),
        [
            (ApprovalStatus.APPROVED, "reject", {"reason": "x"}),
            (ApprovalStatus.PENDING, "unreject", None),
            (ApprovalStatus.REJECTED, "approve", None),
            (ApprovalStatus.REJECTED, "revoke", None),
            (ApprovalStatus.REVOKED, "reject", {"reason": "x"}),
        ],
    )
    async def test_illegal_transitions_are_409_with_the_current_state(
        self, client, session, emulator, world, start, action, body
    ):
        await membership(session, world, "group", TSI, start)
        response = await client.post(
            url(world, "group", TSI, action), json=body, headers=admin(emulator, "Admin")
        )
        assert response.status_code == 409, response.text
        assert response.json()["current_status"] == start.value

    async def test_approve_from_revoked_grants_again(self, client, session, emulator, world):
        await membership(session, world, "group", TSI, ApprovalStatus.REVOKED)
        response = await client.post(
            url(world, "group", TSI, "approve"), headers=admin(emulator, "Admin")
        )
        assert response.json()["auth0"] == "done"
        assert emulator.tenant.role_names_of(world.subject) == [TSI]


class TestAuth0Down:
    async def test_the_outbox_completes_the_grant_later(
        self, client, session, emulator, world, settings: Settings, pg_engine
    ):
        await membership(session, world, "group", TSI, ApprovalStatus.PENDING)
        headers = admin(emulator, "Admin")
        assert (
            await client.get("/me/profile", headers=headers)
        ).status_code == 200  # the admin is known here
        emulator.state.faults.down = True
        response = await client.post(url(world, "group", TSI, "approve"), headers=headers)
        assert response.status_code == 202, response.text
        assert response.json()["auth0"] == "pending"
        assert emulator.tenant.role_names_of(world.subject) == []
        entry = (await session.exec(select(Auth0OutboxEntry))).one()
        assert (entry.status, entry.attempts) == (OutboxStatus.PENDING, 1)
        # Auth0 comes back; the scheduler's outbox job delivers it.
        emulator.state.faults.down = False
        entry.next_attempt_at = None
        await session.flush()
        connection = await session.connection()
        sessions = savepoint_sessions(connection)
        gateway = make_gateway(emulator)
        try:
            await deliver_outbox(JobContext(settings, pg_engine, sessions, gateway))
        finally:
            await gateway.aclose()
        assert emulator.tenant.role_names_of(world.subject) == [TSI]
        await session.refresh(entry)
        assert entry.status is OutboxStatus.DONE
        row = (await session.exec(select(GroupMembership))).one()
        assert row.approval_status is ApprovalStatus.APPROVED


class TestPermissions:
    @pytest.mark.parametrize(
        ("roles", "kind", "target", "expected"),
        [
            (["Admin"], "platform", "galaxy", 200),
            (["Admin"], "group", COHORT, 200),
            (["biocommons/role/galaxy/admin"], "platform", "galaxy", 200),
            (["biocommons/role/galaxy/admin"], "platform", "bpa_data_portal", 403),
            (["biocommons/role/galaxy/admin"], "group", TSI, 403),
            (["biocommons/role/tsi/admin"], "group", TSI, 200),
            (["biocommons/role/tsi/admin"], "group", COHORT, 403),
            (["biocommons/role/tsi/admin"], "platform", "galaxy", 403),
            (["biocommons/platform/galaxy"], "platform", "galaxy", 403),
            ([], "group", TSI, 403),
        ],
    )
    async def test_matrix(self, client, session, emulator, world, roles, kind, target, expected):
        await membership(session, world, kind, target, ApprovalStatus.PENDING)
        response = await client.post(
            url(world, kind, target, "approve"), headers=admin(emulator, *roles)
        )
        assert response.status_code == expected, response.text

    async def test_without_a_token(self, client, world):
        assert (await client.post(url(world, "platform", "galaxy", "approve"))).status_code == 401

    @pytest.mark.parametrize(
        ("path", "detail"),
        [
            ("/admin/users/{subject}/platforms/nope/approve", "no platform"),
            ("/admin/users/auth0|nobody/platforms/galaxy/approve", "no user"),
            ("/admin/users/{subject}/platforms/galaxy/approve", "no membership"),
            ("/admin/users/{subject}/groups/biocommons/group/nope/approve", "no group"),
        ],
    )
    async def test_unknown_things_are_404(self, client, emulator, world, path, detail):
        response = await client.post(
            path.format(subject=world.subject), headers=admin(emulator, "Admin")
        )
        assert response.status_code == 404
        assert detail in response.json()["detail"]
