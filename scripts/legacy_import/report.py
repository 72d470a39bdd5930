"""The reconciliation table the import prints: rows per table and status, old against new."""

from scripts.legacy_import.load import Outcome

HEADER = (
    "table",
    "status",
    "old",
    "written",
    "already",
    "in target",
    "",
    "from (old status: rows)",
)


def render(outcome: Outcome, *, merge: bool) -> str:
    rows: list[tuple[str, ...]] = [HEADER]
    previous = None
    for line in outcome.lines:
        fine = line.carried and (merge or line.target == line.legacy)
        origins = ", ".join(f"{origin}: {count}" for origin, count in sorted(line.origins.items()))
        rows.append(
            (
                line.table if line.table != previous else "",
                line.status,
                str(line.legacy),
                str(line.written),
                str(line.already),
                str(line.target),
                "ok" if fine else "DIFFERS",
                origins or "(not from the old database)",
            )
        )
        previous = line.table
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADER))]
    numeric = {2, 3, 4, 5}
    text = []
    for index, row in enumerate(rows):
        cells = [
            cell.rjust(widths[i]) if i in numeric else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ]
        text.append("  ".join(cells).rstrip())
        if index == 0:
            text.append("  ".join("-" * w for w in widths))
    if outcome.claims:
        text.append("")
        text.append("username_claim (names the old history shows each user held):")
        for what, count in sorted(outcome.claims.items()):
            text.append(f"  {count:>7}  {what}")
    if outcome.not_carried:
        text.append("")
        text.append("not carried:")
        for what, count, why in outcome.not_carried:
            text.append(f"  {count:>7}  {what}: {why}")
    return "\n".join(text)
