"""Write a Mermaid ER diagram of the table models to docs/db_diagram.md.

uv run python -m scripts.generate_db_diagram          # rewrite the file
uv run python -m scripts.generate_db_diagram --check  # exit 1 if it is stale
"""

import argparse
import re
import sys
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.sql import visitors
from sqlmodel import SQLModel

import db.models  # noqa: F401 - registers every table

OUTPUT = Path(__file__).resolve().parent.parent / "docs" / "db_diagram.md"


def _type_label(column: sa.Column) -> str:
    column_type = column.type
    if isinstance(column_type, sa.TypeDecorator):
        column_type = column_type.impl_instance
    compiled = column_type.compile(dialect=postgresql.dialect()).lower()
    compiled = compiled.replace(" with time zone", "tz")
    return re.sub(r"[^a-z0-9]+", "_", compiled).strip("_")


def _unique_notes(table: sa.Table) -> dict[str, list[str]]:
    notes: dict[str, list[str]] = {}
    for constraint in table.constraints:
        if isinstance(constraint, sa.UniqueConstraint):
            columns = [c.name for c in constraint.columns]
            label = "unique" if len(columns) == 1 else f"unique with {', '.join(columns[1:])}"
            notes.setdefault(columns[0], []).append(label)
    for index in table.indexes:
        if not index.unique:
            continue
        expression = index.expressions[0]
        where = index.dialect_options["postgresql"]["where"]
        suffix = f" where {where}" if where is not None else ""
        if isinstance(expression, sa.Column):
            notes.setdefault(expression.name, []).append(f"unique{suffix}")
        elif isinstance(expression, sa.ColumnElement):
            for element in visitors.iterate(expression):
                if isinstance(element, sa.Column):
                    notes.setdefault(element.name, []).append(f"unique case-insensitive{suffix}")
    return notes


def render() -> str:
    lines = [
        "# Database diagram",
        "",
        "Generated from the table models by `uv run python -m scripts.generate_db_diagram`;",
        "a test fails when it is stale. History tables are append-only (database triggers).",
        "",
        "```mermaid",
        "erDiagram",
    ]
    tables = sorted(SQLModel.metadata.tables.values(), key=lambda t: t.name)
    for table in tables:
        notes = _unique_notes(table)
        lines.append(f"    {table.name} {{")
        for column in table.columns:
            keys = []
            if column.primary_key:
                keys.append("PK")
            if column.foreign_keys:
                keys.append("FK")
            key_part = f" {','.join(keys)}" if keys else ""
            comment = list(notes.get(column.name, []))
            if column.nullable and not column.primary_key:
                comment.append("nullable")
            comment_part = f' "{"; ".join(comment)}"' if comment else ""
            lines.append(f"        {_type_label(column)} {column.name}{key_part}{comment_part}")
        lines.append("    }")
    for table in tables:
        for fk in sorted(table.foreign_keys, key=lambda f: f.parent.name):
            target = fk.column.table.name
            cardinality = "|o--o{" if fk.parent.nullable else "||--o{"
            lines.append(f'    {target} {cardinality} {table.name} : "{fk.parent.name}"')
    lines.append("```")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if docs/db_diagram.md is stale"
    )
    args = parser.parse_args()
    content = render()
    if args.check:
        current = OUTPUT.read_text() if OUTPUT.exists() else ""
        if current != content:
            print(
                f"{OUTPUT} is stale; run: uv run python -m scripts.generate_db_diagram",
                file=sys.stderr,
            )
            return 1
        print(f"{OUTPUT} is up to date")
        return 0
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(content)
    print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
