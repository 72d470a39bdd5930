"""scripts/import_legacy.py against an old database built from the old schema (every status,
enum value and kind of history), into a freshly migrated one; then a sync against an Auth0
tenant that agrees with the old database, which must keep every fact only the database had."""

import os
import secrets
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL

from db.admin import drop_database
from db.engine import create_engine, create_session_factory
from scripts.auth0_emulator.server import EmulatorServer
from scripts.import_legacy import run
from services.sync.runs import JobContext
from tests.conftest import emulator_settings, make_settings
from tests.factories import make_gateway
from tests.scripts.legacy.world import World, build_tenant_and_rows, create_legacy_database
from tests.services.sync.helpers import full_sync


@pytest.fixture
async def legacy(pg_server_url: URL, emulator: EmulatorServer) -> AsyncIterator[tuple[URL, World]]:
    world = build_tenant_and_rows(emulator.tenant)
    name = f"aai_legacy_{secrets.token_hex(4)}"
    url = await create_legacy_database(pg_server_url, name, world)
    yield url, world
    await drop_database(pg_server_url, name)


def plain(url: URL) -> str:
    return url.render_as_string(hide_password=False)


async def rows(url: URL, statement: str) -> list[dict[str, Any]]:
    engine = create_engine(url, process="tests")
    try:
        async with engine.connect() as conn:
            return [dict(r) for r in (await conn.execute(sa.text(statement))).mappings()]
    finally:
        await engine.dispose()


async def fingerprint(url: URL) -> dict[str, str]:
    """Every row of every table the import writes, hashed per table."""
    tables = (
        "app_user",
        "user_history",
        "username_claim",
        "auth0_role",
        "platform",
        "portal_group",
        "platform_admin_role",
        "group_admin_role",
        "platform_membership",
        "group_membership",
        "platform_membership_history",
        "group_membership_history",
        "email_notification",
    )
    found = {}
    for table in tables:
        (row,) = await rows(
            url,
            f"SELECT count(*) AS n, md5(string_agg(t::text, '|' ORDER BY t::text)) AS h "
            f"FROM {table} t",
        )
        found[table] = f"{row['n']}:{row['h']}"
    return found


async def db_only_facts(url: URL, users: set[str]) -> dict[str, Any]:
    """What Auth0 cannot give back (docs/cutover.md), about `users` (the shared emulator may
    hold other tests' users, whom the sync brings in too): compared before and after a sync."""
    memberships = await rows(
        url,
        """
        SELECT 'platform' AS kind, platform_id AS target, user_id, approval_status,
               request_reason, revocation_reason, NULL AS rejection_reason, updated_by_id,
               updated_at, created_at
        FROM platform_membership WHERE approval_status <> 'approved'
        UNION ALL
        SELECT 'group', group_id, user_id, approval_status, request_reason, revocation_reason,
               rejection_reason, updated_by_id, updated_at, created_at
        FROM group_membership WHERE approval_status <> 'approved'""",
    )
    histories = await rows(
        url,
        """
        SELECT 'platform' AS kind, user_id, membership_id, approval_status, reason,
               updated_by_id, created_at
        FROM platform_membership_history
        UNION ALL
        SELECT 'group', user_id, membership_id, approval_status, reason, updated_by_id,
               created_at
        FROM group_membership_history""",
    )
    user_history = await rows(
        url,
        """
        SELECT user_id, change, email, username, previous_value, new_value, changed_by_id,
               reason, created_at FROM user_history""",
    )
    deleted = await rows(
        url,
        """
        SELECT id, deleted_at, deleted_by_id, deletion_reason FROM app_user WHERE is_deleted""",
    )
    return {
        "memberships": {tuple(r.values()) for r in memberships if r["user_id"] in users},
        "membership history": Counter(
            tuple(r.values()) for r in histories if r["user_id"] in users
        ),
        "user history": Counter(tuple(r.values()) for r in user_history if r["user_id"] in users),
        "deleted users": {tuple(r.values()) for r in deleted if r["id"] in users},
        "first seen": {
            (r["id"], r["created_at"])
            for r in await rows(url, "SELECT id, created_at FROM app_user")
            if r["id"] in users
        },
        "emails": {
            tuple(r.values())
            for r in await rows(
                url,
                "SELECT id, status, attempts, send_after, sent_at, last_error FROM email_notification",
            )
        },
        "claims": {
            tuple(r.values())
            for r in await rows(url, "SELECT username, user_id FROM username_claim")
        },
    }


async def test_the_old_database_is_imported_whole_and_a_sync_keeps_every_db_only_fact(
    legacy: tuple[URL, World],
    scratch_db: URL,
    emulator: EmulatorServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    source, world = legacy
    ids = world.ids
    assert await run(["--from", plain(source), "--to", plain(scratch_db)]) == 0
    printed = capsys.readouterr().out
    assert "committed" in printed
    assert "DIFFERS" not in printed

    users = {r["id"]: r for r in await rows(scratch_db, "SELECT * FROM app_user")}
    assert len(users) == world.count("biocommons_user")
    # Deletions: the reason, the deleter and the time; blocked where the old backend blocked.
    erin, frank, gina, hank = (users[ids[n]] for n in ("erin", "frank", "gina", "hank"))
    assert (
        erin["is_deleted"],
        erin["blocked"],
        erin["deletion_reason"],
        erin["deleted_by_id"],
    ) == (True, True, "spam account", ids["admin"])
    assert (frank["deletion_reason"], frank["deleted_by_id"], frank["blocked"]) == (
        "deleted by the user",
        ids["frank"],
        True,
    )
    assert (gina["is_deleted"], gina["deletion_reason"], gina["blocked"]) == (
        True,
        "deleted in Auth0",
        False,
    )
    assert gina["deleted_at"] == datetime(2025, 4, 12, 9, 0, tzinfo=UTC)
    # The old restore's leftovers on a live user are cleared; first-seen times kept.
    assert (hank["is_deleted"], hank["deleted_at"], hank["deletion_reason"]) == (False, None, None)
    assert users[ids["alice"]]["created_at"] == datetime(2025, 3, 2, 9, 0, tzinfo=UTC)
    assert users[ids["alice"]]["connection"] == "Username-Password-Authentication"

    platform = {
        (r["platform_id"], r["user_id"]): r
        for r in await rows(scratch_db, "SELECT * FROM platform_membership")
    }
    group = {
        (r["group_id"], r["user_id"]): r
        for r in await rows(scratch_db, "SELECT * FROM group_membership")
    }
    tsi = "biocommons/group/tsi"
    bob_galaxy = platform[("galaxy", ids["bob"])]
    assert (
        bob_galaxy["approval_status"],
        bob_galaxy["revocation_reason"],
        bob_galaxy["updated_by_id"],
    ) == ("revoked", "left the institute", ids["galadmin"])
    bob_tsi = group[(tsi, ids["bob"])]
    assert (
        bob_tsi["approval_status"],
        bob_tsi["rejection_reason"],
        bob_tsi["request_reason"],
        bob_tsi["updated_by_id"],
    ) == ("rejected", "not a TSI partner", "please", ids["admin"])
    assert group[(tsi, ids["alice"])]["request_reason"] == "I study quolls"
    assert platform[("sbp", ids["carol"])]["approval_status"] == "pending"
    assert platform[("galaxy", ids["alice"])]["created_at"] == datetime(
        2025, 3, 12, 9, 0, tzinfo=UTC
    )
    # Hidden by the old sync when the role left Auth0: revoked, never approved.
    dave = platform[("bpa_data_portal", ids["dave"])]
    assert (dave["approval_status"], dave["revocation_reason"]) == (
        "revoked",
        "role removed in Auth0",
    )
    assert group[(tsi, ids["gina"])]["approval_status"] == "pending"
    # A history without its membership row: rebuilt from its last entry.
    assert (
        group[(tsi, ids["carol"])]["approval_status"],
        group[(tsi, ids["carol"])]["rejection_reason"],
    ) == ("rejected", "duplicate request")
    assert group[("biocommons/group/oldgroup", ids["rita"])]["approval_status"] == "rejected"
    history = await rows(scratch_db, "SELECT * FROM platform_membership_history")
    assert len(history) == world.count("platformmembershiphistory") + 2  # dave's and gina's revokes

    # The user history: before-snapshots turned into before/after pairs.
    ivan = await rows(
        scratch_db,
        f"SELECT change, previous_value, new_value, reason, changed_by_id FROM user_history "
        f"WHERE user_id = '{ids['ivan']}' ORDER BY created_at, id",
    )
    assert [(r["change"], r["previous_value"], r["new_value"]) for r in ivan] == [
        ("email_update", "ivan.old@example.org", "ivan.mid@example.org"),
        ("username_update", "ivanold", "ivan"),
        ("email_update", "ivan.mid@example.org", "ivan@example.org"),
        ("profile_update", None, None),
        ("profile_update", None, None),
        ("unblocked", None, None),
    ]
    assert ivan[2]["reason"] == "auth0 sync"
    assert ivan[4]["reason"] == "manual fix (imported: the old history row named no change)"
    claims = {
        r["username"]: r["user_id"] for r in await rows(scratch_db, "SELECT * FROM username_claim")
    }
    assert claims["ivanold"] == claims["ivan"] == ids["ivan"]

    emails = {r["subject"]: r for r in await rows(scratch_db, "SELECT * FROM email_notification")}
    assert {s: (e["status"], e["send_after"] is not None) for s, e in emails.items()} == {
        "Subject 1": ("pending", True),
        "Subject 2": ("pending", True),
        "Subject 3": ("sent", False),
        "Subject 4": ("pending", True),
        "Subject 5": ("failed", False),
        "Subject 6": ("pending", True),
    }
    assert (await rows(scratch_db, "SELECT count(*) AS n FROM email_change_otp"))[0]["n"] == 0
    assert "1  queued emails older than EMAIL_MAX_AGE_S (172800 s)" in printed
    assert "email_change_otps (1 still usable)" in printed
    assert "apscheduler_jobs" in printed

    # A second run writes nothing; without --merge it refuses and writes nothing either.
    before = await fingerprint(scratch_db)
    assert await run(["--from", plain(source), "--to", plain(scratch_db), "--merge"]) == 0
    assert "\n0 row(s) written, committed." in capsys.readouterr().out
    assert await run(["--from", plain(source), "--to", plain(scratch_db)]) == 5
    assert "not empty" in capsys.readouterr().err
    assert await fingerprint(scratch_db) == before

    # Then the new scheduler's first syncs, against the tenant the old backend kept in step.
    facts = await db_only_facts(scratch_db, set(ids.values()))
    engine = create_engine(scratch_db, process="tests")
    gateway = make_gateway(emulator, jobs=True)
    ctx = JobContext(
        settings=make_settings(scratch_db, **emulator_settings(emulator)),
        engine=engine,
        sessions=create_session_factory(engine),
        auth0=gateway,
    )
    try:
        runs = await full_sync(ctx)
    finally:
        await gateway.aclose()
        await engine.dispose()
    assert [r.status for r in runs] == ["succeeded"] * 3, [r.error for r in runs]
    after = await db_only_facts(scratch_db, set(ids.values()))
    for name in ("memberships", "deleted users", "first seen", "emails"):
        assert after[name] == facts[name], name
    for name in ("membership history", "user history"):
        assert not facts[name] - after[name], name
    assert facts["claims"] <= after["claims"]
    # What Auth0 holds is approved, and names and pictures came from it.
    approved = await rows(
        scratch_db,
        "SELECT user_id FROM platform_membership "
        "WHERE platform_id = 'galaxy' AND approval_status = 'approved'",
    )
    assert {r["user_id"] for r in approved} & set(ids.values()) == {
        ids["galadmin"],
        ids["alice"],
        ids["erin"],
    }
    # The reconciliation after the sync: nothing to write, every old row still there.
    assert (
        await run(["--from", plain(source), "--to", plain(scratch_db), "--merge", "--dry-run"]) == 0
    )
    out = capsys.readouterr().out
    assert "\n0 row(s) written, rolled back (dry run)." in out
    assert "DIFFERS" not in out


async def test_a_dry_run_reports_and_leaves_the_target_empty(
    legacy: tuple[URL, World], scratch_db: URL, capsys: pytest.CaptureFixture[str]
) -> None:
    source, world = legacy
    assert await run(["--from", plain(source), "--to", plain(scratch_db), "--dry-run"]) == 0
    out = capsys.readouterr().out
    users = world.count("biocommons_user")
    assert f"{users} row(s)" not in out  # the total counts every table, not just users
    assert "rolled back (dry run)" in out
    assert "app_user" in out
    assert "platform_membership" in out
    assert (await rows(scratch_db, "SELECT count(*) AS n FROM app_user"))[0]["n"] == 0


async def test_an_unfit_source_or_target_is_refused_before_anything_is_written(
    pg_server_url: URL,
    legacy: tuple[URL, World],
    scratch_db: URL,
    capsys: pytest.CaptureFixture[str],
) -> None:
    source, _world = legacy
    other = f"aai_legacy_{secrets.token_hex(4)}"
    older = await create_legacy_database(pg_server_url, other, None, revision="0123456789ab")
    try:
        assert await run(["--from", plain(older), "--to", plain(scratch_db)]) == 3
        assert "revision 0123456789ab" in capsys.readouterr().err
    finally:
        await drop_database(pg_server_url, other)
    # A target that was never migrated.
    bare = f"aai_bare_{secrets.token_hex(4)}"
    from db.admin import create_database

    bare_url = await create_database(pg_server_url, bare)
    try:
        assert await run(["--from", plain(source), "--to", plain(bare_url)]) == 4
        assert "scripts.entrypoint migrate" in capsys.readouterr().err
    finally:
        await drop_database(pg_server_url, bare)


async def test_rows_the_new_schema_refuses_are_listed_and_nothing_is_written(
    pg_server_url: URL,
    emulator: EmulatorServer,
    scratch_db: URL,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Old uniqueness was exact-case: two live users whose emails differ only in case, and
    a username too long for the new column, stop the import with the rows named."""
    world = build_tenant_and_rows(emulator.tenant)
    world.rows["biocommons_user"].append(
        {
            **world.rows["biocommons_user"][2],
            "id": "auth0|twin",
            "email": "ALICE@example.org",
            "username": "alice-twin",
        }
    )
    world.rows["biocommons_user"].append(
        {
            **world.rows["biocommons_user"][2],
            "id": "auth0|long",
            "email": "long@example.org",
            "username": "x" * 200,
        }
    )
    name = f"aai_legacy_{secrets.token_hex(4)}"
    source = await create_legacy_database(pg_server_url, name, world)
    try:
        assert await run(["--from", plain(source), "--to", plain(scratch_db)]) == 6
        err = capsys.readouterr().err
        assert f"users {world.ids['alice']} and auth0|twin are both live" in err
        assert "app_user.username of ('auth0|long',): 200 characters" in err
        assert (await rows(scratch_db, "SELECT count(*) AS n FROM app_user"))[0]["n"] == 0
    finally:
        await drop_database(pg_server_url, name)


def test_the_script_runs_as_the_runbook_says(repo_root: Path) -> None:
    """`uv run python scripts/import_legacy.py …`: a file, not a module, so it finds the
    project's packages itself; the source may come from LEGACY_DATABASE_URL instead."""
    script = str(repo_root / "scripts" / "import_legacy.py")
    env = {k: v for k, v in os.environ.items() if k != "LEGACY_DATABASE_URL"}
    missing = subprocess.run(
        [sys.executable, script], capture_output=True, text=True, check=False, cwd="/", env=env
    )
    assert missing.returncode == 2
    assert "--from URL or LEGACY_DATABASE_URL" in missing.stderr
    from_env = subprocess.run(
        [sys.executable, script],
        capture_output=True,
        text=True,
        check=False,
        cwd="/",
        env={**env, "LEGACY_DATABASE_URL": "sqlite://"},
    )
    assert from_env.returncode == 2
    assert "--from must be a PostgreSQL URL" in from_env.stderr
    result = subprocess.run(
        [sys.executable, script, "--help"], capture_output=True, text=True, check=False, cwd="/"
    )
    assert result.returncode == 0, result.stderr
    assert "--merge" in result.stdout
    assert "--dry-run" in result.stdout
