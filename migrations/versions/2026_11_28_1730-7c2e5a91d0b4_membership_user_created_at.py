"""memberships carry their user's created_at, kept by the database

Revision ID: 7c2e5a91d0b4
Revises: b3c1f33377e7
Create Date: 2026-11-28 17:30:00.000000

Written by hand (triggers). A filtered admin page (Galaxy, pending) lists a target's
members in one state newest user first. Walking app_user in that order and testing each
user against the target's pending ids cost ~4.5 ms of Postgres a page at 100,000 users;
with the user's created_at on the membership row, the page is a range of one index
(target, status, user_created_at, user_id), read backwards: ~0.7 ms for page 5.

The copy is the database's, not the application's: a trigger fills it on every insert
(and on any write to user_id or to the copy itself), and a change of app_user.created_at
is carried to the user's memberships, so no writer (the ORM, the sync's COPY, the legacy
import) can leave it stale. The index replaces the (target, status) index, whose work it
does too.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "7c2e5a91d0b4"
down_revision: str | Sequence[str] | None = "b3c1f33377e7"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = (("platform_membership", "platform_id"), ("group_membership", "group_id"))


def _index(table: str, target: str) -> str:
    return f"ix_{table}_{target}_approval_status"


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for table, _target in TABLES:
        op.add_column(
            table, sa.Column("user_created_at", sa.DateTime(timezone=True), nullable=True)
        )
    if postgres:
        op.execute(
            "CREATE FUNCTION membership_user_created_at() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN "
            "NEW.user_created_at := (SELECT u.created_at FROM app_user u WHERE u.id = NEW.user_id); "
            "RETURN NEW; "
            "END $$"
        )
        op.execute(
            "CREATE FUNCTION app_user_created_at_to_memberships() RETURNS trigger "
            "LANGUAGE plpgsql AS $$ "
            "BEGIN "
            "UPDATE platform_membership SET user_created_at = NEW.created_at "
            "WHERE user_id = NEW.id; "
            "UPDATE group_membership SET user_created_at = NEW.created_at WHERE user_id = NEW.id; "
            "RETURN NULL; "
            "END $$"
        )
        for table, _target in TABLES:
            op.execute(
                f"CREATE TRIGGER {table}_user_created_at "
                f"BEFORE INSERT OR UPDATE OF user_id, user_created_at ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION membership_user_created_at()"
            )
            op.execute(
                f"UPDATE {table} m SET user_created_at = u.created_at "
                "FROM app_user u WHERE u.id = m.user_id"
            )
        op.execute(
            "CREATE TRIGGER app_user_created_at_to_memberships AFTER UPDATE OF created_at "
            "ON app_user FOR EACH ROW WHEN (OLD.created_at IS DISTINCT FROM NEW.created_at) "
            "EXECUTE FUNCTION app_user_created_at_to_memberships()"
        )
    else:
        # SQLite's triggers cannot assign NEW: they write the row again after it lands
        # (recursive triggers are off, and the WHEN stops a second pass anyway).
        for table, _target in TABLES:
            copy = (
                f"UPDATE {table} SET user_created_at = "
                "(SELECT created_at FROM app_user WHERE id = NEW.user_id) WHERE id = NEW.id;"
            )
            op.execute(
                f"CREATE TRIGGER {table}_user_created_at_insert AFTER INSERT ON {table} "
                f"BEGIN {copy} END"
            )
            op.execute(
                f"CREATE TRIGGER {table}_user_created_at_update "
                f"AFTER UPDATE OF user_id, user_created_at ON {table} "
                "WHEN NEW.user_created_at IS NOT "
                "(SELECT created_at FROM app_user WHERE id = NEW.user_id) "
                f"BEGIN {copy} END"
            )
            op.execute(
                f"UPDATE {table} SET user_created_at = "
                f"(SELECT created_at FROM app_user WHERE app_user.id = {table}.user_id)"
            )
        op.execute(
            "CREATE TRIGGER app_user_created_at_to_memberships AFTER UPDATE OF created_at "
            "ON app_user WHEN OLD.created_at IS NOT NEW.created_at BEGIN "
            "UPDATE platform_membership SET user_created_at = NEW.created_at "
            "WHERE user_id = NEW.id; "
            "UPDATE group_membership SET user_created_at = NEW.created_at WHERE user_id = NEW.id; "
            "END"
        )
    for table, target in TABLES:
        op.drop_index(_index(table, target), table_name=table)
        op.create_index(
            _index(table, target), table, [target, "approval_status", "user_created_at", "user_id"]
        )


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    op.execute(
        "DROP TRIGGER IF EXISTS app_user_created_at_to_memberships"
        + (" ON app_user" if postgres else "")
    )
    for table, target in TABLES:
        if postgres:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_user_created_at ON {table}")
        else:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_user_created_at_insert")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_user_created_at_update")
        op.drop_index(_index(table, target), table_name=table)
        if postgres:
            op.create_index(
                _index(table, target),
                table,
                [target, "approval_status"],
                postgresql_include=["user_id"],
            )
        else:
            op.create_index(_index(table, target), table, [target, "approval_status"])
        op.drop_column(table, "user_created_at")
    if postgres:
        op.execute("DROP FUNCTION IF EXISTS app_user_created_at_to_memberships()")
        op.execute("DROP FUNCTION IF EXISTS membership_user_created_at()")
