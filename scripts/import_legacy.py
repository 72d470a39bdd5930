"""Import the old aai-backend's database into this service's (migrated) database.

    uv run python scripts/import_legacy.py --from postgresql://…/old_db [--to URL] [--dry-run] [--merge]

`--from` defaults to the LEGACY_DATABASE_URL environment variable (so a one-off task can take
it from a secret rather than its command line); `--to` defaults to the database the service is
configured with (DB_URL / DB_HOST…). The
whole import is one transaction. `--dry-run` writes it, prints the reconciliation and rolls
back. Without `--merge` the target must hold nothing yet; with it, rows the target already
holds are kept as they are and only what it lacks is written, so running the import twice
writes nothing the second time. Exit codes: 0 imported (or would be), 2 usage or settings,
3 the source is not an old database at revision 038392d88518 (or cannot be reached),
4 the target is not migrated, 5 the target is not empty (no --merge), 6 rows that break a
rule of the new schema (listed; nothing written), 7 counts that do not reconcile (nothing
written). The cut-over runbook: docs/cutover.md.
"""

import argparse
import asyncio
import os
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file: the repository's packages sit one level up
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy.engine import URL

from db.base import utcnow
from db.engine import create_engine
from scripts.legacy_import.convert import convert
from scripts.legacy_import.load import TargetRefused, import_into
from scripts.legacy_import.report import render
from scripts.legacy_import.source import SourceRefused, read_legacy
from services.settings import ConfigError, get_settings, to_async_url

EXIT_USAGE, EXIT_SOURCE = 2, 3


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="import_legacy", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    parser.add_argument(
        "--from",
        dest="source",
        default=os.environ.get("LEGACY_DATABASE_URL"),
        help="the old database's URL (default: $LEGACY_DATABASE_URL)",
    )
    parser.add_argument("--to", dest="target", help="the target database (default: settings)")
    parser.add_argument("--dry-run", action="store_true", help="import, report, roll back")
    parser.add_argument(
        "--merge", action="store_true", help="allow a non-empty target; write only what it lacks"
    )
    return parser.parse_args(argv)


def _safe(url: URL) -> str:
    return url.render_as_string(hide_password=True)


async def run(argv: list[str]) -> int:
    args = parse(argv)
    if not args.source:
        print(
            "import_legacy: name the old database: --from URL or LEGACY_DATABASE_URL",
            file=sys.stderr,
        )
        return EXIT_USAGE
    try:
        settings = get_settings()
    except ConfigError as exc:
        print(f"import_legacy: settings refused: {exc}", file=sys.stderr)
        return EXIT_USAGE
    source = to_async_url(args.source)
    target = to_async_url(args.target) if args.target else settings.database_url
    if source.get_backend_name() != "postgresql":
        print("import_legacy: --from must be a PostgreSQL URL", file=sys.stderr)
        return EXIT_USAGE
    print(f"reading {_safe(source)}")
    try:
        legacy = await read_legacy(source)
    except SourceRefused as exc:
        print(f"import_legacy: {exc}", file=sys.stderr)
        return EXIT_SOURCE
    except (OSError, ConnectionError) as exc:
        print(f"import_legacy: cannot reach the old database: {exc}", file=sys.stderr)
        return EXIT_SOURCE
    conversion = convert(
        legacy,
        now=utcnow(),
        db_connection=settings.auth0_db_connection,
        short_names=settings.catalog_short_names,
        email_max_age_s=settings.email_max_age_s,
    )
    mode = "dry run: rolled back" if args.dry_run else "merge" if args.merge else "import"
    print(f"writing {_safe(target)} ({mode})")
    engine = create_engine(target, process="import-legacy", statement_timeout_s=600)
    try:
        outcome = await import_into(engine, conversion, merge=args.merge, dry_run=args.dry_run)
    except TargetRefused as exc:
        print(f"import_legacy: {exc}", file=sys.stderr)
        for detail in exc.details[:50]:
            print(f"  - {detail}", file=sys.stderr)
        if len(exc.details) > 50:
            print(f"  … and {len(exc.details) - 50} more", file=sys.stderr)
        return exc.exit_code
    finally:
        await engine.dispose()
    print(render(outcome, merge=args.merge))
    written = sum(line.written for line in outcome.lines) + outcome.claims["reserved now"]
    verdict = "committed" if outcome.committed else "rolled back (dry run)"
    print(f"\n{written} row(s) written, {verdict}.")
    return 0


def main() -> None:
    sys.exit(asyncio.run(run(sys.argv[1:])))


if __name__ == "__main__":
    main()
