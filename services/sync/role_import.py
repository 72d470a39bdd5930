"""Job `sync.roles`: Auth0 roles → `auth0_role`, and the platform/group catalog derived from them.

Adding a platform or a group is creating its roles in Auth0; the next run picks it up.
"""

import logging

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from db.base import utcnow
from db.bulk import affected, upsert
from db.models import Auth0Role, Group, GroupAdminRole, Platform, PlatformAdminRole
from services.catalog.names import derive_short_name
from services.identity.role_scheme import RoleScheme
from services.sync.runs import JobContext

logger = logging.getLogger("aai.sync")


async def sync_roles(ctx: JobContext) -> None:
    roles = await ctx.auth0.list_roles()
    scheme = RoleScheme(ctx.settings.auth0_role_namespace)
    now = utcnow()
    live_ids = [role["id"] for role in roles]
    ctx.count("roles_seen", len(roles))

    platforms: dict[str, dict[str, object]] = {}
    groups: dict[str, dict[str, object]] = {}
    admin_targets: dict[str, list[str]] = {}
    for role in roles:
        parsed = scheme.parse(role["name"])
        if parsed is None:
            continue
        title = (role.get("description") or "").strip()
        if parsed.kind == "platform":
            name = title or parsed.target
            platforms[parsed.target] = {
                "id": parsed.target,
                "name": name,
                "short_name": ctx.settings.catalog_short_names.get(parsed.target, parsed.target),
                "access_role_id": role["id"],
                "removed_at": None,
                "created_at": now,
                "updated_at": now,
            }
        elif parsed.kind == "group":
            short = scheme.short_id(parsed.target)
            name = title or short
            groups[parsed.target] = {
                "id": parsed.target,
                "name": name,
                "short_name": derive_short_name(short, name, ctx.settings.catalog_short_names),
                "access_role_id": role["id"],
                "removed_at": None,
                "created_at": now,
                "updated_at": now,
            }
        else:
            admin_targets.setdefault(parsed.target, []).append(role["id"])

    # `{ns}/role/{x}/admin` administers platform x *and* group {ns}/group/x: a group whose
    # short id is a platform's id would hand the platform's admins the group and the
    # group's admins the platform. The platform keeps the name; the group is left out.
    clashing = sorted(g for g in groups if scheme.short_id(g) in platforms)
    for group_id in clashing:
        del groups[group_id]
        logger.error(
            "sync.roles: group %s skipped: its short id is platform %r's id, and the two "
            "would share the admin role %s",
            group_id,
            scheme.short_id(group_id),
            scheme.admin_role(scheme.short_id(group_id)),
            extra={"event": "catalog_clash", "job": "sync.roles"},
        )
    if clashing:
        ctx.count("errors", len(clashing))
        ctx.counts["groups_refused"] = clashing

    async with ctx.transaction() as session:
        role_table = Auth0Role.__table__
        # Removals first, so a recreated role (new id, same name) can take the name.
        removed = await session.execute(
            sa.update(role_table)
            .where(role_table.c.removed_at.is_(None), role_table.c.id.not_in(live_ids))
            .values(removed_at=now, updated_at=now)
        )
        ctx.count("roles_removed", affected(removed))
        role_rows = [
            {
                "id": r["id"],
                "name": r["name"],
                "description": r.get("description"),
                "removed_at": None,
                "created_at": now,
                "updated_at": now,
                "last_synced_at": now,
            }
            for r in roles
        ]
        ctx.count(
            "roles_written",
            await upsert(
                session,
                role_table,
                role_rows,
                key=["id"],
                update=["name", "description", "removed_at"],
                extra_set={"updated_at": now},
            ),
        )

        for model, derived, label in (
            (Platform, platforms, "platforms"),
            (Group, groups, "groups"),
        ):
            table = model.__table__
            gone = await session.execute(
                sa.update(table)
                .where(table.c.removed_at.is_(None), table.c.id.not_in(list(derived)))
                .values(removed_at=now, updated_at=now)
            )
            ctx.count(f"{label}_removed", affected(gone))
            ctx.count(
                f"{label}_written",
                await upsert(
                    session,
                    table,
                    list(derived.values()),
                    key=["id"],
                    update=["name", "short_name", "access_role_id", "removed_at"],
                    extra_set={"updated_at": now},
                ),
            )

        await _sync_admin_links(
            session,
            scheme,
            PlatformAdminRole,
            "platform_id",
            {(p, r) for p in platforms for r in admin_targets.get(p, [])},
        )
        await _sync_admin_links(
            session,
            scheme,
            GroupAdminRole,
            "group_id",
            {(g, r) for g in groups for r in admin_targets.get(scheme.short_id(g), [])},
        )


async def _sync_admin_links(
    session: AsyncSession,
    scheme: RoleScheme,
    model: type[PlatformAdminRole] | type[GroupAdminRole],
    target_column: str,
    desired: set[tuple[str, str]],
) -> None:
    """Links of `{ns}/role/{id}/admin` roles follow their names. Links to other roles were
    set by a general admin (/biocommons-admin) and are left alone."""
    table = model.__table__
    rows = (
        await session.exec(
            select(getattr(model, target_column), model.role_id, col(Auth0Role.name)).join(
                Auth0Role, col(Auth0Role.id) == model.role_id
            )
        )
    ).all()
    current = {(row[0], row[1]) for row in rows if scheme.is_admin_role(row[2])}
    for target, role_id in current - desired:
        await session.execute(
            sa.delete(table).where(table.c[target_column] == target, table.c.role_id == role_id)
        )
    missing = [{target_column: target, "role_id": role_id} for target, role_id in desired - current]
    if missing:
        await session.execute(sa.insert(table), missing)
