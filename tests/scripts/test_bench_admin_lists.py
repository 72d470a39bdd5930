"""The hot reads' benchmark at toy size: the API and the floor (scripts/bench/admin_floor.py)
both serve the first page to both admins without an error (the script is not run
anywhere else in CI)."""

import pytest

from scripts.bench.admin_lists import build_parser, main_async


async def test_the_api_and_the_floor_serve_the_first_page(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The Python driver: wrk may not be installed where CI runs.
    args = build_parser().parse_args(
        ["--users", "300", "--seconds", "1", "--only", "first page", "--python-client"]
    )

    await main_async(args)

    rows = [line for line in capsys.readouterr().out.splitlines() if "| list: first page |" in line]
    cells = [[cell.strip() for cell in row.strip("|").split("|")] for row in rows]
    assert {(row[0], row[2]) for row in cells} == {
        (caller, code) for caller in ("galaxy admin", "general admin") for code in ("this", "floor")
    }
    for row in cells:
        assert int(row[3]) > 0, row  # requests/s
        assert row[6] == "0", row  # errors
