"""membership status statistics: joint (target, status) statistics for the planner

Admins filter users by "pending for platform X". Postgres estimates that as
(share of X) times (share of pending) over the whole table; with thousands of pending
requests for one target and none for another, it expected ~1,800 matches where there
were none, and walked every user in created_at order looking for them (~300 ms at
100,000 users instead of 0.1 ms). Multivariate MCV statistics give it the real
combinations. Postgres only: SQLite has no such statistics.

Revision ID: b405263d6e12
Revises: 8fac0fd7d2c8
Create Date: 2026-11-22 07:54:49.845124
"""

from collections.abc import Sequence

from alembic import op

revision: str = "b405263d6e12"
down_revision: str | Sequence[str] | None = "8fac0fd7d2c8"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATISTICS = {
    "st_platform_membership_platform_id_approval_status": ("platform_membership", "platform_id"),
    "st_group_membership_group_id_approval_status": ("group_membership", "group_id"),
}


def upgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    for name, (table, target) in STATISTICS.items():
        op.execute(f"CREATE STATISTICS {name} (mcv) ON {target}, approval_status FROM {table}")
        # Built by the next ANALYZE; without one, the planner would not use them until
        # autovacuum got round to the table.
        op.execute(f"ANALYZE {table}")


def downgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    for name in STATISTICS:
        op.execute(f"DROP STATISTICS IF EXISTS {name}")
