"""User search as the Management API's `q` parameter does it (the subset of Lucene syntax
the project sends), field selection, and export lines."""

import fnmatch
import re
from typing import Any

from scripts.auth0_emulator.tenant import TenantError

_CLAUSE = re.compile(r'^(?P<field>[\w.]+):(?P<value>"[^"]*"|\[[^\]]*\]|\S+)$')


def lookup(user: dict[str, Any], path: str) -> Any:
    if path == "identities.connection":
        return [identity["connection"] for identity in user.get("identities", [])]
    if path.startswith("identities[0]."):
        identities = user.get("identities") or [{}]
        return identities[0].get(path.removeprefix("identities[0]."))
    value: Any = user
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def value_matches(actual: Any, expected: str) -> bool:
    if isinstance(actual, list):
        return any(value_matches(item, expected) for item in actual)
    if actual is None:
        return expected == "null"
    if isinstance(actual, bool):
        return str(actual).lower() == expected.lower()
    text = str(actual).lower()
    expected = expected.lower()
    if "*" in expected or "?" in expected:
        return fnmatch.fnmatchcase(text, expected)
    return text == expected


def compile_query(q: str) -> list[tuple[str, str]]:
    clauses = []
    for part in re.split(r"\s+AND\s+", q.strip()):
        match = _CLAUSE.match(part.strip())
        if match is None:
            raise TenantError(
                400, f"Query validation error: unsupported query '{part}'", "invalid_query_string"
            )
        clauses.append((match["field"], match["value"]))
    return clauses


def user_matches(user: dict[str, Any], clauses: list[tuple[str, str]]) -> bool:
    for field, value in clauses:
        actual = lookup(user, field)
        if value.startswith("["):
            low, _, high = value[1:-1].partition(" TO ")
            text = str(actual) if actual is not None else None
            if text is None or (low != "*" and text < low) or (high != "*" and text > high):
                return False
        elif not value_matches(actual, value.strip('"')):
            return False
    return True


def project(user: dict[str, Any], fields: str | None, include: bool) -> dict[str, Any]:
    if not fields:
        return user
    wanted = {f.strip() for f in fields.split(",") if f.strip()}
    if include:
        return {k: v for k, v in user.items() if k in wanted}
    return {k: v for k, v in user.items() if k not in wanted}


def export_line(user: dict[str, Any], fields: list[dict[str, Any]] | None) -> dict[str, Any]:
    if not fields:
        return {k: v for k, v in user.items() if k != "identities"}
    return {f.get("export_as") or f["name"]: lookup(user, f["name"]) for f in fields}
