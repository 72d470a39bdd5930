"""The Management API gateway against the emulator, over real HTTP with auth0-python."""

import asyncio
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from run_scheduler import build_context, close_context
from scripts.auth0_emulator.server import EmulatorServer, free_port
from scripts.auth0_emulator.tenant import DEFAULT_CONNECTION
from services.auth0 import Auth0Gateway
from services.errors import BadRequest, Conflict, NotFound, ServiceUnavailable, UpstreamError
from services.settings import Settings
from tests.clock import FakeClock
from tests.factories import auth0_users, make_gateway


@pytest.fixture
async def gateway(emulator: EmulatorServer) -> AsyncIterator[Auth0Gateway]:
    gateway = make_gateway(emulator)
    yield gateway
    await gateway.aclose()


def requests_to(emulator: EmulatorServer, key: str) -> int:
    return emulator.state.requests.get(key, 0)


class TestToken:
    async def test_one_token_fetch_serves_concurrent_calls(
        self, gateway: Auth0Gateway, emulator: EmulatorServer
    ):
        (user_id,) = auth0_users(emulator, 1)
        issued_before = emulator.tenant.management_tokens_issued
        results = await asyncio.gather(*(gateway.get_user(user_id) for _ in range(25)))
        assert {r["user_id"] for r in results} == {user_id}
        assert gateway.tokens.fetches == 1
        assert emulator.tenant.management_tokens_issued == issued_before + 1

    async def test_token_is_refreshed_before_it_expires(self, emulator: EmulatorServer):
        (user_id,) = auth0_users(emulator, 1)
        emulator.tenant.management_token_ttl_s = 120  # refreshed 60 s before it expires
        clock = FakeClock()
        gateway = make_gateway(emulator, clock=clock, sleep=clock.sleep)
        try:
            await gateway.get_user(user_id)
            clock.advance(59)
            await gateway.get_user(user_id)
            assert gateway.tokens.fetches == 1
            clock.advance(2)
            await gateway.get_user(user_id)
            assert gateway.tokens.fetches == 2
        finally:
            await gateway.aclose()

    async def test_a_rejected_token_is_replaced_once(
        self, gateway: Auth0Gateway, emulator: EmulatorServer
    ):
        (user_id,) = auth0_users(emulator, 1)
        await gateway.get_user(user_id)
        old_keys = emulator.tenant.keys
        emulator.tenant.rotate_keys(keep_old=False)  # every token issued so far is now invalid
        try:
            assert (await gateway.get_user(user_id))["user_id"] == user_id
        finally:
            emulator.tenant.keys = old_keys + emulator.tenant.keys
        assert gateway.tokens.fetches == 2

    async def test_wrong_client_secret_is_a_502_naming_the_credentials(
        self, emulator: EmulatorServer
    ):
        gateway = Auth0Gateway(
            base_url=emulator.base_url,
            client_id="dev-management-client",
            client_secret="wrong",
            rps=1000,
        )
        try:
            with pytest.raises(UpstreamError, match="credentials"):
                await gateway.list_roles()
        finally:
            await gateway.aclose()


class TestPaging:
    async def test_users_beyond_1000_are_refused_by_listing_and_reached_by_export(
        self, emulator: EmulatorServer
    ):
        with EmulatorServer(audience="https://api.test") as server:
            server.state.faults.export_delay_s = 0.05
            ids = auth0_users(server, 1500, prefix="bulk")
            gateway = make_gateway(server)
            try:
                with pytest.raises(BadRequest, match="1000"):
                    await gateway.list_users_page(page=10, per_page=100)
                with pytest.raises(UpstreamError, match="export"):
                    _ = [user async for user in gateway.iter_users()]
                exported = [
                    u
                    async for u in gateway.export_users(["user_id", "email"], poll_interval_s=0.05)
                ]
                some = [u async for u in gateway.iter_users(q='email:"bulk.7@example.org"')]
            finally:
                await gateway.aclose()
        assert sorted(u["user_id"] for u in exported) == sorted(ids)
        assert set(exported[0]) == {"user_id", "email"}
        assert [u["user_id"] for u in some] == ["auth0|bulk00007"]

    async def test_paged_listing_returns_every_user_up_to_the_cap(self):
        with EmulatorServer(audience="https://api.test") as server:
            ids = auth0_users(server, 250, prefix="page")
            gateway = make_gateway(server)
            try:
                listed = [u["user_id"] async for u in gateway.iter_users(per_page=100)]
            finally:
                await gateway.aclose()
            assert listed == ids
            assert server.state.requests["GET /api/v2/users"] == 3

    async def test_role_members_use_checkpoint_paging_past_1000(self):
        with EmulatorServer(audience="https://api.test") as server:
            role = server.tenant.create_role("biocommons/platform/galaxy")
            ids = auth0_users(server, 1234, prefix="member")
            for user_id in ids:
                server.tenant.assign_roles(user_id, [role["id"]])
            gateway = make_gateway(server)
            try:
                members = [
                    m["user_id"] async for m in gateway.iter_role_members(role["id"], take=100)
                ]
            finally:
                await gateway.aclose()
            assert sorted(members) == sorted(ids)
            assert len(members) == len(set(members)) == 1234
            assert server.state.requests["GET /api/v2/roles/{id}/users"] == 13

    async def test_an_expired_download_link_is_replaced_by_asking_the_job_again(
        self, gateway: Auth0Gateway, emulator: EmulatorServer
    ):
        """The link is valid for 60 s (Auth0's bulk export docs); a slow reader gets a 403
        and must ask GET /jobs/{id} for a fresh one rather than fail the sync."""
        ids = auth0_users(emulator, 3)
        emulator.state.faults.export_delay_s = 0.0
        emulator.state.faults.stale_export_locations = 1
        before = requests_to(emulator, "GET /api/v2/jobs/{id}")
        exported = [u["user_id"] async for u in gateway.export_users(["user_id"])]
        assert set(ids) <= set(exported)
        assert requests_to(emulator, "GET /api/v2/jobs/{id}") - before == 1

        emulator.state.faults.stale_export_locations = 10  # it keeps expiring: a clear error
        with pytest.raises(UpstreamError, match="kept expiring"):
            _ = [u async for u in gateway.export_users(["user_id"])]

    async def test_failed_export_job_is_an_upstream_error(
        self, gateway: Auth0Gateway, emulator: EmulatorServer
    ):
        emulator.state.faults.fail_exports = True
        emulator.state.faults.export_delay_s = 0.01
        with pytest.raises(UpstreamError, match="failed"):
            _ = [u async for u in gateway.export_users(["user_id"], poll_interval_s=0.01)]

    async def test_export_refused_on_a_free_plan_tenant(
        self, gateway: Auth0Gateway, emulator: EmulatorServer
    ):
        emulator.state.faults.exports_enabled = False
        with pytest.raises(UpstreamError, match="Free plan"):
            _ = [u async for u in gateway.export_users(["user_id"])]


class TestRateLimits:
    async def test_429s_are_waited_out_using_the_reset_header(
        self, gateway: Auth0Gateway, emulator: EmulatorServer
    ):
        (user_id,) = auth0_users(emulator, 1)
        await gateway.get_user(user_id)  # token fetched outside the measured window
        emulator.state.set_rate_limit("free")  # burst 2, 2 requests/s
        started = time.monotonic()
        results = await asyncio.gather(*(gateway.get_user(user_id) for _ in range(6)))
        elapsed = time.monotonic() - started
        assert [r["user_id"] for r in results] == [user_id] * 6
        assert gateway.stats.throttled >= 1
        assert gateway.stats.rate_limit == 2
        assert elapsed >= 1.0  # it really waited for the bucket to refill

    async def test_a_wait_longer_than_allowed_fails_fast_with_503(self, emulator: EmulatorServer):
        (user_id,) = auth0_users(emulator, 1)
        gateway = make_gateway(emulator, max_wait_s=0.0)
        try:
            await gateway.get_user(user_id)
            emulator.state.set_rate_limit("free")
            with pytest.raises(ServiceUnavailable) as caught:
                await asyncio.gather(*(gateway.get_user(user_id) for _ in range(5)))
        finally:
            await gateway.aclose()
        assert caught.value.status_code == 503
        assert caught.value.headers is not None
        assert "Retry-After" in caught.value.headers


class TestLongResets:
    async def test_a_reset_a_minute_away_is_a_503_with_retry_after_on_a_request_path(
        self, emulator: EmulatorServer
    ):
        """A request does not hold its caller for a minute: it answers 503 with the wait,
        which the scheduler's jobs (max wait 120 s) would sit out instead."""
        (user_id,) = auth0_users(emulator, 1)
        gateway = make_gateway(emulator, max_wait_s=3.0, rate_reserve=None)
        try:
            await gateway.get_user(user_id)
            emulator.state.set_rate_limit("free")
            emulator.state.faults.long_reset_s = 60
            started = time.monotonic()
            with pytest.raises(ServiceUnavailable) as caught:
                await asyncio.gather(*(gateway.get_user(user_id) for _ in range(4)))
            assert time.monotonic() - started < 3.0
        finally:
            await gateway.aclose()
        assert caught.value.headers is not None
        assert int(caught.value.headers["Retry-After"]) >= 55


class TestRetries:
    async def test_transient_5xx_are_retried(self, gateway: Auth0Gateway, emulator: EmulatorServer):
        (user_id,) = auth0_users(emulator, 1)
        await gateway.get_user(user_id)
        emulator.state.faults.error_rate = 0.4
        emulator.state.faults._random.seed(1)
        results = [await gateway.get_user(user_id) for _ in range(15)]
        assert all(r["user_id"] == user_id for r in results)
        assert gateway.stats.retries > 0
        assert gateway.stats.by_status.get(503, 0) > 0

    async def test_persistent_5xx_gives_503_after_bounded_attempts(
        self, gateway: Auth0Gateway, emulator: EmulatorServer
    ):
        (user_id,) = auth0_users(emulator, 1)
        await gateway.get_user(user_id)
        before = requests_to(emulator, "GET /api/v2/users/{id}")
        emulator.state.faults.down = True
        with pytest.raises(ServiceUnavailable, match="unavailable"):
            await gateway.get_user(user_id)
        assert requests_to(emulator, "GET /api/v2/users/{id}") - before == gateway.max_retries + 1

    async def test_create_is_not_retried_after_a_5xx(
        self, gateway: Auth0Gateway, emulator: EmulatorServer
    ):
        await gateway.list_roles()
        before = requests_to(emulator, "POST /api/v2/users")
        emulator.state.faults.down = True
        with pytest.raises(ServiceUnavailable):
            await gateway.create_user(
                connection=DEFAULT_CONNECTION, email="once@example.org", password="long-enough-1"
            )
        assert requests_to(emulator, "POST /api/v2/users") - before == 1

    @pytest.mark.parametrize(
        ("drift", "says"), [("shape", "does not parse"), ("html", "is not JSON")]
    )
    async def test_an_answer_that_does_not_parse_is_an_upstream_error_after_retries(
        self, gateway: Auth0Gateway, emulator: EmulatorServer, drift: str, says: str
    ):
        """auth0-python raises ParsingError (not an ApiError) for a body of the wrong shape,
        and an ApiError with the 2xx status for one that is not JSON: both are a 502 after
        bounded retries, counted by the breaker, never an unhandled exception."""
        (user_id,) = auth0_users(emulator, 1)
        await gateway.get_user(user_id)
        before = requests_to(emulator, "GET /api/v2/users/{id}")
        emulator.state.faults.drift = drift
        with pytest.raises(UpstreamError, match=says):
            await gateway.get_user(user_id)
        assert requests_to(emulator, "GET /api/v2/users/{id}") - before == gateway.max_retries + 1
        assert gateway.breaker.failures == gateway.max_retries + 1

    async def test_unreachable_auth0_is_503(self):
        gateway = make_gateway(f"http://127.0.0.1:{free_port()}", max_retries=2)
        try:
            with pytest.raises(ServiceUnavailable, match="unreachable"):
                await gateway.get_user("auth0|nobody")
        finally:
            await gateway.aclose()


@asynccontextmanager
async def tripped(
    emulator: EmulatorServer, **options: Any
) -> AsyncIterator[tuple[Auth0Gateway, str]]:
    """A gateway whose circuit has just opened (Auth0 down), and a user it knows."""
    (user_id,) = auth0_users(emulator, 1)
    gateway = make_gateway(emulator, **options)
    try:
        await gateway.get_user(user_id)
        emulator.state.faults.down = True
        for _ in range(10):
            if gateway.breaker.opened:
                break
            with pytest.raises(ServiceUnavailable, match="unavailable"):
                await gateway.get_user(user_id)
        assert gateway.breaker.opened == 1
        yield gateway, user_id
    finally:
        await gateway.aclose()


class TestCircuitBreaker:
    async def test_after_the_threshold_calls_fail_at_once_without_reaching_auth0(
        self, emulator: EmulatorServer
    ):
        async with tripped(emulator, max_retries=1, breaker_threshold=4, breaker_cooloff_s=30) as (
            gateway,
            user_id,
        ):
            assert gateway.breaker.failures == 4  # two calls, two attempts each
            before = requests_to(emulator, "GET /api/v2/users/{id}")
            with pytest.raises(ServiceUnavailable, match="in a row") as caught:
                await gateway.get_user(user_id)
            assert requests_to(emulator, "GET /api/v2/users/{id}") == before
            assert caught.value.headers is not None
            assert 25 <= int(caught.value.headers["Retry-After"]) <= 31
            assert gateway.breaker.opened == 1

    async def test_one_trial_after_the_cool_off_closes_the_circuit_when_auth0_is_back(
        self, emulator: EmulatorServer
    ):
        clock = FakeClock()
        async with tripped(
            emulator,
            max_retries=0,
            breaker_threshold=2,
            breaker_cooloff_s=30,
            clock=clock,
            sleep=clock.sleep,
        ) as (gateway, user_id):
            clock.advance(31)
            # Still down: the trial fails and the circuit opens again.
            before = requests_to(emulator, "GET /api/v2/users/{id}")
            with pytest.raises(ServiceUnavailable, match="unavailable"):
                await gateway.get_user(user_id)
            with pytest.raises(ServiceUnavailable, match="in a row"):
                await gateway.get_user(user_id)
            assert requests_to(emulator, "GET /api/v2/users/{id}") - before == 1
            assert gateway.breaker.opened == 2

            emulator.state.faults.down = False
            clock.advance(31)
            emulator.state.faults.latency_ms = 100
            before = requests_to(emulator, "GET /api/v2/users/{id}")
            # While the trial is out, the others are still refused; after it, all pass.
            outcomes = await asyncio.gather(
                *(gateway.get_user(user_id) for _ in range(5)), return_exceptions=True
            )
            assert requests_to(emulator, "GET /api/v2/users/{id}") - before == 1
            assert sum(isinstance(o, dict) for o in outcomes) == 1
            assert sum(isinstance(o, ServiceUnavailable) for o in outcomes) == 4
            results = await asyncio.gather(*(gateway.get_user(user_id) for _ in range(5)))
            assert {r["user_id"] for r in results} == {user_id}

    async def test_answers_that_are_not_outages_do_not_open_it(
        self, gateway: Auth0Gateway, emulator: EmulatorServer
    ):
        (user_id,) = auth0_users(emulator, 1)
        for _ in range(3 * gateway.breaker.threshold):
            with pytest.raises(NotFound):
                await gateway.get_user("auth0|nobody")
        emulator.state.faults.down = True
        with pytest.raises(ServiceUnavailable):
            await gateway.get_user(user_id)  # its own retries open it
        emulator.state.faults.down = False
        with pytest.raises(ServiceUnavailable, match="in a row"):
            await gateway.get_user(user_id)
        assert gateway.breaker.opened == 1

    async def test_threshold_zero_keeps_retrying_every_call(self, emulator: EmulatorServer):
        (user_id,) = auth0_users(emulator, 1)
        gateway = make_gateway(emulator, max_retries=2, breaker_threshold=0)
        try:
            await gateway.get_user(user_id)
            emulator.state.faults.down = True
            before = requests_to(emulator, "GET /api/v2/users/{id}")
            for _ in range(4):
                with pytest.raises(ServiceUnavailable, match="unavailable"):
                    await gateway.get_user(user_id)
            assert requests_to(emulator, "GET /api/v2/users/{id}") - before == 4 * 3
            assert gateway.breaker.opened == 0
        finally:
            await gateway.aclose()


class TestUsersAndRoles:
    async def test_duplicate_create_is_a_conflict_naming_the_field_without_retries(
        self, gateway: Auth0Gateway, emulator: EmulatorServer
    ):
        email = f"dup.{secrets.token_hex(3)}@example.org"
        await gateway.create_user(
            connection=DEFAULT_CONNECTION,
            email=email,
            username=f"u{secrets.token_hex(3)}",
            password="long-enough-1",
        )
        before = requests_to(emulator, "POST /api/v2/users")
        started = time.monotonic()
        with pytest.raises(Conflict) as caught:
            await gateway.create_user(
                connection=DEFAULT_CONNECTION, email=email.upper(), password="long-enough-1"
            )
        assert caught.value.status_code == 409
        assert caught.value.extra["field"] == "email"
        assert requests_to(emulator, "POST /api/v2/users") - before == 1
        assert time.monotonic() - started < 1.0

    async def test_duplicate_username_is_named(self, gateway: Auth0Gateway):
        username = f"name{secrets.token_hex(3)}"
        await gateway.create_user(
            connection=DEFAULT_CONNECTION,
            email=f"{username}@example.org",
            username=username,
            password="long-enough-1",
        )
        with pytest.raises(Conflict) as caught:
            await gateway.create_user(
                connection=DEFAULT_CONNECTION,
                email=f"other.{username}@example.org",
                username=username,
                password="long-enough-1",
            )
        assert caught.value.extra["field"] == "username"

    async def test_unknown_user_is_not_found(self, gateway: Auth0Gateway):
        with pytest.raises(NotFound):
            await gateway.get_user("auth0|does-not-exist")

    async def test_update_then_conflicting_update(
        self, gateway: Auth0Gateway, emulator: EmulatorServer
    ):
        first, second = auth0_users(emulator, 2)
        updated = await gateway.update_user(first, given_name="Ada", blocked=True)
        assert (updated["given_name"], updated["blocked"]) == ("Ada", True)
        taken = emulator.tenant.get_user(second)
        # Auth0 answers these 400 (not 409); the gateway names the field all the same.
        with pytest.raises(Conflict) as caught:
            await gateway.update_user(first, email=taken["email"])
        assert caught.value.extra["field"] == "email"
        with pytest.raises(Conflict) as caught:
            await gateway.update_user(first, username=taken["username"])
        assert caught.value.extra["field"] == "username"
        assert emulator.state.requests["PATCH /api/v2/users/{id}"] >= 3

    async def test_assign_list_and_remove_roles(
        self, gateway: Auth0Gateway, emulator: EmulatorServer
    ):
        (user_id,) = auth0_users(emulator, 1)
        roles = {r["name"]: r["id"] for r in await gateway.list_roles()}
        galaxy, tsi = roles["biocommons/platform/galaxy"], roles["biocommons/group/tsi"]
        await gateway.assign_roles(user_id, [galaxy, tsi])
        assert {r["name"] for r in await gateway.user_roles(user_id)} == {
            "biocommons/platform/galaxy",
            "biocommons/group/tsi",
        }
        await gateway.remove_roles(user_id, [galaxy])  # DELETE with a JSON body
        assert [r["name"] for r in await gateway.user_roles(user_id)] == ["biocommons/group/tsi"]

    async def test_refresh_tokens_verification_email_and_password_ticket(
        self, gateway: Auth0Gateway, emulator: EmulatorServer
    ):
        (user_id,) = auth0_users(emulator, 1)
        await gateway.revoke_refresh_tokens(user_id)
        await gateway.send_verification_email(user_id)
        ticket = await gateway.password_change_ticket(
            user_id, result_url="https://portal.example/done"
        )
        assert emulator.tenant.revoked_refresh_tokens[user_id] == 1
        assert {
            "type": "verification_email",
            "user_id": user_id,
            "email": emulator.tenant.get_user(user_id)["email"],
        } in emulator.tenant.outbox
        assert ticket.startswith(emulator.base_url)

    async def test_create_and_delete_role(self, gateway: Auth0Gateway):
        name = f"biocommons/platform/p{secrets.token_hex(3)}"
        role = await gateway.create_role(name, "A new platform")
        assert name in {r["name"] for r in await gateway.list_roles()}
        with pytest.raises(Conflict):
            await gateway.create_role(name)
        await gateway.delete_role(role["id"])
        assert name not in {r["name"] for r in await gateway.list_roles()}


class TestRequestDeadline:
    async def test_a_call_past_the_deadline_is_a_503_and_bounded_blocks_share_one(
        self, emulator: EmulatorServer
    ):
        (user_id,) = auth0_users(emulator, 1)
        gateway = make_gateway(emulator, deadline_s=0.75)
        try:
            await gateway.get_user(user_id)  # the token, fetched outside the deadlines
            emulator.state.faults.latency_ms = 300
            # Each call has a deadline of its own: three in a row all finish.
            for _ in range(3):
                assert (await gateway.get_user(user_id))["user_id"] == user_id
            # One deadline for the block: the third call runs past it.
            async with gateway.bounded():
                await gateway.get_user(user_id)
                await gateway.get_user(user_id)
                with pytest.raises(
                    ServiceUnavailable, match=r"did not answer users\.get"
                ) as caught:
                    await gateway.get_user(user_id)
            assert caught.value.headers is not None
            assert caught.value.headers["Retry-After"] == "1"
            emulator.state.faults.latency_ms = 2000
            with pytest.raises(ServiceUnavailable, match=r"within 0\.75s"):
                await gateway.get_user(user_id)
        finally:
            await gateway.aclose()

    async def test_the_api_bounds_calls_by_the_setting_and_the_scheduler_does_not(
        self, settings: Settings
    ):
        bounded = settings.model_copy(update={"auth0_request_deadline_s": 4})
        api = Auth0Gateway.from_settings(bounded)
        unbounded = Auth0Gateway.from_settings(
            settings.model_copy(update={"auth0_request_deadline_s": 0})
        )
        ctx = build_context(bounded, dry_run=False)
        try:
            assert api.deadline_s == 4
            assert unbounded.deadline_s is None
            assert ctx.auth0.deadline_s is None
        finally:
            await api.aclose()
            await unbounded.aclose()
            await close_context(ctx)
