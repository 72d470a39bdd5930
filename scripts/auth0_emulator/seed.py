"""Seeding: the role scheme this project expects, plus users and assignments."""

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from scripts.auth0_emulator.tenant import DEFAULT_CONNECTION, Tenant

DEMO_PASSWORD = "Demo-password-1"  # noqa: S105 - emulator demo data
PLATFORMS = {
    "galaxy": "Galaxy Australia",
    "bpa_data_portal": "Bioplatforms Australia Data Portal",
    "sbp": "Structural Biology Platform",
}
GROUPS = {"tsi": "Threatened Species Initiative"}
ADMIN_ROLE = "Admin"


def seed_roles(tenant: Tenant, namespace: str = "biocommons") -> dict[str, str]:
    """Create the catalog roles; returns role name → role id."""
    created: dict[str, str] = {}

    def ensure(name: str, description: str) -> None:
        role = tenant.role_by_name(name) or tenant.create_role(name, description)
        created[name] = role["id"]

    ensure(ADMIN_ROLE, "General administrator of the portal")
    for platform_id, title in PLATFORMS.items():
        ensure(f"{namespace}/platform/{platform_id}", title)
        ensure(f"{namespace}/role/{platform_id}/admin", f"{title} administrator")
    for group_id, title in GROUPS.items():
        ensure(f"{namespace}/group/{group_id}", title)
        ensure(f"{namespace}/role/{group_id}/admin", f"{title} administrator")
    return created


def seed_demo(
    tenant: Tenant, *, users: int = 200, namespace: str = "biocommons", seed: int = 7
) -> dict[str, Any]:
    """A demo tenant: catalog roles, named admins, and `users` ordinary users with assignments."""
    rng = random.Random(seed)
    roles = seed_roles(tenant, namespace)
    base = datetime(2024, 1, 1, tzinfo=UTC)

    def user(local: str, email: str, username: str, **extra: Any) -> str:
        existing = tenant.find_user(email)
        if existing:
            return str(existing["user_id"])
        created = tenant.create_user(
            {
                "connection": DEFAULT_CONNECTION,
                "user_id": local,
                "email": email,
                "username": username,
                "password": DEMO_PASSWORD,
                "email_verified": True,
                **extra,
            }
        )
        return str(created["user_id"])

    admin = user(
        "admin",
        "admin@example.org",
        "admin",
        name="Ada Admin",
        given_name="Ada",
        family_name="Admin",
    )
    tenant.assign_roles(admin, [roles[ADMIN_ROLE]])
    galaxy_admin = user("galaxyadmin", "galaxy.admin@example.org", "galaxyadmin", name="Gal Admin")
    tenant.assign_roles(
        galaxy_admin,
        [roles[f"{namespace}/role/galaxy/admin"], roles[f"{namespace}/platform/galaxy"]],
    )
    tsi_admin = user("tsiadmin", "tsi.admin@example.org", "tsiadmin", name="Tess Admin")
    tenant.assign_roles(
        tsi_admin, [roles[f"{namespace}/role/tsi/admin"], roles[f"{namespace}/group/tsi"]]
    )

    platform_roles = [roles[f"{namespace}/platform/{p}"] for p in PLATFORMS]
    group_role = roles[f"{namespace}/group/tsi"]
    for index in range(users):
        created_at = base + timedelta(minutes=index * 7)
        user_id = user(
            f"{index:06d}demo",
            f"user{index:06d}@example.org",
            f"user{index:06d}",
            name=f"Demo User {index}",
            given_name="Demo",
            family_name=f"User {index}",
            email_verified=rng.random() > 0.1,
            created_at=created_at.isoformat().replace("+00:00", "Z"),
        )
        assigned = [role for role in platform_roles[:2] if rng.random() < 0.8]
        if rng.random() < 0.2:
            assigned.append(platform_roles[2])
        if rng.random() < 0.3:
            assigned.append(group_role)
        if assigned:
            tenant.assign_roles(user_id, assigned)
    return {
        "roles": roles,
        "admin": admin,
        "galaxy_admin": galaxy_admin,
        "tsi_admin": tsi_admin,
        "users": len(tenant.users),
    }


def seed_bench(
    tenant: Tenant,
    *,
    users: int,
    namespace: str = "biocommons",
    platform_share: float = 0.7,
    group_share: float = 0.2,
    seed: int = 11,
) -> dict[str, Any]:
    """The benchmark tenant: 3 platform roles each on ~70% of users, 2 group roles each on ~20%."""
    rng = random.Random(seed)
    roles = seed_roles(tenant, namespace)
    extra = tenant.role_by_name(f"{namespace}/group/bpa_cohort") or tenant.create_role(
        f"{namespace}/group/bpa_cohort", "BPA Cohort Study"
    )
    platform_roles = [roles[f"{namespace}/platform/{p}"] for p in PLATFORMS]
    group_roles = [roles[f"{namespace}/group/tsi"], extra["id"]]
    base = datetime(2023, 1, 1, tzinfo=UTC)
    for index in range(users):
        created = tenant.create_user(
            {
                "connection": DEFAULT_CONNECTION,
                "user_id": f"{index:07d}bench",
                "email": f"bench{index:07d}@example.org",
                "username": f"bench{index:07d}",
                "password": DEMO_PASSWORD,
                "email_verified": rng.random() > 0.05,
                "given_name": "Bench",
                "family_name": f"User {index}",
                "created_at": (base + timedelta(seconds=index * 30))
                .isoformat()
                .replace("+00:00", "Z"),
            }
        )
        assigned = [role for role in platform_roles if rng.random() < platform_share]
        assigned += [role for role in group_roles if rng.random() < group_share]
        if assigned:
            tenant.assign_roles(created["user_id"], assigned)
    members = {
        role_id: len(tenant.role_members[role_id]) for role_id in platform_roles + group_roles
    }
    return {"users": len(tenant.users), "members": members}
