"""Shapes of the general admins' catalog endpoints (/biocommons-admin)."""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

ROLE_NAME = r"^[A-Za-z0-9][A-Za-z0-9_./|:-]*$"
IDENTIFIER = r"^[a-z0-9][a-z0-9_-]*$"


class RoleCreate(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")
    name: str = Field(min_length=1, max_length=255, pattern=ROLE_NAME)
    description: str | None = Field(default=None, max_length=140)


class RolePublic(BaseModel):
    id: str
    name: str
    description: str | None
    created: bool  # false: the role already existed and was returned as it is


class PlatformCreate(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")
    id: str = Field(min_length=1, max_length=64, pattern=IDENTIFIER)
    name: str = Field(min_length=1, max_length=140)
    admin_roles: list[str] = Field(default_factory=list, max_length=20)


class GroupCreate(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")
    group_id: str = Field(min_length=1, max_length=255)
    name: str = Field(min_length=1, max_length=140)
    short_name: str | None = Field(default=None, min_length=1, max_length=64)
    admin_roles: list[str] = Field(default_factory=list, max_length=20)


class AdminRolesUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role_names: list[str] = Field(max_length=20)


class CatalogEntry(BaseModel):
    type: Literal["platform", "group"]
    id: str
    name: str
    short_name: str | None
    admin_roles: list[str]
