"""admin search indexes: trigram indexes on lower(email) and lower(username)

PostgreSQL only (pg_trgm, a trusted extension the database owner may create); SQLite,
the embedded dev database, searches by scanning.

Revision ID: 411e6c561064
Revises: 768f3259934b
Create Date: 2026-11-22 02:44:22.533373
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "411e6c561064"
down_revision: str | Sequence[str] | None = "768f3259934b"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ("email", "username")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for column in COLUMNS:
        op.create_index(
            f"ix_app_user_{column}_trgm",
            "app_user",
            [sa.literal_column(f"lower({column})").label(f"{column}_lower")],
            postgresql_using="gin",
            postgresql_ops={f"{column}_lower": "gin_trgm_ops"},
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for column in COLUMNS:
        op.drop_index(f"ix_app_user_{column}_trgm", table_name="app_user")
    # pg_trgm stays: other schemas in the database may use it.
