"""Schema fuzzing: schemathesis generates requests for every operation in the app's own
OpenAPI document — valid and invalid inputs, with a general admin's token, a plain user's
token and a forged one — and every answer must be a documented, schema-valid non-5xx,
and invalid input must be refused.

The app runs against a database of its own (fuzzed writes must not leak into other
tests) and the shared Auth0 emulator. FUZZ_EXAMPLES (default 12) bounds each operation.
"""

import asyncio
import os
import secrets
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance
from sqlalchemy.engine import URL

from db.admin import create_database, drop_database
from db.migrations import upgrade_head
from main import create_app
from scripts.auth0_emulator.server import EmulatorServer
from scripts.auth0_emulator.tenant import DEFAULT_CONNECTION
from tests.conftest import emulator_settings, make_settings

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "12"))


@pytest.fixture(scope="module")
def fuzz_db(pg_server_url: URL) -> Iterator[URL]:
    name = f"aai_fuzz_{secrets.token_hex(4)}"

    async def create() -> URL:
        url = await create_database(pg_server_url, name)
        await upgrade_head(url)
        return url

    url = asyncio.run(create())
    yield url
    asyncio.run(drop_database(pg_server_url, name))


@pytest.fixture(scope="module")
def tokens(emulator_server: EmulatorServer) -> dict[str, str]:
    tenant = emulator_server.tenant
    made = {}
    for kind, roles in (("admin", ["Admin"]), ("user", [])):
        user = tenant.create_user(
            {
                "connection": DEFAULT_CONNECTION,
                "email": f"fuzz.{kind}.{secrets.token_hex(3)}@example.org",
                # Within the connection's default 15 characters.
                "username": f"fz_{kind}_{secrets.token_hex(2)}",
                "password": "Fuzz-password-1",
            }
        )
        tenant.grant_roles(user["user_id"], roles)
        made[kind] = tenant.mint_access_token(user["user_id"])
    made["forged"] = made["admin"][:-6] + "AAAAAA"
    return made


def test_every_operation_answers_within_its_contract(
    fuzz_db: URL, emulator_server: EmulatorServer, tokens: dict[str, str]
):
    app = create_app(
        make_settings(
            fuzz_db,
            **emulator_settings(emulator_server),
            enable_admin_dashboard=False,
            enable_prometheus_metrics=True,
        )
    )
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures: dict[str, str] = {}
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]  # an Err would fail here, as it should
        operations += 1

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def run(case) -> None:
            for who in ("admin", "user", "forged"):
                case.call_and_validate(
                    headers={"Authorization": f"Bearer {tokens[who]}"},
                    # Forms check more than a JSON schema can say (password rules, "one of
                    # group_id or groups"); their 400s are documented and asserted above.
                    excluded_checks=[positive_data_acceptance],
                )

        try:
            run()
        except (Exception, BaseExceptionGroup) as exc:  # collect every operation's failures
            failures[operation.label] = str(exc)[:1500]
    assert operations > 40
    report = "\n\n".join(f"=== {label}\n{failure}" for label, failure in failures.items())
    assert failures == {}, report
