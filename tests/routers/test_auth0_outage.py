"""Portal and admin reads while Auth0 fails every call (5xx) or cannot be reached: all
served from Postgres. (Writes during an outage: the outbox tests in
test_admin_memberships.py and the 503 tests in test_admin_users.py.)"""

import secrets

import httpx
import pytest

from scripts.auth0_emulator.server import EmulatorServer
from scripts.auth0_emulator.tenant import DEFAULT_CONNECTION

READS = [
    "/me/profile",
    "/me/platforms",
    "/me/groups",
    "/me/is-general-admin",
    "/me/all/pending",
    "/admin/filters",
    "/admin/users?per_page=5",
    "/admin/users/pages",
    "/admin/users/counts",
]


async def signed_in(
    client: httpx.AsyncClient, emulator: EmulatorServer, *roles: str
) -> tuple[str, dict[str, str]]:
    """A new Auth0 user whose first call (while Auth0 answers) created their row here and
    cached the signing keys."""
    user = emulator.tenant.create_user(
        {
            "connection": DEFAULT_CONNECTION,
            "email": f"outage.{secrets.token_hex(3)}@example.org",
            "password": "long-enough-1",
        }
    )
    token = emulator.tenant.mint_access_token(user["user_id"], roles=list(roles))
    headers = {"Authorization": f"Bearer {token}"}
    assert (await client.get("/me/profile", headers=headers)).status_code == 200
    return user["user_id"], headers


def break_auth0(emulator: EmulatorServer, outage: str) -> None:
    if outage == "unreachable":
        emulator.state.faults.down = True
    else:
        emulator.state.faults.error_rate = 1.0
        emulator.state.faults.error_status = 500


@pytest.mark.parametrize("outage", ["every call 500", "unreachable"])
async def test_reads_are_served_from_postgres_when_auth0_fails(
    client: httpx.AsyncClient, emulator: EmulatorServer, outage: str
):
    _admin, headers = await signed_in(client, emulator, "Admin")
    other, _ = await signed_in(client, emulator)

    break_auth0(emulator, outage)
    statuses = {path: (await client.get(path, headers=headers)).status_code for path in READS}
    details = await client.get(f"/admin/users/{other}/details", headers=headers)

    assert statuses == dict.fromkeys(READS, 200)
    # The outage is real: the one read that asks Auth0 falls back to the database.
    assert details.status_code == 200
    assert details.json()["profile_source"] == "database"
