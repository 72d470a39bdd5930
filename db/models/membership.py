"""Platform and group memberships, one row per (user, platform|group), with append-only
histories. The membership row holds the current state; every transition also writes a
history row, which the database refuses to update or delete."""

import uuid
from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlmodel import Field, Relationship

from db.base import (
    BIGINT_PK,
    TableBase,
    UTCDateTime,
    created_at_field,
    enum_column,
    updated_at_field,
    uuid_pk_field,
)
from db.types import ApprovalStatus

if TYPE_CHECKING:
    from db.models.catalog import Group, Platform
    from db.models.user import User


class PlatformMembership(TableBase, table=True):
    __tablename__ = "platform_membership"
    __table_args__ = (sa.UniqueConstraint("platform_id", "user_id"),)

    id: uuid.UUID = uuid_pk_field()
    platform_id: str = Field(foreign_key="platform.id", max_length=64)
    user_id: str = Field(foreign_key="app_user.id", index=True, max_length=255)
    approval_status: ApprovalStatus = Field(sa_column=enum_column(ApprovalStatus))
    request_reason: str | None = Field(default=None, max_length=255)
    revocation_reason: str | None = Field(default=None, max_length=1024)
    updated_by_id: str | None = Field(
        default=None, foreign_key="app_user.id", ondelete="SET NULL", max_length=255
    )
    created_at: datetime = created_at_field()
    updated_at: datetime = updated_at_field()
    # The member's own app_user.created_at, copied by the database (triggers in migration
    # 7c2e5a91d0b4, on Postgres and SQLite; whatever the application writes here is
    # overwritten), so that a target's members in one state can be walked in the admin
    # list's order (newest user first) from one index, without visiting app_user.
    user_created_at: datetime | None = Field(
        default=None, sa_column=sa.Column(UTCDateTime(), nullable=True)
    )

    user: "User" = Relationship(
        back_populates="platform_memberships",
        sa_relationship_kwargs={"lazy": "raise", "foreign_keys": "[PlatformMembership.user_id]"},
    )
    updated_by: "User" = Relationship(
        sa_relationship_kwargs={
            "lazy": "raise",
            "foreign_keys": "[PlatformMembership.updated_by_id]",
        },
    )
    platform: "Platform" = Relationship(sa_relationship_kwargs={"lazy": "raise"})


# /db-admin lists memberships most recently changed first.
sa.Index("ix_platform_membership_updated_at", PlatformMembership.__table__.c.updated_at)
# A target's members in one state, in the admin list's order (read backwards: newest
# user first): a filtered page (Galaxy, pending) is the next 50 entries of this index,
# and its count or its ids are read from the index alone.
sa.Index(
    "ix_platform_membership_platform_id_approval_status",
    PlatformMembership.__table__.c.platform_id,
    PlatformMembership.__table__.c.approval_status,
    PlatformMembership.__table__.c.user_created_at,
    PlatformMembership.__table__.c.user_id,
)


class PlatformMembershipHistory(TableBase, table=True):
    __tablename__ = "platform_membership_history"

    id: int | None = Field(default=None, sa_column=sa.Column(BIGINT_PK, primary_key=True))
    membership_id: uuid.UUID = Field(foreign_key="platform_membership.id")
    platform_id: str = Field(foreign_key="platform.id", max_length=64)
    user_id: str = Field(foreign_key="app_user.id", index=True, max_length=255)
    approval_status: ApprovalStatus = Field(sa_column=enum_column(ApprovalStatus))
    reason: str | None = Field(default=None, max_length=1024)
    updated_by_id: str | None = Field(default=None, foreign_key="app_user.id", max_length=255)
    created_at: datetime = created_at_field()


sa.Index(
    "ix_platform_membership_history_membership_id_created_at",
    PlatformMembershipHistory.__table__.c.membership_id,
    PlatformMembershipHistory.__table__.c.created_at,
)


class GroupMembership(TableBase, table=True):
    __tablename__ = "group_membership"
    __table_args__ = (sa.UniqueConstraint("group_id", "user_id"),)

    id: uuid.UUID = uuid_pk_field()
    group_id: str = Field(foreign_key="portal_group.id", max_length=255)
    user_id: str = Field(foreign_key="app_user.id", index=True, max_length=255)
    approval_status: ApprovalStatus = Field(sa_column=enum_column(ApprovalStatus))
    request_reason: str | None = Field(default=None, max_length=255)
    revocation_reason: str | None = Field(default=None, max_length=1024)
    rejection_reason: str | None = Field(default=None, max_length=255)
    updated_by_id: str | None = Field(
        default=None, foreign_key="app_user.id", ondelete="SET NULL", max_length=255
    )
    created_at: datetime = created_at_field()
    updated_at: datetime = updated_at_field()
    # The member's own app_user.created_at, copied by the database (triggers in migration
    # 7c2e5a91d0b4, on Postgres and SQLite; whatever the application writes here is
    # overwritten), so that a target's members in one state can be walked in the admin
    # list's order (newest user first) from one index, without visiting app_user.
    user_created_at: datetime | None = Field(
        default=None, sa_column=sa.Column(UTCDateTime(), nullable=True)
    )

    user: "User" = Relationship(
        back_populates="group_memberships",
        sa_relationship_kwargs={"lazy": "raise", "foreign_keys": "[GroupMembership.user_id]"},
    )
    updated_by: "User" = Relationship(
        sa_relationship_kwargs={"lazy": "raise", "foreign_keys": "[GroupMembership.updated_by_id]"},
    )
    group: "Group" = Relationship(sa_relationship_kwargs={"lazy": "raise"})


sa.Index("ix_group_membership_updated_at", GroupMembership.__table__.c.updated_at)
sa.Index(
    "ix_group_membership_group_id_approval_status",
    GroupMembership.__table__.c.group_id,
    GroupMembership.__table__.c.approval_status,
    GroupMembership.__table__.c.user_created_at,
    GroupMembership.__table__.c.user_id,
)


class GroupMembershipHistory(TableBase, table=True):
    __tablename__ = "group_membership_history"

    id: int | None = Field(default=None, sa_column=sa.Column(BIGINT_PK, primary_key=True))
    membership_id: uuid.UUID = Field(foreign_key="group_membership.id")
    group_id: str = Field(foreign_key="portal_group.id", max_length=255)
    user_id: str = Field(foreign_key="app_user.id", index=True, max_length=255)
    approval_status: ApprovalStatus = Field(sa_column=enum_column(ApprovalStatus))
    reason: str | None = Field(default=None, max_length=1024)
    updated_by_id: str | None = Field(default=None, foreign_key="app_user.id", max_length=255)
    created_at: datetime = created_at_field()


sa.Index(
    "ix_group_membership_history_membership_id_created_at",
    GroupMembershipHistory.__table__.c.membership_id,
    GroupMembershipHistory.__table__.c.created_at,
)
