"""The hot reads as JSON that Postgres builds: one statement per request, returned as bytes.

The admin user list (every filter, search and scope), its page count, a user's details
(the database part) and `/me/profile` are read on every page view. Built in Python they
cost ~6 ms of CPU per request (compiling, nine round trips, dicts, pydantic) against
~1 ms in Postgres; here one statement answers with the response body itself, and the
same statement says whether the caller is deactivated, so a request makes one round
trip. This module is the one place that writes that SQL.

The bodies are exactly what the response schemas serialise to (same fields, order,
types and nulls; timestamps as pydantic writes them): `tests/services/users/
test_json_reads.py` holds them equal to the schema path for every variant, and the
schema path (services/users/admin_lists.py, profile.py) still answers on SQLite and
whenever a request needs more than a read (a first sign-in, the welcome banner).

Values are bound as parameters; only validated integers (LIMIT, OFFSET, per_page) and
fixed literals are written into the text, so Postgres plans each page for its real
offset instead of a generic plan, and asyncpg reuses one prepared statement per shape.
"""

from dataclasses import dataclass, field
from typing import Any

from db.reads import Reader
from db.types import ApprovalStatus
from services.errors import Unauthorized
from services.identity.admin_scope import Scope
from services.memberships.kinds import GROUPS, KINDS, PLATFORMS, Kind
from services.memberships.requests import VISIBLE
from services.users.admin_search import AUTOMATIC, Selection, like_literal

HISTORY_LIMIT = 200  # as services/users/admin_details.py


def iso(expression: str) -> str:
    """A timestamptz as pydantic writes an aware UTC datetime: `2024-05-01T09:30:00Z`,
    with `.ffffff` only when there are microseconds; NULL stays NULL."""
    utc = f"({expression}) AT TIME ZONE 'UTC'"
    return (
        f"(to_char({utc}, 'YYYY-MM-DD\"T\"HH24:MI:SS') || CASE WHEN "
        f"date_part('microseconds', {utc})::int % 1000000 = 0 THEN '' "
        f"ELSE to_char({utc}, '.US') END || 'Z')"
    )


def updated_by(id_column: str, email_column: str) -> str:
    # As services/users/admin_lists.updated_by_label: no one (the sync, a sign-up
    # default) → "(automatic)"; an admin → their email, or their id if they have none.
    return f"CASE WHEN {id_column} IS NULL THEN '{AUTOMATIC}' ELSE coalesce({email_column}, {id_column}) END"


def as_bytes(json_expression: str) -> str:
    # bytea, so asyncpg hands the body over as bytes: no decode, no re-encode.
    return f"convert_to(({json_expression})::text, 'UTF8')"


@dataclass
class Statement:
    """SQL text with `$n` placeholders and their values, built up fragment by fragment."""

    args: list[Any] = field(default_factory=list)

    def bind(self, value: Any) -> str:
        self.args.append(value)
        return f"${len(self.args)}"


def deactivated(statement: Statement, caller_id: str) -> str:
    """The caller is deleted or blocked here (as services/identity/tokens.is_deactivated;
    a caller with no row yet is not)."""
    return (
        "coalesce((SELECT d.is_deleted OR d.blocked FROM app_user d "
        f"WHERE d.id = {statement.bind(caller_id)}), false)"
    )


# ---------------------------------------------------------------------------- filters


def _has_membership(
    statement: Statement,
    scope: Scope,
    user: str,
    kind: Kind,
    *,
    target: str | None = None,
    status: ApprovalStatus | None = None,
) -> str:
    """As Scope.has_membership: a membership of `target` (else of any target the scope
    covers), in `status` if given."""
    if target is None and not scope.covers(kind):
        return "false"
    table = kind.memberships.name
    clauses = [f"m.user_id = {user}"]
    if target is not None:
        clauses.append(f"m.{kind.column} = {statement.bind(target)}")
    elif not scope.everything:
        clauses.append(f"m.{kind.column} = ANY({statement.bind(sorted(scope.targets(kind)))})")
    if status is not None:
        clauses.append(f"m.approval_status = {statement.bind(status.value)}")
    return f"EXISTS (SELECT 1 FROM {table} m WHERE {' AND '.join(clauses)})"


def _contains(statement: Statement, column: str, term: str) -> str:
    # As admin_search.contains: the trigram indexes on lower(email)/lower(username).
    pattern = statement.bind(f"%{like_literal(term.lower())}%")
    return f"lower({column}) LIKE {pattern} ESCAPE '\\'"


def where(statement: Statement, scope: Scope, selection: Selection) -> str:
    """The WHERE clause of the admin list for `u` (app_user), as admin_search.where_clauses."""
    query = selection.query
    clauses = [
        f"u.is_deleted IS {'true' if query.deleted else 'false'}",
        f"u.id <> {statement.bind(scope.caller_id)}",
    ]
    if query.email_verified is not None:
        clauses.append(f"u.email_verified IS {'true' if query.email_verified else 'false'}")
    if query.search:
        by_email = _contains(statement, "u.email", query.search)
        if "@" in query.search:
            clauses.append(by_email)
        else:
            clauses.append(f"({by_email} OR {_contains(statement, 'u.username', query.search)})")
    platform_status = query.platform_approval_status or query.approval_status
    group_status = query.group_approval_status or query.approval_status
    narrowed = False
    if selection.platform:
        clauses.append(
            _has_membership(
                statement,
                scope,
                "u.id",
                PLATFORMS,
                target=selection.platform,
                status=platform_status,
            )
        )
        narrowed = True
    if selection.group:
        clauses.append(
            _has_membership(
                statement, scope, "u.id", GROUPS, target=selection.group, status=group_status
            )
        )
        narrowed = True
    if not narrowed:
        if query.approval_status:
            either = " OR ".join(
                _has_membership(statement, scope, "u.id", kind, status=query.approval_status)
                for kind in KINDS
            )
            clauses.append(f"({either})")
            narrowed = True
        if query.platform_approval_status:
            clauses.append(
                _has_membership(
                    statement, scope, "u.id", PLATFORMS, status=query.platform_approval_status
                )
            )
            narrowed = True
        if query.group_approval_status:
            clauses.append(
                _has_membership(
                    statement, scope, "u.id", GROUPS, status=query.group_approval_status
                )
            )
            narrowed = True
    if not narrowed and not scope.everything:
        either = " OR ".join(_has_membership(statement, scope, "u.id", kind) for kind in KINDS)
        clauses.append(f"({either})")
    return " AND ".join(clauses)


# ---------------------------------------------------------------------------- shapes


def _admin_memberships(statement: Statement, scope: Scope, kind: Kind, user: str) -> str:
    """A user's memberships of one kind inside the scope, as PlatformMembershipAdmin /
    GroupMembershipAdmin (ordered by target, as admin_lists._memberships)."""
    if not scope.covers(kind):
        return "'[]'::json"
    table, catalog, history = kind.memberships.name, kind.catalog.name, kind.history.name
    requested_at = (
        f"(SELECT max(h.created_at) FROM {history} h WHERE h.membership_id = m.id "
        "AND h.approval_status = 'pending')"
    )
    if kind is PLATFORMS:
        names = "'platform_id', m.platform_id, 'platform_name', c.name"
        reasons = "'revocation_reason', m.revocation_reason, 'request_reason', m.request_reason"
    else:
        names = "'group_id', m.group_id, 'group_name', c.name, 'group_short_name', c.short_name"
        reasons = (
            "'revocation_reason', m.revocation_reason, 'rejection_reason', m.rejection_reason, "
            "'request_reason', m.request_reason"
        )
    inside = ""
    if not scope.everything:
        inside = f" AND m.{kind.column} = ANY({statement.bind(sorted(scope.targets(kind)))})"
    return (
        "coalesce((SELECT json_agg(json_build_object("
        f"'id', m.id, {names}, 'user_id', m.user_id, 'approval_status', m.approval_status, "
        f"'updated_by', {updated_by('m.updated_by_id', 'up.email')}, "
        f"'updated_at', {iso('m.updated_at')}, {reasons}, 'requested_at', {iso(requested_at)}"
        f") ORDER BY m.{kind.column}) "
        f"FROM {table} m JOIN {catalog} c ON c.id = m.{kind.column} "
        "LEFT JOIN app_user up ON up.id = m.updated_by_id "
        f"WHERE m.user_id = {user}{inside}), '[]'::json)"
    )


def _admin_user(statement: Statement, scope: Scope, u: str) -> str:
    """One AdminUser of the row alias `u`."""
    return (
        f"json_build_object('id', {u}.id, 'email', {u}.email, 'username', {u}.username, "
        f"'email_verified', {u}.email_verified, 'created_at', {iso(f'{u}.created_at')}, "
        f"'is_deleted', {u}.is_deleted, "
        f"'platform_memberships', {_admin_memberships(statement, scope, PLATFORMS, f'{u}.id')}, "
        f"'group_memberships', {_admin_memberships(statement, scope, GROUPS, f'{u}.id')})"
    )


def list_statement(scope: Scope, selection: Selection) -> tuple[str, list[Any]]:
    """`GET /admin/users`: (deactivated, body) where body is list[AdminUser]."""
    statement = Statement()
    off = deactivated(statement, scope.caller_id)
    query = selection.query
    # Validated by AdminUserQuery (1 ≤ per_page ≤ 100, 1 ≤ page ≤ 100 000); written
    # into the text so each page is planned for its real offset.
    limit, offset = int(query.per_page), (int(query.page) - 1) * int(query.per_page)
    conditions = where(statement, scope, selection)
    body = (
        f"coalesce((SELECT json_agg({_admin_user(statement, scope, 'p')} "
        "ORDER BY p.created_at DESC, p.id DESC) FROM ("
        "SELECT u.id, u.email, u.username, u.email_verified, u.created_at, u.is_deleted "
        f"FROM app_user u WHERE {conditions} ORDER BY u.created_at DESC, u.id DESC "
        f"LIMIT {limit} OFFSET {offset}) p), '[]'::json)"
    )
    return f"SELECT {off}, {as_bytes(body)}", statement.args


def pages_statement(scope: Scope, selection: Selection) -> tuple[str, list[Any]]:
    """`GET /admin/users/pages`: (deactivated, body) where body is UserPages."""
    statement = Statement()
    off = deactivated(statement, scope.caller_id)
    per_page = int(selection.query.per_page)
    conditions = where(statement, scope, selection)
    total = f"(SELECT count(*) FROM app_user u WHERE {conditions})"
    body = (
        f"(SELECT json_build_object('total', t.n, 'pages', ceil(t.n / {per_page}.0)::int, "
        f"'per_page', {per_page}) FROM (SELECT {total} AS n) t)"
    )
    return f"SELECT {off}, {as_bytes(body)}", statement.args


def _brief_memberships(statement: Statement, kind: Kind, user: str) -> str:
    """The user's own memberships not revoked (PlatformMembershipBrief / GroupMembershipBrief,
    ordered by target, as memberships.requests)."""
    table, catalog = kind.memberships.name, kind.catalog.name
    if kind is PLATFORMS:
        names = "'platform_id', m.platform_id, 'platform_name', c.name"
    else:
        names = "'group_id', m.group_id, 'group_name', c.name, 'group_short_name', c.short_name"
    visible = statement.bind(sorted(status.value for status in VISIBLE))
    return (
        f"coalesce((SELECT json_agg(json_build_object({names}, "
        f"'approval_status', m.approval_status) ORDER BY m.{kind.column}) "
        f"FROM {table} m JOIN {catalog} c ON c.id = m.{kind.column} "
        f"WHERE m.user_id = {user} AND m.approval_status = ANY({visible})), '[]'::json)"
    )


def profile_statement(user_id: str) -> tuple[str, list[Any]]:
    """`GET /me/profile`: (deactivated, welcome_pending, body) where body is ProfilePublic;
    no row when the user is not in the database yet."""
    statement = Statement()
    me = statement.bind(user_id)
    body = (
        "json_build_object('user_id', u.id, 'name', u.name, 'email', u.email, "
        "'email_verified', u.email_verified, 'username', u.username, 'picture', u.picture, "
        "'given_name', u.given_name, 'family_name', u.family_name, "
        f"'created_at', {iso('u.created_at')}, 'last_login', {iso('u.last_login')}, "
        "'show_welcome_message', false, "
        f"'platform_memberships', {_brief_memberships(statement, PLATFORMS, 'u.id')}, "
        f"'group_memberships', {_brief_memberships(statement, GROUPS, 'u.id')})"
    )
    return (
        f"SELECT u.is_deleted OR u.blocked, u.welcome_pending, {as_bytes(body)} "
        f"FROM app_user u WHERE u.id = {me}"
    ), statement.args


# ---------------------------------------------------------------------------- running


async def admin_list(reader: Reader, scope: Scope, selection: Selection) -> bytes:
    return await _admin_body(reader, *list_statement(scope, selection))


async def admin_pages(reader: Reader, scope: Scope, selection: Selection) -> bytes:
    return await _admin_body(reader, *pages_statement(scope, selection))


async def _admin_body(reader: Reader, sql: str, args: list[Any]) -> bytes:
    row = await reader.fetch_row(sql, args)
    assert row is not None  # a SELECT of expressions always has its one row
    if row[0]:
        raise Unauthorized("this account is deactivated")
    return bytes(row[1])


async def own_profile(reader: Reader, user_id: str) -> bytes | None:
    """The profile body, or None when the schema path must answer (no row yet: a first
    sign-in creates it; the welcome banner: reading it clears it)."""
    row = await reader.fetch_row(*profile_statement(user_id))
    if row is None or row[1]:
        return None
    if row[0]:
        raise Unauthorized("this account is deactivated")
    return bytes(row[2])
