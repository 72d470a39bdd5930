"""The tenant's Management API rate limit as one budget for every process that spends it.

Auth0 limits the Management API per tenant (Auth0's rate-limit policy, "Rate Limit
Configurations"): API workers, replicas and the scheduler all draw from the same buckets.
Each process pacing itself to the plan's rate would, together, send several times that
and spend the difference in 429s. So the buckets are kept in Postgres (`auth0_rate_budget`),
one row each, and every Management API call takes a token there first: one atomic upsert
refills the bucket for the time passed, takes a token and answers how many are left. A
negative balance is a queue: the caller waits its place (1/rate per token owed).

AUTH0_PLAN names the buckets: the Free plan's one (2/s), Self Service's per endpoint group,
Enterprise production's one (16/s, burst 50) or non-production's (2/s, burst 10). Unset
(dev, tests), nothing is shared and each process paces itself.

If the database cannot answer, the call goes on with its own pacing (and 429s, if any, are
still waited out): a rate budget must never be the reason an Auth0 call fails.
"""

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from db.bulk import dialect_insert
from db.models import Auth0RateBudget

logger = logging.getLogger("aai.auth0")


@dataclass(frozen=True)
class Bucket:
    name: str
    rps: float  # sustained, requests per second
    burst: int


_READ_USERS = frozenset({"users.get", "users.by_email", "users.list"})
_WRITE_USERS = frozenset({"users.create", "users.update"})
_DELETE_USERS = frozenset({"users.delete"})

PLANS: dict[str, dict[str, Bucket]] = {
    "free": {"management": Bucket("management", 2.0, 2)},
    "self-service": {
        "read users": Bucket("read users", 500 / 60, 40),
        "write users": Bucket("write users", 200 / 60, 20),
        "delete users": Bucket("delete users", 200 / 60, 20),
        "all other endpoints": Bucket("all other endpoints", 150 / 60, 10),
    },
    "enterprise": {"management": Bucket("management", 16.0, 50)},
    "enterprise-nonprod": {"management": Bucket("management", 2.0, 10)},
}


def bucket_of(plan: str, operation: str) -> Bucket:
    """The bucket of `plan` that `operation` (a gateway operation name) spends from."""
    buckets = PLANS[plan]
    if "management" in buckets:
        return buckets["management"]
    if operation in _READ_USERS:
        return buckets["read users"]
    if operation in _WRITE_USERS:
        return buckets["write users"]
    if operation in _DELETE_USERS:
        return buckets["delete users"]
    return buckets["all other endpoints"]


class TenantBudget:
    # Requests reach Auth0 with jitter and Auth0's clock is not ours: run a little under.
    SAFETY = 0.95

    def __init__(
        self, engine: AsyncEngine, plan: str, *, wall_clock: Callable[[], float] = time.time
    ) -> None:
        if plan not in PLANS:
            raise ValueError(f"unknown Auth0 plan {plan!r}; one of {', '.join(PLANS)}")
        self.engine = engine
        self.plan = plan
        self._wall_clock = wall_clock
        self._failing = False

    async def take(self, operation: str) -> float:
        """Take a token for `operation`: the seconds to wait before sending (0: now)."""
        bucket = bucket_of(self.plan, operation)
        rate = bucket.rps * self.SAFETY
        table = Auth0RateBudget.__table__
        now = self._wall_clock()
        # Refill for the time passed (never backwards, should another host's clock lead),
        # capped at the burst, then take one.
        elapsed = sa.case((table.c.updated_at < now, now - table.c.updated_at), else_=0.0)
        refilled = table.c.tokens + elapsed * rate
        capped = sa.case((refilled > bucket.burst, float(bucket.burst)), else_=refilled)
        statement = dialect_insert(self.engine, table).values(
            bucket=bucket.name, tokens=float(bucket.burst) - 1.0, updated_at=now
        )
        statement = statement.on_conflict_do_update(
            index_elements=[table.c.bucket],
            set_={
                "tokens": capped - 1.0,
                "updated_at": sa.case((table.c.updated_at < now, now), else_=table.c.updated_at),
            },
        ).returning(table.c.tokens)
        try:
            async with self.engine.begin() as connection:
                tokens = float((await connection.execute(statement)).scalar_one())
        except (SQLAlchemyError, OSError) as exc:
            if not self._failing:
                logger.warning("auth0 rate budget unavailable, pacing alone: %r", exc)
            self._failing = True
            return 0.0
        self._failing = False
        return 0.0 if tokens >= 0 else -tokens / rate

    async def give_back(self, operation: str) -> None:
        """Return a token taken for a call that will not be made (its wait was too long)."""
        table = Auth0RateBudget.__table__
        bucket = bucket_of(self.plan, operation)
        try:
            async with self.engine.begin() as connection:
                await connection.execute(
                    sa.update(table)
                    .where(table.c.bucket == bucket.name)
                    .values(tokens=table.c.tokens + 1.0)
                )
        except (SQLAlchemyError, OSError):
            return
