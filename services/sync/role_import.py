"""Job `sync.roles`: Auth0 roles → `auth0_role`, and the platform/group catalog derived from them.

Adding a platform or a group is creating its roles in Auth0; the next run picks it up.
Removing them is deleting the roles, a few at a time: a run that would remove more than
SYNC_MAX_REVOKE_FRACTION of the live catalog (and more than one) writes nothing and is
reported failed, as an empty or cut-short role list would otherwise empty the catalog.
"""

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel.ext.asyncio.session import AsyncSession

from db.base import utcnow
from db.bulk import affected, upsert
from db.models import Auth0Role
from services.catalog.names import derive_short_name
from services.identity.role_scheme import RoleScheme
from services.memberships.kinds import GROUPS, KINDS, PLATFORMS, Kind
from services.sync.runs import JobContext, SyncAborted

logger = logging.getLogger("aai.sync")


@dataclass
class Catalog:
    """What Auth0's roles say the catalog is: rows by id, and admin role ids by short id."""

    platforms: dict[str, dict[str, object]] = field(default_factory=dict)
    groups: dict[str, dict[str, object]] = field(default_factory=dict)
    admin_roles: dict[str, list[str]] = field(default_factory=dict)

    def rows(self, kind: Kind) -> dict[str, dict[str, object]]:
        return self.platforms if kind is PLATFORMS else self.groups


async def sync_roles(ctx: JobContext) -> None:
    roles = await ctx.auth0.list_roles()
    scheme = RoleScheme(ctx.settings.auth0_role_namespace)
    now = utcnow()
    ctx.count("roles_seen", len(roles))
    catalog = _derive_catalog(ctx, scheme, roles, now)
    _refuse_clashes(ctx, scheme, catalog)
    async with ctx.sessions() as session:
        await _refuse_mass_removal(ctx, session, catalog)
    async with ctx.transaction() as session:
        await _write_roles(ctx, session, roles, now)
        for kind in KINDS:
            await _write_targets(ctx, session, kind, catalog.rows(kind), now)
        await _sync_admin_links(
            session,
            scheme,
            PLATFORMS,
            {(p, r) for p in catalog.platforms for r in catalog.admin_roles.get(p, [])},
        )
        await _sync_admin_links(
            session,
            scheme,
            GROUPS,
            {
                (g, r)
                for g in catalog.groups
                for r in catalog.admin_roles.get(scheme.short_id(g), [])
            },
        )


async def _refuse_mass_removal(ctx: JobContext, session: AsyncSession, catalog: Catalog) -> None:
    live: set[tuple[str, str]] = set()
    for kind in KINDS:
        table = kind.catalog
        ids = await session.execute(sa.select(table.c.id).where(table.c.removed_at.is_(None)))
        live.update((kind.name, str(row[0])) for row in ids)
    kept = {(kind.name, target) for kind in KINDS for target in catalog.rows(kind)}
    removed = sorted(live - kept)
    limit = max(ctx.settings.sync_max_revoke_fraction * len(live), 1)
    if len(removed) > limit:
        ctx.count("catalog_removals_held", len(removed))
        names = ", ".join(f"{kind} {target}" for kind, target in removed[:10])
        raise SyncAborted(
            f"{len(removed)} of {len(live)} platforms and groups would be removed ({names}"
            f"{', …' if len(removed) > 10 else ''}), more than SYNC_MAX_REVOKE_FRACTION="
            f"{ctx.settings.sync_max_revoke_fraction:.0%}; the catalog was left as it was"
        )


def _derive_catalog(
    ctx: JobContext, scheme: RoleScheme, roles: list[dict[str, Any]], now: datetime
) -> Catalog:
    catalog = Catalog()
    for role in roles:
        parsed = scheme.parse(role["name"])
        if parsed is None:
            continue
        title = (role.get("description") or "").strip()
        if parsed.kind == "platform":
            name = title or parsed.target
            catalog.platforms[parsed.target] = {
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
            catalog.groups[parsed.target] = {
                "id": parsed.target,
                "name": name,
                "short_name": derive_short_name(short, name, ctx.settings.catalog_short_names),
                "access_role_id": role["id"],
                "removed_at": None,
                "created_at": now,
                "updated_at": now,
            }
        else:
            catalog.admin_roles.setdefault(parsed.target, []).append(role["id"])
    return catalog


def _refuse_clashes(ctx: JobContext, scheme: RoleScheme, catalog: Catalog) -> None:
    """`{ns}/role/{x}/admin` administers platform x *and* group {ns}/group/x: a group whose
    short id is a platform's id would hand the platform's admins the group and the
    group's admins the platform. The platform keeps the name; the group is left out."""
    clashing = sorted(g for g in catalog.groups if scheme.short_id(g) in catalog.platforms)
    for group_id in clashing:
        del catalog.groups[group_id]
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


async def _write_roles(
    ctx: JobContext, session: AsyncSession, roles: list[dict[str, Any]], now: datetime
) -> None:
    role_table = Auth0Role.__table__
    # Removals first, so a recreated role (new id, same name) can take the name.
    removed = await session.execute(
        sa.update(role_table)
        .where(
            role_table.c.removed_at.is_(None),
            role_table.c.id.not_in([role["id"] for role in roles]),
        )
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


async def _write_targets(
    ctx: JobContext,
    session: AsyncSession,
    kind: Kind,
    derived: dict[str, dict[str, object]],
    now: datetime,
) -> None:
    """Platforms (or groups) whose role is gone are marked removed; the rest upserted."""
    table, label = kind.catalog, f"{kind.name}s"
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


async def _sync_admin_links(
    session: AsyncSession,
    scheme: RoleScheme,
    kind: Kind,
    desired: set[tuple[str, str]],
) -> None:
    """Links of `{ns}/role/{id}/admin` roles follow their names. Links to other roles were
    set by a general admin (/biocommons-admin) and are left alone."""
    table, target = kind.links, kind.link_target
    rows = (
        await session.execute(
            sa.select(target, table.c.role_id, Auth0Role.__table__.c.name).join(
                Auth0Role.__table__, Auth0Role.__table__.c.id == table.c.role_id
            )
        )
    ).all()
    current = {(row[0], row[1]) for row in rows if scheme.is_admin_role(row[2])}
    for target_id, role_id in current - desired:
        await session.execute(
            sa.delete(table).where(target == target_id, table.c.role_id == role_id)
        )
    missing = [
        {kind.column: target_id, "role_id": role_id} for target_id, role_id in desired - current
    ]
    if missing:
        await session.execute(sa.insert(table), missing)
