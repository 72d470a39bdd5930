"""Postgres restarted while the API serves a steady load: 503s during the outage, full
recovery without restarting the API, and never a 500."""

import asyncio
import time
from collections import Counter
from collections.abc import Callable

import httpx
from asgi_lifespan import LifespanManager

from db.migrations import upgrade_head
from main import create_app
from scripts.pg_cluster import TempCluster
from tests.conftest import make_settings

CLIENTS = 6


async def until(
    answered: asyncio.Event, condition: Callable[[], bool], timeout_s: float = 60.0
) -> None:
    """Let the load run until `condition` holds (checked after each answer): the phases
    end on what was seen, not on a guess at how long each takes on this machine."""
    async with asyncio.timeout(timeout_s):
        while not condition():
            answered.clear()
            await answered.wait()


async def test_a_postgres_restart_under_load_gives_503s_then_recovers_with_no_500():
    cluster = TempCluster()
    cluster.start()
    try:
        await upgrade_head(cluster.url)
        settings = make_settings(
            cluster.url, db_connect_timeout_s=1, public_rate_limit_per_minute=100_000
        )
        app = create_app(settings)
        seen: list[tuple[float, str, int]] = []
        stop = asyncio.Event()
        answered = asyncio.Event()
        paths = ["/health/ready", "/utils/register/check-username-availability?username=someone"]

        async with LifespanManager(app) as manager:
            transport = httpx.ASGITransport(app=manager.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:

                async def load(number: int) -> None:
                    while not stop.is_set():
                        path = paths[number % len(paths)]
                        response = await client.get(path)
                        seen.append((time.monotonic(), path, response.status_code))
                        answered.set()
                        await asyncio.sleep(0.02)

                workers = [asyncio.create_task(load(n)) for n in range(CLIENTS)]
                await until(answered, lambda: len(seen) >= 30)
                stopped_at = time.monotonic()
                await asyncio.to_thread(cluster.stop)
                await until(answered, lambda: sum(t > stopped_at + 0.5 for t, _, _ in seen) >= 20)
                await asyncio.to_thread(cluster.start)
                restarted_at = time.monotonic()
                # Recovered: the last 30 answers all came after the restart, all 200.
                await until(
                    answered,
                    lambda: (
                        len(seen) > 30
                        and all(t > restarted_at and s == 200 for t, _, s in seen[-30:])
                    ),
                )
                settled_from = time.monotonic()
                await until(answered, lambda: sum(t > settled_from for t, _, _ in seen) >= 30)
                stop.set()
                await asyncio.gather(*workers)
    finally:
        await asyncio.to_thread(cluster.remove)

    statuses = Counter(status for _, _, status in seen)
    before = [s for t, _, s in seen if t < stopped_at]
    during = [s for t, _, s in seen if stopped_at + 0.5 < t < restarted_at]
    settled = [s for t, _, s in seen if t > settled_from]
    recovered = min((t for t, _, s in seen if t > restarted_at and s == 200), default=None)
    print(  # noqa: T201 - the figures behind the assertions, shown with `pytest -rP`
        f"{len(seen)} requests: {dict(statuses)}; down {restarted_at - stopped_at:.1f} s; "
        f"first 200 {recovered - restarted_at if recovered else float('nan'):.2f} s after restart"
    )
    assert 500 not in statuses, statuses
    assert set(statuses) <= {200, 503}, statuses
    assert before
    assert set(before) == {200}
    assert during
    assert 503 in during
    assert settled
    assert set(settled) == {200}, Counter(settled)
