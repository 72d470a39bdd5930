"""Platforms and groups. Both are derived from Auth0 role names by the sync:

- `{ns}/platform/{id}` is the access role of platform `{id}`;
- `{ns}/group/{id}` is group `{ns}/group/{id}` (the group id is the role name, as the
  portal has always used it);
- `{ns}/role/{id}/admin` administers platform or group `{id}`.
"""

from datetime import datetime
from typing import TYPE_CHECKING

from sqlmodel import Field, Relationship

from db.base import TableBase, created_at_field, timestamp_field, updated_at_field

if TYPE_CHECKING:
    from db.models.role import Auth0Role


class PlatformAdminRole(TableBase, table=True):
    __tablename__ = "platform_admin_role"

    platform_id: str = Field(
        foreign_key="platform.id", primary_key=True, ondelete="CASCADE", max_length=64
    )
    role_id: str = Field(
        foreign_key="auth0_role.id", primary_key=True, ondelete="CASCADE", max_length=64
    )


class GroupAdminRole(TableBase, table=True):
    __tablename__ = "group_admin_role"

    group_id: str = Field(
        foreign_key="portal_group.id", primary_key=True, ondelete="CASCADE", max_length=255
    )
    role_id: str = Field(
        foreign_key="auth0_role.id", primary_key=True, ondelete="CASCADE", max_length=64
    )


class Platform(TableBase, table=True):
    __tablename__ = "platform"

    id: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=255)
    short_name: str | None = Field(default=None, max_length=64)
    access_role_id: str | None = Field(
        default=None,
        foreign_key="auth0_role.id",
        ondelete="SET NULL",
        unique=True,
        max_length=64,
    )
    removed_at: datetime | None = timestamp_field()
    created_at: datetime = created_at_field()
    updated_at: datetime = updated_at_field()

    access_role: "Auth0Role" = Relationship(sa_relationship_kwargs={"lazy": "raise"})
    admin_roles: list["Auth0Role"] = Relationship(
        link_model=PlatformAdminRole, sa_relationship_kwargs={"lazy": "raise"}
    )


class Group(TableBase, table=True):
    __tablename__ = "portal_group"

    id: str = Field(primary_key=True, max_length=255)
    name: str = Field(max_length=255)
    short_name: str | None = Field(default=None, max_length=64)
    access_role_id: str | None = Field(
        default=None,
        foreign_key="auth0_role.id",
        ondelete="SET NULL",
        unique=True,
        max_length=64,
    )
    removed_at: datetime | None = timestamp_field()
    created_at: datetime = created_at_field()
    updated_at: datetime = updated_at_field()

    access_role: "Auth0Role" = Relationship(sa_relationship_kwargs={"lazy": "raise"})
    admin_roles: list["Auth0Role"] = Relationship(
        link_model=GroupAdminRole, sa_relationship_kwargs={"lazy": "raise"}
    )
