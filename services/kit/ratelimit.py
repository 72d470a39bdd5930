"""Per-client limits for public endpoints (registration, availability checks, actions),
so they cannot be used to enumerate accounts or spend the Auth0 budget at speed.

Counted in the database, so every worker and replica shares one count per client: with
counters in each process, N workers allowed N times the limit. Each check is one upsert
and one read in a transaction of its own, committed at once: a request that fails later
(bad input, say) still counts, or failing requests would be free. The limit is a sliding
minute, estimated from this minute's count and the previous minute's, weighted by how
much of the previous minute still lies inside the last sixty seconds.
"""

import math
import time
from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from db.bulk import dialect_insert
from db.models import RateLimitHit
from services.errors import TooManyRequests

hits = RateLimitHit.__table__
MAX_CLIENT_LENGTH = 64


class RateLimiter:
    def __init__(
        self, engine: AsyncEngine, per_minute: int, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.engine = engine
        self.per_minute = per_minute
        self._clock = clock

    async def check(self, scope: str, client: str, *, limit: int | None = None) -> None:
        """Count one call of `client` to `scope`; 429 past `limit` a minute (default:
        the limiter's own)."""
        per_minute = limit or self.per_minute
        now = self._clock()
        window = int(now // 60)
        client = client[:MAX_CLIENT_LENGTH]
        statement = dialect_insert(self.engine, hits).values(
            scope=scope, client=client, minute=window, hits=1
        )
        statement = statement.on_conflict_do_update(
            index_elements=[hits.c.scope, hits.c.client, hits.c.minute],
            set_={"hits": hits.c.hits + 1},
        ).returning(hits.c.hits)
        async with self.engine.begin() as connection:
            current = (await connection.execute(statement)).scalar_one()
            previous = await connection.scalar(
                sa.select(hits.c.hits).where(
                    hits.c.scope == scope, hits.c.client == client, hits.c.minute == window - 1
                )
            )
        elapsed = now - window * 60
        if current + (previous or 0) * (1 - elapsed / 60) > per_minute:
            if current > per_minute or not previous:
                wait = 60 - elapsed  # this minute alone is over the limit
            else:
                # When enough of the previous minute has slid out of the last sixty seconds.
                wait = 60 * (1 - (per_minute - current) / previous) - elapsed
            wait_s = max(1, math.ceil(wait))
            raise TooManyRequests(
                f"too many requests; try again in {wait_s}s", headers={"Retry-After": str(wait_s)}
            )
