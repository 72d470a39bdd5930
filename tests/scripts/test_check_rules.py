"""The house-rules checker finds each kind of breach, and the tree keeps them."""

import ast
from pathlib import Path

from scripts import check_rules


def test_a_type_ignore_needs_a_code_and_a_reason():
    source = "\n".join(
        [
            "a = 1  # type: ignore",
            "b = 2  # type: ignore[arg-type]",
            "c = 3  # type: ignore[arg-type]  # the library's stub is wrong",
        ]
    )
    assert check_rules.type_ignores(Path("m.py"), source) == [
        "m.py:1: type: ignore without an error code",
        "m.py:2: type: ignore[arg-type] without a reason",
    ]


def test_private_names_may_be_imported_within_a_domain_only():
    path = check_rules.ROOT / "services" / "users" / "profile.py"
    tree = ast.parse(
        "from services.users.accounts import _helper\n"
        "from services.memberships.records import _history\n"
        "from services.memberships.records import record_history\n"
    )
    assert check_rules.private_imports(path, tree) == [
        f"{path}:2: imports private _history from services.memberships.records"
    ]


def test_the_tree_keeps_the_rules():
    assert check_rules.main() == 0
