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
from services.errors import Forbidden, NotFound, Unauthorized
from services.identity.admin_scope import Scope
from services.memberships.kinds import GROUPS, KINDS, PLATFORMS, Kind
from services.memberships.requests import VISIBLE
from services.users.admin_search import AUTOMATIC, Selection, like_literal

HISTORY_LIMIT = 200  # as services/users/admin_details.py


def iso(expression: str) -> str:
    """A timestamptz as pydantic writes an aware UTC datetime: `2024-05-01T09:30:00Z`,
    with `.ffffff` only when there are microseconds; NULL stays NULL. (`.US` always
    gives six digits, so `.000000Z` can only be the end.)"""
    return (
        f"replace(to_char(({expression}) AT TIME ZONE 'UTC', "
        "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), '.000000Z', 'Z')"
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


@dataclass(frozen=True)
class Members:
    """Users with a membership of one kind: of `target`, else of any target the scope
    covers; in `status` if given (Scope.members, as SQL)."""

    kind: Kind
    target: str | None = None
    status: ApprovalStatus | None = None

    def conditions(self, statement: Statement, scope: Scope) -> list[str] | None:
        """The membership table's conditions (alias m), or None when there can be none."""
        if self.target is None and not scope.covers(self.kind):
            return None
        column = f"m.{self.kind.column}"
        found = []
        if self.target is not None:
            found.append(f"{column} = {statement.bind(self.target)}")
        elif not scope.everything:
            found.append(f"{column} = ANY({statement.bind(sorted(scope.targets(self.kind)))})")
        if self.status is not None:
            found.append(f"m.approval_status = {statement.bind(self.status.value)}")
        return found

    @property
    def dense(self) -> bool:
        # Most memberships are approved: most users in scope match.
        return self.status is None or self.status is ApprovalStatus.APPROVED


def has_any(statement: Statement, scope: Scope, alternatives: list[Members], ordered: bool) -> str:
    """`u` holds one of the memberships (OR). How it is written decides the plan:

    - a page walked newest first (`ordered`) where most users match: EXISTS, which Postgres
      probes user by user and stops after a page;
    - a page where few match (pending, revoked, rejected): probing would walk thousands of
      users for a later page, so the matching ids are read once into a hash (one index
      range) that the walk tests; coalesce() keeps Postgres from turning the IN into a
      join, which it planned as a full scan and sort of app_user;
    - a count: one IN over all alternatives (UNION ALL), a semi-join Postgres can answer
      from the membership side; an OR of EXISTS made it test every user twice (33 ms at
      20,000 users for "any pending membership")."""
    parts: list[tuple[Members, list[str]]] = []
    for members in alternatives:
        conditions = members.conditions(statement, scope)
        if conditions is not None:
            parts.append((members, conditions))
    if not parts:
        return "false"

    def select(members: Members, conditions: list[str]) -> str:
        where = " AND ".join(conditions) or "true"
        return f"SELECT m.user_id FROM {members.kind.memberships.name} m WHERE {where}"

    if not ordered:
        return "u.id IN (" + " UNION ALL ".join(select(*part) for part in parts) + ")"
    tests = []
    for members, conditions in parts:
        if members.dense:
            where = " AND ".join(["m.user_id = u.id", *conditions])
            tests.append(f"EXISTS (SELECT 1 FROM {members.kind.memberships.name} m WHERE {where})")
        else:
            tests.append(f"coalesce(u.id IN ({select(members, conditions)}), false)")
    return tests[0] if len(tests) == 1 else "(" + " OR ".join(tests) + ")"


def _contains(statement: Statement, column: str, term: str) -> str:
    # As admin_search.contains: the trigram indexes on lower(email)/lower(username).
    pattern = statement.bind(f"%{like_literal(term.lower())}%")
    return f"lower({column}) LIKE {pattern} ESCAPE '\\'"


def named(selection: Selection) -> list[Members]:
    """The memberships the filter's named platform and group require (each in its status:
    platform_approval_status / group_approval_status, else approval_status)."""
    query = selection.query
    found = []
    if selection.platform:
        status = query.platform_approval_status or query.approval_status
        found.append(Members(PLATFORMS, selection.platform, status))
    if selection.group:
        found.append(
            Members(GROUPS, selection.group, query.group_approval_status or query.approval_status)
        )
    return found


def walked_from(selection: Selection) -> Members | None:
    """The membership a filtered page is walked from, if any: a platform or group named in
    the filter, in a sparse state (pending, revoked, rejected). Its index (target, status,
    user_created_at, user_id) holds the target's members in that state in the page's
    order, so a page is the next entries of the index, whatever its offset; walking users
    newest first and testing each against the target's ids instead read ~3,000 users and
    8,300 ids for page 5 at 100,000 users (~4.5 ms against ~0.7 ms). A dense state
    (approved, or none) matches most users: walking users is as short there."""
    return next((members for members in named(selection) if not members.dense), None)


def where(
    statement: Statement,
    scope: Scope,
    selection: Selection,
    *,
    ordered: bool = True,
    walked: Members | None = None,
) -> str:
    """The WHERE clause of the admin list for `u` (app_user), as admin_search.where_clauses;
    `ordered` for a page (newest first), not for a count; less the membership the page is
    `walked` from (its conditions are the walk's)."""
    query = selection.query

    def holds(*alternatives: Members) -> str:
        return has_any(statement, scope, list(alternatives), ordered)

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
    targets = named(selection)
    clauses += [holds(members) for members in targets if members != walked]
    narrowed = bool(targets)
    if not narrowed:
        if query.approval_status:
            clauses.append(holds(*(Members(kind, status=query.approval_status) for kind in KINDS)))
            narrowed = True
        if query.platform_approval_status:
            clauses.append(holds(Members(PLATFORMS, status=query.platform_approval_status)))
            narrowed = True
        if query.group_approval_status:
            clauses.append(holds(Members(GROUPS, status=query.group_approval_status)))
            narrowed = True
    if not narrowed and not scope.everything:
        clauses.append(holds(*(Members(kind) for kind in KINDS)))
    return " AND ".join(clauses)


# ---------------------------------------------------------------------------- shapes


def _admin_memberships(
    statement: Statement, scope: Scope, kind: Kind, user: str, page: str | None = None
) -> str:
    """A user's memberships of one kind inside the scope, as PlatformMembershipAdmin /
    GroupMembershipAdmin (ordered by target, as admin_lists._memberships); with `page`
    (a CTE of user ids), every page user's as rows of (user_id, items)."""
    if not scope.covers(kind):
        if page is not None:
            return "SELECT NULL::text AS user_id, NULL::json AS items WHERE false"
        return "'[]'::json"
    table, catalog, history = kind.memberships.name, kind.catalog.name, kind.history.name
    # Its latest request (the pending tooltip): computed once in a lateral join, since
    # the timestamp's formatting names it more than once.
    requested_at = (
        f"LEFT JOIN LATERAL (SELECT max(h.created_at) AS at FROM {history} h "
        "WHERE h.membership_id = m.id AND h.approval_status = 'pending') r ON true"
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
    items = (
        "json_agg(json_build_object("
        f"'id', m.id, {names}, 'user_id', m.user_id, 'approval_status', m.approval_status, "
        f"'updated_by', {updated_by('m.updated_by_id', 'up.email')}, "
        f"'updated_at', {iso('m.updated_at')}, {reasons}, 'requested_at', {iso('r.at')}"
        f") ORDER BY m.{kind.column})"
    )
    joins = (
        f"FROM {table} m JOIN {catalog} c ON c.id = m.{kind.column} "
        f"LEFT JOIN app_user up ON up.id = m.updated_by_id {requested_at}"
    )
    if page is not None:
        # A whole page's memberships in one pass, grouped by user, instead of one
        # subquery per user: a page's body cost half as much in Postgres.
        return (
            f"SELECT m.user_id, {items} AS items {joins} "
            f"WHERE m.user_id IN (SELECT id FROM {page}){inside} GROUP BY m.user_id"
        )
    return f"coalesce((SELECT {items} {joins} WHERE m.user_id = {user}{inside}), '[]'::json)"


# Up to this many matches of a search are sorted; past it, users are walked newest first.
SEARCH_SORTED_AT_MOST = 2000


def _searched(columns: str, conditions: str, window: str) -> str:
    """The page CTE `p` of a search. Postgres estimates a search's matches from trigram
    statistics and, taking them to be spread evenly in time, walks users newest first
    until a page is found. When the matches are old, or clustered, the walk reads most of
    the table: 48,000 users (~50 ms) for a term with 1,000 matches at 100,000 users. So the
    matches are first gathered through the trigram indexes, at most 2,001 of them
    (`hits`, unordered); if that is all of them, they are sorted (bounded work whatever
    their dates); if not, the term is common enough for the walk to find a page soon."""
    sorted_at_most = SEARCH_SORTED_AT_MOST
    few = f"(SELECT count(*) FROM hits) <= {sorted_at_most}"
    return (
        f"hits AS MATERIALIZED (SELECT {columns} FROM app_user u WHERE {conditions} "
        f"LIMIT {sorted_at_most + 1}), "
        "p AS MATERIALIZED ("
        f"(SELECT * FROM hits WHERE {few} ORDER BY created_at DESC, id DESC {window}) "
        f"UNION ALL (SELECT {columns} FROM app_user u WHERE {conditions} AND NOT {few} "
        f"ORDER BY u.created_at DESC, u.id DESC {window}))"
    )


def list_statement(scope: Scope, selection: Selection) -> tuple[str, list[Any]]:
    """`GET /admin/users`: (deactivated, body) where body is list[AdminUser]."""
    statement = Statement()
    off = deactivated(statement, scope.caller_id)
    query = selection.query
    # Validated by AdminUserQuery (1 ≤ per_page ≤ 100, 1 ≤ page ≤ 100 000); written
    # into the text so each page is planned for its real offset.
    limit, offset = int(query.per_page), (int(query.page) - 1) * int(query.per_page)
    walked = walked_from(selection)
    conditions = where(statement, scope, selection, walked=walked)
    source, order = "app_user u", "u.created_at DESC, u.id DESC"
    if walked is not None:
        # The same order as the user's: user_created_at is app_user.created_at, copied by
        # the database (migration 7c2e5a91d0b4), and user_id is u.id.
        walk = walked.conditions(statement, scope) or []
        source = f"{walked.kind.memberships.name} m JOIN app_user u ON u.id = m.user_id"
        conditions = " AND ".join([*walk, conditions])
        order = "m.user_created_at DESC, m.user_id DESC"
    platforms = _admin_memberships(statement, scope, PLATFORMS, "p.id", page="p")
    groups = _admin_memberships(statement, scope, GROUPS, "p.id", page="p")
    user = (
        "json_build_object('id', p.id, 'email', p.email, 'username', p.username, "
        f"'email_verified', p.email_verified, 'created_at', {iso('p.created_at')}, "
        "'is_deleted', p.is_deleted, "
        "'platform_memberships', coalesce(pm.items, '[]'::json), "
        "'group_memberships', coalesce(gm.items, '[]'::json))"
    )
    columns = "u.id, u.email, u.username, u.email_verified, u.created_at, u.is_deleted"
    window = f"LIMIT {limit} OFFSET {offset}"
    page = (
        f"p AS MATERIALIZED (SELECT {columns} FROM {source} WHERE {conditions} "
        f"ORDER BY {order} {window})"
    )
    if query.search and walked is None:
        page = _searched(columns, conditions, window)
    body = (
        f"(WITH {page}, pm AS ({platforms}), gm AS ({groups}) "
        f"SELECT coalesce(json_agg({user} ORDER BY p.created_at DESC, p.id DESC), '[]'::json) "
        "FROM p LEFT JOIN pm ON pm.user_id = p.id LEFT JOIN gm ON gm.user_id = p.id)"
    )
    return f"SELECT {off}, {as_bytes(body)}", statement.args


def pages_statement(scope: Scope, selection: Selection) -> tuple[str, list[Any]]:
    """`GET /admin/users/pages`: (deactivated, body) where body is UserPages."""
    statement = Statement()
    off = deactivated(statement, scope.caller_id)
    per_page = int(selection.query.per_page)
    single = _single_target(selection)
    if single is not None:
        count = _count_of_one_target(statement, scope, single)
    else:
        conditions = where(statement, scope, selection, ordered=False)
        count = f"(SELECT count(*) FROM app_user u WHERE {conditions})"
    # MATERIALIZED: inlined, the count ran twice (once for total, once for pages).
    body = (
        f"(WITH t AS MATERIALIZED (SELECT {count} AS n) "
        f"SELECT json_build_object('total', t.n, 'pages', ceil(t.n / {per_page}.0)::int, "
        f"'per_page', {per_page}) FROM t)"
    )
    return f"SELECT {off}, {as_bytes(body)}", statement.args


def _single_target(selection: Selection) -> Members | None:
    """The one platform or group (and status) a count is of, when nothing else narrows it:
    the revoked page of a platform admin, a filtered page's total."""
    query = selection.query
    if query.search or query.email_verified is not None or query.deleted:
        return None
    targets = named(selection)
    return targets[0] if len(targets) == 1 else None


def _count_of_one_target(statement: Statement, scope: Scope, members: Members) -> str:
    """Live users other than the caller with one of `members` (a target, in a status): the
    memberships counted from the (target, status) index, less those of deleted users (few;
    found from the partial index on deleted users) and the caller's. A user holds one
    membership per target, so memberships are users. Joining every membership to app_user
    instead cost ~3 µs a row (text keys compared by collation): 25 ms at 100,000 users."""
    table = members.kind.memberships.name
    matching = " AND ".join(members.conditions(statement, scope) or ["false"])
    # The caller answers 401 when deleted or blocked (the same statement checks), so a
    # caller still counted here is live and counted once.
    caller = statement.bind(scope.caller_id)
    return (
        f"((SELECT count(*) FROM {table} m WHERE {matching}) "
        f"- (SELECT count(*) FROM app_user u WHERE u.is_deleted AND EXISTS "
        f"(SELECT 1 FROM {table} m WHERE m.user_id = u.id AND {matching})) "
        f"- (SELECT count(*) FROM {table} m WHERE m.user_id = {caller} AND {matching}))"
    )


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


def _user_history(user: str) -> str:
    """UserHistoryEntry list, newest first (as admin_details._user_history)."""
    return (
        "coalesce((SELECT json_agg(json_build_object('change', h.change, "
        "'previous_value', h.previous_value, 'new_value', h.new_value, 'reason', h.reason, "
        f"'changed_by', {updated_by('h.changed_by_id', 'a.email')}, "
        f"'created_at', {iso('h.created_at')}) ORDER BY h.created_at DESC, h.id DESC) "
        "FROM (SELECT * FROM user_history WHERE user_id = "
        f"{user} ORDER BY created_at DESC, id DESC LIMIT {HISTORY_LIMIT}) h "
        "LEFT JOIN app_user a ON a.id = h.changed_by_id), '[]'::json)"
    )


def _membership_history(statement: Statement, scope: Scope, user: str) -> str:
    """MembershipHistoryEntry list of both kinds inside the scope, newest first (as
    admin_details._membership_history: each kind's newest 200, platforms before groups
    at the same instant)."""
    parts = []
    for order, kind in enumerate(KINDS):
        if not scope.covers(kind):
            continue
        inside = ""
        if not scope.everything:
            inside = f" AND {kind.column} = ANY({statement.bind(sorted(scope.targets(kind)))})"
        parts.append(
            f"(SELECT '{kind.name}' AS kind, {order} AS kind_order, id, {kind.column} AS target_id, "
            "approval_status, reason, updated_by_id, created_at "
            f"FROM {kind.history.name} WHERE user_id = {user}{inside} "
            f"ORDER BY created_at DESC, id DESC LIMIT {HISTORY_LIMIT})"
        )
    if not parts:
        return "'[]'::json"
    return (
        "coalesce((SELECT json_agg(json_build_object('kind', h.kind, 'target_id', h.target_id, "
        "'approval_status', h.approval_status, 'reason', h.reason, "
        f"'updated_by', {updated_by('h.updated_by_id', 'a.email')}, "
        f"'created_at', {iso('h.created_at')}) "
        "ORDER BY h.created_at DESC, h.kind_order, h.id DESC) "
        f"FROM ({' UNION ALL '.join(parts)}) h "
        "LEFT JOIN app_user a ON a.id = h.updated_by_id), '[]'::json)"
    )


def details_statement(scope: Scope, user_id: str) -> tuple[str, list[Any]]:
    """`GET /admin/users/{id}/details`, the database part: (deactivated, found, inside,
    body) where body is the AdminUser fields, then the record's own fields and its
    histories, in AdminUserDetails' order. Always one row (the user joined to it), so a
    missing user and a deactivated caller are told apart in the same round trip."""
    statement = Statement()
    off = deactivated(statement, scope.caller_id)
    them = statement.bind(user_id)
    inside = (
        "true"
        if scope.everything
        else has_any(statement, scope, [Members(kind) for kind in KINDS], ordered=True)
    )
    body = (
        f"json_build_object('id', u.id, 'email', u.email, 'username', u.username, "
        f"'email_verified', u.email_verified, 'created_at', {iso('u.created_at')}, "
        "'is_deleted', u.is_deleted, "
        f"'platform_memberships', {_admin_memberships(statement, scope, PLATFORMS, 'u.id')}, "
        f"'group_memberships', {_admin_memberships(statement, scope, GROUPS, 'u.id')}, "
        f"'user_id', u.id, 'updated_at', {iso('u.updated_at')}, 'name', u.name, "
        "'given_name', u.given_name, 'family_name', u.family_name, 'picture', u.picture, "
        "'blocked', u.blocked, 'connection', u.connection, "
        f"'last_login', {iso('u.last_login')}, 'deleted_at', {iso('u.deleted_at')}, "
        "'deletion_reason', u.deletion_reason, "
        f"'history', {_user_history('u.id')}, "
        f"'membership_history', {_membership_history(statement, scope, 'u.id')})"
    )
    return (
        f"SELECT {off}, u.id IS NOT NULL, ({inside}), {as_bytes(body)} "
        f"FROM (SELECT 1) one LEFT JOIN app_user u ON u.id = {them}"
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


async def user_record(reader: Reader, scope: Scope, user_id: str) -> bytes:
    """The database part of a user's details, if the caller may see them."""
    sql, args = details_statement(scope, user_id)
    row = await reader.fetch_row(sql, args)
    assert row is not None  # always one row (see details_statement)
    deactivated_caller, found, inside, body = row
    if deactivated_caller:
        raise Unauthorized("this account is deactivated")
    if not found:
        raise NotFound(f"no user {user_id!r}")
    if not inside:
        raise Forbidden(f"user {user_id!r} has no membership of a platform or group you administer")
    return bytes(body)


async def own_profile(reader: Reader, user_id: str) -> bytes | None:
    """The profile body, or None when the schema path must answer (no row yet: a first
    sign-in creates it; the welcome banner: reading it clears it)."""
    row = await reader.fetch_row(*profile_statement(user_id))
    if row is None or row[1]:
        return None
    if row[0]:
        raise Unauthorized("this account is deactivated")
    return bytes(row[2])
