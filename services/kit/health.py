"""Liveness and readiness: is the database answering, and is it migrated to the code's head?"""

import asyncio
import logging

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from db.migrations import current_revisions
from schemas.health import CheckResult, ReadinessReport

READINESS_TIMEOUT_S = 5.0
logger = logging.getLogger("aai.health")


def _describe(revisions: frozenset[str]) -> str:
    return ", ".join(sorted(revisions)) or "(none)"


async def _probe(engine: AsyncEngine, expected_heads: frozenset[str]) -> ReadinessReport:
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
        current = await current_revisions(conn)
    if current == expected_heads:
        migrations = CheckResult(ok=True, detail=f"at head {_describe(current)}")
    else:
        migrations = CheckResult(
            ok=False,
            detail=(
                f"database is at {_describe(current)}, the code expects "
                f"{_describe(expected_heads)}; run `alembic upgrade head`"
            ),
        )
    return ReadinessReport(
        status="ready" if migrations.ok else "not_ready",
        checks={"database": CheckResult(ok=True, detail="answering"), "migrations": migrations},
    )


async def readiness(
    engine: AsyncEngine,
    expected_heads: frozenset[str],
    *,
    verbose: bool = False,
    auth0: CheckResult | None = None,
) -> ReadinessReport:
    """Never raises: a failing check is reported in the body, for the 503. The body is
    public, so a driver's message (which names the database's host and port) goes to the
    log; `verbose` (the entrypoint, printing to its own stderr) keeps it in the report.
    `auth0`: a fault the tenant check found in the Auth0 configuration, if any."""
    report = await _database_readiness(engine, expected_heads, verbose=verbose)
    if auth0 is not None:
        report.checks["auth0"] = auth0
        if not auth0.ok:
            report.status = "not_ready"
    return report


async def _database_readiness(
    engine: AsyncEngine, expected_heads: frozenset[str], *, verbose: bool
) -> ReadinessReport:
    try:
        return await asyncio.wait_for(_probe(engine, expected_heads), READINESS_TIMEOUT_S)
    except TimeoutError:
        reason = f"no answer within {READINESS_TIMEOUT_S:.0f}s"
    except Exception as exc:
        message = str(exc).splitlines()[0] if str(exc) else "unreachable"
        logger.warning(
            "readiness: the database is unavailable: %s: %s", type(exc).__name__, message
        )
        reason = (
            f"{type(exc).__name__}: {message}" if verbose else f"unavailable ({type(exc).__name__})"
        )
    return ReadinessReport(
        status="not_ready",
        checks={
            "database": CheckResult(ok=False, detail=reason),
            "migrations": CheckResult(ok=False, detail="not checked: database unavailable"),
        },
    )
