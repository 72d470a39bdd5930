"""Which platform or group a filter names (services/users/admin_search.py): a general
admin's filter is checked against the live catalog the scope cache holds."""

from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel.ext.asyncio.session import AsyncSession

from db.base import utcnow
from db.models import Platform
from schemas.users import AdminUserQuery
from services.errors import Forbidden, NotFound
from services.identity.admin_scope import Scope, Targets
from services.kit.cache import TtlCache
from services.users import admin_search
from tests.clock import FakeClock
from tests.factories import add_group, add_platform

TTL_S = 30.0


class Statements:
    """Counts the statements the session sends."""

    def __init__(self, session: AsyncSession) -> None:
        self.engine = session.bind.sync_engine  # type: ignore[union-attr]  # bound to the test engine
        self.count = 0

    def __enter__(self) -> "Statements":
        sa.event.listen(self.engine, "before_cursor_execute", self.seen)
        return self

    def __exit__(self, *_exc: object) -> None:
        sa.event.remove(self.engine, "before_cursor_execute", self.seen)

    def seen(self, *_args: Any) -> None:
        self.count += 1


async def test_a_general_admins_filter_is_checked_against_the_cached_catalog(
    session: AsyncSession,
) -> None:
    await add_platform(session, "galaxy")
    clock = FakeClock()
    cache: TtlCache[Targets] = TtlCache(TTL_S, clock=clock)
    scope = Scope("auth0|general", True, frozenset(), frozenset())

    async def platform(name: str) -> str | None:
        query = AdminUserQuery(platform=name)
        return (await admin_search.select_users(session, scope, query, cache)).platform

    assert await platform("galaxy") == "galaxy"  # fills the cache
    with Statements(session) as statements:
        assert await platform("galaxy") == "galaxy"
    assert statements.count == 0
    # Created after the catalog was cached: found by a lookup all the same.
    await add_platform(session, "fresh")
    assert await platform("fresh") == "fresh"
    with pytest.raises(NotFound):
        await platform("nowhere")
    # Removed (by the sync, in another process): accepted until the cache's time is up,
    # as a platform admin's scope is, then refused.
    removed = await session.get_one(Platform, "galaxy")
    removed.removed_at = utcnow()
    await session.flush()
    assert await platform("galaxy") == "galaxy"
    clock.advance(TTL_S)
    with pytest.raises(NotFound):
        await platform("galaxy")


async def test_filter_by_names_a_known_target_without_a_lookup(session: AsyncSession) -> None:
    """The portal's dropdown sends `filter_by` (an id from /admin/filters): for a general
    admin it is found in the cached catalog, for a platform admin in their scope; the
    short form and anything outside are looked up, and refused as before."""
    await add_platform(session, "galaxy")
    await add_platform(session, "bpa")
    group = await add_group(session, "tsi", "TSI")
    cache: TtlCache[Targets] = TtlCache(TTL_S, clock=FakeClock())
    general = Scope("auth0|general", True, frozenset(), frozenset())
    galaxy_admin = Scope("auth0|galaxy-admin", False, frozenset({"galaxy"}), frozenset())

    async def chosen(scope: Scope, value: str) -> tuple[str | None, str | None]:
        selection = await admin_search.select_users(
            session, scope, AdminUserQuery(filter_by=value), cache
        )
        return selection.platform, selection.group

    assert await chosen(general, "galaxy") == ("galaxy", None)  # fills the cache
    with Statements(session) as statements:
        assert await chosen(general, "galaxy") == ("galaxy", None)
        assert await chosen(general, group.id) == (None, group.id)
        assert await chosen(galaxy_admin, "galaxy") == ("galaxy", None)
    assert statements.count == 0
    assert await chosen(general, "tsi") == (None, group.id)  # the short form, looked up
    with pytest.raises(Forbidden):
        await chosen(galaxy_admin, "bpa")
    with pytest.raises(Forbidden):
        await chosen(galaxy_admin, group.id)
    with pytest.raises(NotFound):
        await chosen(general, "nowhere")
