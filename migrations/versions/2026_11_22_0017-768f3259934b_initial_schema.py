"""initial schema

Revision ID: 768f3259934b
Revises: (none)
Create Date: 2026-11-22 00:17:24.579014
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# History tables are append-only: the database itself refuses to rewrite them.
APPEND_ONLY_TABLES = ("user_history", "platform_membership_history", "group_membership_history")

revision: str = "768f3259934b"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "app_user",
        sa.Column("id", sa.String(length=255), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("email_verified", sa.Boolean(), nullable=False),
        sa.Column("username", sa.String(length=128), nullable=True),
        sa.Column("name", sa.String(length=255), nullable=True),
        sa.Column("given_name", sa.String(length=255), nullable=True),
        sa.Column("family_name", sa.String(length=255), nullable=True),
        sa.Column("picture", sa.Text(), nullable=True),
        sa.Column("connection", sa.String(length=128), nullable=True),
        sa.Column("blocked", sa.Boolean(), nullable=False),
        sa.Column("is_deleted", sa.Boolean(), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deleted_by_id", sa.String(length=255), nullable=True),
        sa.Column("deletion_reason", sa.String(length=1024), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("last_login", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_synced_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["deleted_by_id"],
            ["app_user.id"],
            name=op.f("fk_app_user_deleted_by_id_app_user"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_app_user")),
    )
    with op.batch_alter_table("app_user", schema=None) as batch_op:
        batch_op.create_index("ix_app_user_created_at_id", ["created_at", "id"], unique=False)
        batch_op.create_index(
            "ix_app_user_is_deleted_email_verified", ["is_deleted", "email_verified"], unique=False
        )
        batch_op.create_index(
            "uq_app_user_email_lower",
            [sa.literal_column("lower(email)")],
            unique=True,
            postgresql_where=sa.text("NOT is_deleted"),
            sqlite_where=sa.text("NOT is_deleted"),
        )
        batch_op.create_index(
            "uq_app_user_username_lower",
            [sa.literal_column("lower(username)")],
            unique=True,
            postgresql_where=sa.text("NOT is_deleted"),
            sqlite_where=sa.text("NOT is_deleted"),
        )

    op.create_table(
        "auth0_role",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.String(length=1024), nullable=True),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("last_synced_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_auth0_role")),
    )
    with op.batch_alter_table("auth0_role", schema=None) as batch_op:
        batch_op.create_index(
            "uq_auth0_role_name_live",
            ["name"],
            unique=True,
            postgresql_where=sa.text("removed_at IS NULL"),
            sqlite_where=sa.text("removed_at IS NULL"),
        )
    op.create_table(
        "email_notification",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("to_address", sa.String(length=320), nullable=False),
        sa.Column("from_address", sa.String(length=320), nullable=True),
        sa.Column("subject", sa.String(length=998), nullable=False),
        sa.Column("body_html", sa.Text(), nullable=False),
        sa.Column("body_text", sa.Text(), nullable=True),
        sa.Column("template", sa.String(length=64), nullable=True),
        sa.Column("dedupe_key", sa.String(length=255), nullable=True),
        sa.Column("priority", sa.SmallInteger(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "sending",
                "sent",
                "failed",
                name="emailstatus",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("send_after", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_email_notification")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_email_notification_dedupe_key")),
    )
    with op.batch_alter_table("email_notification", schema=None) as batch_op:
        batch_op.create_index("ix_email_notification_created_at", ["created_at"], unique=False)
        batch_op.create_index(
            "ix_email_notification_status_priority_send_after",
            ["status", "priority", "send_after"],
            unique=False,
        )

    op.create_table(
        "sync_run",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("job", sa.String(length=64), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "running",
                "succeeded",
                "failed",
                "skipped",
                name="syncrunstatus",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        sa.Column(
            "started_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("host", sa.String(length=255), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_run")),
    )
    with op.batch_alter_table("sync_run", schema=None) as batch_op:
        batch_op.create_index("ix_sync_run_job_started_at", ["job", "started_at"], unique=False)
        batch_op.create_index("ix_sync_run_started_at", ["started_at"], unique=False)

    op.create_table(
        "auth0_outbox",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "operation",
            sa.Enum(
                "grant_role",
                "revoke_role",
                name="outboxoperation",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("role_id", sa.String(length=64), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "in_progress",
                "done",
                "failed",
                name="outboxstatus",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("requested_by_id", sa.String(length=255), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["requested_by_id"],
            ["app_user.id"],
            name=op.f("fk_auth0_outbox_requested_by_id_app_user"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["role_id"], ["auth0_role.id"], name=op.f("fk_auth0_outbox_role_id_auth0_role")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["app_user.id"], name=op.f("fk_auth0_outbox_user_id_app_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_auth0_outbox")),
    )
    with op.batch_alter_table("auth0_outbox", schema=None) as batch_op:
        batch_op.create_index(
            "ix_auth0_outbox_status_next_attempt_at", ["status", "next_attempt_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_auth0_outbox_user_id"), ["user_id"], unique=False)

    op.create_table(
        "email_change_otp",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("target_email", sa.String(length=320), nullable=False),
        sa.Column("otp_hash", sa.String(length=128), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("consumed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["app_user.id"], name=op.f("fk_email_change_otp_user_id_app_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_email_change_otp")),
    )
    with op.batch_alter_table("email_change_otp", schema=None) as batch_op:
        batch_op.create_index("ix_email_change_otp_expires_at", ["expires_at"], unique=False)
        batch_op.create_index(
            "uq_email_change_otp_user_id_active",
            ["user_id"],
            unique=True,
            postgresql_where=sa.text("is_active"),
            sqlite_where=sa.text("is_active"),
        )

    op.create_table(
        "platform",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("short_name", sa.String(length=64), nullable=True),
        sa.Column("access_role_id", sa.String(length=64), nullable=True),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["access_role_id"],
            ["auth0_role.id"],
            name=op.f("fk_platform_access_role_id_auth0_role"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_platform")),
        sa.UniqueConstraint("access_role_id", name=op.f("uq_platform_access_role_id")),
    )
    op.create_table(
        "portal_group",
        sa.Column("id", sa.String(length=255), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("short_name", sa.String(length=64), nullable=True),
        sa.Column("access_role_id", sa.String(length=64), nullable=True),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["access_role_id"],
            ["auth0_role.id"],
            name=op.f("fk_portal_group_access_role_id_auth0_role"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_portal_group")),
        sa.UniqueConstraint("access_role_id", name=op.f("uq_portal_group_access_role_id")),
    )
    op.create_table(
        "user_history",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column(
            "change",
            sa.Enum(
                "created",
                "email_update",
                "username_update",
                "profile_update",
                "blocked",
                "unblocked",
                "user_deletion",
                "user_restoration",
                name="userchange",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("username", sa.String(length=128), nullable=True),
        sa.Column("previous_value", sa.String(length=1024), nullable=True),
        sa.Column("new_value", sa.String(length=1024), nullable=True),
        sa.Column("changed_by_id", sa.String(length=255), nullable=True),
        sa.Column("reason", sa.String(length=1024), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["changed_by_id"], ["app_user.id"], name=op.f("fk_user_history_changed_by_id_app_user")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["app_user.id"], name=op.f("fk_user_history_user_id_app_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_history")),
    )
    with op.batch_alter_table("user_history", schema=None) as batch_op:
        batch_op.create_index(
            "ix_user_history_user_id_created_at", ["user_id", "created_at"], unique=False
        )
        batch_op.create_index(
            "ix_user_history_username_lower", [sa.literal_column("lower(username)")], unique=False
        )

    op.create_table(
        "group_admin_role",
        sa.Column("group_id", sa.String(length=255), nullable=False),
        sa.Column("role_id", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["portal_group.id"],
            name=op.f("fk_group_admin_role_group_id_portal_group"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["role_id"],
            ["auth0_role.id"],
            name=op.f("fk_group_admin_role_role_id_auth0_role"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("group_id", "role_id", name=op.f("pk_group_admin_role")),
    )
    op.create_table(
        "group_membership",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("group_id", sa.String(length=255), nullable=False),
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column(
            "approval_status",
            sa.Enum(
                "pending",
                "approved",
                "revoked",
                "rejected",
                name="approvalstatus",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("request_reason", sa.String(length=255), nullable=True),
        sa.Column("revocation_reason", sa.String(length=1024), nullable=True),
        sa.Column("rejection_reason", sa.String(length=255), nullable=True),
        sa.Column("updated_by_id", sa.String(length=255), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["portal_group.id"],
            name=op.f("fk_group_membership_group_id_portal_group"),
        ),
        sa.ForeignKeyConstraint(
            ["updated_by_id"],
            ["app_user.id"],
            name=op.f("fk_group_membership_updated_by_id_app_user"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["app_user.id"], name=op.f("fk_group_membership_user_id_app_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_group_membership")),
        sa.UniqueConstraint(
            "group_id", "user_id", name=op.f("uq_group_membership_group_id_user_id")
        ),
    )
    with op.batch_alter_table("group_membership", schema=None) as batch_op:
        batch_op.create_index(
            "ix_group_membership_group_id_approval_status",
            ["group_id", "approval_status"],
            unique=False,
        )
        batch_op.create_index(batch_op.f("ix_group_membership_user_id"), ["user_id"], unique=False)

    op.create_table(
        "platform_admin_role",
        sa.Column("platform_id", sa.String(length=64), nullable=False),
        sa.Column("role_id", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["platform_id"],
            ["platform.id"],
            name=op.f("fk_platform_admin_role_platform_id_platform"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["role_id"],
            ["auth0_role.id"],
            name=op.f("fk_platform_admin_role_role_id_auth0_role"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("platform_id", "role_id", name=op.f("pk_platform_admin_role")),
    )
    op.create_table(
        "platform_membership",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("platform_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column(
            "approval_status",
            sa.Enum(
                "pending",
                "approved",
                "revoked",
                "rejected",
                name="approvalstatus",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("request_reason", sa.String(length=255), nullable=True),
        sa.Column("revocation_reason", sa.String(length=1024), nullable=True),
        sa.Column("updated_by_id", sa.String(length=255), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["platform_id"],
            ["platform.id"],
            name=op.f("fk_platform_membership_platform_id_platform"),
        ),
        sa.ForeignKeyConstraint(
            ["updated_by_id"],
            ["app_user.id"],
            name=op.f("fk_platform_membership_updated_by_id_app_user"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["app_user.id"], name=op.f("fk_platform_membership_user_id_app_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_platform_membership")),
        sa.UniqueConstraint(
            "platform_id", "user_id", name=op.f("uq_platform_membership_platform_id_user_id")
        ),
    )
    with op.batch_alter_table("platform_membership", schema=None) as batch_op:
        batch_op.create_index(
            "ix_platform_membership_platform_id_approval_status",
            ["platform_id", "approval_status"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_platform_membership_user_id"), ["user_id"], unique=False
        )

    op.create_table(
        "group_membership_history",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("membership_id", sa.Uuid(), nullable=False),
        sa.Column("group_id", sa.String(length=255), nullable=False),
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column(
            "approval_status",
            sa.Enum(
                "pending",
                "approved",
                "revoked",
                "rejected",
                name="approvalstatus",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("reason", sa.String(length=1024), nullable=True),
        sa.Column("updated_by_id", sa.String(length=255), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["portal_group.id"],
            name=op.f("fk_group_membership_history_group_id_portal_group"),
        ),
        sa.ForeignKeyConstraint(
            ["membership_id"],
            ["group_membership.id"],
            name=op.f("fk_group_membership_history_membership_id_group_membership"),
        ),
        sa.ForeignKeyConstraint(
            ["updated_by_id"],
            ["app_user.id"],
            name=op.f("fk_group_membership_history_updated_by_id_app_user"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["app_user.id"], name=op.f("fk_group_membership_history_user_id_app_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_group_membership_history")),
    )
    with op.batch_alter_table("group_membership_history", schema=None) as batch_op:
        batch_op.create_index(
            "ix_group_membership_history_membership_id_created_at",
            ["membership_id", "created_at"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_group_membership_history_user_id"), ["user_id"], unique=False
        )

    op.create_table(
        "platform_membership_history",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("membership_id", sa.Uuid(), nullable=False),
        sa.Column("platform_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column(
            "approval_status",
            sa.Enum(
                "pending",
                "approved",
                "revoked",
                "rejected",
                name="approvalstatus",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("reason", sa.String(length=1024), nullable=True),
        sa.Column("updated_by_id", sa.String(length=255), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["membership_id"],
            ["platform_membership.id"],
            name=op.f("fk_platform_membership_history_membership_id_platform_membership"),
        ),
        sa.ForeignKeyConstraint(
            ["platform_id"],
            ["platform.id"],
            name=op.f("fk_platform_membership_history_platform_id_platform"),
        ),
        sa.ForeignKeyConstraint(
            ["updated_by_id"],
            ["app_user.id"],
            name=op.f("fk_platform_membership_history_updated_by_id_app_user"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["app_user.id"],
            name=op.f("fk_platform_membership_history_user_id_app_user"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_platform_membership_history")),
    )
    with op.batch_alter_table("platform_membership_history", schema=None) as batch_op:
        batch_op.create_index(
            "ix_platform_membership_history_membership_id_created_at",
            ["membership_id", "created_at"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_platform_membership_history_user_id"), ["user_id"], unique=False
        )

    _create_append_only_triggers()


def downgrade() -> None:
    _drop_append_only_triggers()
    with op.batch_alter_table("platform_membership_history", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_platform_membership_history_user_id"))
        batch_op.drop_index("ix_platform_membership_history_membership_id_created_at")

    op.drop_table("platform_membership_history")
    with op.batch_alter_table("group_membership_history", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_group_membership_history_user_id"))
        batch_op.drop_index("ix_group_membership_history_membership_id_created_at")

    op.drop_table("group_membership_history")
    with op.batch_alter_table("platform_membership", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_platform_membership_user_id"))
        batch_op.drop_index("ix_platform_membership_platform_id_approval_status")

    op.drop_table("platform_membership")
    op.drop_table("platform_admin_role")
    with op.batch_alter_table("group_membership", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_group_membership_user_id"))
        batch_op.drop_index("ix_group_membership_group_id_approval_status")

    op.drop_table("group_membership")
    op.drop_table("group_admin_role")
    with op.batch_alter_table("user_history", schema=None) as batch_op:
        batch_op.drop_index("ix_user_history_username_lower")
        batch_op.drop_index("ix_user_history_user_id_created_at")

    op.drop_table("user_history")
    op.drop_table("portal_group")
    op.drop_table("platform")
    with op.batch_alter_table("email_change_otp", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_email_change_otp_user_id_active",
            postgresql_where=sa.text("is_active"),
            sqlite_where=sa.text("is_active"),
        )
        batch_op.drop_index("ix_email_change_otp_expires_at")

    op.drop_table("email_change_otp")
    with op.batch_alter_table("auth0_outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_auth0_outbox_user_id"))
        batch_op.drop_index("ix_auth0_outbox_status_next_attempt_at")

    op.drop_table("auth0_outbox")
    with op.batch_alter_table("sync_run", schema=None) as batch_op:
        batch_op.drop_index("ix_sync_run_started_at")
        batch_op.drop_index("ix_sync_run_job_started_at")

    op.drop_table("sync_run")
    with op.batch_alter_table("email_notification", schema=None) as batch_op:
        batch_op.drop_index("ix_email_notification_status_priority_send_after")
        batch_op.drop_index("ix_email_notification_created_at")

    op.drop_table("email_notification")
    with op.batch_alter_table("auth0_role", schema=None) as batch_op:
        batch_op.drop_index("uq_auth0_role_name_live")

    op.drop_table("auth0_role")
    with op.batch_alter_table("app_user", schema=None) as batch_op:
        batch_op.drop_index("uq_app_user_username_lower")
        batch_op.drop_index("uq_app_user_email_lower")
        batch_op.drop_index("ix_app_user_is_deleted_email_verified")
        batch_op.drop_index("ix_app_user_created_at_id")

    op.drop_table("app_user")


def _create_append_only_triggers() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute(
            """
            CREATE FUNCTION refuse_history_rewrite() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
                    USING ERRCODE = 'restrict_violation';
            END;
            $$
            """
        )
        for table in APPEND_ONLY_TABLES:
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION refuse_history_rewrite()"
            )
            op.execute(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION refuse_history_rewrite()"
            )
    else:
        for table in APPEND_ONLY_TABLES:
            for action in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: {action} refused'); END"
                )


def _drop_append_only_triggers() -> None:
    if op.get_context().dialect.name == "postgresql":
        for table in APPEND_ONLY_TABLES:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
        op.execute("DROP FUNCTION IF EXISTS refuse_history_rewrite()")
    else:
        for table in APPEND_ONLY_TABLES:
            for action in ("update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{action}")
