"""General admins shaping the catalog: roles, platforms, groups and who administers them.

Auth0 stays the source of the catalog: a platform or group is its `{ns}/platform/{id}`
or `{ns}/group/{id}` role, titled by the role's description, so these calls create or
retitle the roles in Auth0 first and then write what the next `sync.roles` run would
write, so the change shows at once. Extra admin roles (any role, linked here) survive
the sync; `{ns}/role/{id}/admin` always administers `{id}`.
"""

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from db.base import utcnow
from db.bulk import upsert
from db.models import Auth0Role, Group, Platform
from schemas.catalog import CatalogEntry, GroupCreate, PlatformCreate, RoleCreate, RolePublic
from services.auth0 import Auth0Gateway
from services.catalog.names import derive_short_name
from services.errors import Conflict, InvalidFields, NotFound
from services.identity.admin_scope import admin_links
from services.identity.role_scheme import RoleScheme
from services.memberships.kinds import GROUPS, KINDS, PLATFORMS, Kind, KindName, kind_named
from services.settings import Settings


async def ensure_role(
    session: AsyncSession, auth0: Auth0Gateway, name: str, description: str | None
) -> tuple[Auth0Role, bool]:
    """The live role called `name`, created in Auth0 if it does not exist; with a
    description given, Auth0's is brought in line. Returns (role, created)."""
    created = False
    remote = await auth0.find_role(name)
    if remote is None:
        try:
            remote = await auth0.create_role(name, description)
            created = True
        except Conflict:
            # Created by someone else between the lookup and the create.
            remote = await auth0.find_role(name)
            if remote is None:
                raise
    elif description and remote.get("description") != description:
        remote = await auth0.update_role(remote["id"], description=description)
    now = utcnow()
    table = Auth0Role.__table__
    # A role deleted in Auth0 and recreated under the same name has a new id.
    await session.execute(
        sa.update(table)
        .where(table.c.name == name, table.c.id != remote["id"], table.c.removed_at.is_(None))
        .values(removed_at=now, updated_at=now)
    )
    await upsert(
        session,
        table,
        [
            {
                "id": remote["id"],
                "name": remote["name"],
                "description": remote.get("description"),
                "removed_at": None,
                "created_at": now,
                "updated_at": now,
                "last_synced_at": now,
            }
        ],
        key=["id"],
        update=["name", "description", "removed_at"],
        extra_set={"updated_at": now},
    )
    return await session.get_one(Auth0Role, remote["id"], populate_existing=True), created


async def create_role(session: AsyncSession, auth0: Auth0Gateway, data: RoleCreate) -> RolePublic:
    role, created = await ensure_role(session, auth0, data.name, data.description)
    return RolePublic(id=role.id, name=role.name, description=role.description, created=created)


async def _admin_roles(
    session: AsyncSession,
    settings: Settings,
    kind: Kind,
    target_id: str,
    names: list[str],
    *,
    field: str = "admin_roles",
) -> list[Auth0Role]:
    """Existing live roles by name that may administer this target; an unknown or
    unfit one is a field error, not a silent skip.

    Unfit: an access role (its members would all become admins), a general admin role
    (already administers everything; linking it hides that) and a role that administers
    another platform or group (its holders would gain this one unasked)."""
    if not names:
        return []
    scheme = RoleScheme(settings.auth0_role_namespace)
    short_id = target_id if kind is PLATFORMS else scheme.short_id(target_id)
    errors = []
    for name in dict.fromkeys(names):
        parsed = scheme.parse(name)
        if name in settings.admin_roles:
            errors.append(f"{name!r} is a general admin role; it administers everything already")
        elif parsed is not None and parsed.kind in ("platform", "group"):
            errors.append(f"{name!r} is an access role; its members would all become admins")
        elif parsed is not None and parsed.target != short_id:
            errors.append(f"{name!r} is the admin role of {parsed.target!r}")
    roles = (
        await session.exec(
            select(Auth0Role).where(
                col(Auth0Role.name).in_(names), col(Auth0Role.removed_at).is_(None)
            )
        )
    ).all()
    errors += [
        f"No role named {name!r}; create it first"
        for name in sorted(set(names) - {role.name for role in roles})
    ]
    for link in (await session.execute(admin_links([role.name for role in roles]))).all():
        if (link.kind, link.target) != (kind.name, target_id):
            errors.append(f"{link.name!r} already administers {link.kind} {link.target!r}")
    if errors:
        raise InvalidFields([{"field": field, "message": message} for message in errors])
    return list(roles)


async def _refuse_shared_short_id(
    session: AsyncSession, scheme: RoleScheme, kind: Kind, short_id: str
) -> None:
    """`{ns}/role/{x}/admin` administers platform x and group {ns}/group/x alike: a group
    and a platform must never share x."""
    other: Platform | Group | None
    if kind is GROUPS:
        other = await session.get(Platform, short_id)
        field, what = "group_id", f"platform {short_id!r}"
    else:
        other = await session.get(Group, scheme.group_id(short_id))
        field, what = "id", f"group {scheme.group_id(short_id)!r}"
    if other is not None and other.removed_at is None:
        raise InvalidFields(
            [
                {
                    "field": field,
                    "message": f"{short_id!r} is taken by {what}: the two would share the "
                    f"admin role {scheme.admin_role(short_id)}",
                }
            ]
        )


async def create_platform(
    session: AsyncSession, auth0: Auth0Gateway, settings: Settings, data: PlatformCreate
) -> CatalogEntry:
    scheme = RoleScheme(settings.auth0_role_namespace)
    return await _create(
        session,
        auth0,
        settings,
        scheme,
        Platform.__table__,
        target_id=data.id,
        access_role=scheme.platform_role(data.id),
        short_id=data.id,
        name=data.name,
        short_name=settings.catalog_short_names.get(data.id, data.id),
        admin_roles=data.admin_roles,
    )


async def create_group(
    session: AsyncSession, auth0: Auth0Gateway, settings: Settings, data: GroupCreate
) -> CatalogEntry:
    scheme = RoleScheme(settings.auth0_role_namespace)
    parsed = scheme.parse(data.group_id)
    if parsed is None or parsed.kind != "group":
        raise InvalidFields(
            [
                {
                    "field": "group_id",
                    "message": f"A group id looks like {scheme.group_id('<short id>')}",
                }
            ]
        )
    short_id = scheme.short_id(data.group_id)
    return await _create(
        session,
        auth0,
        settings,
        scheme,
        Group.__table__,
        target_id=data.group_id,
        access_role=data.group_id,
        short_id=short_id,
        name=data.name,
        short_name=data.short_name
        or derive_short_name(short_id, data.name, settings.catalog_short_names),
        admin_roles=data.admin_roles,
    )


async def _create(
    session: AsyncSession,
    auth0: Auth0Gateway,
    settings: Settings,
    scheme: RoleScheme,
    table: sa.Table,
    *,
    target_id: str,
    access_role: str,
    short_id: str,
    name: str,
    short_name: str,
    admin_roles: list[str],
) -> CatalogEntry:
    """The access and admin roles in Auth0 first, then the row the roles sync would write."""
    kind = next(k for k in KINDS if k.catalog is table)
    await _refuse_shared_short_id(session, scheme, kind, short_id)
    extra = await _admin_roles(session, settings, kind, target_id, admin_roles)
    access, _ = await ensure_role(session, auth0, access_role, name)
    admin, _ = await ensure_role(
        session, auth0, scheme.admin_role(short_id), f"{name} administrators"
    )
    now = utcnow()
    await upsert(
        session,
        table,
        [
            {
                "id": target_id,
                "name": name,
                "short_name": short_name,
                "access_role_id": access.id,
                "removed_at": None,
                "created_at": now,
                "updated_at": now,
            }
        ],
        key=["id"],
        update=["name", "short_name", "access_role_id", "removed_at"],
        extra_set={"updated_at": now},
    )
    await _link(session, scheme, kind, target_id, [admin, *extra], replace=False)
    return await entry(session, kind, target_id)


async def set_admin_roles(
    session: AsyncSession,
    settings: Settings,
    kind_name: KindName,
    target_id: str,
    role_names: list[str],
) -> CatalogEntry:
    """Replace the extra admin roles of a platform or group. Roles named
    `{ns}/role/{id}/admin` follow their names (the roles sync owns those links)."""
    scheme = RoleScheme(settings.auth0_role_namespace)
    kind = kind_named(kind_name)
    if kind is GROUPS and "/" not in target_id:
        target_id = scheme.group_id(target_id)
    target = await kind.find_target(session, target_id)
    if target is None or target.removed_at is not None:
        raise NotFound(f"no {kind.name} {target_id!r}")
    roles = await _admin_roles(session, settings, kind, target_id, role_names, field="role_names")
    await _link(session, scheme, kind, target_id, roles, replace=True)
    return await entry(session, kind, target_id)


async def _link(
    session: AsyncSession,
    scheme: RoleScheme,
    kind: Kind,
    target_id: str,
    roles: list[Auth0Role],
    *,
    replace: bool,
) -> None:
    table, column = kind.links, kind.link_target
    linked = (
        await session.execute(
            sa.select(table.c.role_id, col(Auth0Role.name))
            .join(Auth0Role, col(Auth0Role.id) == table.c.role_id)
            .where(column == target_id)
        )
    ).all()
    current = {row.role_id for row in linked}
    wanted = {role.id for role in roles}
    if replace:
        # Links of naming-scheme admin roles belong to the roles sync, as in sync.catalog.
        keep = {row.role_id for row in linked if scheme.is_admin_role(row.name)}
        stale = current - wanted - keep
        if stale:
            await session.execute(
                sa.delete(table).where(column == target_id, table.c.role_id.in_(stale))
            )
    missing = wanted - current
    if missing:
        await session.execute(
            sa.insert(table), [{column.name: target_id, "role_id": role_id} for role_id in missing]
        )
    await session.flush()


async def entry(session: AsyncSession, kind: Kind, target_id: str) -> CatalogEntry:
    target = await kind.find_target(session, target_id, populate_existing=True)
    if target is None:
        raise NotFound(f"no {kind.name} {target_id!r}")
    names = (
        await session.exec(
            select(col(Auth0Role.name))
            .join(kind.links, kind.links.c.role_id == col(Auth0Role.id))
            .where(kind.link_target == target_id)
            .order_by(col(Auth0Role.name))
        )
    ).all()
    return CatalogEntry(
        type=kind.name,
        id=target.id,
        name=target.name,
        short_name=target.short_name,
        admin_roles=list(names),
    )
