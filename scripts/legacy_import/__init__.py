"""Importing the old aai-backend's database (Alembic head 038392d88518) into a migrated one.

    uv run python scripts/import_legacy.py --from <legacy database URL> [--to URL] [--dry-run] [--merge]

- `source` reads the old database whole (it is small: one row per user, membership, history
  entry and queued email) and refuses anything but the old schema at its last revision;
- `convert` turns its rows into this service's rows: a pure function, the mapping of
  `docs/cutover.md` ("What the import carries") in code;
- `load` checks the target, writes in one transaction what it does not already hold, and
  counts both sides for the reconciliation that `report` prints.

The old schema and the meaning of its columns: tests/scripts/legacy/legacy_schema.sql and
docs/cutover.md.
"""
