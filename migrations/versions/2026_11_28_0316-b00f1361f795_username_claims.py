"""username claims: every username anyone held, reserved for them for good

The old rule read `user_history.username`, but a rename's history row holds the *new*
name there (the old one only in `previous_value`), and users who came in through the
sync had no row holding their first name: a renamed user's old name became free. The
claims are filled from every name the database shows anyone held: current usernames,
history rows' usernames, and both sides of every recorded rename. A name with several
holders goes to the live account holding it now, else to whoever held it first.

Revision ID: b00f1361f795
Revises: 04e43f21572d
Create Date: 2026-11-28 03:16:27.737820
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "b00f1361f795"
down_revision: str | Sequence[str] | None = "04e43f21572d"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "username_claim",
        sa.Column("username", sa.String(length=128), nullable=False),
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column(
            "claimed_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["app_user.id"], name=op.f("fk_username_claim_user_id_app_user")
        ),
        sa.PrimaryKeyConstraint("username", name=op.f("pk_username_claim")),
    )
    op.create_index(op.f("ix_username_claim_user_id"), "username_claim", ["user_id"])
    op.execute(BACKFILL)
    _create_triggers()


def downgrade() -> None:
    _drop_triggers()
    op.drop_index(op.f("ix_username_claim_user_id"), table_name="username_claim")
    op.drop_table("username_claim")


BACKFILL = """
INSERT INTO username_claim (username, user_id, claimed_at)
SELECT name, user_id, held_at FROM (
    SELECT name, user_id, held_at,
           ROW_NUMBER() OVER (PARTITION BY name ORDER BY holds_now DESC, held_at, user_id) AS n
    FROM (
        SELECT lower(username) AS name, id AS user_id, created_at AS held_at,
               CASE WHEN is_deleted THEN 0 ELSE 1 END AS holds_now
        FROM app_user WHERE username IS NOT NULL
        UNION ALL
        SELECT lower(username), user_id, created_at, 0
        FROM user_history WHERE username IS NOT NULL
        UNION ALL
        SELECT lower(previous_value), user_id, created_at, 0
        FROM user_history WHERE change = 'username_update' AND previous_value IS NOT NULL
        UNION ALL
        SELECT lower(new_value), user_id, created_at, 0
        FROM user_history WHERE change = 'username_update' AND new_value IS NOT NULL
    ) AS held
) AS ranked
WHERE n = 1
"""

# A row written with a username claims it; a name someone else claimed is refused.
POSTGRES_FUNCTION = """
CREATE FUNCTION claim_username() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    holder text;
BEGIN
    INSERT INTO username_claim (username, user_id) VALUES (lower(NEW.username), NEW.id)
        ON CONFLICT (username) DO NOTHING;
    SELECT user_id INTO holder FROM username_claim WHERE username = lower(NEW.username);
    IF holder <> NEW.id THEN
        RAISE EXCEPTION 'username % was held by another account', NEW.username
            USING ERRCODE = 'unique_violation', CONSTRAINT = 'pk_username_claim';
    END IF;
    RETURN NEW;
END;
$$
"""
SQLITE_BODY = """
BEGIN
    SELECT RAISE(ABORT, 'username was held by another account')
    FROM username_claim WHERE username = lower(NEW.username) AND user_id <> NEW.id;
    INSERT OR IGNORE INTO username_claim (username, user_id, claimed_at)
    VALUES (lower(NEW.username), NEW.id, strftime('%Y-%m-%d %H:%M:%S', 'now'));
END
"""


def _create_triggers() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute(POSTGRES_FUNCTION)
        op.execute(
            "CREATE TRIGGER app_user_claim_username_insert AFTER INSERT ON app_user "
            "FOR EACH ROW WHEN (NEW.username IS NOT NULL) EXECUTE FUNCTION claim_username()"
        )
        op.execute(
            "CREATE TRIGGER app_user_claim_username_update AFTER UPDATE OF username ON app_user "
            "FOR EACH ROW WHEN (NEW.username IS NOT NULL AND NEW.username IS DISTINCT FROM "
            "OLD.username) EXECUTE FUNCTION claim_username()"
        )
    else:
        op.execute(
            "CREATE TRIGGER app_user_claim_username_insert AFTER INSERT ON app_user "
            "WHEN NEW.username IS NOT NULL" + SQLITE_BODY
        )
        op.execute(
            "CREATE TRIGGER app_user_claim_username_update AFTER UPDATE OF username ON app_user "
            "WHEN NEW.username IS NOT NULL AND (OLD.username IS NULL OR NEW.username <> "
            "OLD.username)" + SQLITE_BODY
        )


def _drop_triggers() -> None:
    for name in ("app_user_claim_username_insert", "app_user_claim_username_update"):
        if op.get_context().dialect.name == "postgresql":
            op.execute(f"DROP TRIGGER IF EXISTS {name} ON app_user")
        else:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    if op.get_context().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS claim_username()")
