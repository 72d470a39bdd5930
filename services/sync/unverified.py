"""Job `users.expire_unverified`: sign-ups that never verified their address expire.

An unverified sign-up holds its email address (and username) in Auth0's database
connection and here; left forever, anyone could reserve someone else's address. After
UNVERIFIED_SIGNUP_EXPIRY_DAYS such an account is deleted in Auth0 (which frees the
address there) and soft-deleted here, its history kept. Only self-service sign-ups
qualify (accounts of our database connection with a `registration_from`, which the
portal's registration sets) that never signed in, plus those already blocked because a
verified account claimed their address (services/accounts.yield_unverified_email): an
account an admin made, or a person who uses an unverified account, is never removed.
When more than SYNC_MAX_DELETE_FRACTION of the live users would go at once, nothing is
deleted and the run fails saying so, as the users sync does.
"""

from datetime import timedelta

import sqlalchemy as sa

from db.base import utcnow
from db.bulk import insert_rows
from db.models import User, UserHistory
from db.types import UserChange
from services.errors import AppError, NotFound
from services.sync.runs import JobContext, SyncAborted
from services.sync.user_import import history_row
from services.users.accounts import CLAIMED_REASON

EXPIRED_REASON = "unverified sign-up expired"
BATCH = 500


async def expire_unverified(ctx: JobContext) -> None:
    settings = ctx.settings
    users = User.__table__
    cutoff = utcnow() - timedelta(days=settings.unverified_signup_expiry_days)
    async with ctx.sessions() as session:
        candidates = (
            (
                await session.execute(
                    sa.select(users.c.id)
                    .where(
                        sa.not_(users.c.email_verified),
                        users.c.connection == settings.auth0_db_connection,
                        users.c.created_at < cutoff,
                        sa.or_(
                            sa.and_(
                                sa.not_(users.c.is_deleted),
                                users.c.last_login.is_(None),
                                users.c.registration_from.is_not(None),
                            ),
                            users.c.deletion_reason == CLAIMED_REASON,
                        ),
                    )
                    .order_by(users.c.created_at)
                    .limit(BATCH)
                )
            )
            .scalars()
            .all()
        )
        live = await session.scalar(
            sa.select(sa.func.count()).select_from(users).where(sa.not_(users.c.is_deleted))
        )
    ctx.count("candidates", len(candidates))
    limit = settings.sync_max_delete_fraction * max(live or 0, 1)
    if len(candidates) > limit:
        raise SyncAborted(
            f"{len(candidates)} unverified sign-ups of {live} live users would be deleted, "
            f"more than SYNC_MAX_DELETE_FRACTION={settings.sync_max_delete_fraction:.0%}; "
            "nobody was"
        )
    expired: list[str] = []
    for user_id in candidates:
        try:
            await ctx.auth0.delete_user(user_id)
        except NotFound:
            pass  # already gone in Auth0
        except AppError as exc:
            ctx.count("errors")
            ctx.counts.setdefault("error_examples", []).append(f"{user_id}: {exc.detail}")
            continue
        expired.append(user_id)
    if not expired:
        return
    now = utcnow()
    async with ctx.transaction() as session:
        rows = (
            await session.execute(
                sa.update(users)
                .where(users.c.id.in_(expired))
                .values(
                    is_deleted=True,
                    blocked=True,
                    deleted_at=sa.func.coalesce(users.c.deleted_at, now),
                    deletion_reason=EXPIRED_REASON,
                    updated_at=now,
                )
                .returning(users.c.id, users.c.email, users.c.username)
            )
        ).all()
        await insert_rows(
            session,
            UserHistory.__table__,
            [
                history_row(
                    row.id,
                    UserChange.USER_DELETION,
                    now,
                    email=row.email,
                    username=row.username,
                    reason=EXPIRED_REASON,
                )
                for row in rows
            ],
        )
    ctx.count("expired", len(expired))
