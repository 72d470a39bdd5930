"""The container entrypoint: one image, three roles.

    python -m scripts.entrypoint api [uvicorn options...]      # serve the API
    python -m scripts.entrypoint scheduler [run_scheduler options...]
    python -m scripts.entrypoint migrate                        # alembic upgrade head, exit
    python -m scripts.entrypoint check-auth0                    # is the tenant set up? (ops)
    python -m scripts.entrypoint import-legacy --from URL [...] # the cut-over's one-off import

Each role first waits for the database (DB_WAIT_TIMEOUT_S, default 60; a refused or
failing connection is retried every second) and exits 3 with a clear message if it
never answers. `api` serves with uvicorn (the app itself believes X-Forwarded-* only
from FORWARDED_ALLOW_IPS, so uvicorn's own proxy-header handling is off), with
WEB_CONCURRENCY workers (default 2); `api` and `scheduler` refuse to start on a
Postgres that is not at the code's migration head (the `migrate` task runs first).
The process is replaced (exec), so signals reach uvicorn / the scheduler directly.

`check-auth0` needs no database: it asks the tenant for a management token, compares its
scopes with the ones the service uses, makes one Management API read and reads the login
domain's discovery (services/auth0/tenant_check.py), prints each finding and exits 0 (all
well), 5 (a configuration fault: fix the tenant or the settings) or 6 (Auth0 could not be
reached, so nothing was proven). Ops run it after every deploy and tenant change.
"""

import asyncio
import os
import sys
import tempfile
import time

import httpx
from sqlalchemy.engine import URL

from db.engine import create_engine
from db.migrations import head_revisions, upgrade_head
from schemas.health import ReadinessReport
from services.auth0 import Auth0Gateway
from services.auth0.tenant_check import check_tenant
from services.kit.health import readiness
from services.kit.outbound import tls_context
from services.settings import ConfigError, Settings, get_settings

ROLES = ("api", "scheduler", "migrate", "check-auth0", "import-legacy")
EXIT_USAGE, EXIT_CONFIG, EXIT_NO_DATABASE, EXIT_NOT_MIGRATED = 64, 2, 3, 4
EXIT_AUTH0_FAULT, EXIT_AUTH0_UNKNOWN = 5, 6


async def check_auth0(settings: Settings) -> int:
    gateway = Auth0Gateway.from_settings(settings, deadline_s=None, max_retries=1)
    http = httpx.AsyncClient(timeout=settings.auth0_timeout_s, verify=tls_context())
    try:
        check = await check_tenant(gateway, http, settings, password_client=True)
    finally:
        await gateway.aclose()
        await http.aclose()
    print(
        f"check-auth0: Management API {settings.auth0_base_url}, login {settings.auth0_login_url}"
    )
    if check.scopes:
        print(f"check-auth0: granted scopes: {' '.join(check.scopes)}")
    for line in check.lines():
        print(f"check-auth0: {line}")
    if check.problems:
        return EXIT_AUTH0_FAULT
    return EXIT_AUTH0_UNKNOWN if check.unknown else 0


async def wait_for_database(url: URL, timeout_s: float) -> ReadinessReport:
    """The readiness report (services/health: answering? at the migration head?) once the
    database answers, or the last one if it never did within the timeout."""
    engine = create_engine(url, process="entrypoint", connect_timeout_s=5)
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            report = await readiness(engine, head_revisions(), verbose=True)
            database = report.checks["database"]
            if database.ok or time.monotonic() >= deadline:
                return report
            print(
                f"entrypoint: waiting for the database ({database.detail})",
                file=sys.stderr,
                flush=True,
            )
            await asyncio.sleep(1.0)
    finally:
        await engine.dispose()


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ROLES:
        print(f"usage: entrypoint {{{'|'.join(ROLES)}}} [args...]", file=sys.stderr)
        return EXIT_USAGE
    role, rest = argv[0], argv[1:]
    try:
        settings = get_settings()
    except ConfigError as exc:
        print(f"entrypoint: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if role == "check-auth0":
        return asyncio.run(check_auth0(settings))
    url = settings.database_url
    timeout_s = float(os.environ.get("DB_WAIT_TIMEOUT_S", "60"))
    report = asyncio.run(wait_for_database(url, timeout_s))
    if not report.checks["database"].ok:
        print(
            f"entrypoint: the database at {url.render_as_string(hide_password=True)} did not "
            f"answer within {timeout_s:.0f} s: {report.checks['database'].detail}",
            file=sys.stderr,
        )
        return EXIT_NO_DATABASE
    if role == "migrate":
        asyncio.run(upgrade_head(url))
        print("entrypoint: database migrated to head", flush=True)
        return 0
    if url.get_backend_name() == "postgresql" and not report.checks["migrations"].ok:
        print(
            f"entrypoint: {report.checks['migrations'].detail}; run the `migrate` role first",
            file=sys.stderr,
        )
        return EXIT_NOT_MIGRATED
    sys.stdout.flush()
    if role == "api":
        if settings.enable_prometheus_metrics and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            # Workers share their metrics through files, so any worker's /metrics has all.
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="aai-metrics-")
        command = [
            sys.executable,
            "-m",
            "uvicorn",
            "main:create_app",
            "--factory",
            "--host",
            os.environ.get("HOST", "0.0.0.0"),  # noqa: S104 - inside a container
            "--port",
            os.environ.get("PORT", "8000"),
            "--workers",
            os.environ.get("WEB_CONCURRENCY", "2"),
            "--no-proxy-headers",
            "--no-access-log",
            *rest,
        ]
    elif role == "import-legacy":
        # Into the configured database (docs/cutover.md); `--to` may name another.
        command = [sys.executable, "scripts/import_legacy.py", *rest]
    else:
        command = [sys.executable, "run_scheduler.py", *rest]
    os.execv(sys.executable, command)  # noqa: S606 - fixed programs, no shell
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
