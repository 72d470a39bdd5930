"""Reading the old database: every table the old backend wrote, as plain rows."""

import uuid
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, RowMapping
from sqlalchemy.ext.asyncio import create_async_engine

# The last revision of the old backend's migrations (v1.2.0). Another revision has another
# schema, which this import was not written for.
LEGACY_HEAD = "038392d88518"

TABLES = (
    "auth0role",
    "platform",
    "platformrolelink",
    "biocommonsgroup",
    "grouprolelink",
    "biocommons_user",
    "biocommonsuserhistory",
    "platformmembership",
    "platformmembershiphistory",
    "groupmembership",
    "groupmembershiphistory",
    "emailnotification",
    "email_change_otps",
)
# Made at run time by APScheduler 3's SQLAlchemyJobStore, so not in every old database.
JOB_STORE = "apscheduler_jobs"


class SourceRefused(Exception):
    """The source is not an old aai-backend database at LEGACY_HEAD."""


@dataclass
class Legacy:
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    scheduler_jobs: list[str] = field(default_factory=list)

    def __getitem__(self, table: str) -> list[dict[str, Any]]:
        return self.rows[table]


def _plain(row: RowMapping) -> dict[str, Any]:
    # asyncpg hands back its own UUID class; the target's rows compare against uuid.UUID.
    return {k: uuid.UUID(int=v.int) if isinstance(v, uuid.UUID) else v for k, v in row.items()}


async def read_legacy(url: URL) -> Legacy:
    """All rows of the old tables, read in one repeatable-read snapshot so the tables agree
    with each other even if the old backend is still writing (it should not be: the
    runbook stops it first)."""
    engine = create_async_engine(
        url, isolation_level="REPEATABLE READ", connect_args={"timeout": 10}
    )
    try:
        async with engine.connect() as conn:
            present = set(
                (
                    await conn.execute(
                        sa.text(
                            "SELECT table_name FROM information_schema.tables "
                            "WHERE table_schema = 'public'"
                        )
                    )
                ).scalars()
            )
            missing = [t for t in ("alembic_version", *TABLES) if t not in present]
            if missing:
                raise SourceRefused(
                    "not an aai-backend database (missing tables: " + ", ".join(missing) + ")"
                )
            revisions = list(
                (await conn.execute(sa.text("SELECT version_num FROM alembic_version"))).scalars()
            )
            if revisions != [LEGACY_HEAD]:
                raise SourceRefused(
                    f"the old database is at revision {', '.join(revisions) or '(none)'}; this "
                    f"import reads revision {LEGACY_HEAD} (old aai-backend v1.2.0): upgrade it "
                    "with the old backend's `alembic upgrade head` first"
                )
            legacy = Legacy()
            for table in TABLES:
                result = await conn.execute(sa.text(f"SELECT * FROM {table}"))  # noqa: S608 - names from TABLES
                legacy.rows[table] = [_plain(row) for row in result.mappings()]
            if JOB_STORE in present:
                jobs = sa.text("SELECT id FROM apscheduler_jobs ORDER BY id")
                legacy.scheduler_jobs = list((await conn.execute(jobs)).scalars())
            return legacy
    finally:
        await engine.dispose()
