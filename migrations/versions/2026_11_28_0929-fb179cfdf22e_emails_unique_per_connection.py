"""emails unique per connection

Revision ID: fb179cfdf22e
Revises: 54bb4611d8ab
Create Date: 2026-11-28 09:29:35.234656
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "fb179cfdf22e"
down_revision: str | Sequence[str] | None = "54bb4611d8ab"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# Plain index operations (no batch mode): on SQLite a batch would copy app_user.
LIVE = sa.text("NOT is_deleted")


def upgrade() -> None:
    op.drop_index("uq_app_user_email_lower", table_name="app_user")
    op.create_index(
        "uq_app_user_email_lower_connection",
        "app_user",
        [sa.literal_column("lower(email)"), sa.literal_column("coalesce(connection, '')")],
        unique=True,
        postgresql_where=LIVE,
        sqlite_where=LIVE,
    )


def downgrade() -> None:
    # Fails if two live accounts of different connections now share an address: which
    # one should give it up is a decision for a person, not a migration.
    op.drop_index("uq_app_user_email_lower_connection", table_name="app_user")
    op.create_index(
        "uq_app_user_email_lower",
        "app_user",
        [sa.literal_column("lower(email)")],
        unique=True,
        postgresql_where=LIVE,
        sqlite_where=LIVE,
    )
