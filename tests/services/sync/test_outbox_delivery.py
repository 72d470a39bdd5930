from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from db.models import Auth0OutboxEntry, Auth0Role
from db.types import OutboxOperation, OutboxStatus
from scripts.auth0_emulator.server import EmulatorServer
from services.sync.runs import JobContext
from tests.factories import auth0_user
from tests.services.sync.helpers import full_sync, sync


async def queue(
    session: AsyncSession, user_id: str, role_name: str, operation: OutboxOperation
) -> Auth0OutboxEntry:
    role = (await session.exec(select(Auth0Role).where(col(Auth0Role.name) == role_name))).one()
    entry = Auth0OutboxEntry(operation=operation, user_id=user_id, role_id=role.id)
    session.add(entry)
    await session.flush()
    return entry


async def test_grants_and_revokes_reach_auth0(
    sync_ctx: JobContext, session: AsyncSession, tenant_server: EmulatorServer
):
    alice = auth0_user(tenant_server.tenant, "alice", roles=["biocommons/group/tsi"])
    await full_sync(sync_ctx)
    grant = await queue(session, alice, "biocommons/platform/galaxy", OutboxOperation.GRANT_ROLE)
    revoke = await queue(session, alice, "biocommons/group/tsi", OutboxOperation.REVOKE_ROLE)
    (run,) = await sync(sync_ctx, "sync.outbox")
    assert run.counts["delivered"] == 2
    assert tenant_server.tenant.role_names_of(alice) == ["biocommons/platform/galaxy"]
    await session.refresh(grant)
    await session.refresh(revoke)
    assert (grant.status, revoke.status) == (OutboxStatus.DONE, OutboxStatus.DONE)
    assert grant.completed_at is not None


async def test_auth0_outage_is_retried_later_then_fails_visibly(
    sync_ctx: JobContext, session: AsyncSession, tenant_server: EmulatorServer
):
    alice = auth0_user(tenant_server.tenant, "alice")
    await full_sync(sync_ctx)
    entry = await queue(session, alice, "biocommons/platform/galaxy", OutboxOperation.GRANT_ROLE)
    tenant_server.state.faults.down = True
    sync_ctx.settings = sync_ctx.settings.model_copy(update={"outbox_max_attempts": 2})
    (first,) = await sync(sync_ctx, "sync.outbox")
    await session.refresh(entry)
    assert first.counts["retry_later"] == 1
    assert (entry.status, entry.attempts) == (OutboxStatus.PENDING, 1)
    assert entry.next_attempt_at is not None
    assert "unavailable" in (entry.last_error or "")
    (not_due,) = await sync(sync_ctx, "sync.outbox")
    assert not_due.counts.get("retry_later", 0) == 0  # backing off, not hammering Auth0
    entry.next_attempt_at = None
    await session.flush()
    (final,) = await sync(sync_ctx, "sync.outbox")
    await session.refresh(entry)
    assert final.counts["failed"] == 1
    assert (entry.status, entry.attempts) == (OutboxStatus.FAILED, 2)


async def test_a_deleted_user_fails_at_once(
    sync_ctx: JobContext, session: AsyncSession, tenant_server: EmulatorServer
):
    alice = auth0_user(tenant_server.tenant, "alice")
    await full_sync(sync_ctx)
    entry = await queue(session, alice, "biocommons/platform/galaxy", OutboxOperation.GRANT_ROLE)
    tenant_server.tenant.delete_user(alice)
    await sync(sync_ctx, "sync.outbox")
    await session.refresh(entry)
    assert entry.status is OutboxStatus.FAILED
    assert "NotFound" in (entry.last_error or "")
