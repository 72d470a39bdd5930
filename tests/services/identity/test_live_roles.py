"""Auth0's current roles, cached for at most a minute: a removed admin role stops working
within a minute even while Auth0 is down."""

import pytest

from scripts.auth0_emulator.server import EmulatorServer
from services.errors import ServiceUnavailable
from services.identity.live_roles import LiveRoles
from tests.clock import FakeClock
from tests.factories import make_gateway


async def test_a_removed_role_is_seen_within_a_minute_outage_or_not(emulator: EmulatorServer):
    tenant = emulator.tenant
    user = tenant.create_user(
        {
            "connection": "Username-Password-Authentication",
            "email": "lr@example.org",
            "password": "long-enough-1",
        }
    )
    tenant.grant_roles(user["user_id"], ["Admin"])
    clock = FakeClock()
    gateway = make_gateway(emulator, max_retries=0, jobs=True)
    try:
        roles = LiveRoles(gateway, 30.0, clock=clock)
        assert await roles.of(user["user_id"]) == {"Admin"}

        tenant.remove_roles(user["user_id"], [tenant.role_id("Admin")])
        clock.advance(29)
        assert await roles.of(user["user_id"]) == {"Admin"}  # fresh for 30 s
        clock.advance(2)
        assert await roles.of(user["user_id"]) == frozenset()  # asked again

        tenant.grant_roles(user["user_id"], ["Admin"])
        clock.advance(31)
        assert await roles.of(user["user_id"]) == {"Admin"}
        emulator.state.faults.down = True
        clock.advance(45)
        # Auth0 is down 45 s after the last answer: that answer is still used...
        assert await roles.of(user["user_id"]) == {"Admin"}
        clock.advance(16)
        # ...but never past a minute.
        with pytest.raises(ServiceUnavailable):
            await roles.of(user["user_id"])
    finally:
        await gateway.aclose()


async def test_a_user_auth0_does_not_know_holds_nothing(emulator: EmulatorServer):
    gateway = make_gateway(emulator, jobs=True)
    try:
        assert await LiveRoles(gateway, 30.0).of("auth0|nobody") == frozenset()
    finally:
        await gateway.aclose()
