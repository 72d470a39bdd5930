"""The local run: an Auth0 emulator with a demo tenant, one immediate sync, then the API
and the scheduler; no credentials needed.

    uv run python -m scripts.dev   (what scripts/run does)

When AUTH0_DOMAIN points somewhere else (a real tenant), only the API is started.
"""

import asyncio
import os
import secrets
import signal
import socket
import subprocess
import sys

import uvicorn

from db.migrations import upgrade_head
from run_scheduler import build_context, close_context, run_once
from scripts.auth0_emulator.seed import DEMO_PASSWORD, seed_demo
from scripts.auth0_emulator.server import EmulatorServer
from scripts.auth0_emulator.streams import StreamDelivery, Target
from services.settings import DEV_AUTH0_DOMAIN, ConfigError, Settings, get_settings
from services.sync.jobs import select_jobs


def _port_in_use(host: str, port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex((host, port)) == 0


async def initial_sync(settings: Settings) -> None:
    """Migrate and fill the local database once, so the API shows the demo tenant at once."""
    if settings.database_url.get_backend_name() == "sqlite":
        await upgrade_head(settings.database_url)
    ctx = build_context(settings, dry_run=False)
    try:
        for run in await run_once(ctx, select_jobs(immediate=True)):
            print(f"  sync {run.job}: {run.status.value} {run.counts.get('created', '')}".rstrip())
    finally:
        await close_context(ctx)


def main() -> int:
    # The demo tenant's general admins hold the "Admin" role.
    os.environ.setdefault("ADMIN_ROLES", '["Admin"]')
    # Ops' dashboard on by default locally; log in as admin@example.org on the emulator.
    os.environ.setdefault("ENABLE_ADMIN_DASHBOARD", "true")
    # The emulator serves a custom domain (localhost:9010) beside the canonical one
    # (127.0.0.1:9010), as a real tenant does: logins there, the Management API here.
    if os.environ.get("AUTH0_DOMAIN", DEV_AUTH0_DOMAIN) == DEV_AUTH0_DOMAIN:
        os.environ.setdefault("AUTH0_CUSTOM_DOMAIN", "http://localhost:9010")
        # The emulator pushes its Event Stream and Log Stream to this API's inboxes, as a
        # tenant would (README "Event and Log Streams"); DEV_STREAMS=0 leaves them off.
        if os.environ.get("DEV_STREAMS", "1") != "0":
            os.environ.setdefault("EVENTS_STREAM_SECRET", secrets.token_hex(24))
            os.environ.setdefault("LOG_STREAM_SECRET", secrets.token_hex(24))
    try:
        settings = get_settings()
    except ConfigError as exc:
        print(f"aai-backend: {exc}", file=sys.stderr)
        return 2
    host = os.environ.get("HOST", "127.0.0.1")
    port = int(os.environ.get("PORT", "8000"))
    emulator: EmulatorServer | None = None
    streams: StreamDelivery | None = None
    if settings.auth0_base_url == DEV_AUTH0_DOMAIN and not settings.is_production:
        if _port_in_use("127.0.0.1", 9010):
            print("Auth0 emulator: something already listens on 127.0.0.1:9010; using it")
        else:
            emulator = EmulatorServer(
                port=9010,
                audience=settings.auth0_audience,
                custom_domain=settings.auth0_custom_domain or False,
                management_client_id=settings.auth0_management_id,
                management_client_secret=settings.auth0_management_secret.get_secret_value(),
                roles_claim=settings.auth0_roles_claim,
            )
            summary = seed_demo(emulator.tenant, users=int(os.environ.get("DEMO_USERS", "200")))
            emulator.start()
            asyncio.run(initial_sync(settings))
            streams = _streams(emulator, settings, port)
            token = emulator.tenant.mint_access_token(
                str(summary["admin"]), roles=["Admin"], expires_in=86400
            )
            print(
                f"Auth0 emulator: {emulator.base_url}, logins at {emulator.custom_url or emulator.base_url} "
                f"({summary['users']} demo users, password {DEMO_PASSWORD})"
            )
            print(f"Demo admin access token (24h):\n  {token}")
    print(f"API: http://{host}:{port}/docs   readiness: http://{host}:{port}/health/ready")
    if settings.enable_admin_dashboard:
        print(f"Dashboard: http://{host}:{port}/db-admin/ (emulator login: admin@example.org)")
    print(f"Database: {settings.database_url.render_as_string(hide_password=True)}")
    # The second container of a deployment: here a child process on the same database.
    scheduler = None
    if os.environ.get("DEV_SCHEDULER", "1") != "0":
        scheduler = subprocess.Popen([sys.executable, "run_scheduler.py"])
        print(f"Scheduler: run_scheduler.py (pid {scheduler.pid}); DEV_SCHEDULER=0 leaves it out")
    sys.stdout.flush()
    try:
        uvicorn.run("main:create_app", factory=True, host=host, port=port, proxy_headers=True)
    finally:
        if scheduler is not None:
            scheduler.send_signal(signal.SIGTERM)
            try:
                scheduler.wait(timeout=40)
            except subprocess.TimeoutExpired:
                scheduler.kill()
        if streams is not None:
            streams.stop()
        if emulator is not None:
            emulator.stop()
    return 0


def _streams(emulator: EmulatorServer, settings: Settings, port: int) -> StreamDelivery | None:
    """Deliveries to the local inboxes, with Auth0's habits: duplicates, shuffled order,
    retries until the API answers."""
    event_secret, log_secret = settings.events_stream_secret, settings.log_stream_secret
    if not (event_secret and log_secret):
        return None
    base = f"http://127.0.0.1:{port}/events/auth0"
    streams = StreamDelivery(
        emulator.tenant,
        events=Target(f"{base}/event-stream", f"Bearer {event_secret.get_secret_value()}"),
        logs=Target(f"{base}/log-stream", f"Bearer {log_secret.get_secret_value()}"),
        duplicate_rate=0.05,
        reorder_window=4,
    ).start()
    print(f"Auth0 streams: Event Stream and Log Stream → {base}/ (DEV_STREAMS=0 turns them off)")
    return streams


if __name__ == "__main__":
    sys.exit(main())
