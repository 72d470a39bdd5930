from sqlalchemy.orm import selectinload
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from db.models import Auth0Role, Group, Platform
from scripts.auth0_emulator.server import EmulatorServer
from services.sync.runs import JobContext
from tests.services.sync.helpers import sync

# SQLModel types relationships as their Python values; loader options take the attributes.
PLATFORM_ADMINS = selectinload(Platform.admin_roles)  # type: ignore[arg-type]  # see above
GROUP_ADMINS = selectinload(Group.admin_roles)  # type: ignore[arg-type]  # see above


async def test_platforms_and_groups_come_from_role_names(
    sync_ctx: JobContext, session: AsyncSession
):
    (run,) = await sync(sync_ctx, "sync.roles")
    assert run.status.value == "succeeded"
    platforms = (
        await session.exec(select(Platform).options(PLATFORM_ADMINS).order_by(col(Platform.id)))
    ).all()
    assert [(p.id, p.name) for p in platforms] == [
        ("bpa_data_portal", "Bioplatforms Australia Data Portal"),
        ("galaxy", "Galaxy Australia"),
        ("sbp", "Structural Biology Platform"),
    ]
    assert [r.name for r in platforms[1].admin_roles] == ["biocommons/role/galaxy/admin"]
    group = (await session.exec(select(Group).options(GROUP_ADMINS))).one()
    assert (group.id, group.name, group.short_name) == (
        "biocommons/group/tsi",
        "Threatened Species Initiative",
        "TSI",
    )
    assert [r.name for r in group.admin_roles] == ["biocommons/role/tsi/admin"]


async def test_adding_and_removing_roles_in_auth0_changes_the_catalog(
    sync_ctx: JobContext, session: AsyncSession, tenant_server: EmulatorServer
):
    await sync(sync_ctx, "sync.roles")
    tenant = tenant_server.tenant
    tenant.create_role("biocommons/platform/nextflow", "Nextflow Tower")
    tenant.create_role("biocommons/role/nextflow/admin", "Nextflow admins")
    sbp = tenant.role_by_name("biocommons/platform/sbp")
    assert sbp is not None
    tenant.delete_role(sbp["id"])
    (run,) = await sync(sync_ctx, "sync.roles")
    assert run.counts["roles_removed"] == 1
    assert run.counts["platforms_removed"] == 1
    session.expire_all()
    nextflow = await session.get_one(Platform, "nextflow")
    assert (nextflow.name, nextflow.removed_at) == ("Nextflow Tower", None)
    assert (await session.get_one(Platform, "sbp")).removed_at is not None
    assert (await session.get_one(Auth0Role, sbp["id"])).removed_at is not None


async def test_a_role_recreated_under_the_same_name_takes_it_over(
    sync_ctx: JobContext, session: AsyncSession, tenant_server: EmulatorServer
):
    await sync(sync_ctx, "sync.roles")
    tenant = tenant_server.tenant
    old = tenant.role_by_name("biocommons/group/tsi")
    assert old is not None
    tenant.delete_role(old["id"])
    new = tenant.create_role("biocommons/group/tsi", "Threatened Species Initiative")
    (run,) = await sync(sync_ctx, "sync.roles")
    assert run.status.value == "succeeded", run.error
    session.expire_all()
    assert (await session.get_one(Group, "biocommons/group/tsi")).access_role_id == new["id"]


async def test_a_group_sharing_a_platforms_id_is_skipped_and_reported(
    sync_ctx: JobContext, session: AsyncSession, tenant_server: EmulatorServer
):
    """`biocommons/group/galaxy` would share `biocommons/role/galaxy/admin` with the Galaxy
    platform: its admins would get Galaxy and Galaxy's admins the group."""
    clash = tenant_server.tenant.create_role("biocommons/group/galaxy", "Galaxy fan club")
    try:
        (run,) = await sync(sync_ctx, "sync.roles")
        assert run.status.value == "succeeded"
        assert run.counts["errors"] == 1
        assert run.counts["groups_refused"] == ["biocommons/group/galaxy"]
        assert await session.get(Group, "biocommons/group/galaxy") is None
        galaxy = (
            await session.exec(
                select(Platform).where(col(Platform.id) == "galaxy").options(PLATFORM_ADMINS)
            )
        ).one()
        assert [r.name for r in galaxy.admin_roles] == ["biocommons/role/galaxy/admin"]
    finally:
        tenant_server.tenant.delete_role(clash["id"])


async def test_removing_much_of_the_catalog_at_once_is_held_and_reported(
    sync_ctx: JobContext, session: AsyncSession, tenant_server: EmulatorServer
):
    """An empty or cut-short role list must not empty the catalog: more than one removal,
    and more than SYNC_MAX_REVOKE_FRACTION of it, writes nothing until an operator says so."""
    await sync(sync_ctx, "sync.roles")
    tenant = tenant_server.tenant
    for name in ("biocommons/platform/sbp", "biocommons/group/tsi"):
        role = tenant.role_by_name(name)
        assert role is not None
        tenant.delete_role(role["id"])
    (run,) = await sync(sync_ctx, "sync.roles")
    assert run.status.value == "failed"
    assert run.counts["catalog_removals_held"] == 2
    assert "platform sbp" in str(run.error)
    session.expire_all()
    assert (await session.get_one(Platform, "sbp")).removed_at is None
    assert (await session.get_one(Group, "biocommons/group/tsi")).removed_at is None

    sync_ctx.settings = sync_ctx.settings.model_copy(update={"sync_max_revoke_fraction": 0.5})
    (run,) = await sync(sync_ctx, "sync.roles")
    assert run.status.value == "succeeded", run.error
    session.expire_all()
    assert (await session.get_one(Platform, "sbp")).removed_at is not None
