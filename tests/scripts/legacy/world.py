"""An old aai-backend database with a row for every status, enum value and kind of history,
and an Auth0 tenant (the emulator) that agrees with it, as the live pair would at cut-over.

Who is who (each exists to show one fact the import must carry):
- admin, galadmin: the deciders; galadmin administers Galaxy (a platform admin role link).
- alice: approved on Galaxy; a pending TSI request with her reason.
- bob: revoked from Galaxy (reason, decider); a rejected TSI request (reason, decider).
- carol: a pending SBP self-registration; approved on the BPA portal; a TSI history with no
  membership row (the import rebuilds it as rejected, its last entry).
- dave: approved on the BPA portal, but the old sync hid it when the role left Auth0.
- erin: deleted by an admin (blocked in Auth0, still holding Galaxy).
- frank: deleted himself.
- gina: gone from Auth0, deleted by the old sync with her memberships (an approved one and a
  pending one, both hidden).
- hank: deleted and restored by an admin (his deleted_* columns are stale); history of both.
- ivan: renamed twice by hand and twice by the sync (once invisibly), a history row with no
  change kind, and an unblock seen by the sync.
- rita: her request to the retired group `oldgroup` was rejected.
Plus email in every status, two one-time codes, the old scheduler's jobs and a deleted role.
"""

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import create_async_engine

from db.admin import create_database
from scripts.auth0_emulator.tenant import Tenant
from scripts.legacy_import.source import JOB_STORE, TABLES
from tests.factories import auth0_user

SCHEMA = Path(__file__).with_name("legacy_schema.sql")
T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


def at(days: float) -> datetime:
    return T0 + timedelta(days=days)


def uid(n: int) -> uuid.UUID:
    return uuid.UUID(int=n)


class World:
    """The users' Auth0 ids, and the rows written, by table."""

    def __init__(self, tenant: Tenant) -> None:
        self.tenant = tenant
        self.ids: dict[str, str] = {}
        self.rows: dict[str, list[dict[str, Any]]] = {}

    def role(self, name: str) -> str:
        return self.tenant.role_id(name)

    def add(self, table: str, **row: Any) -> None:
        self.rows.setdefault(table, []).append(row)

    def count(self, table: str) -> int:
        return len(self.rows.get(table, []))


def build_tenant_and_rows(tenant: Tenant) -> World:
    """Auth0 users and roles first (the ids come from there), then the old rows."""
    world = World(tenant)
    live = {
        "admin": ["Admin"],
        "galadmin": ["biocommons/role/galaxy/admin", "biocommons/platform/galaxy"],
        "alice": ["biocommons/platform/galaxy"],
        "bob": [],
        "carol": ["biocommons/platform/bpa_data_portal"],
        "dave": [],
        "hank": [],
        "ivan": [],
        "rita": [],
    }
    for name, roles in live.items():
        world.ids[name] = auth0_user(
            tenant,
            f"legacy{name}",
            username=name,
            roles=roles,
            email=f"{name}@example.org",
            email_verified=True,
        )
    # Deleted by the old backend: blocked in Auth0, roles kept.
    world.ids["erin"] = auth0_user(
        tenant,
        "legacyerin",
        username="erin",
        roles=["biocommons/platform/galaxy"],
        blocked=True,
        email="erin@example.org",
        email_verified=True,
    )
    world.ids["frank"] = auth0_user(
        tenant,
        "legacyfrank",
        username="frank",
        blocked=True,
        email="frank@example.org",
        email_verified=True,
    )
    # Gone from Auth0: only the old database knows her.
    world.ids["gina"] = "auth0|legacygina"
    # Ivan is now ivan / ivan@example.org; he was ivan.old@… / ivanold, then ivan.mid@… .
    _rows(world)
    return world


def _rows(world: World) -> None:
    ids, role = world.ids, world.role
    admin = ids["admin"]
    for name in (
        "Admin",
        "biocommons/platform/galaxy",
        "biocommons/platform/bpa_data_portal",
        "biocommons/platform/sbp",
        "biocommons/group/tsi",
        "biocommons/role/galaxy/admin",
        "biocommons/role/tsi/admin",
    ):
        world.add(
            "auth0role", id=role(name), name=name, description=f"{name} role", is_deleted=False
        )
    world.add(
        "auth0role",
        id="rol_retired000000000",
        name="biocommons/group/oldgroup",
        description="Retired",
        is_deleted=True,
    )
    for enum, name in (
        ("GALAXY", "galaxy"),
        ("BPA_DATA_PORTAL", "bpa_data_portal"),
        ("SBP", "sbp"),
    ):
        world.add(
            "platform",
            id=enum,
            name=f"{name} title",
            role_id=role(f"biocommons/platform/{name}"),
            is_deleted=False,
        )
    world.add(
        "platformrolelink",
        platform_id="GALAXY",
        role_id=role("biocommons/role/galaxy/admin"),
        is_deleted=False,
    )
    world.add("platformrolelink", platform_id="SBP", role_id=role("Admin"), is_deleted=True)
    world.add(
        "biocommonsgroup",
        group_id="biocommons/group/tsi",
        name="Threatened Species Initiative",
        short_name="TSI",
        is_deleted=False,
    )
    world.add(
        "biocommonsgroup",
        group_id="biocommons/group/oldgroup",
        name="Old Group",
        short_name="OLD",
        is_deleted=True,
    )
    world.add(
        "grouprolelink",
        group_id="biocommons/group/tsi",
        role_id=role("biocommons/role/tsi/admin"),
        is_deleted=False,
    )

    def user(
        name: str,
        *,
        days: float,
        email: str | None = None,
        username: str | None = None,
        **extra: Any,
    ) -> None:
        world.add(
            "biocommons_user",
            id=ids[name],
            email=email or f"{name}@example.org",
            username=username or name,
            created_at=at(days),
            email_verified=True,
            is_deleted=extra.pop("is_deleted", False),
            deleted_at=extra.pop("deleted_at", None),
            deletion_reason=extra.pop("deletion_reason", None),
            deleted_by_id=extra.pop("deleted_by_id", None),
            **extra,
        )

    user("admin", days=0)
    user("galadmin", days=0.5)
    user("alice", days=1)
    user("bob", days=2)
    user("carol", days=3)
    user("dave", days=4)
    user(
        "erin",
        days=5,
        is_deleted=True,
        deleted_at=at(40),
        deletion_reason="spam account",
        deleted_by_id=admin,
    )
    user(
        "frank",
        days=6,
        is_deleted=True,
        deleted_at=at(41),
        deletion_reason="User self-deletion",
        deleted_by_id=ids["frank"],
    )
    user("gina", days=7, is_deleted=True, deleted_at=at(42), deletion_reason="auth0_sync")
    # Restored by an admin: the old restore overwrote deleted_* with its own details.
    user(
        "hank",
        days=8,
        deleted_at=at(44),
        deletion_reason="restored: appeal upheld",
        deleted_by_id=admin,
    )
    user("ivan", days=9)
    user("rita", days=10)

    def history(
        n: int,
        name: str,
        days: float,
        change: str | None,
        *,
        email: str | None = None,
        username: str | None = None,
        by: str | None = None,
        reason: str | None = None,
        is_deleted: bool = False,
    ) -> None:
        world.add(
            "biocommonsuserhistory",
            id=uid(1000 + n),
            user_id=ids[name],
            updated_at=at(days),
            updated_by_id=by,
            email=email or f"{name}@example.org",
            username=username or name,
            change=change,
            reason=reason,
            is_deleted=is_deleted,
        )

    history(1, "erin", 40, "user_deletion", by=admin, reason="spam account")
    history(2, "frank", 41, "user_deletion", by=ids["frank"], reason="User self-deletion")
    history(3, "gina", 42, "user_deletion", reason="auth0_sync", is_deleted=True)
    history(4, "hank", 43, "user_deletion", by=admin, reason="suspicious sign-ups")
    history(5, "hank", 44, "user_restoration", by=admin, reason="restored: appeal upheld")
    # Ivan: ivan.old@ / ivanold → (email change) ivan.mid@ → (username change) ivan →
    # (sync saw a new email) ivan@ → (sync, nothing visible) → (no kind) → (unblocked).
    history(
        10,
        "ivan",
        20,
        "email_update",
        email="ivan.old@example.org",
        username="ivanold",
        by=ids["ivan"],
    )
    history(
        11,
        "ivan",
        21,
        "username_update",
        email="ivan.mid@example.org",
        username="ivanold",
        by=ids["ivan"],
    )
    history(12, "ivan", 22, "auth0_sync", email="ivan.mid@example.org", username="ivan")
    history(13, "ivan", 23, "auth0_sync", email="ivan@example.org", username="ivan")
    history(14, "ivan", 24, None, email="ivan@example.org", username="ivan", reason="manual fix")
    history(15, "ivan", 25, "restored_from_auth0", email="ivan@example.org", username="ivan")

    counter = iter(range(2000, 3000))

    def membership(
        kind: str,
        target: str,
        name: str,
        status: str,
        days: float,
        *,
        by: str | None = None,
        is_deleted: bool = False,
        history_of: list[tuple[str, float, str | None, str | None]],
        **reasons: Any,
    ) -> None:
        table, column = (
            ("platformmembership", "platform_id")
            if kind == "platform"
            else ("groupmembership", "group_id")
        )
        row = {
            "id": uid(next(counter)),
            column: target,
            "user_id": ids[name],
            "approval_status": status,
            "updated_at": at(days),
            "updated_by_id": by,
            "revocation_reason": reasons.get("revocation_reason"),
            "is_deleted": is_deleted,
            "request_reason": reasons.get("request_reason"),
        }
        if kind == "group":
            row["rejection_reason"] = reasons.get("rejection_reason")
        world.add(table, **row)
        for entry_status, entry_days, entry_by, entry_reason in history_of:
            world.add(
                f"{table}history",
                id=uid(next(counter)),
                **{column: target},
                user_id=ids[name],
                approval_status=entry_status,
                updated_at=at(entry_days),
                updated_by_id=entry_by,
                reason=entry_reason,
                is_deleted=is_deleted,
            )

    galadmin = ids["galadmin"]
    membership(
        "platform",
        "GALAXY",
        "galadmin",
        "APPROVED",
        0.5,
        history_of=[("APPROVED", 0.5, None, None)],
    )
    membership(
        "platform",
        "GALAXY",
        "alice",
        "APPROVED",
        12,
        by=galadmin,
        request_reason="galaxy for my thesis",
        history_of=[("PENDING", 11, None, None), ("APPROVED", 12, galadmin, None)],
    )
    membership(
        "group",
        "biocommons/group/tsi",
        "alice",
        "PENDING",
        13,
        request_reason="I study quolls",
        history_of=[("PENDING", 13, None, None)],
    )
    membership(
        "platform",
        "GALAXY",
        "bob",
        "REVOKED",
        15,
        by=galadmin,
        revocation_reason="left the institute",
        history_of=[
            ("APPROVED", 14, galadmin, None),
            ("REVOKED", 15, galadmin, "left the institute"),
        ],
    )
    membership(
        "group",
        "biocommons/group/tsi",
        "bob",
        "REJECTED",
        16,
        by=admin,
        rejection_reason="not a TSI partner",
        request_reason="please",
        history_of=[("PENDING", 15.5, None, None), ("REJECTED", 16, admin, "not a TSI partner")],
    )
    membership(
        "platform",
        "SBP",
        "carol",
        "PENDING",
        17,
        request_reason="SBP registration",
        history_of=[("PENDING", 17, None, None)],
    )
    membership(
        "platform",
        "BPA_DATA_PORTAL",
        "carol",
        "APPROVED",
        18,
        history_of=[("APPROVED", 18, None, None)],
    )
    for index, (status, days, by, reason) in enumerate(
        [("PENDING", 19, None, None), ("REJECTED", 19.5, admin, "duplicate request")]
    ):
        world.add(
            "groupmembershiphistory",
            id=uid(2900 + index),
            group_id="biocommons/group/tsi",
            user_id=ids["carol"],
            approval_status=status,
            updated_at=at(days),
            updated_by_id=by,
            reason=reason,
            is_deleted=False,
        )
    membership(
        "platform",
        "BPA_DATA_PORTAL",
        "dave",
        "APPROVED",
        30,
        is_deleted=True,
        history_of=[("APPROVED", 20, None, None)],
    )
    membership(
        "platform",
        "GALAXY",
        "erin",
        "APPROVED",
        21,
        by=galadmin,
        history_of=[("APPROVED", 21, galadmin, None)],
    )
    membership(
        "platform",
        "GALAXY",
        "gina",
        "APPROVED",
        42,
        is_deleted=True,
        history_of=[("APPROVED", 22, None, None)],
    )
    membership(
        "group",
        "biocommons/group/tsi",
        "gina",
        "PENDING",
        42,
        is_deleted=True,
        request_reason="for the survey",
        history_of=[("PENDING", 23, None, None)],
    )
    membership(
        "group",
        "biocommons/group/oldgroup",
        "rita",
        "REJECTED",
        24,
        by=admin,
        rejection_reason="group retired",
        history_of=[("PENDING", 23.5, None, None), ("REJECTED", 24, admin, "group retired")],
    )

    now = datetime.now(UTC)

    def email(n: int, status: str, **extra: Any) -> None:
        world.add(
            "emailnotification",
            id=uid(3000 + n),
            to_address=f"to{n}@example.org",
            subject=f"Subject {n}",
            body_html=f"<p>Body {n}</p>",
            status=status,
            attempts=extra.pop("attempts", 0),
            last_error=extra.pop("last_error", None),
            send_after=extra.pop("send_after", None),
            sent_at=extra.pop("sent_at", None),
            created_at=extra.pop("created_at", now - timedelta(minutes=30)),
            updated_at=now - timedelta(minutes=20),
            last_attempt_at=extra.pop("last_attempt_at", None),
            from_address="noreply@biocommons.org.au",
        )

    email(1, "PENDING")
    email(2, "SENDING", attempts=1, last_attempt_at=now - timedelta(minutes=1))
    email(
        3,
        "SENT",
        attempts=1,
        sent_at=now - timedelta(minutes=25),
        last_attempt_at=now - timedelta(minutes=25),
    )
    email(
        4,
        "FAILED",
        attempts=1,
        last_error="SMTP 451",
        send_after=now + timedelta(minutes=15),
        last_attempt_at=now - timedelta(minutes=10),
    )
    email(
        5,
        "FAILED",
        attempts=2,
        last_error="SMTP 550 mailbox unknown",
        last_attempt_at=now - timedelta(minutes=15),
    )
    # Queued three days ago, before an outage of the old sender.
    email(6, "PENDING", created_at=now - timedelta(days=3))
    for n, active in ((1, True), (2, False)):
        world.add(
            "email_change_otps",
            id=str(uid(4000 + n)),
            user_id=ids["alice"],
            target_email="alice.new@example.org",
            otp_hash="0" * 64,
            created_at=now - timedelta(minutes=2),
            expires_at=now + timedelta(minutes=8),
            is_active=active,
            total_attempts=n,
        )
    world.add(
        "apscheduler_jobs",
        id="sync_auth0_users",
        next_run_time=now.timestamp() + 60,
        job_state=b"\x80\x04pickled",
    )
    world.add(
        "apscheduler_jobs",
        id=f"email_notification_{uid(3002)}",
        next_run_time=now.timestamp(),
        job_state=b"\x80\x04pickled",
    )


TABLE_ORDER = (*TABLES, JOB_STORE)  # the order the old foreign keys allow


async def create_legacy_database(
    server: URL, name: str, world: World | None, *, revision: str = "038392d88518"
) -> URL:
    """A database with the old schema at `revision`, holding the world's rows."""
    url = await create_database(server, name)
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            raw = await conn.get_raw_connection()
            driver = raw.driver_connection
            assert driver is not None
            await driver.execute(SCHEMA.read_text())
            # The dump empties the search path for its session; the pool keeps the session.
            await driver.execute("SET search_path TO public")
        async with engine.begin() as conn:
            await conn.execute(sa.text("INSERT INTO alembic_version VALUES (:v)"), {"v": revision})
            metadata = sa.MetaData()
            await conn.run_sync(lambda sync: metadata.reflect(sync))
            for table in TABLE_ORDER:
                rows = (world.rows.get(table) if world else None) or []
                if rows:
                    await conn.execute(sa.insert(metadata.tables[table]), rows)
    finally:
        await engine.dispose()
    return url
