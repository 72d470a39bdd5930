"""Admins deciding on memberships: state machine, permissions, and Auth0 kept in step."""

import pytest
from sqlalchemy.engine import URL
from sqlmodel import col, select

from db.models import (
    Auth0OutboxEntry,
    EmailNotification,
    GroupMembership,
    PlatformMembership,
    PlatformMembershipHistory,
)
from db.types import ApprovalStatus, OutboxStatus
from scripts.auth0_emulator.server import EmulatorServer
from services.settings import Settings
from services.sync.outbox_delivery import deliver_outbox
from services.sync.runs import JobContext
from tests.conftest import emulator_settings, make_settings, savepoint_sessions
from tests.factories import make_gateway
from tests.routers.admin_world import COHORT, GALAXY, TSI, admin, membership, url


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
                select(Auth0OutboxEntry).where(col(Auth0OutboxEntry.user_id) == world.subject)
            )
        ).one()
        assert entry.status is OutboxStatus.DONE
        history = (
            await session.exec(
                select(PlatformMembershipHistory).where(
                    col(PlatformMembershipHistory.user_id) == world.subject
                )
            )
        ).all()
        assert [h.approval_status for h in history] == [ApprovalStatus.APPROVED]
        assert history[0].updated_by_id is not None
        emails = (
            await session.exec(
                select(col(EmailNotification.template)).where(
                    col(EmailNotification.to_address).like("subject.%")
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


async def confirmed_admin(client, session, emulator, world) -> dict[str, str]:
    """A general admin who made a decision while Auth0 answered: their role is confirmed
    for the next minute, so an outage now does not stop their decisions (those queue)."""
    await membership(session, world, "platform", "galaxy", ApprovalStatus.PENDING)
    headers = admin(emulator, "Admin")
    response = await client.post(url(world, "platform", "galaxy", "approve"), headers=headers)
    assert response.status_code == 200, response.text
    return headers


class TestAuth0Down:
    async def test_the_outbox_completes_the_grant_later(
        self, client, session, emulator, world, settings: Settings, pg_engine
    ):
        await membership(session, world, "group", TSI, ApprovalStatus.PENDING)
        headers = await confirmed_admin(client, session, emulator, world)
        emulator.state.faults.down = True
        response = await client.post(url(world, "group", TSI, "approve"), headers=headers)
        assert response.status_code == 202, response.text
        assert response.json()["auth0"] == "pending"
        assert emulator.tenant.role_names_of(world.subject) == [GALAXY]
        entry = (
            await session.exec(
                select(Auth0OutboxEntry).where(col(Auth0OutboxEntry.status) != OutboxStatus.DONE)
            )
        ).one()
        assert (entry.status, entry.attempts) == (OutboxStatus.PENDING, 1)
        # Auth0 comes back; the scheduler's outbox job delivers it.
        emulator.state.faults.down = False
        entry.next_attempt_at = None
        await session.flush()
        connection = await session.connection()
        sessions = savepoint_sessions(connection)
        gateway = make_gateway(emulator, jobs=True)
        try:
            await deliver_outbox(JobContext(settings, pg_engine, sessions, gateway))
        finally:
            await gateway.aclose()
        assert sorted(emulator.tenant.role_names_of(world.subject)) == sorted([GALAXY, TSI])
        await session.refresh(entry)
        assert entry.status is OutboxStatus.DONE
        row = (await session.exec(select(GroupMembership))).one()
        assert row.approval_status is ApprovalStatus.APPROVED


class TestAuth0DownCircuit:
    """During an outage each approval used to wait through its own retries, holding its
    database connection; under load that drained the pool and stalled plain reads."""

    @pytest.fixture
    def settings(self, pg_url: URL, emulator: EmulatorServer) -> Settings:
        return make_settings(pg_url, **emulator_settings(emulator), auth0_breaker_threshold=2)

    async def test_once_the_circuit_opens_approvals_are_queued_without_calling_auth0(
        self, client, session, emulator, world
    ):
        for target in (TSI, COHORT):
            await membership(session, world, "group", target, ApprovalStatus.PENDING)
        headers = await confirmed_admin(client, session, emulator, world)
        emulator.state.faults.down = True
        first = await client.post(url(world, "group", TSI, "approve"), headers=headers)
        grants = "POST /api/v2/users/{id}/roles"
        before = emulator.state.requests.get(grants, 0)
        assert before >= 2  # the first approval did try, until the circuit opened
        second = await client.post(url(world, "group", COHORT, "approve"), headers=headers)

        assert (first.status_code, second.status_code) == (202, 202)
        assert emulator.state.requests.get(grants, 0) == before
        entries = (
            await session.exec(
                select(Auth0OutboxEntry)
                .where(col(Auth0OutboxEntry.status) != OutboxStatus.DONE)
                .order_by(col(Auth0OutboxEntry.id))
            )
        ).all()
        assert [e.status for e in entries] == [OutboxStatus.PENDING] * 2
        assert entries[1].last_error is not None
        assert "in a row" in entries[1].last_error
        assert entries[1].next_attempt_at is not None


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


class TestSelfDecisions:
    async def test_an_admin_cannot_approve_their_own_request(
        self, client, session, emulator, world
    ):
        headers = admin(emulator, "Admin")
        me = (await client.get("/me/profile", headers=headers)).json()["user_id"]
        session.add(
            PlatformMembership(
                platform_id="galaxy", user_id=me, approval_status=ApprovalStatus.PENDING
            )
        )
        await session.flush()
        response = await client.post(f"/admin/users/{me}/platforms/galaxy/approve", headers=headers)
        assert response.status_code == 403
        assert "own" in response.json()["detail"]
