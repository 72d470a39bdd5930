"""One size's sync runs in a process of their own, for scripts/bench/sync.py.

    python scripts/bench/sync_child.py DB_URL EMULATOR_URL [--enterprise]

Run as a file with PYTHONPATH set to the checkout whose code is measured (the bench
passes another revision's checkout for "before" figures), so the jobs, the gateway and
the settings all come from that checkout. Prints one JSON object: each run's wall time,
status and counts, and this process's peak RSS (what the sync of this size needed).
"""

import asyncio
import json
import resource
import sys
import time
from typing import Any

from sqlalchemy.engine import make_url

from run_scheduler import build_context, close_context
from scripts.bench.harness import bench_settings
from services.sync.jobs import JOBS_BY_NAME
from services.sync.runs import run_job

ENTERPRISE_RPS, ENTERPRISE_BURST = 16.0, 50
RUNS = (
    ("roles", "sync.roles"),
    ("users full (first)", "sync.users.full"),
    ("memberships (first)", "sync.memberships"),
    ("users full (no change)", "sync.users.full"),
    ("memberships (no change)", "sync.memberships"),
)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def main(db_url: str, emulator_url: str, enterprise: bool) -> dict[str, Any]:
    settings = bench_settings(make_url(db_url), emulator_url, sync_user_source="auto")
    ctx = build_context(settings, dry_run=False)
    report: dict[str, Any] = {"runs": []}
    try:
        for label, job in RUNS:
            started = time.perf_counter()
            run = await run_job(ctx, job, JOBS_BY_NAME[job].body)
            report["runs"].append(
                {
                    "label": label,
                    "seconds": time.perf_counter() - started,
                    "status": run.status.value,
                    "counts": {
                        k: v for k, v in run.counts.items() if v and k != "conflict_examples"
                    },
                    "peak_rss_mb": peak_rss_mb(),
                }
            )
    finally:
        await close_context(ctx)
    if enterprise:
        report["enterprise"] = await at_enterprise_rate(settings, emulator_url)
    report["peak_rss_mb"] = peak_rss_mb()
    return report


async def at_enterprise_rate(settings: Any, emulator_url: str) -> dict[str, Any]:
    """The membership sync at the Enterprise rate limit, against its floor."""
    import httpx

    async with httpx.AsyncClient(base_url=emulator_url, timeout=10) as control:
        await control.post("/_emulator/config", json={"rate_limit": "enterprise"})
    # Start with a full bucket, as a real run would.
    await asyncio.sleep(ENTERPRISE_BURST / ENTERPRISE_RPS + 1)
    ctx = build_context(
        settings.model_copy(
            update={
                "auth0_mgmt_rps": ENTERPRISE_RPS,
                "auth0_mgmt_burst": ENTERPRISE_BURST,
                "auth0_plan": "enterprise",
            }
        ),
        dry_run=False,
    )
    try:
        started = time.perf_counter()
        run = await run_job(ctx, "sync.memberships", JOBS_BY_NAME["sync.memberships"].body)
        elapsed = time.perf_counter() - started
        return {
            "seconds": elapsed,
            "requests": int(run.counts.get("auth0_requests") or 0),
            "throttled": ctx.auth0.stats.throttled,
            "held": ctx.auth0.stats.held,
        }
    finally:
        await close_context(ctx)


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1], sys.argv[2], "--enterprise" in sys.argv))))
