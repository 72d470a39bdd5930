"""The admin tests' world: a catalog mirrored from the emulator's roles, a subject user
in Auth0 and here, and tokens for admins holding any roles."""

import secrets
from dataclasses import dataclass

import pytest
from sqlmodel.ext.asyncio.session import AsyncSession

from db.models import Auth0Role, Group, GroupMembership, Platform, PlatformMembership, User
from db.types import ApprovalStatus
from scripts.auth0_emulator.server import EmulatorServer
from scripts.auth0_emulator.tenant import DEFAULT_CONNECTION

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
    roles = {name: tenant.role_id(name) for name in (GALAXY, BPA, TSI, COHORT)}
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
    session.add(User(id=created["user_id"], email=created["email"], connection=DEFAULT_CONNECTION))
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


def admin_user(emulator: EmulatorServer, *roles: str) -> tuple[str, dict[str, str]]:
    """A real Auth0 user holding `roles` (its DB row is created on first use) and a token
    naming them."""
    user = emulator.tenant.create_user(
        {
            "connection": DEFAULT_CONNECTION,
            "email": f"admin.{secrets.token_hex(3)}@example.org",
            "password": "long-enough-1",
        }
    )
    # In the tenant too: admin writes confirm roles with Auth0, not only the token.
    emulator.tenant.grant_roles(user["user_id"], list(roles))
    token = emulator.tenant.mint_access_token(user["user_id"], roles=list(roles))
    return user["user_id"], {"Authorization": f"Bearer {token}"}


def admin(emulator: EmulatorServer, *roles: str) -> dict[str, str]:
    """A token for a real Auth0 user holding `roles`."""
    return admin_user(emulator, *roles)[1]


def url(world: World, kind: str, target: str, action: str) -> str:
    return f"/admin/users/{world.subject}/{kind}s/{target}/{action}"
