"""Admin reads (lists, filters, pages, counts, details, CSV) and account changes, with
the permission matrix over every admin endpoint."""

import csv
import io
import secrets

import pytest
from sqlmodel import col, select

from db.base import utcnow
from db.models import (
    EmailNotification,
    PlatformMembership,
    SyncRun,
    User,
    UserHistory,
)
from db.types import ApprovalStatus, SyncRunStatus, UserChange
from scripts.auth0_emulator.tenant import DEFAULT_CONNECTION
from tests.factories import portal_user
from tests.routers.admin_world import TSI, admin

GALAXY_ADMIN = "biocommons/role/galaxy/admin"
TSI_ADMIN = "biocommons/role/tsi/admin"


@pytest.fixture
async def people(session, emulator, world):
    """Four users: galaxy-pending, galaxy-approved+bpa, tsi-only (unverified), nobody's."""
    tag = secrets.token_hex(2)
    return {
        "pending": await portal_user(
            session,
            emulator,
            name=f"pat{tag}",
            platforms={"galaxy": ApprovalStatus.PENDING},
            age_minutes=1,
        ),
        "approved": await portal_user(
            session,
            emulator,
            name=f"alex{tag}",
            platforms={
                "galaxy": ApprovalStatus.APPROVED,
                "bpa_data_portal": ApprovalStatus.REVOKED,
            },
            age_minutes=2,
        ),
        "tsi": await portal_user(
            session,
            emulator,
            name=f"tess{tag}",
            groups={TSI: ApprovalStatus.PENDING},
            verified=False,
            age_minutes=3,
        ),
        "loner": await portal_user(session, emulator, name=f"lone{tag}", age_minutes=4),
    }


def ids(response) -> list[str]:
    assert response.status_code == 200, response.text
    return [user["id"] for user in response.json()]


class TestList:
    async def test_a_general_admin_sees_everyone_newest_first_but_not_themselves(
        self, client, emulator, people
    ):
        headers = admin(emulator, "Admin")
        # The caller's own row exists (created on first use) and still is not listed.
        me = (await client.get("/me/profile", headers=headers)).json()["user_id"]
        listed = ids(await client.get("/admin/users", headers=headers))
        mine = [people[k].id for k in ("pending", "approved", "tsi", "loner")]
        assert [i for i in listed if i in mine] == mine
        assert me not in listed

    async def test_a_platform_admin_sees_only_their_platforms_users_and_memberships(
        self, client, emulator, people
    ):
        body = (await client.get("/admin/users", headers=admin(emulator, GALAXY_ADMIN))).json()
        assert {u["id"] for u in body} == {people["pending"].id, people["approved"].id}
        approved = next(u for u in body if u["id"] == people["approved"].id)
        # The BPA membership is outside a Galaxy admin's scope.
        assert [m["platform_id"] for m in approved["platform_memberships"]] == ["galaxy"]
        membership = approved["platform_memberships"][0]
        assert membership["platform_name"] == "Galaxy Australia"
        assert membership["updated_by"] == "(automatic)"
        assert set(membership) == {
            "id",
            "platform_id",
            "platform_name",
            "user_id",
            "approval_status",
            "updated_by",
            "updated_at",
            "revocation_reason",
            "request_reason",
            "requested_at",
        }

    async def test_a_group_admin_sees_the_groups_users(self, client, emulator, people):
        body = (await client.get("/admin/users", headers=admin(emulator, TSI_ADMIN))).json()
        assert [u["id"] for u in body] == [people["tsi"].id]
        assert body[0]["group_memberships"][0]["group_short_name"] == "TSI"
        assert body[0]["platform_memberships"] == []

    async def test_updated_by_names_the_deciding_admin(self, client, session, emulator, world):
        decider = await portal_user(session, emulator, name=f"boss{secrets.token_hex(2)}")
        subject = await portal_user(
            session,
            emulator,
            name=f"subj{secrets.token_hex(2)}",
            platforms={"galaxy": ApprovalStatus.APPROVED},
            updated_by=decider.id,
        )
        body = (
            await client.get(f"/admin/users/{subject.id}", headers=admin(emulator, "Admin"))
        ).json()
        assert body["platform_memberships"][0]["updated_by"] == decider.email

    @pytest.mark.parametrize(
        ("query", "expected"),
        [
            ("approval_status=pending", {"pending"}),
            ("platform=galaxy&platform_approval_status=approved", {"approved"}),
            ("platform_approval_status=pending", {"pending"}),
            ("filter_by=galaxy", {"pending", "approved"}),
            ("email_verified=true", {"pending", "approved"}),
        ],
    )
    async def test_filters(self, client, emulator, people, query, expected):
        response = await client.get(f"/admin/users?{query}", headers=admin(emulator, GALAXY_ADMIN))
        assert {k for k, u in people.items() if u.id in ids(response)} == expected

    async def test_filtering_by_a_group_one_does_not_administer_is_403(
        self, client, emulator, people
    ):
        response = await client.get(
            "/admin/users?filter_by=tsi", headers=admin(emulator, GALAXY_ADMIN)
        )
        assert response.status_code == 403

    async def test_group_filters_for_a_general_admin(self, client, emulator, people):
        headers = admin(emulator, "Admin")
        for query in (
            f"group={TSI}",
            "filter_by=tsi",
            f"filter_by={TSI}",
            "group_approval_status=pending",
        ):
            response = await client.get(f"/admin/users?{query}", headers=headers)
            assert {k for k, u in people.items() if u.id in ids(response)} == {"tsi"}, query
        unverified = await client.get("/admin/users?email_verified=false", headers=headers)
        assert people["tsi"].id in ids(unverified)
        assert people["pending"].id not in ids(unverified)

    async def test_search_matches_part_of_a_username_or_email_in_any_case(
        self, client, emulator, people
    ):
        headers = admin(emulator, "Admin")
        name = people["approved"].username
        assert ids(
            await client.get(f"/admin/users?search={name[2:].upper()}", headers=headers)
        ) == [people["approved"].id]
        # With an @ only emails match; wildcards are taken literally.
        assert ids(await client.get(f"/admin/users?search={name}@EXAMPLE", headers=headers)) == [
            people["approved"].id
        ]
        assert ids(await client.get("/admin/users?search=%25_%25", headers=headers)) == []

    async def test_paging_is_stable_and_pages_counts_the_same_filters(
        self, client, emulator, people
    ):
        headers = admin(emulator, GALAXY_ADMIN)
        first = ids(await client.get("/admin/users?per_page=1&page=1", headers=headers))
        second = ids(await client.get("/admin/users?per_page=1&page=2", headers=headers))
        assert first == [people["pending"].id]
        assert second == [people["approved"].id]
        pages = (await client.get("/admin/users/pages?per_page=1", headers=headers)).json()
        assert pages == {"total": 2, "pages": 2, "per_page": 1}

    @pytest.mark.parametrize(
        ("query", "status", "detail"),
        [
            ("approval_status=pending&platform_approval_status=pending", 400, "cannot be combined"),
            ("approval_status=pending&group_approval_status=pending", 400, "cannot be combined"),
            ("filter_by=galaxy&platform=bpa_data_portal", 400, "contradicts"),
            ("platform=nope", 404, "no platform"),
            (f"group={TSI}x", 404, "no group"),
            ("filter_by=nothing", 404, "no platform or group"),
        ],
    )
    async def test_bad_filters_say_what_is_wrong(
        self, client, emulator, world, query, status, detail
    ):
        response = await client.get(f"/admin/users?{query}", headers=admin(emulator, "Admin"))
        assert response.status_code == status, response.text
        assert detail in response.json()["detail"]

    @pytest.mark.parametrize(
        "query", ["per_page=0", "per_page=101", "page=0", "approval_status=maybe"]
    )
    async def test_out_of_range_parameters_are_422(self, client, emulator, world, query):
        response = await client.get(f"/admin/users?{query}", headers=admin(emulator, "Admin"))
        assert response.status_code == 422


class TestCountsAndExport:
    async def test_counts_in_the_callers_scope(self, client, emulator, people):
        galaxy = (
            await client.get("/admin/users/counts", headers=admin(emulator, GALAXY_ADMIN))
        ).json()
        assert galaxy == {"all": 2, "pending": 1, "revoked": 0, "unverified": 0}
        tsi = (await client.get("/admin/users/counts", headers=admin(emulator, TSI_ADMIN))).json()
        assert tsi == {"all": 1, "pending": 1, "revoked": 0, "unverified": 1}
        both = (
            await client.get(
                "/admin/users/counts", headers=admin(emulator, GALAXY_ADMIN, TSI_ADMIN)
            )
        ).json()
        assert both == {"all": 3, "pending": 2, "revoked": 0, "unverified": 1}

    async def test_a_general_admins_counts_cover_every_live_user(
        self, client, session, emulator, people
    ):
        live = (await session.exec(select(User).where(col(User.is_deleted).is_(False)))).all()
        body = (await client.get("/admin/users/counts", headers=admin(emulator, "Admin"))).json()
        # The calling admin is created on first use and not counted.
        assert body["all"] == len(live)
        assert body["revoked"] == 1  # the BPA membership
        assert body["pending"] == 2

    async def test_csv_export_streams_the_filtered_list(self, client, emulator, people):
        response = await client.get(
            "/admin/users/export.csv?platform=galaxy", headers=admin(emulator, GALAXY_ADMIN)
        )
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(response.text)))
        assert [r["id"] for r in rows] == [people["pending"].id, people["approved"].id]
        assert rows[1]["platform_memberships"] == "galaxy:approved"


class TestOneUser:
    async def test_details_lay_the_live_auth0_profile_over_the_record(
        self, client, session, emulator, people
    ):
        user = people["approved"]
        emulator.tenant.update_user(user.id, {"given_name": "Alexandra"})
        body = (
            await client.get(
                f"/admin/users/{user.id}/details", headers=admin(emulator, GALAXY_ADMIN)
            )
        ).json()
        assert body["profile_source"] == "auth0"
        assert body["given_name"] == "Alexandra"
        assert body["identities"][0]["connection"] == DEFAULT_CONNECTION
        assert [m["platform_id"] for m in body["platform_memberships"]] == ["galaxy"]

    async def test_details_give_the_portal_the_fields_it_reads(self, client, emulator, people):
        """Portal contract, call 18: the details page reads these names, and builds every
        action URL (calls 19-30) from `user_id`; without it they went to /undefined/."""
        user = people["pending"]
        headers = admin(emulator, GALAXY_ADMIN)
        body = (await client.get(f"/admin/users/{user.id}/details", headers=headers)).json()
        read_by_the_portal = {
            "user_id",
            "name",
            "username",
            "email",
            "email_verified",
            "picture",
            "created_at",
            "last_login",
            "updated_at",
            "platform_memberships",
            "group_memberships",
        }
        assert read_by_the_portal <= set(body)
        assert body["user_id"] == user.id
        assert body["updated_at"] is not None
        # As the page does it: the action URL from the response's user_id.
        approve = await client.post(
            f"/admin/users/{body['user_id']}/platforms/galaxy/approve", json={}, headers=headers
        )
        assert approve.status_code == 200, approve.text

    async def test_delete_invalid_email_deletes_and_tells_the_right_address(
        self, client, session, emulator, people
    ):
        """Portal contract, call 30 ("Delete Account & Inform User")."""
        user = people["tsi"]
        # Plain values: the refused request rolls back and expires the ORM object.
        user_id, email, username = user.id, user.email, user.username
        headers = admin(emulator, "Admin")
        same = await client.post(
            f"/admin/users/{user_id}/delete_invalid_email",
            json={"correct_email": email},
            headers=headers,
        )
        assert same.status_code == 400
        assert same.json()["field_errors"][0]["field"] == "correct_email"
        response = await client.post(
            f"/admin/users/{user_id}/delete_invalid_email",
            json={"correct_email": " Right.Address@Example.org "},
            headers=headers,
        )
        assert response.status_code == 200, response.text
        user = await session.get_one(User, user_id, populate_existing=True)
        assert user.is_deleted
        assert "right.address@example.org" in (user.deletion_reason or "")
        assert emulator.tenant.get_user(user_id)["blocked"] is True
        sent = (
            await session.exec(
                select(EmailNotification).where(
                    col(EmailNotification.to_address) == "right.address@example.org"
                )
            )
        ).one()
        assert sent.template == "account_removed_invalid_email"
        assert username in (sent.body_text or "")

    async def test_details_still_load_when_auth0_is_down(self, client, emulator, people):
        emulator.state.faults.down = True
        try:
            response = await client.get(
                f"/admin/users/{people['approved'].id}/details", headers=admin(emulator, "Admin")
            )
        finally:
            emulator.state.faults.down = False
        assert response.status_code == 200, response.text
        assert response.json()["profile_source"] == "database"
        assert response.json()["email"] == people["approved"].email

    async def test_is_admin_and_sync_runs(self, client, session, emulator, world):
        headers = admin(emulator, GALAXY_ADMIN)
        assert (await client.get("/admin/platforms/galaxy/is-admin", headers=headers)).json() == {
            "platform_id": "galaxy",
            "is_admin": True,
        }
        assert (
            await client.get("/admin/platforms/bpa_data_portal/is-admin", headers=headers)
        ).json()["is_admin"] is False
        assert (
            await client.get("/admin/platforms/nope/is-admin", headers=headers)
        ).status_code == 404
        session.add(
            SyncRun(job="sync.users.full", status=SyncRunStatus.SUCCEEDED, finished_at=utcnow())
        )
        await session.flush()
        assert (await client.get("/admin/sync-runs", headers=headers)).status_code == 403
        runs = (
            await client.get(
                "/admin/sync-runs?job=sync.users.full", headers=admin(emulator, "Admin")
            )
        ).json()
        assert runs[0]["job"] == "sync.users.full"
        assert runs[0]["duration_s"] is not None


class TestAccountChanges:
    async def test_delete_blocks_in_auth0_keeps_memberships_and_restore_undoes_it(
        self, client, session, emulator, people
    ):
        user = people["approved"]
        headers = admin(emulator, GALAXY_ADMIN)
        response = await client.post(
            f"/admin/users/{user.id}/delete", json={"reason": "duplicate account"}, headers=headers
        )
        assert response.status_code == 200, response.text
        assert emulator.tenant.users[user.id]["blocked"] is True
        await session.refresh(user)
        assert (user.is_deleted, user.deletion_reason) == (True, "duplicate account")
        assert user.id not in ids(await client.get("/admin/users", headers=headers))
        assert user.id in ids(await client.get("/admin/users?deleted=true", headers=headers))
        kept = (
            await session.exec(
                select(PlatformMembership).where(col(PlatformMembership.user_id) == user.id)
            )
        ).all()
        assert len(kept) == 2

        restored = await client.post(f"/admin/users/{user.id}/restore", headers=headers)
        assert restored.status_code == 200, restored.text
        assert emulator.tenant.users[user.id]["blocked"] is False
        await session.refresh(user)
        assert user.is_deleted is False
        changes = (
            await session.exec(
                select(col(UserHistory.change))
                .where(col(UserHistory.user_id) == user.id)
                .order_by(col(UserHistory.id))
            )
        ).all()
        assert changes == [UserChange.USER_DELETION, UserChange.USER_RESTORATION]

    async def test_auth0_down_during_delete_changes_nothing(
        self, client, session, emulator, people
    ):
        user = people["approved"]
        emulator.state.faults.down = True
        try:
            response = await client.post(
                f"/admin/users/{user.id}/delete", headers=admin(emulator, "Admin")
            )
        finally:
            emulator.state.faults.down = False
        assert response.status_code == 503
        await session.refresh(user)
        assert user.is_deleted is False
        assert emulator.tenant.users[user.id].get("blocked", False) is False

    async def test_email_update_tells_the_old_address_and_sends_verification(
        self, client, session, emulator, people
    ):
        user = people["approved"]
        old = user.email
        new = f"new.{secrets.token_hex(3)}@example.org"
        response = await client.post(
            f"/admin/users/{user.id}/email/update",
            json={"email": new.upper()},
            headers=admin(emulator, "Admin"),
        )
        assert response.status_code == 200, response.text
        assert emulator.tenant.users[user.id]["email"] == new
        assert emulator.tenant.users[user.id]["email_verified"] is False
        assert {"type": "verification_email", "user_id": user.id, "email": new}.items() <= next(
            e for e in emulator.tenant.outbox if e.get("user_id") == user.id
        ).items()
        await session.refresh(user)
        assert (user.email, user.email_verified) == (new, False)
        notice = (
            await session.exec(
                select(EmailNotification).where(col(EmailNotification.to_address) == old)
            )
        ).one()
        assert notice.template == "email_changed_notice"

    async def test_email_taken_is_a_field_error(self, client, emulator, people):
        response = await client.post(
            f"/admin/users/{people['approved'].id}/email/update",
            json={"email": people["pending"].email},
            headers=admin(emulator, "Admin"),
        )
        assert response.status_code == 400
        assert response.json()["field_errors"] == [
            {"field": "email", "message": "Email is already registered"}
        ]

    async def test_username_update_keeps_history_and_past_names_stay_reserved(
        self, client, session, emulator, people
    ):
        headers = admin(emulator, GALAXY_ADMIN)
        first, second = people["approved"], people["pending"]
        old, first_email = first.username, first.email
        new = f"renamed{secrets.token_hex(2)}"
        response = await client.post(
            f"/admin/users/{first.id}/username/update", json={"username": new}, headers=headers
        )
        assert response.status_code == 200, response.text
        assert emulator.tenant.users[first.id]["username"] == new
        history = (
            await session.exec(select(UserHistory).where(col(UserHistory.user_id) == first.id))
        ).one()
        assert (history.change, history.previous_value, history.new_value) == (
            UserChange.USERNAME_UPDATE,
            old,
            new,
        )
        notice = (
            await session.exec(
                select(EmailNotification).where(
                    col(EmailNotification.template) == "username_changed_notice"
                )
            )
        ).one()
        assert notice.to_address == first_email
        assert "An administrator changed" in (notice.body_text or "")
        # The old name stays reserved, in any case.
        taken = await client.post(
            f"/admin/users/{second.id}/username/update",
            json={"username": old.upper()},
            headers=headers,
        )
        assert taken.status_code == 400
        assert taken.json()["field_errors"][0]["field"] == "username"

    async def test_verification_and_password_reset_emails(self, client, emulator, people):
        headers = admin(emulator, "Admin")
        unverified, verified = people["tsi"], people["approved"]
        verified_id, verified_email = verified.id, verified.email
        assert (
            await client.post(
                f"/admin/users/{unverified.id}/verification-email/resend", headers=headers
            )
        ).status_code == 200
        assert any(e.get("user_id") == unverified.id for e in emulator.tenant.outbox)
        already = await client.post(
            f"/admin/users/{verified.id}/verification-email/resend", headers=headers
        )
        assert already.status_code == 400
        reset = await client.post(
            f"/admin/users/{verified_id}/password-reset-email", headers=headers
        )
        assert reset.status_code == 200, reset.text
        assert {"type": "change_password", "email": verified_email} in emulator.tenant.outbox

    async def test_changes_to_a_deleted_account_need_a_restore_first(
        self, client, emulator, people
    ):
        headers = admin(emulator, "Admin")
        user = people["approved"]
        await client.post(f"/admin/users/{user.id}/delete", headers=headers)
        response = await client.post(
            f"/admin/users/{user.id}/username/update",
            json={"username": "whatever1"},
            headers=headers,
        )
        assert response.status_code == 409


# Every admin read, for each kind of caller, on a user inside or outside their scope
# (account actions and decisions against admins and the caller: tests/security).
READS = [
    ("GET", "/admin/users/{user}", None),
    ("GET", "/admin/users/{user}/details", None),
]
# caller roles → expected status for (galaxy member, tsi member, nobody's user)
CALLERS = {
    "general": (["Admin"], {"galaxy": 200, "tsi": 200, "loner": 200}),
    "galaxy admin": ([GALAXY_ADMIN], {"galaxy": 200, "tsi": 403, "loner": 403}),
    "tsi admin": ([TSI_ADMIN], {"galaxy": 403, "tsi": 200, "loner": 403}),
    "member": (["biocommons/platform/galaxy"], {"galaxy": 403, "tsi": 403, "loner": 403}),
}


@pytest.fixture
async def targets(session, emulator, world):
    tag = secrets.token_hex(2)
    return {
        "galaxy": await portal_user(
            session,
            emulator,
            name=f"gm{tag}",
            platforms={"galaxy": ApprovalStatus.APPROVED},
            verified=False,
        ),
        "tsi": await portal_user(
            session,
            emulator,
            name=f"tm{tag}",
            groups={TSI: ApprovalStatus.APPROVED},
            verified=False,
        ),
        "loner": await portal_user(session, emulator, name=f"nm{tag}", verified=False),
    }


class TestPermissionMatrix:
    @pytest.mark.parametrize("caller", list(CALLERS))
    @pytest.mark.parametrize("endpoint", READS, ids=lambda e: e[1])
    @pytest.mark.parametrize("target", ["galaxy", "tsi", "loner"])
    async def test_reads(self, client, emulator, targets, caller, endpoint, target):
        roles, expected = CALLERS[caller]
        method, path, _ = endpoint
        response = await client.request(
            method, path.format(user=targets[target].id), headers=admin(emulator, *roles)
        )
        assert response.status_code == expected[target], response.text

    @pytest.mark.parametrize(
        ("path", "general", "galaxy", "tsi", "member"),
        [
            ("/admin/filters", 200, 200, 200, 403),
            ("/admin/users", 200, 200, 200, 403),
            ("/admin/users/pages", 200, 200, 200, 403),
            ("/admin/users/counts", 200, 200, 200, 403),
            ("/admin/users/export.csv", 200, 200, 200, 403),
            ("/admin/users?platform=galaxy", 200, 200, 403, 403),
            (f"/admin/users?group={TSI}", 200, 403, 200, 403),
            ("/admin/platforms/galaxy/is-admin", 200, 200, 200, 403),
            ("/admin/sync-runs", 200, 403, 403, 403),
        ],
    )
    async def test_lists(self, client, emulator, world, path, general, galaxy, tsi, member):
        for roles, expected in (
            (["Admin"], general),
            ([GALAXY_ADMIN], galaxy),
            ([TSI_ADMIN], tsi),
            (["biocommons/platform/galaxy"], member),
        ):
            response = await client.get(path, headers=admin(emulator, *roles))
            assert response.status_code == expected, (roles, response.text)

    async def test_filters_list_what_the_caller_administers(self, client, emulator, world):
        body = (
            await client.get("/admin/filters", headers=admin(emulator, GALAXY_ADMIN, TSI_ADMIN))
        ).json()
        assert body == [
            {"id": "galaxy", "name": "Galaxy Australia", "type": "platform"},
            {"id": TSI, "name": "Threatened Species Initiative", "type": "group"},
        ]
        everything = (await client.get("/admin/filters", headers=admin(emulator, "Admin"))).json()
        assert {f["id"] for f in everything} >= {"galaxy", "bpa_data_portal", TSI}

    async def test_admins_cannot_act_on_themselves_through_the_admin_api(
        self, client, session, emulator, world
    ):
        headers = admin(emulator, "Admin")
        me = (await client.get("/me/profile", headers=headers)).json()["user_id"]
        response = await client.post(f"/admin/users/{me}/delete", headers=headers)
        assert response.status_code == 403
        assert "/me" in response.json()["detail"]

    async def test_no_token_is_401(self, client, world):
        assert (await client.get("/admin/users")).status_code == 401
