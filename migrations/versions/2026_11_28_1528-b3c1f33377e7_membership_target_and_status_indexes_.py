"""membership target and status indexes cover user_id

Revision ID: b3c1f33377e7
Revises: d41c9970aca9
Create Date: 2026-11-28 15:28:30.091500

Written by hand: Alembic's comparison does not see an index's INCLUDE columns. Postgres
only (SQLite has no covering indexes; its index stays as it was).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "b3c1f33377e7"
down_revision: str | Sequence[str] | None = "d41c9970aca9"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = (
    ("ix_platform_membership_platform_id_approval_status", "platform_membership", "platform_id"),
    ("ix_group_membership_group_id_approval_status", "group_membership", "group_id"),
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name, table, target in INDEXES:
        op.drop_index(name, table_name=table)
        op.create_index(name, table, [target, "approval_status"], postgresql_include=["user_id"])


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name, table, target in INDEXES:
        op.drop_index(name, table_name=table)
        op.create_index(name, table, [target, "approval_status"])
