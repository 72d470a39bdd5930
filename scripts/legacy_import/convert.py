"""The old rows as this service's rows: a pure function of the old database and the time.

What goes where, and why (the reference is docs/cutover.md, "What the import carries"):

- users keep their Auth0 id, email, username, verification, first-seen time and soft
  delete. The deletion reasons the old code wrote itself are put in this service's words
  (`User self-deletion` → "deleted by the user", `auth0_sync` → "deleted in Auth0"); an
  admin's typed reason is kept as typed. Admin and self deletions blocked the user in
  Auth0, so they are imported blocked. The `deleted_*` columns of a live user are stale
  (the old restore left them) and are cleared. Names, picture and last login come from
  Auth0 at the first sync; the connection is read off the id's provider until then, so
  that a password and a Google account sharing an address stay two accounts.
- user history rows were snapshots taken *before* a change: the value after it is the next
  snapshot, or the current row. `auth0_sync` rows become an email and/or a username change
  (whichever differs); a row whose change is NULL, or whose `auth0_sync` changed nothing
  visible, becomes a `profile_update` that says so. Every username the history shows a user
  held is claimed for them, as usernames always were reserved.
- memberships keep their id, state, reasons, decider and times; `created_at` is the pair's
  first history entry. An approved row the old sync hid because its role left Auth0 is
  revoked here, with the new sync's reason and a history row, never approved. A history
  whose pair has no membership row gets one built from its last entry.
- queued email stays queued: due at once (PENDING, and SENDING, whose send was cut short:
  one duplicate is possible, a loss is not), or at its retry time (FAILED with
  `send_after`); given-up mail stays failed.
- one-time email codes are not carried: this service's hashes are HMACs over user, address
  and code with a key derived from JWT_SECRET_KEY, so an old unsalted hash can never match,
  and a code lives ten minutes anyway. The scheduler's pickled jobs are not carried: the new scheduler keeps
  its schedule in code, and the emails they were sending are requeued above.
"""

import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from db.types import ApprovalStatus, EmailStatus, UserChange
from scripts.legacy_import.source import Legacy
from services.users.auth0_records import BLOCKED_REASON, GONE_REASON
from services.users.profile import SELF_DELETION

OLD_SELF_DELETION = "User self-deletion"
OLD_SYNC_DELETION = "auth0_sync"
ROLE_REMOVED = "role removed in Auth0"  # the new membership sync's words
SYNC_CHANGE_REASON = "auth0 sync"  # the new user sync's words for a change seen in Auth0
NO_KIND_REASON = "imported: the old history row named no change"
NOTHING_SEEN_REASON = "auth0 sync (imported: the changed field could not be told)"


def user_status(row: dict[str, Any]) -> str:
    """How the reconciliation counts a user (old rows after conversion, or target rows)."""
    if not row["is_deleted"]:
        return "live"
    return {
        SELF_DELETION: "deleted by the user",
        GONE_REASON: "deleted: gone from Auth0",
        BLOCKED_REASON: "deleted: blocked in Auth0",
    }.get(row["deletion_reason"], "deleted by an admin")


def removed_status(row: dict[str, Any]) -> str:
    return "removed" if row["removed_at"] is not None else "live"


@dataclass
class Planned:
    """The rows one target table gets, each with the reconciliation status it is counted
    under and the old status it came from."""

    status_of: Callable[[dict[str, Any]], str]
    rows: list[dict[str, Any]] = field(default_factory=list)
    origins: list[str] = field(default_factory=list)

    def add(self, row: dict[str, Any], origin: str) -> None:
        self.rows.append(row)
        self.origins.append(origin)

    def origin_counts(self) -> dict[str, Counter[str]]:
        """status → how many rows of each old status landed there."""
        counts: dict[str, Counter[str]] = defaultdict(Counter)
        for row, origin in zip(self.rows, self.origins, strict=True):
            counts[self.status_of(row)][origin] += 1
        return counts


@dataclass
class Conversion:
    tables: dict[str, Planned]  # target table → rows, in a foreign-key-safe write order
    claims: list[dict[str, Any]]  # username_claim rows for names the history shows
    not_carried: list[tuple[str, int, str]]  # (what, how many, why)


def _status(column: str) -> Callable[[dict[str, Any]], str]:
    return lambda row: str(row[column])


def _platform_id(old: str) -> str:
    # GALAXY → galaxy: the lower-cased enum name is the suffix of biocommons/platform/{id}.
    return old.lower()


def convert(
    legacy: Legacy,
    *,
    now: datetime,
    db_connection: str,
    short_names: dict[str, str],
    email_max_age_s: int,
) -> Conversion:
    tables = {
        "auth0_role": Planned(removed_status),
        "platform": Planned(removed_status),
        "portal_group": Planned(removed_status),
        "platform_admin_role": Planned(lambda _row: "linked"),
        "group_admin_role": Planned(lambda _row: "linked"),
        "app_user": Planned(user_status),
        "user_history": Planned(_status("change")),
        "platform_membership": Planned(_status("approval_status")),
        "group_membership": Planned(_status("approval_status")),
        "platform_membership_history": Planned(_status("approval_status")),
        "group_membership_history": Planned(_status("approval_status")),
        "email_notification": Planned(_status("status")),
    }
    not_carried: list[tuple[str, int, str]] = []
    _catalog(legacy, tables, now, short_names, not_carried)
    _users(legacy, tables["app_user"], now, db_connection, not_carried)
    claims = _user_history(legacy, tables["user_history"])
    for kind in ("platform", "group"):
        _memberships(legacy, tables, kind)
    _emails(legacy, tables["email_notification"], now)
    stale = sum(
        1
        for row in tables["email_notification"].rows
        if row["status"] == EmailStatus.PENDING
        and (now - row["created_at"]).total_seconds() > email_max_age_s
    )
    if stale:
        not_carried.append(
            (
                f"queued emails older than EMAIL_MAX_AGE_S ({email_max_age_s} s)",
                stale,
                "imported as queued, but the new sender gives them up unsent; raise "
                "EMAIL_MAX_AGE_S for the first hours to send them",
            )
        )
    otps = legacy["email_change_otps"]
    if otps:
        active = sum(1 for o in otps if o["is_active"] and o["expires_at"] > now)
        not_carried.append(
            (
                f"email_change_otps ({active} still usable)",
                len(otps),
                "codes live 10 minutes and this service's hashes are keyed: whoever was "
                "changing an email asks for a new code",
            )
        )
    if legacy.scheduler_jobs:
        not_carried.append(
            (
                "apscheduler_jobs",
                len(legacy.scheduler_jobs),
                "pickled jobs of the old scheduler; the new one keeps its schedule in code, "
                "and the emails in flight are requeued",
            )
        )
    return Conversion(tables=tables, claims=claims, not_carried=not_carried)


def _catalog(
    legacy: Legacy,
    tables: dict[str, Planned],
    now: datetime,
    short_names: dict[str, str],
    not_carried: list[tuple[str, int, str]],
) -> None:
    stamps = {"created_at": now, "updated_at": now}
    live_role_by_name: dict[str, str] = {}
    for role in legacy["auth0role"]:
        removed = now if role["is_deleted"] else None
        if removed is None:
            live_role_by_name[role["name"]] = role["id"]
        tables["auth0_role"].add(
            {
                "id": role["id"],
                "name": role["name"],
                "description": role["description"],
                "removed_at": removed,
                **stamps,
            },
            "deleted" if role["is_deleted"] else "live",
        )
    for platform in legacy["platform"]:
        platform_id = _platform_id(platform["id"])
        tables["platform"].add(
            {
                "id": platform_id,
                "name": platform["name"],
                "short_name": short_names.get(platform_id, platform_id),
                "access_role_id": platform["role_id"],
                "removed_at": now if platform["is_deleted"] else None,
                **stamps,
            },
            "deleted" if platform["is_deleted"] else "live",
        )
    for group in legacy["biocommonsgroup"]:
        tables["portal_group"].add(
            {
                "id": group["group_id"],
                "name": group["name"],
                "short_name": group["short_name"],
                # The old table kept no access role: it is the live role named like the group.
                "access_role_id": live_role_by_name.get(group["group_id"]),
                "removed_at": now if group["is_deleted"] else None,
                **stamps,
            },
            "deleted" if group["is_deleted"] else "live",
        )
    dropped_links = 0
    for old, new, column, target in (
        ("platformrolelink", "platform_admin_role", "platform_id", _platform_id),
        ("grouprolelink", "group_admin_role", "group_id", str),
    ):
        for link in legacy[old]:
            if link["is_deleted"]:
                dropped_links += 1
                continue
            tables[new].add({column: target(link[column]), "role_id": link["role_id"]}, "live")
    if dropped_links:
        not_carried.append(
            ("admin role links marked deleted", dropped_links, "links that no longer applied")
        )


def _connection_of(user_id: str, db_connection: str) -> str | None:
    """Auth0 ids are `{provider}|{id}`: `auth0` is a database connection; a social
    connection is named after its provider by default. The first sync writes the truth."""
    provider, bar, _rest = user_id.partition("|")
    if not bar:
        return None
    return db_connection if provider == "auth0" else provider


def _users(
    legacy: Legacy,
    planned: Planned,
    now: datetime,
    db_connection: str,
    not_carried: list[tuple[str, int, str]],
) -> None:
    stale = 0
    for user in legacy["biocommons_user"]:
        deleted = bool(user["is_deleted"])
        reason = user["deletion_reason"]
        origin = "live"
        if deleted:
            if reason == OLD_SELF_DELETION:
                reason, origin = SELF_DELETION, "deleted: User self-deletion"
            elif reason == OLD_SYNC_DELETION and user["deleted_by_id"] is None:
                reason, origin = GONE_REASON, "deleted: auth0_sync"
            else:
                origin = "deleted by an admin"
        elif user["deleted_at"] or user["deletion_reason"] or user["deleted_by_id"]:
            stale += 1
        planned.add(
            {
                "id": user["id"],
                "email": user["email"],
                "email_verified": bool(user["email_verified"]),
                "username": user["username"],
                "connection": _connection_of(user["id"], db_connection),
                # The old backend blocked in Auth0 whoever it deleted, save the users Auth0
                # itself no longer had.
                "blocked": deleted and reason != GONE_REASON,
                "is_deleted": deleted,
                "deleted_at": user["deleted_at"] if deleted else None,
                "deleted_by_id": user["deleted_by_id"] if deleted else None,
                "deletion_reason": reason if deleted else None,
                "created_at": user["created_at"],
                "updated_at": now,
            },
            origin,
        )
    if stale:
        not_carried.append(
            (
                "deleted_at/by/reason on live users",
                stale,
                "left by the old restore; the restore itself is in the user history",
            )
        )


_HISTORY_KINDS = {
    "user_deletion": UserChange.USER_DELETION,
    "user_restoration": UserChange.USER_RESTORATION,
    "restored_from_auth0": UserChange.UNBLOCKED,
}


def _user_history(legacy: Legacy, planned: Planned) -> list[dict[str, Any]]:
    current = {u["id"]: u for u in legacy["biocommons_user"]}
    by_user: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for entry in legacy["biocommonsuserhistory"]:
        by_user[entry["user_id"]].append(entry)
    claims: list[dict[str, Any]] = []
    for user_id, entries in by_user.items():
        entries.sort(key=lambda e: (e["updated_at"], str(e["id"])))
        for index, entry in enumerate(entries):
            after = entries[index + 1] if index + 1 < len(entries) else current[user_id]
            for row in _history_rows(entry, after):
                planned.add(row, entry["change"] or "NULL")
            if entry["username"]:
                claims.append(
                    {
                        "username": entry["username"].lower(),
                        "user_id": user_id,
                        "claimed_at": entry["updated_at"],
                    }
                )
    # Whoever held a name first keeps it (after the live holders, who claim theirs as their
    # rows are written).
    claims.sort(key=lambda c: (c["claimed_at"], c["user_id"]))
    return claims


def _history_rows(entry: dict[str, Any], after: dict[str, Any]) -> Iterable[dict[str, Any]]:
    before_email, before_username = entry["email"], entry["username"]
    base = {
        "user_id": entry["user_id"],
        "changed_by_id": entry["updated_by_id"],
        "reason": entry["reason"],
        "created_at": entry["updated_at"],
    }

    def change(kind: UserChange, previous: str | None, new: str | None, **extra: Any) -> dict:
        return {
            **base,
            "change": kind,
            "email": after["email"],
            "username": after["username"],
            "previous_value": previous,
            "new_value": new,
            **extra,
        }

    def snapshot(kind: UserChange, **extra: Any) -> dict[str, Any]:
        return {
            **base,
            "change": kind,
            "email": before_email,
            "username": before_username,
            "previous_value": None,
            "new_value": None,
            **extra,
        }

    kind = entry["change"]
    if kind in _HISTORY_KINDS:
        return [snapshot(_HISTORY_KINDS[kind])]
    if kind == "email_update":
        return [change(UserChange.EMAIL_UPDATE, before_email, after["email"])]
    if kind == "username_update":
        return [change(UserChange.USERNAME_UPDATE, before_username, after["username"])]
    if kind == "auth0_sync":
        reason = {"reason": entry["reason"] or SYNC_CHANGE_REASON}
        rows = []
        if before_email != after["email"]:
            rows.append(change(UserChange.EMAIL_UPDATE, before_email, after["email"], **reason))
        if before_username != after["username"]:
            rows.append(
                change(UserChange.USERNAME_UPDATE, before_username, after["username"], **reason)
            )
        if rows:
            return rows
        return [snapshot(UserChange.PROFILE_UPDATE, reason=entry["reason"] or NOTHING_SEEN_REASON)]
    # NULL, or a kind the old code never wrote: kept as a snapshot saying so.
    note = NO_KIND_REASON if kind is None else f"imported: the old history row said {kind!r}"
    reason_text = f"{entry['reason']} ({note})" if entry["reason"] else note
    return [snapshot(UserChange.PROFILE_UPDATE, reason=reason_text)]


def _memberships(legacy: Legacy, tables: dict[str, Planned], kind: str) -> None:
    old_table, old_history = (
        ("platformmembership", "platformmembershiphistory")
        if kind == "platform"
        else ("groupmembership", "groupmembershiphistory")
    )
    column = f"{kind}_id"
    target = _platform_id if kind == "platform" else str
    memberships, histories = tables[f"{kind}_membership"], tables[f"{kind}_membership_history"]

    history_by_pair: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for entry in legacy[old_history]:
        history_by_pair[(target(entry[column]), entry["user_id"])].append(entry)
    for entries in history_by_pair.values():
        entries.sort(key=lambda e: (e["updated_at"], str(e["id"])))

    ids: dict[tuple[str, str], uuid.UUID] = {}
    for old in legacy[old_table]:
        pair = (target(old[column]), old["user_id"])
        entries = history_by_pair[pair]
        status = ApprovalStatus(old["approval_status"].lower())
        row = {
            "id": old["id"],
            column: pair[0],
            "user_id": pair[1],
            "approval_status": status,
            "request_reason": old["request_reason"],
            "revocation_reason": old["revocation_reason"],
            "updated_by_id": old["updated_by_id"],
            "created_at": entries[0]["updated_at"] if entries else old["updated_at"],
            "updated_at": old["updated_at"],
        }
        if kind == "group":
            row["rejection_reason"] = old["rejection_reason"]
        origin = old["approval_status"]
        if old["is_deleted"] and status == ApprovalStatus.APPROVED:
            # Hidden by the old sync when the role left Auth0: revoked, never approved.
            row.update(
                approval_status=ApprovalStatus.REVOKED,
                revocation_reason=ROLE_REMOVED,
                updated_by_id=None,
            )
            origin = "APPROVED, hidden (role left Auth0)"
        elif old["is_deleted"]:
            origin = f"{old['approval_status']}, hidden (user left Auth0)"
        memberships.add(row, origin)
        ids[pair] = old["id"]
        if origin.startswith("APPROVED, hidden"):
            entries.append(
                {
                    "approval_status": "REVOKED",
                    "reason": ROLE_REMOVED,
                    "updated_by_id": None,
                    "updated_at": old["updated_at"],
                    "synthetic": True,
                }
            )

    for pair, entries in history_by_pair.items():
        if pair not in ids:
            # History without its membership row: the last entry is the pair's state.
            last = entries[-1]
            status = ApprovalStatus(last["approval_status"].lower())
            row = {
                "id": uuid.uuid5(uuid.NAMESPACE_URL, f"aai-legacy:{kind}:{pair[0]}:{pair[1]}"),
                column: pair[0],
                "user_id": pair[1],
                "approval_status": status,
                "request_reason": None,
                "revocation_reason": last["reason"] if status == ApprovalStatus.REVOKED else None,
                "updated_by_id": last["updated_by_id"],
                "created_at": entries[0]["updated_at"],
                "updated_at": last["updated_at"],
            }
            if kind == "group":
                row["rejection_reason"] = (
                    last["reason"] if status == ApprovalStatus.REJECTED else None
                )
            memberships.add(row, "(none: rebuilt from its history)")
            ids[pair] = row["id"]
        for entry in entries:
            histories.add(
                {
                    "membership_id": ids[pair],
                    column: pair[0],
                    "user_id": pair[1],
                    "approval_status": ApprovalStatus(entry["approval_status"].lower()),
                    "reason": entry["reason"],
                    "updated_by_id": entry["updated_by_id"],
                    "created_at": entry["updated_at"],
                },
                "(added: role left Auth0)"
                if entry.get("synthetic")
                else entry["approval_status"] + (", hidden" if entry.get("is_deleted") else ""),
            )


def _emails(legacy: Legacy, planned: Planned, now: datetime) -> None:
    for old in legacy["emailnotification"]:
        status, send_after, origin = old["status"], old["send_after"], old["status"]
        if status == "PENDING":
            new_status, send_after = EmailStatus.PENDING, send_after or old["created_at"]
        elif status == "SENDING":
            new_status, send_after = EmailStatus.PENDING, now
        elif status == "FAILED" and send_after is not None:
            new_status, origin = EmailStatus.PENDING, "FAILED, retry due"
        elif status == "FAILED":
            new_status, origin = EmailStatus.FAILED, "FAILED, given up"
        else:
            new_status = EmailStatus.SENT
        planned.add(
            {
                "id": old["id"],
                "to_address": old["to_address"],
                "from_address": old["from_address"],
                "subject": old["subject"],
                "body_html": old["body_html"],
                "status": new_status,
                "attempts": old["attempts"],
                "last_error": old["last_error"],
                "send_after": send_after
                if new_status == EmailStatus.PENDING
                else old["send_after"],
                "last_attempt_at": old["last_attempt_at"],
                "sent_at": old["sent_at"],
                "created_at": old["created_at"],
                "updated_at": old["updated_at"],
            },
            origin,
        )
