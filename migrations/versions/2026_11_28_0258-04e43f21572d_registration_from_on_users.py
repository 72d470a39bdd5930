"""registration_from on users

Revision ID: 04e43f21572d
Revises: dfb2d0ec8548
Create Date: 2026-11-28 02:58:10.130252
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "04e43f21572d"
down_revision: str | Sequence[str] | None = "dfb2d0ec8548"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ALTER TABLE on both backends: a SQLite batch rebuild of app_user would drop
    # its expression indexes (lower(email), lower(username)), which batch mode cannot copy.
    op.add_column("app_user", sa.Column("registration_from", sa.String(length=64), nullable=True))


def downgrade() -> None:
    op.execute("ALTER TABLE app_user DROP COLUMN registration_from")
