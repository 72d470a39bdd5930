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


@pytest.mark.parametrize("outage", ["every call 500", "unreachable"])
async def test_reads_are_served_from_postgres_when_auth0_fails(
    client: httpx.AsyncClient, emulator: EmulatorServer, outage: str
):
    user = emulator.tenant.create_user(
        {
            "connection": DEFAULT_CONNECTION,
            "email": f"outage.{secrets.token_hex(3)}@example.org",
            "password": "long-enough-1",
        }
    )
    headers = {
        "Authorization": f"Bearer {emulator.tenant.mint_access_token(user['user_id'], roles=['Admin'])}"
    }
    # First contact: the user row is created from Auth0 and the signing keys are cached.
    assert (await client.get("/me/profile", headers=headers)).status_code == 200

    if outage == "unreachable":
        emulator.state.faults.down = True
    else:
        emulator.state.faults.error_rate = 1.0
        emulator.state.faults.error_status = 500
    statuses = {path: (await client.get(path, headers=headers)).status_code for path in READS}

    assert statuses == dict.fromkeys(READS, 200)
    # The outage is real: the one read that asks Auth0 falls back to the database.
    other = emulator.tenant.create_user(
        {
            "connection": DEFAULT_CONNECTION,
            "email": f"other.{secrets.token_hex(3)}@example.org",
            "password": "long-enough-1",
        }
    )
    other_headers = {
        "Authorization": f"Bearer {emulator.tenant.mint_access_token(other['user_id'])}"
    }
    emulator.state.faults.down, emulator.state.faults.error_rate = False, 0.0
    assert (await client.get("/me/profile", headers=other_headers)).status_code == 200
    if outage == "unreachable":
        emulator.state.faults.down = True
    else:
        emulator.state.faults.error_rate = 1.0
    details = await client.get(f"/admin/users/{other['user_id']}/details", headers=headers)
    assert details.status_code == 200
    assert details.json()["profile_source"] == "database"
