"""Shared table conventions: constraint names, UTC timestamps, column helpers."""

import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlmodel import Field, SQLModel

# Stable constraint names keep Alembic diffs reviewable and let migrations drop
# constraints by name on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
SQLModel.metadata.naming_convention = NAMING_CONVENTION


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(sa.TypeDecorator[datetime]):
    """A timezone-aware timestamp that always comes back in UTC.

    Postgres stores `timestamptz`; SQLite has no time zones, so values are stored as
    UTC and tagged UTC again on the way out. Naive datetimes are refused on the way
    in because they are ambiguous.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given for a timezone-aware column")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def timestamp_field(*, nullable: bool = True, index: bool = False, **kwargs: Any) -> Any:
    return Field(
        default=None,
        sa_column=sa.Column(UTCDateTime(), nullable=nullable, index=index, **kwargs),
    )


def created_at_field() -> Any:
    return Field(
        default_factory=utcnow,
        sa_column=sa.Column(UTCDateTime(), nullable=False, server_default=sa.func.now()),
    )


def updated_at_field() -> Any:
    return Field(
        default_factory=utcnow,
        sa_column=sa.Column(
            UTCDateTime(), nullable=False, server_default=sa.func.now(), onupdate=utcnow
        ),
    )


def uuid_pk_field() -> Any:
    return Field(default_factory=uuid.uuid4, primary_key=True)


def enum_column(enum_cls: type, *, nullable: bool = False, index: bool = False, **kw: Any) -> Any:
    """Store an enum by value in a VARCHAR with a CHECK constraint.

    Native Postgres enums need `ALTER TYPE` for every new value and behave differently
    on SQLite; a checked string keeps both backends alike.
    """
    return sa.Column(
        sa.Enum(
            enum_cls,
            native_enum=False,
            create_constraint=True,
            length=32,
            name=f"{enum_cls.__name__.lower()}",
            values_callable=lambda members: [m.value for m in members],
            validate_strings=True,
        ),
        nullable=nullable,
        index=index,
        **kw,
    )


class TableBase(SQLModel):
    """Base for every table model in this package."""

    if TYPE_CHECKING:
        # SQLAlchemy sets it on every table model; SQLModel's types do not say so.
        __table__: ClassVar[sa.Table]


# 64-bit ids on Postgres; SQLite's rowid alias must be exactly INTEGER to autoincrement.
BIGINT_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
