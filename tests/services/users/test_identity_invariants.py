"""Identity invariants under random sequences of account changes, on every path.

Hypothesis draws sequences of sign-ups (here, and in Auth0 picked up by the sync), self
and admin renames, renames and email changes made in Auth0 and synced, admin email
changes, deletions and restores, from a small pool of names so that collisions are the rule, and runs them
against Postgres and the Auth0 emulator through the real API and the real sync. After
every step it checks, from the database alone:

1. a username (any case) held by an account at any step is never held by another one
   later (or at the same time);
2. among live accounts an email address (any case) has at most one holder;
3. every change of an account's username or email left exactly one history row saying
   what it was before and after.

On the code before the username claims it found (shrunk): a user who came in through
the sync renames themselves, and their old name is free for the next sign-up.
"""

import secrets
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
from asgi_lifespan import LifespanManager
from fastapi import FastAPI, Request
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from db.engine import SessionFactory, session_scope
from db.models import User, UserHistory
from db.types import UserChange
from main import create_app
from routers.deps import get_session, get_session_factory
from scripts.auth0_emulator.seed import seed_roles
from scripts.auth0_emulator.server import EmulatorServer
from scripts.auth0_emulator.tenant import DEFAULT_CONNECTION, TenantError
from services.settings import Settings
from services.sync.runs import JobContext
from tests.conftest import (
    TEST_AUDIENCE,
    client_address,
    emulator_settings,
    make_settings,
    savepoint_sessions,
)
from tests.factories import make_gateway
from tests.services.sync.helpers import sync

NAMES = ["ada", "bo", "Ada"]  # "Ada" and "ada" are one name: collisions are the rule
EMAILS = ["one@example.org", "two@example.org", "One@Example.org"]
# Sign-ups and renames are drawn more often than the rest: they are what collides.
STEPS = [
    *["auth0_signup", "register"] * 2,
    *["self_rename", "admin_rename", "auth0_rename"] * 2,
    "admin_email",
    "auth0_email",
    "delete",
    "restore",
]
# How many sequences CI draws (each up to 12 steps).
EXAMPLES = 40


@dataclass
class World:
    """The emulator, the API and the sync of one generated sequence, and what it saw."""

    server: EmulatorServer
    client: httpx.AsyncClient
    ctx: JobContext
    sessions: SessionFactory
    admin: dict[str, str]
    people: list[str] = field(default_factory=list)  # Auth0 ids, in order of creation
    first_holder: dict[str, str] = field(default_factory=dict)  # lower name → user id
    seen: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)
    changes: Counter[tuple[str, UserChange]] = field(default_factory=Counter)
    counter: int = 0

    def fresh(self) -> str:
        self.counter += 1
        return f"{self.counter}{secrets.token_hex(2)}"

    def pick(self, who: int) -> str | None:
        return self.people[who % len(self.people)] if self.people else None

    def token(self, user_id: str) -> dict[str, str]:
        token = self.server.tenant.mint_access_token(user_id, roles=[])
        return {"Authorization": f"Bearer {token}"}

    async def synced(self) -> None:
        (run,) = await sync(self.ctx, "sync.users.full")
        assert run.status.value == "succeeded", run.error

    async def step(self, kind: str, who: int, what: int) -> None:
        name, email = NAMES[what % len(NAMES)], EMAILS[what % len(EMAILS)]
        tenant, user = self.server.tenant, self.pick(who)
        if kind == "auth0_signup":
            tag = self.fresh()
            try:
                created = tenant.create_user(
                    {
                        "connection": DEFAULT_CONNECTION,
                        "email": f"s{tag}@example.org",
                        "username": name,
                        "password": "long-enough-1",
                    }
                )
            except TenantError:
                return  # Auth0 itself refused the name (a live user of the connection has it)
            self.people.append(created["user_id"])
            await self.synced()
        elif kind == "register":
            tag = self.fresh()
            response = await self.client.post(
                "/biocommons/register",
                json={
                    "first_name": "Ada",
                    "last_name": "Lovelace",
                    "email": f"r{tag}@example.org",
                    "username": name.lower(),
                    "password": "Analytical-Engine-1",
                    "recaptcha_token": "ok-token",
                },
            )
            assert response.status_code in (200, 400), response.text
            if response.status_code == 200:
                self.people.append(response.json()["user_id"])
        elif user is None:
            return
        elif kind == "self_rename":
            response = await self.client.post(
                "/me/profile/username/update",
                json={"username": name.lower()},
                headers=self.token(user),
            )
            assert response.status_code in (200, 400, 401, 409), response.text
        elif kind == "admin_rename":
            response = await self.client.post(
                f"/admin/users/{user}/username/update",
                json={"username": name.lower()},
                headers=self.admin,
            )
            assert response.status_code in (200, 400, 404, 409), response.text
        elif kind == "auth0_rename":
            try:
                tenant.update_user(user, {"username": name})
            except TenantError:
                return
            await self.synced()
        elif kind == "auth0_email":
            try:
                tenant.update_user(user, {"email": email})
            except TenantError:
                return
            await self.synced()
        elif kind == "admin_email":
            response = await self.client.post(
                f"/admin/users/{user}/email/update", json={"email": email}, headers=self.admin
            )
            assert response.status_code in (200, 400, 404, 409), response.text
        else:
            response = await self.client.post(f"/admin/users/{user}/{kind}", headers=self.admin)
            assert response.status_code in (200, 404, 409), response.text

    async def check(self) -> None:
        async with self.sessions() as session:
            users = (await session.exec(select(User))).all()
            rows = (
                await session.exec(
                    select(UserHistory).where(
                        col(UserHistory.change).in_(
                            [UserChange.USERNAME_UPDATE, UserChange.EMAIL_UPDATE]
                        )
                    )
                )
            ).all()
        live_emails = Counter(u.email.lower() for u in users if u.email and not u.is_deleted)
        assert [e for e, n in live_emails.items() if n > 1] == [], "an email with two live holders"
        for user in users:
            if user.username:
                name = user.username.lower()
                holder = self.first_holder.setdefault(name, user.id)
                assert holder == user.id, f"{name!r} was {holder}'s and is now {user.id}'s"
            before = self.seen.get(user.id)
            if before is not None:
                if before[0] != user.username:
                    self.changes[(user.id, UserChange.USERNAME_UPDATE)] += 1
                if before[1] != user.email:
                    self.changes[(user.id, UserChange.EMAIL_UPDATE)] += 1
            self.seen[user.id] = (user.username, user.email)
        recorded = Counter((row.user_id, row.change) for row in rows)
        assert recorded == self.changes, "history rows differ from the changes made"
        for row in rows:
            assert row.previous_value != row.new_value
            assert row.new_value is not None


def app_on(sessions: SessionFactory, settings_: Settings) -> FastAPI:
    """The API with each request's unit of work on a session from `sessions`."""
    app = create_app(settings_)

    async def request_session(_request: Request) -> AsyncIterator[AsyncSession]:
        async with session_scope(sessions) as request_session:
            yield request_session

    app.dependency_overrides[get_session] = request_session
    app.dependency_overrides[get_session_factory] = lambda: sessions
    return app


steps = st.lists(
    st.tuples(st.sampled_from(STEPS), st.integers(0, 3), st.integers(0, 2)),
    min_size=1,
    max_size=12,
)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(sequence=steps)
async def test_identity_invariants_hold_on_every_path(
    session: AsyncSession,
    pg_engine: AsyncEngine,
    pg_url: URL,
    sequence: list[tuple[str, int, int]],
):
    connection = await session.connection()
    savepoint = await connection.begin_nested()
    # Requests, jobs and checks each get their own session, as in production, on savepoints
    # inside this sequence's savepoint, so all of it is rolled back after the sequence.
    sessions = savepoint_sessions(connection)
    try:
        with EmulatorServer(audience=TEST_AUDIENCE) as server:
            server.state.faults.export_delay_s = 0.0
            seed_roles(server.tenant)
            admin = server.tenant.create_user(
                {
                    "connection": DEFAULT_CONNECTION,
                    "email": "general.admin@example.org",
                    "password": "long-enough-1",
                }
            )
            server.tenant.grant_roles(admin["user_id"], ["Admin"])
            admin_token = server.tenant.mint_access_token(admin["user_id"])
            settings_ = make_settings(pg_url, **emulator_settings(server))
            gateway = make_gateway(server, jobs=True)
            ctx = JobContext(settings_, pg_engine, sessions, gateway)
            try:
                (roles,) = await sync(ctx, "sync.roles")
                assert roles.status.value == "succeeded", roles.error
                async with LifespanManager(app_on(sessions, settings_)) as manager:
                    transport = httpx.ASGITransport(app=manager.app, client=client_address())
                    async with httpx.AsyncClient(
                        transport=transport, base_url="http://testserver"
                    ) as client:
                        world = World(
                            server,
                            client,
                            ctx,
                            sessions,
                            {"Authorization": f"Bearer {admin_token}"},
                        )
                        for kind, who, what in sequence:
                            note(f"{kind}(person {who}, name/email {what})")
                            await world.step(kind, who, what)
                            await world.check()
            finally:
                await gateway.aclose()
    finally:
        await savepoint.rollback()
