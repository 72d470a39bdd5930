"""dashboard indexes: indexed default orders and search for /db-admin lists

Revision ID: 8fac0fd7d2c8
Revises: a21fbab26c82
Create Date: 2026-11-22 04:08:08.868408
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "8fac0fd7d2c8"
down_revision: str | Sequence[str] | None = "a21fbab26c82"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("app_user", schema=None) as batch_op:
        batch_op.create_index(
            "ix_app_user_deleted_at",
            ["deleted_at"],
            unique=False,
            postgresql_where=sa.text("is_deleted"),
            sqlite_where=sa.text("is_deleted"),
        )

    with op.batch_alter_table("email_notification", schema=None) as batch_op:
        batch_op.create_index("ix_email_notification_to_address", ["to_address"], unique=False)

    with op.batch_alter_table("group_membership", schema=None) as batch_op:
        batch_op.create_index("ix_group_membership_updated_at", ["updated_at"], unique=False)

    with op.batch_alter_table("platform_membership", schema=None) as batch_op:
        batch_op.create_index("ix_platform_membership_updated_at", ["updated_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("platform_membership", schema=None) as batch_op:
        batch_op.drop_index("ix_platform_membership_updated_at")

    with op.batch_alter_table("group_membership", schema=None) as batch_op:
        batch_op.drop_index("ix_group_membership_updated_at")

    with op.batch_alter_table("email_notification", schema=None) as batch_op:
        batch_op.drop_index("ix_email_notification_to_address")

    with op.batch_alter_table("app_user", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_app_user_deleted_at",
            postgresql_where=sa.text("is_deleted"),
            sqlite_where=sa.text("is_deleted"),
        )
