"""Test harness: real PostgreSQL (and SQLite where the embedded default is promised),
migrated with Alembic, one rolled-back transaction per test.

PostgreSQL is found at TEST_DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/postgres).
A fresh database is created for the run, migrated to head, and dropped at the end. If the
server cannot be reached the run stops with a clear message; nothing is silently skipped.
"""

import asyncio
import os
import secrets
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from alembic import command
from asgi_lifespan import LifespanManager
from fastapi import FastAPI, Request
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from db.admin import create_database, drop_database
from db.engine import create_engine, unit_of_work
from db.migrations import alembic_config, upgrade_head
from db.reads import fetch_on_session
from main import create_app
from routers.deps import get_reader, get_session, get_session_factory
from scripts.auth0_emulator.limits import Faults
from scripts.auth0_emulator.seed import seed_roles
from scripts.auth0_emulator.server import EmulatorServer
from services.auth0.scopes import REQUIRED_SCOPES
from services.settings import Settings, load_settings, to_async_url

TEST_AUDIENCE = "https://api.aai-backend.test"
DEFAULT_TEST_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
SERVER_URL_KEY = pytest.StashKey[URL]()
PG_URL_KEY = pytest.StashKey[URL]()


def _server_url() -> URL:
    return to_async_url(os.environ.get("TEST_DATABASE_URL", DEFAULT_TEST_DATABASE_URL))


def pytest_sessionstart(session: pytest.Session) -> None:
    server = _server_url()
    name = f"aai_test_{os.getpid()}_{secrets.token_hex(3)}"
    try:
        url = asyncio.run(create_database(server, name, timeout_s=5))
    except Exception as exc:
        pytest.exit(
            f"PostgreSQL is not reachable at {server.render_as_string(hide_password=True)}: "
            f"{type(exc).__name__}: {exc}\n"
            "Start PostgreSQL or point TEST_DATABASE_URL at one; the tests need a real server.",
            returncode=3,
        )
    command.upgrade(alembic_config(url), "head")
    session.config.stash[SERVER_URL_KEY] = server
    session.config.stash[PG_URL_KEY] = url


def pytest_sessionfinish(session: pytest.Session) -> None:
    url = session.config.stash.get(PG_URL_KEY, None)
    if url is not None:
        asyncio.run(drop_database(session.config.stash[SERVER_URL_KEY], str(url.database)))


@pytest.fixture(scope="session")
def pg_server_url(request: pytest.FixtureRequest) -> URL:
    return request.config.stash[SERVER_URL_KEY]


@pytest.fixture(scope="session")
def pg_url(request: pytest.FixtureRequest) -> URL:
    return request.config.stash[PG_URL_KEY]


@pytest.fixture(scope="session")
async def pg_engine(pg_url: URL) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(pg_url, process="tests")
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
async def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> URL:
    path = tmp_path_factory.mktemp("sqlite") / "aai-test.db"
    url = to_async_url(f"sqlite:///{path}")
    await upgrade_head(url)
    return url


@pytest.fixture(scope="session")
async def sqlite_engine(sqlite_url: URL) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(sqlite_url, process="tests")
    yield engine
    await engine.dispose()


async def _isolated_session(engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    """A session inside an outer transaction that is always rolled back.

    `create_savepoint` turns the code's own commit/rollback into savepoint
    release/rollback, so the code under test keeps its real transaction behaviour.
    """
    async with engine.connect() as conn:
        outer = await conn.begin()
        session = AsyncSession(
            bind=conn, expire_on_commit=False, join_transaction_mode="create_savepoint"
        )
        try:
            yield session
        finally:
            await session.close()
            await outer.rollback()


class SessionReader:
    """The hot reads' statement on a session's own connection (db/reads.Reader): in tests
    it must see what the test's rolled-back transaction holds."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @property
    def dialect(self) -> str:
        bind = self.session.bind
        assert bind is not None
        return bind.dialect.name

    async def fetch_row(self, sql: str, args: Sequence[Any]) -> Any:
        return await fetch_on_session(self.session, sql, args)


def savepoint_sessions(connection: AsyncConnection) -> async_sessionmaker[AsyncSession]:
    """Sessions on a test's connection whose commits are savepoints of the test."""
    return async_sessionmaker(
        bind=connection,
        class_=AsyncSession,
        expire_on_commit=False,
        join_transaction_mode="create_savepoint",
    )


@pytest.fixture
async def session(pg_engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    async for session in _isolated_session(pg_engine):
        yield session


@pytest.fixture(params=["postgres", pytest.param("sqlite", marks=pytest.mark.sqlite)])
def db_engine(request: pytest.FixtureRequest) -> AsyncEngine:
    """Run a test on both backends: the production one and the embedded default."""
    name = "pg_engine" if request.param == "postgres" else "sqlite_engine"
    return request.getfixturevalue(name)


@pytest.fixture
async def db_session(db_engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    async for session in _isolated_session(db_engine):
        yield session


def make_settings(db_url: URL | str, **overrides: object) -> Settings:
    if isinstance(db_url, URL):
        db_url = db_url.render_as_string(hide_password=False)
    return load_settings(_env_file=None, db_url=db_url, db_host=None, **overrides)


@pytest.fixture(scope="session")
def emulator_server() -> Iterator[EmulatorServer]:
    """One Auth0 emulator on loopback for the whole run, seeded with the catalog roles: strict,
    with a custom domain (localhost) beside the canonical one (127.0.0.1), and a management
    grant of exactly the scopes the README's tenant setup lists."""
    with EmulatorServer(
        audience=TEST_AUDIENCE, custom_domain=True, granted_scopes=frozenset(REQUIRED_SCOPES)
    ) as server:
        seed_roles(server.tenant)
        yield server


@pytest.fixture
def emulator(emulator_server: EmulatorServer) -> Iterator[EmulatorServer]:
    """The shared emulator; after the test its default behaviour is restored and the users
    and roles the test created are removed."""
    existing = set(emulator_server.tenant.users)
    existing_roles = set(emulator_server.tenant.roles)
    yield emulator_server
    for user_id in set(emulator_server.tenant.users) - existing:
        emulator_server.tenant.delete_user(user_id)
    for role_id in set(emulator_server.tenant.roles) - existing_roles:
        emulator_server.tenant.delete_role(role_id)
    emulator_server.state.set_rate_limit("off")
    emulator_server.state.faults = Faults()
    emulator_server.tenant.management_token_ttl_s = 86400
    emulator_server.tenant.granted_scopes = frozenset(REQUIRED_SCOPES)
    emulator_server.tenant.strict = True
    emulator_server.tenant.password_min_length = 8
    emulator_server.tenant.search_lag_s = 0.0
    emulator_server.tenant.search_clock = time.monotonic
    emulator_server.tenant.mfa_users.clear()
    emulator_server.tenant.username_length = (1, 15)
    emulator_server.tenant.requires_username = True
    emulator_server.tenant.failed_logins.clear()


def emulator_settings(emulator: EmulatorServer) -> dict[str, object]:
    return {
        "auth0_domain": emulator.base_url,
        "auth0_custom_domain": emulator.custom_url,
        "auth0_audience": TEST_AUDIENCE,
        "auth0_management_id": emulator.tenant.management_client_id,
        "auth0_management_secret": emulator.tenant.management_client_secret,
        "admin_roles": '["Admin"]',
        "auth0_mgmt_rps": 1000,
        "auth0_mgmt_burst": 1000,
        "recaptcha_secret": "test-recaptcha-secret",
        "recaptcha_verify_url": f"{emulator.base_url}/recaptcha/api/siteverify",
        "public_rate_limit_per_minute": 1000,
        # Tested on its own (tests/services/auth0/test_tenant_check.py); elsewhere it would
        # add token fetches the tests count.
        "auth0_startup_check": False,
    }


@pytest.fixture
def settings(pg_url: URL, emulator: EmulatorServer) -> Settings:
    return make_settings(pg_url, **emulator_settings(emulator))


@pytest.fixture
def app_factory(session: AsyncSession) -> Callable[..., FastAPI]:
    """Build an app whose requests share the test's rolled-back session (and, if given,
    whose caches expire by `clock`)."""

    def build(settings: Settings, *, clock: Callable[[], float] = time.monotonic) -> FastAPI:
        app = create_app(settings, clock=clock)

        async def shared_session(_request: Request) -> AsyncIterator[AsyncSession]:
            # What the test set up so far is kept, so a failing request rolls back only
            # its own work, as each request's transaction would in production.
            await session.commit()
            async with unit_of_work(session):
                yield session

        @asynccontextmanager
        async def shared_factory() -> AsyncIterator[AsyncSession]:
            yield session

        app.dependency_overrides[get_session] = shared_session
        reader = SessionReader(session)

        async def shared_reader() -> SessionReader:
            return reader

        app.dependency_overrides[get_reader] = shared_reader
        # Streamed bodies open their own session; in tests it must see the test's data.
        app.dependency_overrides[get_session_factory] = lambda: shared_factory
        return app

    return build


@pytest.fixture
def clock() -> Callable[[], float]:
    """The clock the app's caches expire by. A test that moves time by hand overrides this
    fixture with a `tests.clock.FakeClock` and calls `advance`, instead of sleeping."""
    return time.monotonic


@pytest.fixture
async def app(
    app_factory: Callable[..., FastAPI], settings: Settings, clock: Callable[[], float]
) -> AsyncIterator[FastAPI]:
    built = app_factory(settings, clock=clock)
    async with LifespanManager(built) as manager:
        yield manager.app  # type: ignore[misc]  # asgi-lifespan types its app as a bare ASGI callable


def client_address() -> tuple[str, int]:
    """A loopback address no other test uses: public rate-limit counts live in the
    database, shared by every process, so tests sharing an address would share a count."""
    octets = (secrets.randbelow(254) + 1, secrets.randbelow(256), secrets.randbelow(256))
    return "127.{}.{}.{}".format(*octets), 50000


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=client_address())
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


@pytest.fixture
async def scratch_db(pg_server_url: URL) -> AsyncIterator[URL]:
    """A migrated database of its own, for tests where several processes or engines meet."""
    name = f"aai_sync_{secrets.token_hex(4)}"
    url = await create_database(pg_server_url, name)
    await upgrade_head(url)
    yield url
    await drop_database(pg_server_url, name)


@pytest.fixture
def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent
