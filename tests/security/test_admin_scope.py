"""Who may act on whom, from the attacker's side.

The permission matrix in tests/routers only ever used plain users as targets, and a
Galaxy admin took over a general admin's account: moved its email to the attacker's
address, then had Auth0 mail the password reset there. Here every account action and
every membership decision is tried by each kind of caller against plain users, admins
of every kind, and the caller themselves; and a caller whose admin role was removed in
Auth0 keeps a token that still names it.
"""

import secrets
from dataclasses import dataclass, replace

import pytest
from sqlmodel.ext.asyncio.session import AsyncSession

from db.models import GroupMembership, PlatformMembership, User
from db.types import ApprovalStatus
from scripts.auth0_emulator.server import EmulatorServer
from scripts.auth0_emulator.tenant import DEFAULT_CONNECTION
from tests.routers.admin_world import TSI, admin_user

GALAXY_ADMIN = "biocommons/role/galaxy/admin"
TSI_ADMIN = "biocommons/role/tsi/admin"
BPA_ADMIN = "biocommons/role/bpa_data_portal/admin"
LINKED = "linked"  # stands for a role linked as the BPA platform's admin role
A, P, R = ApprovalStatus.APPROVED, ApprovalStatus.PENDING, ApprovalStatus.REVOKED


@dataclass(frozen=True)
class Target:
    roles: tuple[str, ...]  # held in Auth0
    galaxy: ApprovalStatus | None
    tsi: ApprovalStatus | None


TARGETS = {
    "plain galaxy member": Target((), A, None),
    "pending galaxy member": Target((), P, None),
    "revoked galaxy member": Target((), R, None),
    "plain tsi member": Target((), None, A),
    "nobody's user": Target((), None, None),
    "general admin": Target(("Admin",), A, A),
    "other galaxy admin": Target((GALAXY_ADMIN,), A, None),
    "bpa admin": Target((BPA_ADMIN,), A, P),
    "linked-role admin": Target((LINKED,), A, A),
    "the caller": Target((), A, A),  # the caller's own roles, see `caller`
}
ALL = frozenset(TARGETS)
# caller → (roles in the token, roles Auth0 still holds for them)
CALLERS = {
    "general admin": (("Admin",), ("Admin",)),
    "galaxy admin": ((GALAXY_ADMIN,), (GALAXY_ADMIN,)),
    "tsi admin": ((TSI_ADMIN,), (TSI_ADMIN,)),
    "member": (("biocommons/platform/galaxy",), ("biocommons/platform/galaxy",)),
    "removed galaxy admin": ((GALAXY_ADMIN,), ()),
    "removed general admin": (("Admin",), ()),
}
# Account actions: who may act on whom (200); everything else is 403.
ACCOUNT_ALLOWED = {
    "general admin": ALL - {"the caller"},
    "galaxy admin": {"plain galaxy member", "pending galaxy member"},
    "tsi admin": {"plain tsi member"},
    "member": set(),
    "removed galaxy admin": set(),
    "removed general admin": set(),
}
# Membership decisions: the platform's (or group's) admins decide on anyone's membership
# of it, admins included, but never on their own.
DECIDES = {
    "general admin": {"platform", "group"},
    "galaxy admin": {"platform"},
    "tsi admin": {"group"},
}


@dataclass
class Scene:
    caller: str
    headers: dict[str, str]
    users: dict[str, str]  # target name → user id


async def _user(
    session: AsyncSession,
    emulator: EmulatorServer,
    target: Target,
    *,
    user_id: str | None = None,
) -> str:
    tag = secrets.token_hex(4)
    if user_id is None:
        created = emulator.tenant.create_user(
            {
                "connection": DEFAULT_CONNECTION,
                "email": f"t{tag}@example.org",
                "username": f"t{tag}",
                "password": "long-enough-1",
                "email_verified": False,
            }
        )
        user_id = created["user_id"]
        emulator.tenant.grant_roles(user_id, list(target.roles))
    auth0 = emulator.tenant.get_user(user_id)
    session.add(
        User(
            id=user_id,
            email=auth0["email"],
            username=auth0.get("username"),
            email_verified=False,
            connection=DEFAULT_CONNECTION,
        )
    )
    await session.flush()
    if target.galaxy is not None:
        session.add(
            PlatformMembership(platform_id="galaxy", user_id=user_id, approval_status=target.galaxy)
        )
    if target.tsi is not None:
        session.add(GroupMembership(group_id=TSI, user_id=user_id, approval_status=target.tsi))
    await session.flush()
    return user_id


async def _scene(
    session: AsyncSession, emulator: EmulatorServer, linked_role: str, caller: str, target: str
) -> Scene:
    token_roles, held = CALLERS[caller]
    caller_id, headers = admin_user(emulator, *held)
    if token_roles != held:
        # The token was issued before the role was removed in Auth0; it still names it.
        token = emulator.tenant.mint_access_token(caller_id, roles=list(token_roles))
        headers = {"Authorization": f"Bearer {token}"}
    spec = TARGETS[target]
    spec = replace(spec, roles=tuple(linked_role if r == LINKED else r for r in spec.roles))
    own = caller_id if target == "the caller" else None
    return Scene(caller, headers, {target: await _user(session, emulator, spec, user_id=own)})


# In an order that leaves each allowed step valid for the next (the address changed by
# the first is unverified, so the resend is allowed; restore follows delete, and the
# invalid-email deletion needs a live account).
ACCOUNT_ACTIONS = [
    ("email/update", {"email": "attacker.{tag}@example.org"}),
    ("username/update", {"username": "taken{tag}"}),
    ("verification-email/resend", None),
    ("password-reset-email", None),
    ("delete", {"reason": "x"}),
    ("restore", None),
    ("delete_invalid_email", {"correct_email": "right.{tag}@example.org"}),
]


@pytest.mark.parametrize("target", list(TARGETS))
@pytest.mark.parametrize("caller", list(CALLERS))
async def test_account_actions(client, session, emulator, linked_role, caller, target):
    scene = await _scene(session, emulator, linked_role, caller, target)
    user_id = scene.users[target]
    before = emulator.tenant.get_user(user_id)
    allowed = target in ACCOUNT_ALLOWED[caller]
    statuses = {}
    for action, body in ACCOUNT_ACTIONS:
        tag = secrets.token_hex(3)
        json = {k: v.format(tag=tag) for k, v in body.items()} if body else None
        response = await client.post(
            f"/admin/users/{user_id}/{action}", json=json, headers=scene.headers
        )
        statuses[action] = response.status_code
        if response.status_code == 403:
            assert response.json()["error"] == "forbidden"
    expected = 200 if allowed else 403
    assert statuses == dict.fromkeys(statuses, expected)
    if not allowed:
        after = emulator.tenant.get_user(user_id)
        assert (after["email"], after.get("username"), after.get("blocked")) == (
            before["email"],
            before.get("username"),
            before.get("blocked"),
        )


def _decisions(status: ApprovalStatus | None, kind: str) -> list[str]:
    """Two decisions that are valid one after the other from `status`."""
    if status is A:
        return ["revoke", "approve"]
    if status is P and kind == "group":
        return ["reject", "unreject"]
    return ["approve", "revoke"]


@pytest.mark.parametrize("target", list(TARGETS))
@pytest.mark.parametrize("caller", list(CALLERS))
async def test_membership_decisions(client, session, emulator, linked_role, caller, target):
    scene = await _scene(session, emulator, linked_role, caller, target)
    user_id = scene.users[target]
    spec = TARGETS[target]
    for kind, path, status in (
        ("platform", "platforms/galaxy", spec.galaxy),
        ("group", f"groups/{TSI}", spec.tsi),
    ):
        for action in _decisions(status, kind):
            body = {"reason": "because"} if action == "reject" else None
            response = await client.post(
                f"/admin/users/{user_id}/{path}/{action}", json=body, headers=scene.headers
            )
            if kind not in DECIDES.get(caller, set()) or target == "the caller":
                expected = 403
            elif status is None:
                expected = 404
            else:
                expected = 200
            assert response.status_code == expected, (kind, action, response.text)
