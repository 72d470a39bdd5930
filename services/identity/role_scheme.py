"""The role-name scheme that makes Auth0 roles the catalog.

- `{ns}/platform/{id}` grants platform `{id}`;
- `{ns}/group/{id}` is group `{ns}/group/{id}` (the portal uses the role name as group id);
- `{ns}/role/{id}/admin` administers platform `{id}` or group `{ns}/group/{id}`;
- any role named in ADMIN_ROLES makes a general admin.
"""

from dataclasses import dataclass
from typing import Literal

RoleKind = Literal["platform", "group", "admin"]


@dataclass(frozen=True)
class ParsedRole:
    kind: RoleKind
    target: str  # the platform id, the group id (full role name), or the administered short id


@dataclass(frozen=True)
class RoleScheme:
    namespace: str = "biocommons"

    def parse(self, name: str) -> ParsedRole | None:
        parts = name.split("/")
        if len(parts) < 3 or parts[0] != self.namespace or not all(parts):
            return None
        if len(parts) == 3 and parts[1] == "platform":
            return ParsedRole("platform", parts[2])
        if len(parts) == 3 and parts[1] == "group":
            return ParsedRole("group", name)
        if len(parts) == 4 and parts[1] == "role" and parts[3] == "admin":
            return ParsedRole("admin", parts[2])
        return None

    def platform_role(self, platform_id: str) -> str:
        return f"{self.namespace}/platform/{platform_id}"

    def admin_role(self, short_id: str) -> str:
        return f"{self.namespace}/role/{short_id}/admin"

    def is_admin_role(self, name: str) -> bool:
        parsed = self.parse(name)
        return parsed is not None and parsed.kind == "admin"

    def group_id(self, short_id: str) -> str:
        return f"{self.namespace}/group/{short_id}"

    def short_id(self, group_id: str) -> str:
        return group_id.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Permissions:
    """What a caller's roles allow, before looking at the catalog."""

    general_admin: bool
    platforms: frozenset[str]  # platforms the caller may use
    groups: frozenset[str]  # groups the caller belongs to (full ids)
    admin_of_platforms: frozenset[str]
    admin_of_groups: frozenset[str]  # full group ids


def permissions_for(
    roles: frozenset[str], scheme: RoleScheme, admin_roles: frozenset[str]
) -> Permissions:
    platforms: set[str] = set()
    groups: set[str] = set()
    administered: set[str] = set()
    for name in roles:
        parsed = scheme.parse(name)
        if parsed is None:
            continue
        if parsed.kind == "platform":
            platforms.add(parsed.target)
        elif parsed.kind == "group":
            groups.add(parsed.target)
        else:
            administered.add(parsed.target)
    # An admin role names a short id; it may be a platform's or a group's. Both sets get
    # it, and the catalog (which has the real platforms and groups) settles which exists.
    return Permissions(
        general_admin=bool(roles & admin_roles),
        platforms=frozenset(platforms),
        groups=frozenset(groups),
        admin_of_platforms=frozenset(administered),
        admin_of_groups=frozenset(scheme.group_id(short) for short in administered),
    )
