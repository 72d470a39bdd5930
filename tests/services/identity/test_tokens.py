"""The validator's memory of tokens it has checked: reused only while the token is
valid and the key that signed it is still the tenant's."""

import time

import httpx
import pytest

from scripts.auth0_emulator.server import EmulatorServer
from scripts.auth0_emulator.tenant import SigningKey
from services.errors import Unauthorized
from services.identity.tokens import JwksCache, TokenValidator
from services.settings import Settings
from tests.clock import FakeClock
from tests.conftest import TEST_AUDIENCE


class Wall:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def token(emulator: EmulatorServer, *, exp_in: int = 600, key: SigningKey | None = None) -> str:
    now = int(time.time())
    claims = {
        "iss": emulator.tenant.issuer,
        "sub": "auth0|remembered",
        "aud": [TEST_AUDIENCE],
        "iat": now,
        "exp": now + exp_in,
        emulator.tenant.roles_claim: ["Admin"],
    }
    return emulator.tenant.sign(claims, key=key)


@pytest.fixture
async def checker(settings: Settings, emulator: EmulatorServer):
    clock, wall = FakeClock(), Wall()
    async with httpx.AsyncClient() as http:
        jwks = JwksCache(
            http, f"{settings.auth0_base_url}/.well-known/jwks.json", ttl_s=60, clock=clock
        )
        yield TokenValidator(settings, jwks, wall=wall), clock, wall


async def test_a_checked_token_is_remembered(checker, emulator: EmulatorServer) -> None:
    validator, _clock, _wall = checker
    issued = token(emulator)
    first = await validator.validate(issued)
    assert await validator.validate(issued) is first
    # One byte more is another token, checked (and refused) afresh.
    with pytest.raises(Unauthorized):
        await validator.validate(issued + "A")


async def test_a_remembered_token_still_expires(
    checker, emulator: EmulatorServer, settings: Settings
) -> None:
    validator, _clock, wall = checker
    issued = token(emulator, exp_in=5)
    await validator.validate(issued)
    wall.now += 5 + settings.auth0_token_leeway_s + 1
    with pytest.raises(Unauthorized, match="expired"):
        await validator.validate(issued)


async def test_a_remembered_token_dies_with_its_key(checker, emulator: EmulatorServer) -> None:
    validator, clock, _wall = checker
    old = emulator.tenant.signing_key
    issued = token(emulator, key=old)
    await validator.validate(issued)
    emulator.tenant.rotate_keys(keep_old=False)
    try:
        # The next token makes the validator fetch the tenant's keys again (past its TTL).
        clock.advance(61)
        await validator.validate(token(emulator, key=emulator.tenant.signing_key))
        with pytest.raises(Unauthorized, match="unknown key"):
            await validator.validate(issued)
    finally:
        emulator.tenant.keys = [old, *emulator.tenant.keys]
