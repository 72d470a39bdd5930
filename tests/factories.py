"""Test data, made one way everywhere: users here and in the Auth0 emulator, the catalog,
and gateways to the emulator. Tests say only what matters to them; the rest defaults."""

import secrets
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from db.base import utcnow
from db.models import (
    Auth0Role,
    Group,
    GroupMembership,
    Platform,
    PlatformMembership,
    User,
    UserHistory,
)
from db.types import ApprovalStatus, UserChange
from scripts.auth0_emulator.server import EmulatorServer
from scripts.auth0_emulator.tenant import DEFAULT_CONNECTION, Tenant
from services.auth0 import Auth0Gateway

PASSWORD = "long-enough-1"
TSI = "biocommons/group/tsi"


# ---- users --------------------------------------------------------------------------


async def db_user(
    session: AsyncSession,
    user_id: str,
    email: str | None = None,
    *,
    verified: bool = True,
    **fields: Any,
) -> User:
    """A row in `app_user` only (Auth0 does not know it). The address defaults to the
    id's local part at example.org."""
    user = User(
        id=user_id,
        email=email if email is not None else f"{user_id.split('|')[-1]}@example.org",
        email_verified=verified,
        **fields,
    )
    session.add(user)
    await session.flush()
    return user


def auth0_user(tenant: Tenant, local_id: str, *, roles: Sequence[str] = (), **fields: Any) -> str:
    """A user in the emulator's database connection only, holding `roles` (by name)."""
    user = tenant.create_user(
        {
            "connection": DEFAULT_CONNECTION,
            "user_id": local_id,
            "email": fields.pop("email", f"{local_id}@example.org"),
            "username": fields.pop("username", local_id),
            "password": PASSWORD,
            **fields,
        }
    )
    role_ids = []
    for name in roles:
        role = tenant.role_by_name(name)
        assert role is not None, name
        role_ids.append(role["id"])
    if role_ids:
        tenant.assign_roles(user["user_id"], role_ids)
    return str(user["user_id"])


def auth0_users(emulator: EmulatorServer, count: int, prefix: str | None = None) -> list[str]:
    """`count` users in the emulator, ids `{prefix}00000`…"""
    prefix = prefix or secrets.token_hex(3)
    return [
        auth0_user(emulator.tenant, f"{prefix}{index:05d}", email=f"{prefix}.{index}@example.org")
        for index in range(count)
    ]


async def portal_user(
    session: AsyncSession,
    emulator: EmulatorServer,
    *,
    name: str,
    platforms: Mapping[str, ApprovalStatus] | None = None,
    groups: Mapping[str, ApprovalStatus] | None = None,
    verified: bool = True,
    age_minutes: int = 0,
    updated_by: str | None = None,
) -> User:
    """A user in Auth0 and here (as a sync would leave them), with memberships."""
    created = emulator.tenant.create_user(
        {
            "connection": DEFAULT_CONNECTION,
            "email": f"{name}@example.org",
            "username": name,
            "password": PASSWORD,
            "email_verified": verified,
        }
    )
    user = User(
        id=created["user_id"],
        email=created["email"],
        username=name,
        email_verified=verified,
        connection=DEFAULT_CONNECTION,
        created_at=utcnow() - timedelta(minutes=age_minutes),
    )
    session.add(user)
    await session.flush()
    for platform_id, status in (platforms or {}).items():
        session.add(
            PlatformMembership(
                platform_id=platform_id,
                user_id=user.id,
                approval_status=status,
                updated_by_id=updated_by,
            )
        )
    for group_id, status in (groups or {}).items():
        session.add(GroupMembership(group_id=group_id, user_id=user.id, approval_status=status))
    await session.flush()
    return user


async def user_changes(
    session: AsyncSession, user_id: str
) -> list[tuple[UserChange, str | None, str | None]]:
    """The user's history as (change, previous value, new value), oldest first."""
    rows = (
        await session.exec(
            select(UserHistory)
            .where(col(UserHistory.user_id) == user_id)
            .order_by(col(UserHistory.id))
        )
    ).all()
    return [(row.change, row.previous_value, row.new_value) for row in rows]


# ---- the catalog --------------------------------------------------------------------


async def add_catalog(session: AsyncSession) -> None:
    """Galaxy and the BPA data portal; the TSI and cohort groups (rows only)."""
    session.add_all(
        [
            Auth0Role(id="rol_galaxy", name="biocommons/platform/galaxy"),
            Auth0Role(id="rol_bpa", name="biocommons/platform/bpa_data_portal"),
            Auth0Role(id="rol_tsi", name=TSI),
            Auth0Role(id="rol_cohort", name="biocommons/group/cohort"),
        ]
    )
    await session.flush()
    session.add_all(
        [
            Platform(id="galaxy", name="Galaxy Australia", access_role_id="rol_galaxy"),
            Platform(id="bpa_data_portal", name="BPA Data Portal", access_role_id="rol_bpa"),
            Group(
                id=TSI,
                name="Threatened Species Initiative",
                short_name="TSI",
                access_role_id="rol_tsi",
            ),
            Group(
                id="biocommons/group/cohort",
                name="Cohort Study",
                short_name="CS",
                access_role_id="rol_cohort",
            ),
        ]
    )
    await session.flush()


async def add_group(session: AsyncSession, short_id: str, name: str) -> Group:
    """A live group `biocommons/group/{short_id}` with its access role."""
    group_id = f"biocommons/group/{short_id}"
    role = Auth0Role(id=f"rol_{short_id}", name=group_id)
    session.add(role)
    await session.flush()
    group = Group(id=group_id, name=name, short_name=short_id.upper(), access_role_id=role.id)
    session.add(group)
    await session.flush()
    return group


async def add_platform(session: AsyncSession, platform_id: str = "galaxy") -> Platform:
    role = Auth0Role(id=f"rol_{platform_id}", name=f"biocommons/platform/{platform_id}")
    session.add(role)
    await session.flush()
    platform = Platform(id=platform_id, name=platform_id.title(), access_role_id=role.id)
    session.add(platform)
    await session.flush()
    return platform


# ---- Auth0 --------------------------------------------------------------------------


def make_gateway(
    server: EmulatorServer | str, *, jobs: bool = False, **options: Any
) -> Auth0Gateway:
    """A gateway to the emulator (or to a bare URL, with the emulator's default client):
    fast retries, no client-side pacing to speak of; `jobs=True` as run_scheduler.py
    builds the scheduler's (no breaker, more retries)."""
    defaults: dict[str, Any] = {
        "rps": 1000.0,
        "burst": 1000,
        "max_retries": 6 if jobs else 4,
        "backoff_base_s": 0.01,
        "max_wait_s": 10.0 if jobs else 5.0,
    }
    if jobs:
        defaults["breaker_threshold"] = 0
    if isinstance(server, str):
        base_url, client_id, secret = server, "dev-management-client", "dev-management-secret"
    else:
        base_url = server.base_url
        client_id = server.tenant.management_client_id
        secret = server.tenant.management_client_secret
    return Auth0Gateway(
        base_url=base_url, client_id=client_id, client_secret=secret, **{**defaults, **options}
    )
