"""The load benchmark at toy size: what it checks besides latency must hold, and the
script must keep working (it is not run anywhere else in CI)."""

from scripts.bench.events import run as events_bench
from scripts.bench.load import build_parser, main_async
from services.settings import Settings


async def test_mixed_load_with_concurrent_sync_keeps_postgres_and_auth0_in_agreement() -> None:
    args = build_parser().parse_args(["--users", "400", "--clients", "4", "--seconds", "4"])

    outcome = await main_async(args)

    assert outcome.errors == 0
    # Every kind of call was made, the writes included.
    assert set(outcome.requests) >= {
        "GET /me/profile",
        "GET /admin/users (first page)",
        "POST /me/groups/request",
        "POST /admin/.../approve",
    }
    assert outcome.sync_exit_codes
    assert all(code == 0 for code in outcome.sync_exit_codes)
    assert outcome.final_sync_exit_code == 0
    assert outcome.disagreements == []


async def test_auth0_outage_under_load_queues_approvals_and_loses_nothing() -> None:
    # Longer than an approval's in-request Auth0 attempt, so approvals begun early in the
    # outage give up and queue (a shorter one can be retried through, and flaked at 4 s).
    outage = 2 * Settings.model_fields["auth0_request_deadline_s"].default
    args = build_parser().parse_args(
        [
            *("--users", "400", "--clients", "4", "--rate", "40"),
            *("--seconds", str(outage + 4), "--auth0-outage", str(outage)),
        ]
    )

    outcome = await main_async(args)

    # Reads are served from Postgres throughout; approvals during the outage are 202.
    assert outcome.errors == 0
    assert outcome.statuses[202] > 0
    assert outcome.final_sync_exit_code == 0
    assert outcome.disagreements == []


async def test_pushed_changes_bench_lands_every_change_without_management_reads() -> None:
    """scripts/bench/events at toy size: every change lands, user changes cost no Management
    API request, a role grant one read (two when its log entry outruns the user's event)."""
    outcome = await events_bench(
        users=300, per_minute=1200, seconds=4, grants=3, batches=20, singles=200
    )

    assert outcome["lost"] == 0
    assert outcome["landed"] > 0
    assert outcome["per_1000_updates"] == 0
    assert 0 < outcome["per_grant"] <= 2
    assert all(value > 0 for value in outcome["throughput"].values())
