"""The domain model's guarantees, checked on PostgreSQL and on the embedded SQLite."""

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import text
from sqlalchemy.orm import selectinload
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from db.models import (
    Auth0Role,
    EmailChangeOtp,
    Group,
    GroupMembership,
    GroupMembershipHistory,
    PlatformMembership,
    SyncRun,
    User,
    UserHistory,
    UsernameClaim,
)
from db.types import ApprovalStatus, SyncRunStatus, UserChange
from tests.factories import add_group, add_platform, db_user


async def raw(session: AsyncSession, sql: str, params: dict[str, object] | None = None) -> None:
    """Plain SQL, to show what the database itself allows (not what the ORM would send)."""
    connection = await session.connection()
    await connection.execute(text(sql), params or {})


async def expect_integrity_error(session: AsyncSession) -> None:
    with pytest.raises(sa_exc.IntegrityError):
        await session.flush()
    await session.rollback()


class TestUser:
    async def test_round_trip_keeps_timestamps_timezone_aware(self, db_session: AsyncSession):
        created = datetime(2025, 3, 1, 12, 30, tzinfo=timezone(timedelta(hours=10)))
        await db_user(db_session, "auth0|1", "a@example.org", created_at=created)
        await db_session.commit()
        db_session.expunge_all()

        user = await db_session.get_one(User, "auth0|1")
        assert user.created_at == created
        assert user.created_at.tzinfo is not None
        assert user.created_at.utcoffset() == timedelta(0)
        assert user.updated_at.tzinfo is not None

    async def test_naive_datetime_is_refused(self, db_session: AsyncSession):
        db_session.add(User(id="auth0|n", email="n@example.org", last_login=datetime(2025, 1, 1)))
        with pytest.raises(sa_exc.StatementError, match="naive datetime"):
            await db_session.flush()

    async def test_email_is_unique_regardless_of_case(self, db_session: AsyncSession):
        await db_user(db_session, "auth0|1", "Alice@Example.org")
        db_session.add(User(id="auth0|2", email="alice@example.ORG"))
        await expect_integrity_error(db_session)

    async def test_username_is_unique_regardless_of_case(self, db_session: AsyncSession):
        await db_user(db_session, "auth0|1", "a@example.org", username="Alice")
        db_session.add(User(id="auth0|2", email="b@example.org", username="alice"))
        await expect_integrity_error(db_session)

    async def test_a_deleted_user_gives_up_its_email_but_never_its_username(
        self, db_session: AsyncSession
    ):
        await db_user(
            db_session, "auth0|old", "Reused@example.org", username="reused", is_deleted=True
        )
        await db_user(db_session, "auth0|new", "reused@example.org", username="fresh")
        assert (await db_session.get_one(User, "auth0|new")).email == "reused@example.org"
        with pytest.raises(sa_exc.IntegrityError, match="held by another account"):
            await db_user(db_session, "auth0|newer", "other@example.org", username="Reused")

    async def test_a_username_once_held_is_claimed_for_good(self, db_session: AsyncSession):
        """The database itself refuses a name someone held before, on insert and on
        update (the claim triggers), whatever path writes it; its holder may take it back."""
        await db_user(db_session, "auth0|first", "first@example.org", username="Kept")
        first = await db_session.get_one(User, "auth0|first")
        first.username = "renamed"
        await db_session.flush()
        claims = (
            await db_session.exec(
                select(col(UsernameClaim.username)).where(
                    col(UsernameClaim.user_id) == "auth0|first"
                )
            )
        ).all()
        assert sorted(claims) == ["kept", "renamed"]
        await db_user(db_session, "auth0|second", "second@example.org", username="other")
        second = await db_session.get_one(User, "auth0|second")
        async with db_session.begin_nested():
            second.username = "KEPT"
            with pytest.raises(sa_exc.IntegrityError, match="held by another account"):
                await db_session.flush()
        first = await db_session.get_one(User, "auth0|first")
        first.username = "kept"  # its own former name
        await db_session.flush()

    async def test_users_without_username_or_email_do_not_collide(self, db_session: AsyncSession):
        db_session.add_all([User(id="sms|1"), User(id="sms|2")])
        await db_session.flush()
        total = (await db_session.exec(select(User).where(col(User.id).like("sms|%")))).all()
        assert len(total) == 2

    async def test_memberships_are_not_loaded_implicitly(self, db_session: AsyncSession):
        await db_user(db_session, "auth0|1", "a@example.org")
        await db_session.commit()
        db_session.expunge_all()
        user = await db_session.get_one(User, "auth0|1")
        with pytest.raises(sa_exc.InvalidRequestError, match="lazy='raise'"):
            _ = user.platform_memberships

    async def test_memberships_load_when_asked_for(self, db_session: AsyncSession):
        platform = await add_platform(db_session)
        await db_user(db_session, "auth0|1", "a@example.org")
        db_session.add(
            PlatformMembership(
                platform_id=platform.id, user_id="auth0|1", approval_status=ApprovalStatus.APPROVED
            )
        )
        await db_session.commit()
        db_session.expunge_all()

        statement = (
            select(User)
            .where(col(User.id) == "auth0|1")
            .options(
                # SQLModel types relationships as their Python values, not as attributes.
                selectinload(User.platform_memberships).selectinload(PlatformMembership.platform)  # type: ignore[arg-type]  # see above
            )
        )
        user = (await db_session.exec(statement)).one()
        assert [m.platform.name for m in user.platform_memberships] == ["Galaxy"]
        assert user.platform_memberships[0].approval_status is ApprovalStatus.APPROVED


class TestMemberships:
    async def test_one_membership_per_user_and_platform(self, db_session: AsyncSession):
        platform = await add_platform(db_session)
        await db_user(db_session, "auth0|1", "a@example.org")
        for status in (ApprovalStatus.PENDING, ApprovalStatus.APPROVED):
            db_session.add(
                PlatformMembership(
                    platform_id=platform.id, user_id="auth0|1", approval_status=status
                )
            )
        await expect_integrity_error(db_session)

    async def test_membership_needs_an_existing_user(self, db_session: AsyncSession):
        platform = await add_platform(db_session)
        db_session.add(
            PlatformMembership(
                platform_id=platform.id,
                user_id="auth0|ghost",
                approval_status=ApprovalStatus.PENDING,
            )
        )
        await expect_integrity_error(db_session)

    async def test_database_refuses_an_unknown_status(self, db_session: AsyncSession):
        platform = await add_platform(db_session)
        await db_user(db_session, "auth0|1", "a@example.org")
        with pytest.raises(sa_exc.IntegrityError):
            await raw(
                db_session,
                "INSERT INTO platform_membership (id, platform_id, user_id, approval_status, "
                "created_at, updated_at) VALUES (:id, :p, :u, 'maybe', :now, :now)",
                {
                    "id": uuid.uuid4().hex
                    if db_session.get_bind().dialect.name == "sqlite"
                    else uuid.uuid4(),
                    "p": platform.id,
                    "u": "auth0|1",
                    "now": datetime.now(UTC).replace(tzinfo=None),
                },
            )
        await db_session.rollback()


class TestHistoryIsAppendOnly:
    async def _history(self, session: AsyncSession) -> GroupMembershipHistory:
        role = Auth0Role(id="rol_tsi", name="biocommons/group/tsi")
        session.add(role)
        await session.flush()
        session.add(
            Group(id="biocommons/group/tsi", name="Threatened Species Initiative", short_name="TSI")
        )
        await db_user(session, "auth0|1", "a@example.org")
        membership = GroupMembership(
            group_id="biocommons/group/tsi",
            user_id="auth0|1",
            approval_status=ApprovalStatus.PENDING,
        )
        session.add(membership)
        await session.flush()
        entry = GroupMembershipHistory(
            membership_id=membership.id,
            group_id=membership.group_id,
            user_id="auth0|1",
            approval_status=ApprovalStatus.PENDING,
        )
        session.add(entry)
        await session.flush()
        return entry

    async def test_update_is_refused(self, db_session: AsyncSession):
        entry = await self._history(db_session)
        with pytest.raises(sa_exc.DBAPIError, match="append-only"):
            await raw(
                db_session,
                "UPDATE group_membership_history SET reason = 'rewritten' WHERE id = :id",
                {"id": entry.id},
            )
        await db_session.rollback()

    async def test_delete_is_refused(self, db_session: AsyncSession):
        await db_user(db_session, "auth0|1", "a@example.org")
        db_session.add(
            UserHistory(user_id="auth0|1", change=UserChange.EMAIL_UPDATE, email="a@example.org")
        )
        await db_session.flush()
        with pytest.raises(sa_exc.DBAPIError, match="append-only"):
            await raw(db_session, "DELETE FROM user_history")
        await db_session.rollback()

    async def test_insert_is_allowed(self, db_session: AsyncSession):
        entry = await self._history(db_session)
        assert entry.id is not None
        assert entry.created_at.tzinfo is not None


class TestEmailChangeOtp:
    async def test_only_one_active_code_per_user(self, db_session: AsyncSession):
        await db_user(db_session, "auth0|1", "a@example.org")
        expires = datetime.now(UTC) + timedelta(minutes=10)
        first = EmailChangeOtp(
            user_id="auth0|1", target_email="new@example.org", otp_hash="h1", expires_at=expires
        )
        db_session.add(first)
        await db_session.flush()
        db_session.add(
            EmailChangeOtp(
                user_id="auth0|1", target_email="new@example.org", otp_hash="h2", expires_at=expires
            )
        )
        await expect_integrity_error(db_session)

    async def test_a_voided_code_makes_room_for_a_new_one(self, db_session: AsyncSession):
        await db_user(db_session, "auth0|1", "a@example.org")
        expires = datetime.now(UTC) + timedelta(minutes=10)
        first = EmailChangeOtp(
            user_id="auth0|1", target_email="new@example.org", otp_hash="h1", expires_at=expires
        )
        db_session.add(first)
        await db_session.flush()
        first.is_active = False
        db_session.add(
            EmailChangeOtp(
                user_id="auth0|1", target_email="new@example.org", otp_hash="h2", expires_at=expires
            )
        )
        await db_session.flush()
        active = (
            await db_session.exec(
                select(EmailChangeOtp).where(col(EmailChangeOtp.is_active).is_(True))
            )
        ).all()
        assert [code.otp_hash for code in active] == ["h2"]


class TestSyncRun:
    async def test_counts_round_trip_as_json(self, db_session: AsyncSession):
        run = SyncRun(
            job="sync.users", status=SyncRunStatus.SUCCEEDED, counts={"created": 3, "updated": 1}
        )
        db_session.add(run)
        await db_session.commit()
        db_session.expunge_all()
        stored = await db_session.get_one(SyncRun, run.id)
        assert stored.counts == {"created": 3, "updated": 1}
        assert stored.status is SyncRunStatus.SUCCEEDED


class TestMembershipCarriesItsUsersCreatedAt:
    """user_created_at orders a filtered admin page; the database keeps it, whoever writes
    (migration 7c2e5a91d0b4), on both backends."""

    async def memberships(
        self, session: AsyncSession, user_id: str
    ) -> list[PlatformMembership | GroupMembership]:
        session.expire_all()
        platform = select(PlatformMembership).where(PlatformMembership.user_id == user_id)
        group = select(GroupMembership).where(GroupMembership.user_id == user_id)
        return [*(await session.exec(platform)).all(), *(await session.exec(group)).all()]

    async def test_every_writer_gets_the_users_instant(self, db_session: AsyncSession):
        created = datetime(2021, 6, 1, 8, 0, 0, 250_000, tzinfo=UTC)
        wrong = datetime(1999, 1, 1, tzinfo=UTC)
        await db_user(db_session, "auth0|o", created_at=created)
        await add_platform(db_session)
        group = await add_group(db_session, "tsi", "TSI")
        # The ORM, which sends a value of its own (None, or a wrong one).
        db_session.add(
            PlatformMembership(
                platform_id="galaxy",
                user_id="auth0|o",
                approval_status=ApprovalStatus.PENDING,
                user_created_at=wrong,
            )
        )
        # Plain SQL naming the column, as a COPY or the legacy import could.
        await db_session.flush()
        await raw(
            db_session,
            "INSERT INTO group_membership (id, group_id, user_id, approval_status, "
            "created_at, updated_at, user_created_at) "
            "VALUES (:id, :group, 'auth0|o', 'pending', :now, :now, :wrong)",
            {"id": uuid.uuid4().hex, "group": group.id, "now": created, "wrong": wrong},
        )
        rows = await self.memberships(db_session, "auth0|o")
        assert [row.user_created_at for row in rows] == [created, created]

        # A write to the copy itself is put right.
        await raw(db_session, "UPDATE platform_membership SET user_created_at = :w", {"w": wrong})
        rows = await self.memberships(db_session, "auth0|o")
        assert [row.user_created_at for row in rows] == [created, created]

    async def test_a_users_new_instant_reaches_their_memberships(self, db_session: AsyncSession):
        await db_user(db_session, "auth0|o", created_at=datetime(2021, 6, 1, tzinfo=UTC))
        await db_user(db_session, "auth0|other", created_at=datetime(2022, 1, 1, tzinfo=UTC))
        await add_platform(db_session)
        for user_id in ("auth0|o", "auth0|other"):
            db_session.add(
                PlatformMembership(
                    platform_id="galaxy", user_id=user_id, approval_status=ApprovalStatus.APPROVED
                )
            )
        await db_session.flush()
        later = datetime(2023, 2, 3, 4, 5, 6, 7, tzinfo=UTC)
        user = await db_session.get_one(User, "auth0|o")
        user.created_at = later
        await db_session.flush()
        assert [row.user_created_at for row in await self.memberships(db_session, "auth0|o")] == [
            later
        ]
        others = await self.memberships(db_session, "auth0|other")
        assert [row.user_created_at for row in others] == [datetime(2022, 1, 1, tzinfo=UTC)]
