"""email expiry: messages not worth sending after a time (one-time codes)

Revision ID: a21fbab26c82
Revises: 411e6c561064
Create Date: 2026-11-22 03:47:01.226359
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "a21fbab26c82"
down_revision: str | Sequence[str] | None = "411e6c561064"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("email_notification", schema=None) as batch_op:
        batch_op.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("email_notification", schema=None) as batch_op:
        batch_op.drop_column("expires_at")
