"""The `events.apply` job: deliveries in any order, any number of times, converge; deletions
and blocks take effect at once; role log entries cost one read; bad events are parked."""

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from db.base import utcnow
from db.models import Auth0Event, PlatformMembership, User
from db.types import ApprovalStatus, EventStatus
from scripts.auth0_emulator.server import EmulatorServer
from services.events.inbox import parse_cloud_events, parse_log_entries, store
from services.identity.tokens import is_deactivated
from services.sync.event_apply import apply_events
from services.sync.runs import JobContext
from tests.factories import auth0_user
from tests.services.sync.helpers import sync

T0 = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)


def user_event(
    event_id: str,
    user: dict[str, Any],
    *,
    kind: str = "user.updated",
    at: datetime = T0,
    **changes: Any,
) -> bytes:
    obj = {**user, **changes, "updated_at": at.isoformat().replace("+00:00", "Z")}
    return json.dumps(
        {
            "id": event_id,
            "type": kind,
            "time": obj["updated_at"],
            "specversion": "1.0",
            "source": "urn:auth0:test:users",
            "data": {"object": obj},
        }
    ).encode()


async def deliver(ctx: JobContext, *bodies: bytes) -> None:
    async with ctx.transaction() as session:
        for body in bodies:
            await store(session, parse_cloud_events(body))


async def deliver_logs(ctx: JobContext, entries: list[dict[str, Any]]) -> None:
    async with ctx.transaction() as session:
        await store(session, parse_log_entries(json.dumps(entries).encode()))


async def events(session: AsyncSession) -> dict[str, tuple[EventStatus, str | None]]:
    session.expire_all()
    table = Auth0Event.__table__
    rows = await session.execute(sa.select(table.c.event_id, table.c.status, table.c.outcome))
    return {row.event_id: (row.status, row.outcome) for row in rows}


async def user(session: AsyncSession, user_id: str) -> User | None:
    session.expire_all()
    return await session.get(User, user_id)


async def test_user_events_in_any_order_and_any_number_converge(
    sync_ctx: JobContext, session: AsyncSession, tenant_server: EmulatorServer
):
    user_id = auth0_user(tenant_server.tenant, "ordered")
    raw = dict(tenant_server.tenant.get_user(user_id))
    newer = user_event("evt_2", raw, at=T0 + timedelta(seconds=2), email="second@example.org")
    older = user_event("evt_1", raw, kind="user.created", at=T0, email="first@example.org")
    await deliver(sync_ctx, newer, newer)
    await apply_events(sync_ctx)
    row = await user(session, user_id)
    assert row is not None
    assert (row.email, row.auth0_updated_at) == ("second@example.org", T0 + timedelta(seconds=2))
    await deliver(sync_ctx, older, newer)  # late, and redelivered
    await apply_events(sync_ctx)
    row = await user(session, user_id)
    assert row is not None
    assert row.email == "second@example.org"
    outcome = await events(session)
    assert outcome["evt_2"][0] is EventStatus.APPLIED
    assert outcome["evt_1"][0] is EventStatus.IGNORED
    assert "not newer than the row" in (outcome["evt_1"][1] or "")
    assert sync_ctx.auth0.stats.requests == 0  # the events carry the user: no Auth0 call


async def test_a_deletion_outranks_every_update_whenever_delivered(
    sync_ctx: JobContext, session: AsyncSession, tenant_server: EmulatorServer
):
    user_id = auth0_user(tenant_server.tenant, "doomed")
    raw = dict(tenant_server.tenant.get_user(user_id))
    created = user_event("evt_c", raw, kind="user.created", at=T0)
    deleted = user_event("evt_d", raw, kind="user.deleted", at=T0 + timedelta(seconds=5))
    late = user_event("evt_u", raw, at=T0 + timedelta(seconds=9), name="after the deletion?")
    await deliver(sync_ctx, created)
    await apply_events(sync_ctx)
    await deliver(sync_ctx, deleted)
    await apply_events(sync_ctx)
    row = await user(session, user_id)
    assert row is not None
    assert (row.is_deleted, row.deletion_reason) == (True, "deleted in Auth0")
    await deliver(sync_ctx, late)
    await apply_events(sync_ctx)
    row = await user(session, user_id)
    assert row is not None
    assert row.is_deleted
    assert row.name != "after the deletion?"
    # Deleted before it was ever stored: the creation that comes later is not written.
    other = auth0_user(tenant_server.tenant, "neverseen")
    other_raw = dict(tenant_server.tenant.get_user(other))
    await deliver(
        sync_ctx, user_event("evt_d2", other_raw, kind="user.deleted", at=T0 + timedelta(1))
    )
    await apply_events(sync_ctx)
    await deliver(sync_ctx, user_event("evt_c2", other_raw, kind="user.created", at=T0))
    await apply_events(sync_ctx)
    assert await user(session, other) is None


async def test_a_block_refuses_the_users_tokens_at_once(
    sync_ctx: JobContext, session: AsyncSession, tenant_server: EmulatorServer
):
    user_id = auth0_user(tenant_server.tenant, "blockme")
    raw = dict(tenant_server.tenant.get_user(user_id))
    await deliver(sync_ctx, user_event("evt_1", raw, kind="user.created", at=T0))
    await apply_events(sync_ctx)
    assert not await is_deactivated(session, user_id)
    await deliver(sync_ctx, user_event("evt_2", raw, at=T0 + timedelta(seconds=1), blocked=True))
    await apply_events(sync_ctx)
    assert await is_deactivated(session, user_id)
    row = await user(session, user_id)
    assert row is not None
    assert row.deletion_reason == "blocked in Auth0"


async def test_a_role_granted_in_the_dashboard_costs_one_read(
    sync_ctx: JobContext, session: AsyncSession, tenant_server: EmulatorServer
):
    await sync(sync_ctx, "sync.roles", "sync.users.full")
    tenant = tenant_server.tenant
    user_id = auth0_user(tenant, "granted")
    await sync(sync_ctx, "sync.users.full")
    logs: list[dict[str, Any]] = []
    tenant.listeners.append(lambda kind, item: logs.append(item) if kind == "log" else None)
    tenant.grant_roles(user_id, ["biocommons/platform/galaxy"])  # as the Dashboard would
    tenant.listeners.clear()
    await deliver_logs(sync_ctx, logs)
    before = sync_ctx.auth0.stats.requests
    await apply_events(sync_ctx)
    assert sync_ctx.auth0.stats.requests - before == 1
    session.expire_all()
    membership = (
        await session.execute(
            sa.select(PlatformMembership).where(col(PlatformMembership.user_id) == user_id)
        )
    ).scalar_one()
    assert (membership.platform_id, membership.approval_status) == (
        "galaxy",
        ApprovalStatus.APPROVED,
    )
    # This service's own Management API calls come back as log entries too: nothing to do.
    own = [
        {
            **entry,
            "log_id": entry["log_id"] + "0",
            "data": {**entry["data"], "client_id": sync_ctx.settings.auth0_management_id},
        }
        for entry in logs
    ]
    await deliver_logs(sync_ctx, own)
    before = sync_ctx.auth0.stats.requests
    await apply_events(sync_ctx)
    assert sync_ctx.auth0.stats.requests == before
    assert all(
        status is EventStatus.IGNORED
        for event_id, (status, _outcome) in (await events(session)).items()
        if event_id.endswith("0")
    )


async def test_a_poison_event_is_parked_and_the_rest_of_the_batch_applied(
    sync_ctx: JobContext, session: AsyncSession, tenant_server: EmulatorServer
):
    good_id = auth0_user(tenant_server.tenant, "good")
    good = user_event("evt_good", dict(tenant_server.tenant.get_user(good_id)), kind="user.created")
    poison = user_event(
        "evt_poison", {"user_id": "auth0|poison", "identities": "not a list"}, kind="user.created"
    )
    await deliver(sync_ctx, poison, good)
    await apply_events(sync_ctx)
    outcome = await events(session)
    assert outcome["evt_good"][0] is EventStatus.APPLIED
    assert outcome["evt_poison"][0] is EventStatus.PARKED
    assert "AttributeError" in (outcome["evt_poison"][1] or "")
    assert await user(session, good_id) is not None
    assert sync_ctx.counts["parked"] == 1


async def test_an_event_failing_while_auth0_is_down_waits_and_is_tried_again(
    sync_ctx: JobContext, session: AsyncSession, tenant_server: EmulatorServer
):
    await sync(sync_ctx, "sync.roles")
    tenant = tenant_server.tenant
    user_id = auth0_user(tenant, "later")
    await sync(sync_ctx, "sync.users.full")
    logs: list[dict[str, Any]] = []
    tenant.listeners.append(lambda kind, item: logs.append(item) if kind == "log" else None)
    tenant.grant_roles(user_id, ["biocommons/platform/galaxy"])
    tenant.listeners.clear()
    await deliver_logs(sync_ctx, logs)
    tenant_server.state.faults.error_rate = 1.0  # every Management API call fails
    await apply_events(sync_ctx)
    session.expire_all()
    table = Auth0Event.__table__
    (row,) = (await session.execute(sa.select(table))).all()
    assert (row.status, row.attempts) == (EventStatus.PENDING, 1)
    assert row.outcome.startswith("attempt 1 failed")
    assert row.next_attempt_at > utcnow() + timedelta(seconds=1)
    # Due again (as if two seconds passed) with Auth0 back: applied.
    tenant_server.state.faults.error_rate = 0.0
    await session.execute(sa.update(table).values(next_attempt_at=utcnow()))
    await session.commit()
    await apply_events(sync_ctx)
    assert (await events(session))[row.event_id][0] is EventStatus.APPLIED


async def test_without_an_event_stream_a_logged_creation_reads_the_user(
    sync_ctx: JobContext, session: AsyncSession, tenant_server: EmulatorServer
):
    """Only a Log Stream: a user created through the Management API (logged as `sapi`
    POST /api/v2/users, as Auth0 logs it) is read once and written."""
    logs: list[dict[str, Any]] = []
    tenant_server.tenant.listeners.append(
        lambda kind, item: logs.append(item) if kind == "log" else None
    )
    user_id = auth0_user(tenant_server.tenant, "logonly")
    tenant_server.tenant.listeners.clear()
    assert [(e["data"]["type"], e["data"]["details"]["request"]["path"]) for e in logs] == [
        ("sapi", "/api/v2/users")
    ]
    await deliver_logs(sync_ctx, logs)
    await apply_events(sync_ctx)
    row = await user(session, user_id)
    assert row is not None
    assert row.email == "logonly@example.org"
    assert sync_ctx.auth0.stats.requests == 1
