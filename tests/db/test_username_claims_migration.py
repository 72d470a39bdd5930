"""The username-claims migration on a database with rows of the old layout.

Before it, a rename's history row held the *new* name in `username` and the old one only
in `previous_value`, and users who came in through the sync had no row holding their
first name; the migration must reserve every name anyone held, for the right account."""

import asyncio
import secrets
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy.engine import URL

from db.admin import create_database, drop_database
from db.base import UTCDateTime
from db.engine import create_engine
from db.migrations import alembic_config
from services.settings import to_async_url

BEFORE = "04e43f21572d"
CLAIMS = "b00f1361f795"

# (id, username now, deleted) and old-layout history rows (user, change, username, before, after)
USERS = [
    ("auth0|synced", "renamed_1", False),  # came in by sync as user_1, renamed here
    ("auth0|registered", "reg_2", False),  # registered here as reg_1, renamed
    ("auth0|reuser", "User_1", False),  # took user_1 while the bug let them
    ("auth0|gone", "gone_name", True),
    ("auth0|noname", None, False),
]
HISTORY = [
    ("auth0|synced", "username_update", "renamed_1", "user_1", "renamed_1"),
    ("auth0|registered", "created", "reg_1", None, None),
    ("auth0|registered", "username_update", "reg_2", "reg_1", "reg_2"),
]


async def _claims_after_upgrade(url: URL) -> dict[str, str]:
    await asyncio.to_thread(command.upgrade, alembic_config(url), BEFORE)
    engine = create_engine(url, process="tests")
    try:
        async with engine.begin() as connection:
            for user_id, username, deleted in USERS:
                await connection.execute(
                    sa.text(
                        "INSERT INTO app_user (id, username, email_verified, blocked, is_deleted,"
                        " created_at, updated_at) VALUES (:id, :username, false, false,"
                        " :deleted, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                    ),
                    {"id": user_id, "username": username, "deleted": deleted},
                )
            for n, (user_id, change, username, before, after) in enumerate(HISTORY):
                await connection.execute(
                    sa.text(
                        "INSERT INTO user_history (user_id, change, username, previous_value,"
                        " new_value, created_at) VALUES (:user_id, :change, :username, :before,"
                        " :after, :at)"
                    ).bindparams(sa.bindparam("at", type_=UTCDateTime())),
                    {
                        "user_id": user_id,
                        "change": change,
                        "username": username,
                        "before": before,
                        "after": after,
                        "at": datetime(2025, 1, n + 1, tzinfo=UTC),
                    },
                )
        await asyncio.to_thread(command.upgrade, alembic_config(url), CLAIMS)
        async with engine.connect() as connection:
            rows = await connection.execute(sa.text("SELECT username, user_id FROM username_claim"))
            return {str(username): str(user_id) for username, user_id in rows}
    finally:
        await engine.dispose()


EXPECTED = {
    # Held by the synced user before the rename: only previous_value said so.
    "renamed_1": "auth0|synced",
    # Its first holder renamed away and someone took it under the bug: the live holder
    # keeps it (a name in use cannot be taken back), and it is reserved from now on.
    "user_1": "auth0|reuser",
    "reg_1": "auth0|registered",
    "reg_2": "auth0|registered",
    "gone_name": "auth0|gone",  # deleted accounts keep their names too
}


async def test_postgres(pg_server_url: URL):
    name = f"aai_claims_{secrets.token_hex(3)}"
    url = await create_database(pg_server_url, name)
    try:
        assert await _claims_after_upgrade(url) == EXPECTED
    finally:
        await drop_database(pg_server_url, name)


@pytest.mark.sqlite
async def test_sqlite(tmp_path: Path):
    url = to_async_url(f"sqlite:///{tmp_path / 'claims.db'}")
    assert await _claims_after_upgrade(url) == EXPECTED
