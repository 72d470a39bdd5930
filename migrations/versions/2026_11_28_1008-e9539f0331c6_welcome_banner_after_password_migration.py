"""welcome banner after password migration

Revision ID: e9539f0331c6
Revises: fb179cfdf22e
Create Date: 2026-11-28 10:08:56.904879
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "e9539f0331c6"
down_revision: str | Sequence[str] | None = "fb179cfdf22e"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ALTER TABLE (no batch): on SQLite a batch would copy app_user and lose its
    # triggers.
    op.add_column(
        "app_user",
        sa.Column("welcome_pending", sa.Boolean(), server_default=sa.false(), nullable=False),
    )


def downgrade() -> None:
    op.drop_column("app_user", "welcome_pending")
