from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field

from db.base import TableBase, created_at_field, timestamp_field, updated_at_field


class Auth0Role(TableBase, table=True):
    """An Auth0 role as last seen by the sync. `removed_at` is set when Auth0 no longer has it."""

    __tablename__ = "auth0_role"

    id: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=255)
    description: str | None = Field(default=None, max_length=1024)
    removed_at: datetime | None = timestamp_field()
    created_at: datetime = created_at_field()
    updated_at: datetime = updated_at_field()
    last_synced_at: datetime | None = timestamp_field()


# A role deleted and recreated in Auth0 gets a new id under the same name; only the live
# one holds the name.
_live = Auth0Role.__table__.c.removed_at.is_(None)
sa.Index(
    "uq_auth0_role_name_live",
    Auth0Role.__table__.c.name,
    unique=True,
    postgresql_where=_live,
    sqlite_where=_live,
)
