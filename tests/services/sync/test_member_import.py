from datetime import timedelta

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from db.base import utcnow
from db.models import Auth0OutboxEntry, Auth0Role, PlatformMembership, PlatformMembershipHistory
from db.types import ApprovalStatus, OutboxOperation, OutboxStatus
from scripts.auth0_emulator.server import EmulatorServer
from services.sync.member_import import MemberIds, Target, apply_target
from services.sync.runs import JobContext
from tests.factories import auth0_user
from tests.services.sync.helpers import approved, full_sync, sync

GALAXY = "biocommons/platform/galaxy"
TSI = "biocommons/group/tsi"


async def membership(
    session: AsyncSession, user_id: str, platform: str = "galaxy"
) -> PlatformMembership:
    session.expire_all()
    return (
        await session.exec(
            select(PlatformMembership).where(
                col(PlatformMembership.user_id) == user_id,
                col(PlatformMembership.platform_id) == platform,
            )
        )
    ).one()


async def test_role_holders_become_approved_members_with_history(
    sync_ctx: JobContext, session: AsyncSession, tenant_server: EmulatorServer
):
    alice = auth0_user(tenant_server.tenant, "alice", roles=[GALAXY, TSI])
    bob = auth0_user(tenant_server.tenant, "bob", roles=[GALAXY])
    runs = await full_sync(sync_ctx)
    assert all(run.status.value == "succeeded" for run in runs), [run.error for run in runs]
    assert await approved(session) == {(GALAXY, alice), (TSI, alice), (GALAXY, bob)}
    row = await membership(session, alice)
    assert row.updated_by_id is None
    entries = (
        await session.exec(
            select(PlatformMembershipHistory).where(
                col(PlatformMembershipHistory.membership_id) == row.id
            )
        )
    ).all()
    assert [(e.approval_status, e.updated_by_id) for e in entries] == [
        (ApprovalStatus.APPROVED, None)
    ]
    (again,) = await sync(sync_ctx, "sync.memberships")
    assert again.counts.get("platform_approved", 0) == 0


async def test_removed_role_revokes_and_keeps_history(
    sync_ctx: JobContext, session: AsyncSession, tenant_server: EmulatorServer
):
    tenant = tenant_server.tenant
    alice = auth0_user(tenant, "alice", roles=[GALAXY])
    await full_sync(sync_ctx)
    galaxy_role = tenant.role_by_name(GALAXY)
    assert galaxy_role is not None
    tenant.remove_roles(alice, [galaxy_role["id"]])
    (run,) = await sync(sync_ctx, "sync.memberships")
    assert run.counts["platform_revoked"] == 1
    row = await membership(session, alice)
    assert (row.approval_status, row.revocation_reason) == (
        ApprovalStatus.REVOKED,
        "role removed in Auth0",
    )
    history = (
        await session.exec(
            select(col(PlatformMembershipHistory.approval_status))
            .where(col(PlatformMembershipHistory.membership_id) == row.id)
            .order_by(col(PlatformMembershipHistory.id))
        )
    ).all()
    assert history == [ApprovalStatus.APPROVED, ApprovalStatus.REVOKED]
    tenant.assign_roles(alice, [galaxy_role["id"]])
    (restored,) = await sync(sync_ctx, "sync.memberships")
    assert restored.counts["platform_approved"] == 1
    assert (await membership(session, alice)).revocation_reason is None


async def test_pending_and_rejected_rows_without_the_role_are_left_alone(
    sync_ctx: JobContext, session: AsyncSession, tenant_server: EmulatorServer
):
    alice = auth0_user(tenant_server.tenant, "alice")
    await full_sync(sync_ctx)
    session.add(
        PlatformMembership(
            platform_id="galaxy",
            user_id=alice,
            approval_status=ApprovalStatus.PENDING,
            updated_at=utcnow() - timedelta(hours=1),
        )
    )
    await session.flush()
    (run,) = await sync(sync_ctx, "sync.memberships")
    assert run.counts.get("platform_revoked", 0) == 0
    assert (await membership(session, alice)).approval_status is ApprovalStatus.PENDING


async def test_pending_outbox_operation_blocks_the_flip(
    sync_ctx: JobContext, session: AsyncSession, tenant_server: EmulatorServer
):
    """An admin approved in the portal; the grant has not reached Auth0 yet."""
    alice = auth0_user(tenant_server.tenant, "alice")
    await full_sync(sync_ctx)
    role = (await session.exec(select(Auth0Role).where(col(Auth0Role.name) == GALAXY))).one()
    session.add(
        PlatformMembership(
            platform_id="galaxy",
            user_id=alice,
            approval_status=ApprovalStatus.APPROVED,
            updated_at=utcnow() - timedelta(hours=1),
        )
    )
    session.add(
        Auth0OutboxEntry(operation=OutboxOperation.GRANT_ROLE, user_id=alice, role_id=role.id)
    )
    await session.flush()
    (run,) = await sync(sync_ctx, "sync.memberships")
    assert run.counts.get("platform_revoked", 0) == 0
    assert (await membership(session, alice)).approval_status is ApprovalStatus.APPROVED


async def test_another_users_pending_operation_blocks_nobody_else(
    sync_ctx: JobContext, session: AsyncSession, tenant_server: EmulatorServer
):
    """The outbox guard is per user: bob's revocation still on its way to Auth0 must not
    stop alice, revoked here and granted the role again in Auth0, from being approved."""
    alice = auth0_user(tenant_server.tenant, "alice", roles=[GALAXY])
    bob = auth0_user(tenant_server.tenant, "bob")
    await sync(sync_ctx, "sync.roles", "sync.users.full")
    role = (await session.exec(select(Auth0Role).where(col(Auth0Role.name) == GALAXY))).one()
    for user_id, status in ((alice, ApprovalStatus.REVOKED), (bob, ApprovalStatus.REVOKED)):
        session.add(
            PlatformMembership(
                platform_id="galaxy",
                user_id=user_id,
                approval_status=status,
                updated_at=utcnow() - timedelta(hours=1),
            )
        )
    session.add(
        Auth0OutboxEntry(operation=OutboxOperation.REVOKE_ROLE, user_id=bob, role_id=role.id)
    )
    await session.flush()
    (run,) = await sync(sync_ctx, "sync.memberships")
    assert run.counts.get("platform_approved") == 1
    assert (await membership(session, alice)).approval_status is ApprovalStatus.APPROVED
    assert (await membership(session, bob)).approval_status is ApprovalStatus.REVOKED


async def test_outbox_operation_completed_after_the_read_blocks_the_flip(
    sync_ctx: JobContext, session: AsyncSession, tenant_server: EmulatorServer
):
    alice = auth0_user(tenant_server.tenant, "alice")
    await full_sync(sync_ctx)
    role = (await session.exec(select(Auth0Role).where(col(Auth0Role.name) == GALAXY))).one()
    read_at = utcnow() - timedelta(seconds=5)
    session.add(
        PlatformMembership(
            platform_id="galaxy",
            user_id=alice,
            approval_status=ApprovalStatus.APPROVED,
            updated_at=read_at - timedelta(minutes=1),
        )
    )
    session.add(
        Auth0OutboxEntry(
            operation=OutboxOperation.GRANT_ROLE,
            user_id=alice,
            role_id=role.id,
            status=OutboxStatus.DONE,
            completed_at=read_at + timedelta(seconds=1),
        )
    )
    await session.flush()
    # The snapshot was read before the grant reached Auth0: it must not undo the grant.
    target = Target("platform", "galaxy", role.id, members=MemberIds(), read_at=read_at)
    await apply_target(sync_ctx, session, target)
    assert (await membership(session, alice)).approval_status is ApprovalStatus.APPROVED


async def test_membership_changed_after_the_read_is_not_flipped(
    sync_ctx: JobContext, session: AsyncSession, tenant_server: EmulatorServer
):
    alice = auth0_user(tenant_server.tenant, "alice")
    await full_sync(sync_ctx)
    role = (await session.exec(select(Auth0Role).where(col(Auth0Role.name) == GALAXY))).one()
    read_at = utcnow() - timedelta(seconds=30)
    session.add(
        PlatformMembership(
            platform_id="galaxy",
            user_id=alice,
            approval_status=ApprovalStatus.REVOKED,
            updated_at=utcnow(),
        )
    )
    await session.flush()
    # A stale snapshot still listing alice must not re-approve a revoke made since.
    await apply_target(
        sync_ctx,
        session,
        Target("platform", "galaxy", role.id, members=MemberIds([alice]), read_at=read_at),
    )
    assert (await membership(session, alice)).approval_status is ApprovalStatus.REVOKED


async def test_members_not_yet_synced_are_counted_not_invented(
    sync_ctx: JobContext, session: AsyncSession, tenant_server: EmulatorServer
):
    await sync(sync_ctx, "sync.roles", "sync.users.full")
    auth0_user(tenant_server.tenant, "late", roles=[GALAXY])
    (run,) = await sync(sync_ctx, "sync.memberships")
    assert run.counts["members_without_user"] == 1
    assert await approved(session) == set()


async def test_no_per_user_auth0_calls(sync_ctx: JobContext, tenant_server: EmulatorServer):
    for index in range(250):
        auth0_user(tenant_server.tenant, f"p{index:03d}", roles=[GALAXY])
    await sync(sync_ctx, "sync.roles", "sync.users.full")
    before = dict(tenant_server.state.requests)
    (run,) = await sync(sync_ctx, "sync.memberships")
    used = {
        k: v - before.get(k, 0)
        for k, v in tenant_server.state.requests.items()
        if v != before.get(k, 0)
    }
    # galaxy: ⌈250/100⌉ pages; bpa, sbp and tsi: one empty page each.
    assert used == {"GET /api/v2/roles/{id}/users": 6}
    assert run.counts["auth0_requests"] == 6


class TestNoMassRevocation:
    """A role whose member list comes back empty or cut short must not revoke everyone."""

    async def members(self, tenant_server: EmulatorServer, count: int) -> list[str]:
        return [auth0_user(tenant_server.tenant, f"m{i:03}", roles=[GALAXY]) for i in range(count)]

    def drop_role(self, tenant_server: EmulatorServer, users: list[str]) -> None:
        role = tenant_server.tenant.role_by_name(GALAXY)
        assert role is not None
        for user_id in users:
            tenant_server.tenant.remove_roles(user_id, [role["id"]])

    async def test_revocations_past_the_limit_are_held_and_reported(
        self, sync_ctx: JobContext, session: AsyncSession, tenant_server: EmulatorServer
    ):
        users = await self.members(tenant_server, 30)
        await full_sync(sync_ctx)
        self.drop_role(tenant_server, users[:12])  # 12 > 10 (the floor) and > 10% of 30
        (run,) = await sync(sync_ctx, "sync.memberships")
        assert run.status.value == "failed"
        assert run.counts["revocations_held"] == 12
        assert "SYNC_MAX_REVOKE_FRACTION" in " ".join(run.counts["errors"])
        assert {u for _, u in await approved(session)} == set(users)

        # An operator who means it raises the limit; then they go.
        sync_ctx.settings = sync_ctx.settings.model_copy(update={"sync_max_revoke_fraction": 0.5})
        (run,) = await sync(sync_ctx, "sync.memberships")
        assert run.status.value == "succeeded"
        assert run.counts["platform_revoked"] == 12

    async def test_a_few_revocations_always_pass(
        self, sync_ctx: JobContext, session: AsyncSession, tenant_server: EmulatorServer
    ):
        users = await self.members(tenant_server, 3)
        await full_sync(sync_ctx)
        self.drop_role(tenant_server, users)  # all of a small group: under the floor
        (run,) = await sync(sync_ctx, "sync.memberships")
        assert run.status.value == "succeeded"
        assert run.counts["platform_revoked"] == 3

    async def test_a_list_cut_short_approves_but_revokes_nothing(
        self, sync_ctx: JobContext, session: AsyncSession, tenant_server: EmulatorServer
    ):
        users = await self.members(tenant_server, 150)
        await full_sync(sync_ctx)
        self.drop_role(tenant_server, users[:1])
        # Sorted first, so among the 100 members the cut list does name.
        newcomer = auth0_user(tenant_server.tenant, "a-newcomer", roles=[GALAXY])
        await sync(sync_ctx, "sync.users.full")
        tenant_server.state.faults.cut_pages = True  # the first 100, and no next page
        (run,) = await sync(sync_ctx, "sync.memberships")
        assert run.status.value == "failed"
        assert run.counts["roles_incomplete"] >= 1
        assert run.counts.get("platform_revoked", 0) == 0
        assert users[0] in {u for _, u in await approved(session)}
        assert (GALAXY, newcomer) in await approved(session)

    async def test_members_that_fill_whole_pages_exactly_are_a_whole_list(
        self, sync_ctx: JobContext, session: AsyncSession, tenant_server: EmulatorServer
    ):
        """Auth0's last page names no next page even when it is full (its docs): a second
        read in pages of 99 tells a role of exactly 100 members from a list cut short."""
        users = await self.members(tenant_server, 101)
        await full_sync(sync_ctx)
        self.drop_role(tenant_server, users[:1])  # 100 left: one full page, no next
        (run,) = await sync(sync_ctx, "sync.memberships")
        assert run.status.value == "succeeded", run.error
        assert run.counts["platform_revoked"] == 1


def test_member_ids_keep_every_id_and_compare_as_a_multiset():
    ids = [f"auth0|{n:06d}" for n in range(2500)] + ["google-oauth2|ünï"]
    members = MemberIds(ids)
    assert len(members) == len(ids)
    chunks = list(members.chunks(1000))
    assert [len(c) for c in chunks] == [1000, 1000, 501]
    assert [i for c in chunks for i in c] == ids
    assert members.same_as(MemberIds(reversed(ids)))
    assert not members.same_as(MemberIds(ids[:-1]))
    assert not members.same_as(MemberIds([*ids[:-1], "auth0|other"]))
