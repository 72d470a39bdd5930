"""Email squatting: an unverified sign-up with someone else's address must not lock the
owner out, nor keep the address from them: the owner, signing in with a verified social
identity, takes it back (the unverified sign-up is blocked and deleted)."""

import secrets
from datetime import timedelta
from typing import Any, cast

import httpx
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from db.base import utcnow
from db.models import User, UserHistory
from db.types import UserChange
from scripts.auth0_emulator.server import EmulatorServer
from scripts.auth0_emulator.tenant import DEFAULT_CONNECTION
from services.users.accounts import CLAIMED_REASON
from tests.services.sync.helpers import sync


def bearer(emulator: EmulatorServer, user_id: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {emulator.tenant.mint_access_token(user_id, roles=[])}"}


async def squat(session: AsyncSession, emulator: EmulatorServer, email: str, **fields) -> str:
    """The attacker's password sign-up with the victim's address, never verified."""
    created = emulator.tenant.create_user(
        {"connection": DEFAULT_CONNECTION, "email": email, "password": "long-enough-1"}
    )
    session.add(
        User(
            id=created["user_id"],
            email=email,
            email_verified=False,
            connection=DEFAULT_CONNECTION,
            **fields,
        )
    )
    await session.flush()
    return created["user_id"]


async def test_a_verified_owner_takes_their_address_back(
    client: httpx.AsyncClient, session: AsyncSession, emulator: EmulatorServer
):
    email = f"victim.{secrets.token_hex(3)}@example.org"
    squatter = await squat(session, emulator, email)
    owner = emulator.tenant.create_user(
        {"connection": "google-oauth2", "email": email, "email_verified": True}
    )

    response = await client.get("/me/profile", headers=bearer(emulator, owner["user_id"]))

    assert response.status_code == 200, response.text
    assert response.json()["email"] == email
    session.expire_all()
    lost = await session.get_one(User, squatter)
    assert (lost.is_deleted, lost.deletion_reason) == (True, CLAIMED_REASON)
    assert emulator.tenant.get_user(squatter)["blocked"] is True
    history = (
        await session.exec(select(UserHistory).where(col(UserHistory.user_id) == squatter))
    ).all()
    assert [h.change for h in history] == [UserChange.USER_DELETION]


async def test_a_verified_holder_keeps_the_address(
    client: httpx.AsyncClient, session: AsyncSession, emulator: EmulatorServer
):
    """A verified password account and a verified Google account with one address are two
    Auth0 users (emails are unique per connection): the Google one signs in as its own
    account, and takes nothing from the holder."""
    email = f"held.{secrets.token_hex(3)}@example.org"
    holder = emulator.tenant.create_user(
        {"connection": DEFAULT_CONNECTION, "email": email, "password": "long-enough-1"}
    )
    session.add(
        User(id=holder["user_id"], email=email, email_verified=True, connection=DEFAULT_CONNECTION)
    )
    await session.flush()
    other = emulator.tenant.create_user(
        {"connection": "google-oauth2", "email": email, "email_verified": True}
    )

    response = await client.get("/me/profile", headers=bearer(emulator, other["user_id"]))

    assert response.status_code == 200, response.text
    session.expire_all()
    assert (await session.get_one(User, holder["user_id"])).is_deleted is False


async def test_an_unverified_identity_claims_nothing(
    client: httpx.AsyncClient, session: AsyncSession, emulator: EmulatorServer
):
    """An unverified identity of another connection with the address is an account of its
    own; it takes the address from nobody, not even an unverified sign-up."""
    email = f"both.{secrets.token_hex(3)}@example.org"
    first = await squat(session, emulator, email)
    second = emulator.tenant.create_user(
        {"connection": "github", "email": email, "email_verified": False}
    )
    response = await client.get("/me/profile", headers=bearer(emulator, second["user_id"]))
    assert response.status_code == 200, response.text
    session.expire_all()
    assert (await session.get_one(User, first)).is_deleted is False


async def test_unverified_sign_ups_expire_and_free_the_address(
    sync_ctx, session: AsyncSession, tenant_server: EmulatorServer
):
    old = utcnow() - timedelta(days=31)
    tag = secrets.token_hex(3)
    made = {
        name: await squat(
            session, tenant_server, f"{name}.{tag}@example.org", **cast(dict[str, Any], fields)
        )
        for name, fields in {
            "abandoned": {"created_at": old, "registration_from": "biocommons"},
            "in use": {
                "created_at": old,
                "registration_from": "biocommons",
                "last_login": old + timedelta(days=1),
            },
            "recent": {"created_at": utcnow() - timedelta(days=2), "registration_from": "galaxy"},
            "made by an admin": {"created_at": old},
            "claimed": {
                "created_at": old,
                "is_deleted": True,
                "blocked": True,
                "deletion_reason": CLAIMED_REASON,
            },
        }.items()
    }

    (run,) = await sync(sync_ctx, "users.expire_unverified")

    assert run.status.value == "succeeded", run.error
    assert run.counts["expired"] == 2
    session.expire_all()
    for name in ("abandoned", "claimed"):
        row = await session.get_one(User, made[name])
        assert (row.is_deleted, row.deletion_reason) == (True, "unverified sign-up expired")
        assert made[name] not in tenant_server.tenant.users
        history = (
            await session.exec(select(UserHistory).where(col(UserHistory.user_id) == made[name]))
        ).all()
        assert [(h.change, h.reason, h.email) for h in history] == [
            (UserChange.USER_DELETION, "unverified sign-up expired", row.email)
        ]
    for name in ("in use", "recent", "made by an admin"):
        assert (await session.get_one(User, made[name])).is_deleted is False
        assert made[name] in tenant_server.tenant.users
    # The address is free in Auth0's database connection again.
    tenant_server.tenant.create_user(
        {
            "connection": DEFAULT_CONNECTION,
            "email": f"abandoned.{tag}@example.org",
            "password": "long-enough-1",
        }
    )


async def test_expiry_never_deletes_more_than_the_safety_fraction(
    sync_ctx, session: AsyncSession, tenant_server: EmulatorServer
):
    old = utcnow() - timedelta(days=31)
    made = [
        await squat(
            session,
            tenant_server,
            f"many{n}.{secrets.token_hex(2)}@example.org",
            created_at=old,
            registration_from="biocommons",
        )
        for n in range(3)
    ]
    sync_ctx.settings = sync_ctx.settings.model_copy(update={"sync_max_delete_fraction": 0.05})

    (run,) = await sync(sync_ctx, "users.expire_unverified")

    assert run.status.value == "failed"
    assert "SYNC_MAX_DELETE_FRACTION" in (run.error or "")
    assert all(user_id in tenant_server.tenant.users for user_id in made)
