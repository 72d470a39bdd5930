"""The hot reads' SQL-built JSON is the response schema, for every variant.

Each body Postgres builds (services/users/json_reads.py) is compared with what the schema
path (services/users/admin_lists.py, profile.py) serialises for the same world and query:
the same fields in the same order, the same types, nulls and timestamps. A field added to
a schema, a filter changed on one side, a timestamp written differently: each fails here.
"""

import itertools
import json
import re
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import TypeAdapter
from sqlmodel.ext.asyncio.session import AsyncSession

from db.models import (
    Auth0Role,
    Group,
    GroupMembership,
    GroupMembershipHistory,
    PlatformMembership,
    PlatformMembershipHistory,
    User,
    UserHistory,
)
from db.types import ApprovalStatus, UserChange
from schemas.users import (
    AdminUser,
    AdminUserQuery,
    AdminUserRecord,
    GroupMembershipAdmin,
    PlatformMembershipAdmin,
    ProfilePublic,
    UserPages,
)
from services.errors import AppError, Unauthorized
from services.identity.admin_scope import Scope
from services.users import admin_details, admin_lists, admin_search, json_reads, profile
from tests.conftest import SessionReader
from tests.routers.admin_world import COHORT, TSI, World

STATUSES = list(ApprovalStatus)
BARE = "biocommons/group/bare"  # a group with no short name


def ordered(body: bytes | str) -> Any:
    """JSON with each object as its list of (key, value) pairs: order counts."""
    return json.loads(body, object_pairs_hook=list)


@pytest.fixture
async def crowd(session: AsyncSession, world: World) -> dict[str, Any]:
    """Users covering every shape a body can take: nulls, odd text, deleted, unverified,
    memberships of every state in both kinds, decided by an admin with and without an
    email or by no one, requested (pending history) or not, timestamps with and without
    microseconds."""
    tag = secrets.token_hex(3)
    role = Auth0Role(id=f"rol_{tag}", name=f"{BARE}-{tag}")
    session.add(role)
    await session.flush()
    bare = f"{BARE}-{tag}"
    session.add(Group(id=bare, name="Bare group", short_name=None, access_role_id=role.id))
    deciders = [
        User(id=f"auth0|decider-{tag}", email=f"decider-{tag}@example.org"),
        User(id=f"auth0|nameless-{tag}", email=None),
    ]
    session.add_all(deciders)
    await session.flush()
    base = datetime(2024, 5, 1, 9, 30, tzinfo=UTC)
    texts = ['quo"te\\back', "ünï 😀 <b>&", "", "a%b_c", "tab\tnew\nline"]
    users: list[User] = []
    for index in range(24):
        odd = texts[index % len(texts)]
        user = User(
            id=f"auth0|crowd-{tag}-{index:02d}",
            email=None if index % 7 == 3 else f"crowd{index}.{tag}@example.org",
            username=None if index % 5 == 4 else f"crowd{index}{tag}{odd[:3]}",
            name=odd or None,
            given_name=odd,
            family_name=None,
            picture=None if index % 2 else "https://example.org/p.png",
            email_verified=index % 3 != 0,
            is_deleted=index % 11 == 5,
            # The last four share two instants: ties the list breaks by id.
            created_at=base + timedelta(minutes=min(index, 20), microseconds=(index % 2) * 120_500),
            last_login=None if index % 4 else base + timedelta(days=index),
        )
        users.append(user)
    session.add_all(users)
    await session.flush()
    targets = itertools.cycle(
        [
            ("platform", "galaxy"),
            ("platform", "bpa_data_portal"),
            ("group", TSI),
            ("group", COHORT),
            ("group", bare),
        ]
    )
    statuses = itertools.cycle(STATUSES)
    for index, user in enumerate(users):
        for _ in range(index % 4):
            kind, target = next(targets)
            status = next(statuses)
            decider = [None, deciders[0].id, deciders[1].id][index % 3]
            updated = base + timedelta(hours=index, microseconds=(index % 3) * 7)
            common: dict[str, Any] = {
                "id": uuid.uuid4(),
                "user_id": user.id,
                "approval_status": status,
                "updated_by_id": decider,
                "updated_at": updated,
                "created_at": base,
                "request_reason": texts[index % len(texts)] or None,
                "revocation_reason": "gone" if status is ApprovalStatus.REVOKED else None,
            }
            if kind == "platform":
                row: PlatformMembership | GroupMembership = PlatformMembership(
                    platform_id=target, **common
                )
            else:
                row = GroupMembership(
                    group_id=target,
                    rejection_reason="no" if status is ApprovalStatus.REJECTED else None,
                    **common,
                )
            session.add(row)
            await session.flush()
            if index % 2:  # asked for at some point: a pending history row
                history: dict[str, Any] = {
                    "membership_id": row.id,
                    "user_id": user.id,
                    "approval_status": ApprovalStatus.PENDING,
                    "created_at": base + timedelta(minutes=index, microseconds=index % 2),
                }
                session.add(
                    PlatformMembershipHistory(platform_id=target, **history)
                    if kind == "platform"
                    else GroupMembershipHistory(group_id=target, **history)
                )
        if index % 3 == 1:  # account history, by an admin, a nameless admin or no one
            for step in range(index % 4 + 1):
                session.add(
                    UserHistory(
                        user_id=user.id,
                        change=list(UserChange)[step % len(UserChange)],
                        previous_value=texts[step % len(texts)] or None,
                        new_value=f"v{step}",
                        reason=None if step % 2 else "asked",
                        changed_by_id=[None, deciders[0].id, deciders[1].id][step % 3],
                        # Two entries at one instant: the tie-break decides their order.
                        created_at=base + timedelta(seconds=step // 2, microseconds=step % 2),
                    )
                )
    # The caller (users[0]) and a deleted user (users[16]) hold memberships the counts of
    # one target must leave out.
    for index in (0, 16):
        session.add(
            PlatformMembership(
                user_id=users[index].id,
                platform_id="galaxy",
                approval_status=ApprovalStatus.PENDING,
            )
        )
        session.add(
            GroupMembership(
                user_id=users[index].id, group_id=TSI, approval_status=ApprovalStatus.PENDING
            )
        )
    await session.flush()
    assert users[16].is_deleted
    return {"users": users, "bare": bare, "deciders": deciders}


def scopes(crowd: dict[str, Any]) -> list[Scope]:
    # A listed user with memberships of three targets in several states: the caller is
    # left out of every list and count, the filtered ones included.
    caller = crowd["users"][7].id
    return [
        Scope(caller, True, frozenset(), frozenset()),
        Scope(caller, False, frozenset({"galaxy"}), frozenset()),
        Scope(caller, False, frozenset(), frozenset({TSI})),
        Scope(caller, False, frozenset({"galaxy", "bpa_data_portal"}), frozenset({crowd["bare"]})),
    ]


def queries(crowd: dict[str, Any]) -> list[dict[str, Any]]:
    tag = crowd["users"][0].id.split("-")[1]
    variants: list[dict[str, Any]] = [
        {},
        {"per_page": 3},
        {"per_page": 3, "page": 2},
        {"per_page": 5, "page": 40},  # past the end
        {"search": "crowd1"},
        {"search": f"{tag}@EXAMPLE"},
        {"search": "a%b"},
        {"search": '"te\\'},
        {"email_verified": False},
        {"email_verified": True},
        {"deleted": True},
        {"deleted": True, "email_verified": True},
        {"platform": "galaxy"},
        {"group": TSI},
        {"filter_by": "galaxy"},
        {"filter_by": "tsi"},
        {"platform": "galaxy", "group": TSI},
    ]
    for status in STATUSES:
        variants += [
            {"approval_status": status},
            {"platform_approval_status": status},
            {"group_approval_status": status},
            {"platform": "galaxy", "platform_approval_status": status},
            {"group": TSI, "group_approval_status": status, "search": "crowd"},
            {"approval_status": status, "platform": "bpa_data_portal"},
            # A sparse state is walked from the membership's index: later pages too.
            {"platform": "galaxy", "platform_approval_status": status, "per_page": 1, "page": 2},
            {"group": TSI, "group_approval_status": status, "per_page": 1, "page": 3},
            {"group": TSI, "approval_status": status, "email_verified": True, "per_page": 1},
        ]
    return variants


async def both_lists(
    session: AsyncSession, scope: Scope, query: AdminUserQuery
) -> tuple[Any, Any] | None:
    """(SQL-built, schema-built) bodies of the list and of its page count; None when the
    query is refused for this scope (the same refusal for both, as select_users runs
    before either)."""
    try:
        selection = await admin_search.select_users(session, scope, query)
    except Exception:
        return None
    reader = SessionReader(session)
    fast = await json_reads.admin_list(reader, scope, selection)
    TypeAdapter(list[AdminUser]).validate_json(fast)  # the schema's own types accept it
    slow = admin_lists.ADMIN_USERS.dump_json(
        await admin_lists.list_users(session, scope, selection)
    )
    fast_pages = await json_reads.admin_pages(reader, scope, selection)
    UserPages.model_validate_json(fast_pages)
    slow_pages = (await admin_lists.pages(session, scope, selection)).model_dump_json()
    return (ordered(fast), ordered(fast_pages)), (ordered(slow), ordered(slow_pages))


async def test_every_admin_list_variant_is_the_schema_body(
    session: AsyncSession, crowd: dict[str, Any]
) -> None:
    compared = rows = refused = 0
    for scope in scopes(crowd):
        for params in queries(crowd):
            query = AdminUserQuery(**params)
            both = await both_lists(session, scope, query)
            if both is None:
                refused += 1
                continue
            fast, slow = both
            assert fast == slow, (scope, params)
            compared += 1
            rows += len(fast[0])
    # The comparison ran on real bodies, not on empty lists.
    assert compared >= 120, (compared, rows, refused)
    assert rows >= 400, (compared, rows, refused)
    assert refused < compared


@pytest.mark.parametrize("sorted_at_most", [1, 3, 1000])
async def test_a_search_is_the_schema_body_whether_its_matches_are_sorted_or_walked(
    session: AsyncSession,
    crowd: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    sorted_at_most: int,
) -> None:
    """A search gathers its matches and sorts them when there are few, and walks users when
    there are more: both give the schema path's page."""
    monkeypatch.setattr(json_reads, "SEARCH_SORTED_AT_MOST", sorted_at_most)
    compared = 0
    searches: list[dict[str, Any]] = [
        {"search": "crowd"},
        {"search": "crowd2", "per_page": 1, "page": 2},  # ties at a page edge
        {"search": "example", "email_verified": True, "per_page": 3, "page": 3},
        {"search": "crowd", "platform": "galaxy"},
    ]
    for scope in scopes(crowd)[:2]:
        for params in searches:
            both = await both_lists(session, scope, AdminUserQuery(**params))
            if both is None:
                continue
            fast, slow = both
            assert fast == slow, (scope, params)
            compared += bool(fast[0])
    assert compared >= 6


async def test_a_walked_page_breaks_ties_as_the_schema_path(
    session: AsyncSession, crowd: dict[str, Any]
) -> None:
    """Users who signed up in the same instant, all pending in Galaxy: a page walked from
    the membership index orders them by id, newest first, as the user walk does."""
    instant = datetime(2024, 7, 1, tzinfo=UTC)
    tag = crowd["users"][0].id.split("-")[1]
    for index in range(4):
        user_id = f"auth0|tie-{tag}-{'acbd'[index]}"
        session.add(User(id=user_id, email=f"tie{index}.{tag}@example.org", created_at=instant))
        await session.flush()
        session.add(
            PlatformMembership(
                platform_id="galaxy", user_id=user_id, approval_status=ApprovalStatus.PENDING
            )
        )
    await session.flush()
    scope = scopes(crowd)[0]
    seen = []
    for page in range(1, 6):
        query = AdminUserQuery(
            platform="galaxy", platform_approval_status="pending", per_page=1, page=page
        )
        both = await both_lists(session, scope, query)
        assert both is not None
        fast, slow = both
        assert fast == slow, page
        seen += [dict(user)["id"] for user in fast[0]]
    assert seen[:4] == [f"auth0|tie-{tag}-{c}" for c in "dcba"]


async def test_the_list_body_has_every_schema_field_in_order(
    session: AsyncSession, crowd: dict[str, Any]
) -> None:
    """Against the schemas themselves, not only the schema path: a field the SQL leaves out
    or misplaces fails even if the schema path changed the same way."""
    scope = scopes(crowd)[0]
    selection = await admin_search.select_users(session, scope, AdminUserQuery(per_page=100))
    body = ordered(await json_reads.admin_list(SessionReader(session), scope, selection))
    users = [dict(user) for user in body]
    assert [key for key, _ in body[0]] == list(AdminUser.model_fields)
    platform = [dict(m) for u in users for m in u["platform_memberships"]]
    group = [dict(m) for u in users for m in u["group_memberships"]]
    first_platform = next(u for u in body if dict(u)["platform_memberships"])
    assert [k for k, _ in dict(first_platform)["platform_memberships"][0]] == list(
        PlatformMembershipAdmin.model_fields
    )
    first_group = next(u for u in body if dict(u)["group_memberships"])
    assert [k for k, _ in dict(first_group)["group_memberships"][0]] == list(
        GroupMembershipAdmin.model_fields
    )
    # Every kind of value turned up: nulls, the automatic decider, both timestamp forms.
    assert {m["updated_by"] for m in platform + group} >= {
        "(automatic)",
        crowd["deciders"][0].email,
        crowd["deciders"][1].id,
    }
    assert any(m["requested_at"] is None for m in platform + group)
    assert any(m["requested_at"] is not None for m in platform + group)
    assert any(dict(g)["group_short_name"] is None for g in group)
    stamps = [u["created_at"] for u in users]
    assert any("." in s for s in stamps)
    assert any("." not in s for s in stamps)
    assert all(s.endswith("Z") for s in stamps)


async def test_every_profile_is_the_schema_body(
    session: AsyncSession, crowd: dict[str, Any]
) -> None:
    reader = SessionReader(session)
    checked = 0
    for user in crowd["users"]:
        if user.is_deleted:
            with pytest.raises(Unauthorized):
                await json_reads.own_profile(reader, user.id)
            continue
        fast = await json_reads.own_profile(reader, user.id)
        assert fast is not None
        ProfilePublic.model_validate_json(fast)
        slow = (await profile.profile(session, None, user.id)).model_dump_json()  # type: ignore[arg-type]  # no Auth0 call: every row exists
        assert ordered(fast) == ordered(slow), user.id
        checked += 1
    assert checked >= 20
    assert await json_reads.own_profile(reader, "auth0|nobody-here") is None


async def test_a_pending_welcome_banner_is_left_to_the_schema_path(
    session: AsyncSession, crowd: dict[str, Any]
) -> None:
    user = crowd["users"][1]
    user.welcome_pending = True
    await session.flush()
    assert await json_reads.own_profile(SessionReader(session), user.id) is None


async def test_a_deactivated_caller_gets_no_list(
    session: AsyncSession, crowd: dict[str, Any]
) -> None:
    deleted = next(u for u in crowd["users"] if u.is_deleted)
    scope = Scope(deleted.id, True, frozenset(), frozenset())
    selection = await admin_search.select_users(session, scope, AdminUserQuery())
    with pytest.raises(Unauthorized):
        await json_reads.admin_list(SessionReader(session), scope, selection)
    with pytest.raises(Unauthorized):
        await json_reads.admin_pages(SessionReader(session), scope, selection)


async def test_every_user_record_is_the_schema_body(
    session: AsyncSession, crowd: dict[str, Any]
) -> None:
    """The database part of the details page, for every user and scope: the same record,
    or the same refusal (404 no such user, 403 outside the scope)."""
    reader = SessionReader(session)
    seen: dict[str, int] = {"same": 0, "refused": 0, "with history": 0}
    everyone = [*crowd["users"], *crowd["deciders"]]
    for scope in scopes(crowd):
        for user_id in [u.id for u in everyone] + ["auth0|nobody-here"]:
            try:
                slow: Any = (await admin_details.record(session, scope, user_id)).model_dump_json()
            except AppError as refusal:
                slow = (type(refusal), str(refusal))
            if isinstance(slow, tuple):
                with pytest.raises(slow[0], match=re.escape(slow[1])):
                    await json_reads.user_record(reader, scope, user_id)
                seen["refused"] += 1
                continue
            fast = await json_reads.user_record(reader, scope, user_id)
            AdminUserRecord.model_validate_json(fast)
            assert ordered(fast) == ordered(slow), (scope, user_id)
            seen["same"] += 1
            record = json.loads(fast)
            seen["with history"] += bool(record["history"] and record["membership_history"])
    assert seen["same"] >= 40, seen
    assert seen["refused"] >= 20, seen
    assert seen["with history"] >= 3, seen


async def test_a_deactivated_caller_gets_no_record(
    session: AsyncSession, crowd: dict[str, Any]
) -> None:
    deleted = next(u for u in crowd["users"] if u.is_deleted)
    scope = Scope(deleted.id, True, frozenset(), frozenset())
    for target in (crowd["users"][2].id, "auth0|nobody-here"):
        with pytest.raises(Unauthorized):
            await json_reads.user_record(SessionReader(session), scope, target)
