"""Writing a conversion into a migrated database, in one transaction, and counting both sides.

Each row has a key that says whether the target already holds it: the id where the old row
kept one (users, roles, memberships by their pair, emails), and for the history tables,
whose old ids have no home (the new ones are numbered by the database), the entry itself
(who, what, when, why). Rows the target holds are left as they are, so a second run writes
nothing, and a merge into a database the new service already runs on keeps its newer
state, with the old history added to it.
"""

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlmodel import SQLModel

from db.migrations import current_revisions, head_revisions
from scripts.legacy_import.convert import Conversion, Planned

BATCH = 2000

KEYS: dict[str, tuple[str, ...]] = {
    "auth0_role": ("id",),
    "platform": ("id",),
    "portal_group": ("id",),
    "platform_admin_role": ("platform_id", "role_id"),
    "group_admin_role": ("group_id", "role_id"),
    "app_user": ("id",),
    "user_history": ("user_id", "change", "created_at", "previous_value", "new_value", "reason"),
    "platform_membership": ("platform_id", "user_id"),
    "group_membership": ("group_id", "user_id"),
    "platform_membership_history": (
        "membership_id",
        "approval_status",
        "created_at",
        "reason",
        "updated_by_id",
    ),
    "group_membership_history": (
        "membership_id",
        "approval_status",
        "created_at",
        "reason",
        "updated_by_id",
    ),
    "email_notification": ("id",),
}
# Columns the reconciliation's status of a target row is read from.
STATUS_COLUMNS: dict[str, tuple[str, ...]] = {
    "auth0_role": ("removed_at",),
    "platform": ("removed_at",),
    "portal_group": ("removed_at",),
    "platform_admin_role": (),
    "group_admin_role": (),
    "app_user": ("is_deleted", "deletion_reason"),
    "user_history": ("change",),
    "platform_membership": ("approval_status", "id"),
    "group_membership": ("approval_status", "id"),
    "platform_membership_history": ("approval_status",),
    "group_membership_history": ("approval_status",),
    "email_notification": ("status",),
}
# What "not empty" means for the refusal: anything a running service or an earlier import
# would have written.
DATA_TABLES = ("app_user", "auth0_role", "platform", "portal_group", "email_notification")


class TargetRefused(Exception):
    def __init__(self, exit_code: int, message: str, details: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.details = list(details)


EXIT_NOT_MIGRATED, EXIT_NOT_EMPTY, EXIT_CONFLICTS, EXIT_UNRECONCILED = 4, 5, 6, 7


@dataclass
class Line:
    """One row of the reconciliation: a target table and status."""

    table: str
    status: str
    origins: Counter[str]
    legacy: int = 0
    written: int = 0
    already: int = 0
    target: int = 0

    @property
    def carried(self) -> bool:
        return self.written + self.already == self.legacy


@dataclass
class Outcome:
    lines: list[Line]
    claims: Counter[str] = field(default_factory=Counter)
    not_carried: list[tuple[str, int, str]] = field(default_factory=list)
    committed: bool = False


def _table(name: str) -> sa.Table:
    return SQLModel.metadata.tables[name]


def _key(table: str, row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(row[column] for column in KEYS[table])


async def _target_rows(conn: AsyncConnection, table: str) -> list[dict[str, Any]]:
    t = _table(table)
    columns = dict.fromkeys((*KEYS[table], *STATUS_COLUMNS[table]))
    result = await conn.execute(sa.select(*(t.c[c] for c in columns)))
    return [dict(row) for row in result.mappings()]


async def _refuse_unfit_target(conn: AsyncConnection, merge: bool) -> None:
    revisions = await current_revisions(conn)
    if revisions != head_revisions():
        raise TargetRefused(
            EXIT_NOT_MIGRATED,
            f"the target database is at {', '.join(sorted(revisions)) or 'no revision'}, not at "
            f"this code's head ({', '.join(sorted(head_revisions()))}): run "
            "`python -m scripts.entrypoint migrate` against it first",
        )
    if merge:
        return
    held = {}
    for table in DATA_TABLES:
        count = (await conn.execute(sa.select(sa.func.count()).select_from(_table(table)))).scalar()
        if count:
            held[table] = count
    if held:
        raise TargetRefused(
            EXIT_NOT_EMPTY,
            "the target database is not empty ("
            + ", ".join(f"{table}: {count}" for table, count in held.items())
            + "); import into a freshly migrated database, or pass --merge to add only what "
            "it lacks (the target's rows win; a repeated import writes nothing)",
        )


def _length_problems(table: str, rows: Iterable[dict[str, Any]]) -> list[str]:
    t = _table(table)
    # SQLModel's strings are type decorators over VARCHAR(n): the length is read through.
    limits = {
        c.name: length
        for c in t.columns
        if isinstance(length := getattr(c.type, "length", None), int)
    }
    problems = []
    for row in rows:
        for column, limit in limits.items():
            value = row.get(column)
            if isinstance(value, str) and len(value) > limit:
                problems.append(
                    f"{table}.{column} of {_key(table, row)}: {len(value)} characters, "
                    f"the column holds {limit}"
                )
    return problems


async def _identity_problems(conn: AsyncConnection, users: list[dict[str, Any]]) -> list[str]:
    """The rules this schema enforces and the old one did not: emails unique regardless of
    case among the live users of a connection, usernames regardless of case among everyone
    who ever held one."""
    t = _table("app_user")
    problems: list[str] = []
    emails: dict[tuple[str, str], str] = {}
    existing = await conn.execute(
        sa.select(t.c.id, t.c.email, t.c.connection).where(
            sa.not_(t.c.is_deleted), t.c.email.is_not(None)
        )
    )
    for row in existing:
        emails[(row.email.lower(), row.connection or "")] = row.id
    claims = dict(
        (
            await conn.execute(
                sa.select(_table("username_claim").c.username, _table("username_claim").c.user_id)
            )
        ).all()
    )
    names: dict[str, str] = {}
    for user in users:
        if not user["is_deleted"] and user["email"]:
            scope = (user["email"].lower(), user["connection"] or "")
            holder = emails.setdefault(scope, user["id"])
            if holder != user["id"]:
                problems.append(
                    f"users {holder} and {user['id']} are both live with the email "
                    f"{user['email'].lower()!r} (any case) on one connection"
                )
        if user["username"]:
            name = user["username"].lower()
            holder = names.setdefault(name, claims.get(name, user["id"]))
            if holder != user["id"]:
                problems.append(
                    f"users {holder} and {user['id']} both hold the username {name!r} (any case)"
                )
    return problems


async def _insert(conn: AsyncConnection, table: str, rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), BATCH):
        await conn.execute(sa.insert(_table(table)), rows[start : start + BATCH])


async def _insert_users(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    # A deleter may be written in a later batch than the user they deleted: the link is set
    # once every user is in.
    await _insert(conn, "app_user", [{**row, "deleted_by_id": None} for row in rows])
    links = [{"uid": r["id"], "by": r["deleted_by_id"]} for r in rows if r["deleted_by_id"]]
    t = _table("app_user")
    if links:
        await conn.execute(
            sa.update(t)
            .where(t.c.id == sa.bindparam("uid"))
            .values(deleted_by_id=sa.bindparam("by")),
            links,
        )


async def _write_claims(conn: AsyncConnection, claims: list[dict[str, Any]]) -> Counter[str]:
    """Each name an old history row shows, reserved for the user who held it, unless the
    name is already someone's (whoever claimed it first keeps it, as the migration that
    introduced claims decided)."""
    t = _table("username_claim")
    holders = dict((await conn.execute(sa.select(t.c.username, t.c.user_id))).all())
    outcome: Counter[str] = Counter()
    fresh = []
    for claim in claims:
        holder = holders.get(claim["username"])
        if holder is None:
            holders[claim["username"]] = claim["user_id"]
            fresh.append(claim)
            outcome["reserved now"] += 1
        elif holder == claim["user_id"]:
            outcome["already reserved for them"] += 1
        else:
            outcome["held by another account, who keeps it"] += 1
    await _insert(conn, "username_claim", fresh)
    return outcome


async def import_into(
    engine: AsyncEngine, conversion: Conversion, *, merge: bool, dry_run: bool
) -> Outcome:
    """Write what the target lacks; commit unless `dry_run` (then everything is written and
    rolled back, so the counts are the ones a real run would give)."""
    async with engine.connect() as conn:
        transaction = await conn.begin()
        try:
            outcome = await _import(conn, conversion, merge=merge)
            if dry_run:
                await transaction.rollback()
            else:
                await transaction.commit()
                outcome.committed = True
            return outcome
        except BaseException:
            await transaction.rollback()
            raise


async def _import(conn: AsyncConnection, conversion: Conversion, *, merge: bool) -> Outcome:
    await _refuse_unfit_target(conn, merge)
    tables = conversion.tables
    existing = {name: await _target_rows(conn, name) for name in tables}
    _adopt_target_memberships(tables, existing)

    writes: dict[str, list[dict[str, Any]]] = {}
    lines: dict[tuple[str, str], Line] = {}
    for name, planned in tables.items():
        held = {_key(name, row) for row in existing[name]}
        for status, origins in planned.origin_counts().items():
            lines[(name, status)] = Line(name, status, origins, legacy=sum(origins.values()))
        writes[name] = []
        for row in planned.rows:
            line = lines[(name, planned.status_of(row))]
            if _key(name, row) in held:
                line.already += 1
            else:
                line.written += 1
                writes[name].append(row)

    problems = [p for name, rows in writes.items() for p in _length_problems(name, rows)]
    problems += await _identity_problems(conn, writes["app_user"])
    if problems:
        raise TargetRefused(
            EXIT_CONFLICTS,
            f"{len(problems)} row(s) break a rule of the new schema; nothing was written. "
            "Resolve them in the old database (or in Auth0, then let the old sync run) and "
            "run the import again",
            problems,
        )

    claims: Counter[str] = Counter()
    for name in tables:
        if name == "app_user":
            await _insert_users(conn, writes[name])
            claims = await _write_claims(conn, conversion.claims)
        else:
            await _insert(conn, name, writes[name])

    for name, planned in tables.items():
        for row in await _target_rows(conn, name):
            status = planned.status_of(row)
            line = lines.setdefault((name, status), Line(name, status, Counter()))
            line.target += 1
    outcome = Outcome(
        lines=sorted(
            lines.values(), key=lambda line: (list(tables).index(line.table), line.status)
        ),
        claims=claims,
        not_carried=conversion.not_carried,
    )
    unreconciled = [
        line
        for line in outcome.lines
        if not line.carried or (not merge and line.target != line.legacy)
    ]
    if unreconciled:
        raise TargetRefused(
            EXIT_UNRECONCILED,
            "the target's counts do not match what was imported; nothing was written",
            [
                f"{line.table} {line.status}: old {line.legacy}, written {line.written}, "
                f"already there {line.already}, in target {line.target}"
                for line in unreconciled
            ],
        )
    return outcome


def _adopt_target_memberships(
    tables: dict[str, Planned], existing: dict[str, list[dict[str, Any]]]
) -> None:
    """A pair the target already holds keeps the target's membership id: the old history
    of that pair is written against it."""
    for kind in ("platform", "group"):
        name = f"{kind}_membership"
        target_ids = {_key(name, row): row["id"] for row in existing[name]}
        renamed = {}
        for row in tables[name].rows:
            target_id = target_ids.get(_key(name, row))
            if target_id is not None and target_id != row["id"]:
                renamed[row["id"]] = target_id
        if renamed:
            history = tables[f"{kind}_membership_history"]
            history.rows = [
                {**row, "membership_id": renamed.get(row["membership_id"], row["membership_id"])}
                for row in history.rows
            ]
