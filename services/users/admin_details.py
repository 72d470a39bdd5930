"""What admins read about one user: the row, the details page (Auth0 profile, history)."""

import logging
from typing import Any

import sqlalchemy as sa
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from db.models import (
    User,
    UserHistory,
)
from db.reads import Reader
from schemas.users import (
    AdminUser,
    AdminUserDetails,
    AdminUserRecord,
    MembershipHistoryEntry,
    UserHistoryEntry,
)
from services.auth0 import Auth0Gateway
from services.errors import AppError, NotFound
from services.identity.admin_scope import (
    Scope,
    visible_user,
)
from services.identity.tokens import refuse_deactivated
from services.memberships.kinds import KINDS
from services.users import json_reads
from services.users.admin_lists import updated_by_label, with_memberships

logger = logging.getLogger("aai.admin")


async def get_user(session: AsyncSession, scope: Scope, user_id: str) -> AdminUser:
    user = await visible_user(session, scope, user_id)
    return (await with_memberships(session, scope, [user]))[0]


async def details(
    session: AsyncSession, reader: Reader, auth0: Auth0Gateway, scope: Scope, user_id: str
) -> AdminUserDetails:
    """The record, its history, and the live Auth0 profile when Auth0 answers in time.
    For a caller whose deactivation is not yet checked (ClaimedAdminScopeDep): on Postgres
    the record is one statement that checks it (services/users/json_reads.py)."""
    if reader.dialect == "postgresql":
        user = AdminUserRecord.model_validate_json(
            await json_reads.user_record(reader, scope, user_id)
        )
    else:
        await refuse_deactivated(session, scope.caller_id)
        user = await record(session, scope, user_id)
    try:
        profile = await auth0.get_user(user_id)
    except NotFound:
        profile = {}  # removed in Auth0 since the last sync: the record is all there is
    except AppError as exc:
        logger.warning("Auth0 profile of %s unavailable: %r", user_id, exc)
        profile = {}
    live = bool(profile)
    return AdminUserDetails(
        **user.model_dump(include=set(AdminUser.model_fields)),
        profile_source="auth0" if live else "database",
        user_id=user.user_id,
        updated_at=user.updated_at,
        name=profile.get("name", user.name),
        given_name=profile.get("given_name", user.given_name),
        family_name=profile.get("family_name", user.family_name),
        picture=profile.get("picture", user.picture),
        blocked=bool(profile.get("blocked", user.blocked)),
        connection=user.connection,
        last_login=profile.get("last_login", user.last_login),
        # Where the user last signed in from, and what other apps stored about them, are
        # for general admins only.
        last_ip=profile.get("last_ip") if scope.everything else None,
        logins_count=profile.get("logins_count"),
        identities=[_identity(i) for i in profile.get("identities") or [] if isinstance(i, dict)],
        user_metadata=profile.get("user_metadata") or {},
        app_metadata=(profile.get("app_metadata") or {}) if scope.everything else {},
        deleted_at=user.deleted_at,
        deletion_reason=user.deletion_reason,
        history=user.history,
        membership_history=user.membership_history,
    )


async def record(session: AsyncSession, scope: Scope, user_id: str) -> AdminUserRecord:
    """The database part of the details through the ORM (SQLite; the reference the SQL-built
    record is held equal to in tests)."""
    user = await visible_user(session, scope, user_id)
    base = (await with_memberships(session, scope, [user]))[0]
    return AdminUserRecord(
        **base.model_dump(),
        user_id=user.id,
        updated_at=user.updated_at,
        name=user.name,
        given_name=user.given_name,
        family_name=user.family_name,
        picture=user.picture,
        blocked=user.blocked,
        connection=user.connection,
        last_login=user.last_login,
        deleted_at=user.deleted_at,
        deletion_reason=user.deletion_reason,
        history=await _user_history(session, user_id),
        membership_history=await _membership_history(session, scope, user_id),
    )


# Auth0 puts the identity provider's access and refresh tokens (and its profileData) on
# each identity of a social or enterprise login; an admin page needs only which.
IDENTITY_FIELDS = ("provider", "connection", "user_id", "isSocial")


def _identity(identity: dict[str, Any]) -> dict[str, Any]:
    return {key: identity[key] for key in IDENTITY_FIELDS if key in identity}


async def _user_history(session: AsyncSession, user_id: str) -> list[UserHistoryEntry]:
    actor = sa.orm.aliased(User)
    statement = (
        sa.select(UserHistory, col(actor.email))
        .outerjoin(actor, col(actor.id) == col(UserHistory.changed_by_id))
        .where(col(UserHistory.user_id) == user_id)
        .order_by(col(UserHistory.created_at).desc(), col(UserHistory.id).desc())
        .limit(200)
    )
    return [
        UserHistoryEntry(
            change=h.change,
            previous_value=h.previous_value,
            new_value=h.new_value,
            reason=h.reason,
            changed_by=updated_by_label(h.changed_by_id, email),
            created_at=h.created_at,
        )
        for h, email in (await session.execute(statement)).all()
    ]


async def _membership_history(
    session: AsyncSession, scope: Scope, user_id: str
) -> list[MembershipHistoryEntry]:
    entries: list[MembershipHistoryEntry] = []
    for kind in KINDS:
        model, column = kind.history_model, kind.history_target
        allowed = scope.targets(kind)
        if not scope.everything and not allowed:
            continue
        actor = sa.orm.aliased(User)
        history = kind.history
        statement = (
            sa.select(model, col(actor.email))
            .outerjoin(actor, col(actor.id) == history.c.updated_by_id)
            .where(history.c.user_id == user_id)
            .order_by(history.c.created_at.desc(), history.c.id.desc())
            .limit(200)
        )
        if not scope.everything:
            statement = statement.where(column.in_(allowed))
        for h, email in (await session.execute(statement)).all():
            entries.append(
                MembershipHistoryEntry(
                    kind=kind.name,
                    target_id=kind.target_of(h),
                    approval_status=h.approval_status,
                    reason=h.reason,
                    updated_by=updated_by_label(h.updated_by_id, email),
                    created_at=h.created_at,
                )
            )
    entries.sort(key=lambda e: e.created_at, reverse=True)
    return entries
