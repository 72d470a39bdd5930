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
    timestamp_field,
    updated_at_field,
    utcnow,
)
from db.types import UserChange

if TYPE_CHECKING:
    from db.models.membership import GroupMembership, PlatformMembership


class User(TableBase, table=True):
    """A portal user, keyed by the Auth0 `user_id`.

    Rows are never hard-deleted: memberships and history point at them for good.
    `blocked` mirrors Auth0; `is_deleted` is this service's soft delete (which also
    blocks the user in Auth0).
    """

    __tablename__ = "app_user"

    id: str = Field(primary_key=True, max_length=255)
    email: str | None = Field(default=None, max_length=320)
    email_verified: bool = Field(default=False)
    username: str | None = Field(default=None, max_length=128)
    name: str | None = Field(default=None, max_length=255)
    given_name: str | None = Field(default=None, max_length=255)
    family_name: str | None = Field(default=None, max_length=255)
    picture: str | None = Field(default=None, sa_type=sa.Text)
    connection: str | None = Field(default=None, max_length=128)
    # Auth0 app_metadata.registration_from: the app the account signed up through (the
    # login page's hint), kept here so anonymous callers never need Auth0 for it.
    registration_from: str | None = Field(default=None, max_length=64)

    blocked: bool = Field(default=False)
    is_deleted: bool = Field(default=False)
    deleted_at: datetime | None = timestamp_field()
    deleted_by_id: str | None = Field(
        default=None, foreign_key="app_user.id", ondelete="SET NULL", max_length=255
    )
    deletion_reason: str | None = Field(default=None, max_length=1024)

    created_at: datetime = created_at_field()
    updated_at: datetime = updated_at_field()
    last_login: datetime | None = timestamp_field()
    last_synced_at: datetime | None = timestamp_field()
    # How new the Auth0 profile held here is, on Auth0's clock: its `updated_at` when the
    # sync or an event wrote the row, the time of the write when this service changed the
    # user (in Auth0 first). An event older than this changes nothing, so events delivered
    # late or twice converge.
    auth0_updated_at: datetime | None = timestamp_field()
    # Set when the user finished the legacy password migration: the next profile read
    # shows the portal's welcome banner once (`show_welcome_message`), then clears it.
    welcome_pending: bool = Field(default=False, sa_column_kwargs={"server_default": sa.false()})

    platform_memberships: list["PlatformMembership"] = Relationship(
        back_populates="user",
        sa_relationship_kwargs={
            "lazy": "raise",
            "foreign_keys": "[PlatformMembership.user_id]",
        },
    )
    group_memberships: list["GroupMembership"] = Relationship(
        back_populates="user",
        sa_relationship_kwargs={
            "lazy": "raise",
            "foreign_keys": "[GroupMembership.user_id]",
        },
    )


# Emails are unique regardless of case among the live users of one connection, as Auth0
# keeps them (a Google account may share its address with a password account: two Auth0
# users, two accounts); usernames among all live users. Enforced by the database. A user
# deleted in Auth0 gives its email up for whoever signs up with it next.
_live = sa.not_(User.__table__.c.is_deleted)
sa.Index(
    "uq_app_user_email_lower_connection",
    sa.func.lower(User.__table__.c.email),
    sa.func.coalesce(User.__table__.c.connection, ""),
    unique=True,
    postgresql_where=_live,
    sqlite_where=_live,
)
sa.Index(
    "uq_app_user_username_lower",
    sa.func.lower(User.__table__.c.username),
    unique=True,
    postgresql_where=_live,
    sqlite_where=_live,
)
# Admin lists: the default order, and the "unverified" / "deleted" filters.
sa.Index("ix_app_user_created_at_id", User.__table__.c.created_at, User.__table__.c.id)
# /db-admin's deleted users, newest deletion first: a small slice of the table.
sa.Index(
    "ix_app_user_deleted_at",
    User.__table__.c.deleted_at,
    postgresql_where=User.__table__.c.is_deleted,
    sqlite_where=User.__table__.c.is_deleted,
)
sa.Index(
    "ix_app_user_is_deleted_email_verified",
    User.__table__.c.is_deleted,
    User.__table__.c.email_verified,
)


class UserHistory(TableBase, table=True):
    """Append-only log of account changes; the database refuses UPDATE and DELETE."""

    __tablename__ = "user_history"

    id: int | None = Field(default=None, sa_column=sa.Column(BIGINT_PK, primary_key=True))
    user_id: str = Field(foreign_key="app_user.id", max_length=255)
    change: UserChange = Field(sa_column=enum_column(UserChange))
    email: str | None = Field(default=None, max_length=320)
    username: str | None = Field(default=None, max_length=128)
    previous_value: str | None = Field(default=None, max_length=1024)
    new_value: str | None = Field(default=None, max_length=1024)
    changed_by_id: str | None = Field(default=None, foreign_key="app_user.id", max_length=255)
    reason: str | None = Field(default=None, max_length=1024)
    created_at: datetime = Field(
        default_factory=utcnow,
        sa_column=sa.Column(UTCDateTime(), nullable=False, server_default=sa.func.now()),
    )


sa.Index(
    "ix_user_history_user_id_created_at",
    UserHistory.__table__.c.user_id,
    UserHistory.__table__.c.created_at,
)
# Usernames stay reserved once used, so past usernames are looked up case-insensitively.
sa.Index("ix_user_history_username_lower", sa.func.lower(UserHistory.__table__.c.username))
# Admin search matches any part of an email or username: trigram indexes (pg_trgm) make
# that an index lookup on PostgreSQL. SQLite (dev) scans, which is fine at its sizes.
for _column in ("email", "username"):
    sa.Index(
        f"ix_app_user_{_column}_trgm",
        sa.func.lower(User.__table__.c[_column]).label(f"{_column}_lower"),
        postgresql_using="gin",
        postgresql_ops={f"{_column}_lower": "gin_trgm_ops"},
    ).ddl_if(dialect="postgresql")


class UsernameClaim(TableBase, table=True):
    """Every username anyone has held, lower-cased, and whose it is.

    A username once used is never given to another account (people and systems knew its
    holder by it). Triggers on app_user claim a name whenever a row is written with it
    and refuse a name claimed by someone else, so the rule holds on every path that sets
    a username, including ones written later; the services check first, to answer with
    a field error instead of a refused write. Claims are never released.
    """

    __tablename__ = "username_claim"

    username: str = Field(primary_key=True, max_length=128)  # lower-cased
    user_id: str = Field(foreign_key="app_user.id", index=True, max_length=255)
    claimed_at: datetime = created_at_field()


# Columns that mirror Auth0: this service changes them in Auth0 first, then here.
AUTH0_MIRRORED = (
    "email",
    "email_verified",
    "username",
    "name",
    "given_name",
    "family_name",
    "picture",
    "blocked",
    "is_deleted",
)


@sa.event.listens_for(User, "before_update")
def _auth0_version_of_own_writes(_mapper: object, _connection: object, target: User) -> None:
    """A change made here through the ORM (the request path, which writes Auth0 first) makes
    the row as new as now on Auth0's clock, unless the writer gave Auth0's own `updated_at`:
    an event Auth0 sent about the state before this change is older, and changes nothing.
    The sync's set-based writes set the column themselves."""
    state = sa.inspect(target)
    if state.attrs.auth0_updated_at.history.has_changes():
        return
    if any(state.attrs[name].history.has_changes() for name in AUTH0_MIRRORED):
        target.auth0_updated_at = utcnow()
