"""Benchmark of the email queue: N queued messages delivered to a local SMTP sink.

    uv run python -m scripts.bench.email [--messages 10000] [--concurrency 8] [--batch 100]

Creates a scratch Postgres database (migrated), queues N rendered messages through the
real `enqueue` (committed in chunks), starts an aiosmtpd sink in its own process, then
runs the delivery the scheduler's `email.deliver` job runs until the queue is empty.
Prints enqueue rate, delivery messages/s, end-to-end time, and checks that the sink
received every message exactly once. Target: >= 200 messages/s (the design this
replaces delivered 25 per minute).

Needs PostgreSQL at TEST_DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/postgres).
"""

import argparse
import asyncio
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

from db.admin import create_database, drop_database
from db.engine import create_engine, create_session_factory
from db.migrations import upgrade_head
from db.models import EmailNotification
from scripts.auth0_emulator.server import free_port
from services.email.backends import build_backend
from services.email.delivery import DeliveryStats, deliver
from services.email.queue import enqueue
from services.settings import load_settings, to_async_url

TARGET_PER_S = 200.0


def run_sink(port: int, tally: Path) -> None:
    """The sink process: accept everything, count Message-IDs, write them out on SIGTERM."""
    import signal

    from aiosmtpd.controller import Controller

    ids: list[str] = []

    class Handler:
        async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
            for line in envelope.content.split(b"\r\n"):  # type: ignore[attr-defined]  # aiosmtpd's Envelope, untyped here
                if line.lower().startswith(b"message-id:"):
                    ids.append(line.split(b":", 1)[1].strip().decode())
                    break
            return "250 OK"

    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    stop = asyncio.Event()

    async def wait() -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()

    asyncio.run(wait())
    controller.stop()
    tally.write_text("\n".join(ids))


async def main_async(
    args: argparse.Namespace, port: int
) -> tuple[DeliveryStats, float, float, dict]:
    server = to_async_url(
        os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    )
    name = f"aai_bench_email_{secrets.token_hex(3)}"
    db_url = server.set(database=name)
    await create_database(server, name)
    try:
        await upgrade_head(db_url)
        settings = load_settings(
            _env_file=None,
            db_url=db_url.render_as_string(hide_password=False),
            db_host=None,
            email_backend="smtp",
            smtp_host="127.0.0.1",
            smtp_port=port,
            smtp_security="none",
            email_concurrency=args.concurrency,
            email_batch_size=args.batch,
        )
        engine = create_engine(db_url, process="bench", pool_size=3, max_overflow=2)
        sessions = create_session_factory(engine)
        started = time.perf_counter()
        for start in range(0, args.messages, 1000):
            async with sessions() as session:
                for n in range(start, min(start + 1000, args.messages)):
                    await enqueue(
                        session,
                        settings,
                        "membership_approved",
                        to=f"user{n}@example.org",
                        context={"target_name": "Galaxy Australia"},
                    )
                await session.commit()
        queued_s = time.perf_counter() - started

        backend = build_backend(settings)
        started = time.perf_counter()
        try:
            stats = await deliver(sessions, backend, settings)
        finally:
            await backend.aclose()
        delivery_s = time.perf_counter() - started
        async with engine.connect() as conn:
            t = EmailNotification.__table__
            by_status: dict[str, int] = dict(
                (
                    await conn.execute(sa.select(t.c.status, sa.func.count()).group_by(t.c.status))
                ).all()
            )
        await engine.dispose()
    finally:
        await drop_database(server, name)
    return stats, queued_s, delivery_s, by_status


def wait_for_port(port: int, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"the SMTP sink did not listen on {port} within {timeout_s:.0f} s")


def report(
    args: argparse.Namespace,
    stats: DeliveryStats,
    queued_s: float,
    delivery_s: float,
    by_status: dict,
    ids: list[str],
) -> int:
    rate = stats.sent / delivery_s
    print(f"\n{args.messages} messages, concurrency {args.concurrency}, batch {args.batch}\n")
    print("| measure | value |")
    print("|---|---|")
    print(
        f"| enqueue (render + insert, 1000 per commit) | {queued_s:.1f} s ({args.messages / queued_s:.0f}/s) |"
    )
    print(f"| delivery, queue full → empty | {delivery_s:.1f} s |")
    print(f"| delivery rate | {rate:.0f} messages/s |")
    print(f"| end to end (enqueue + delivery) | {queued_s + delivery_s:.1f} s |")
    print(f"| batches claimed | {stats.batches} |")
    print(f"| final statuses | { {str(k): v for k, v in by_status.items()} } |")
    print(f"| delivery counts | {stats.as_counts()} |")
    print(f"| received by the sink | {len(ids)} ({len(set(ids))} distinct) |")
    ok = rate >= TARGET_PER_S and len(ids) == len(set(ids)) == args.messages
    print(f"\ntarget >= {TARGET_PER_S:.0f}/s, each message once: {'ok' if ok else 'MISSED'}")
    return 0 if ok else 1


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--sink", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--tally", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sink:
        run_sink(args.sink, args.tally)
        return
    port = free_port()
    with tempfile.TemporaryDirectory() as scratch:
        tally = Path(scratch) / "ids"
        sink = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "scripts.bench.email",
                "--sink",
                str(port),
                "--tally",
                str(tally),
            ]
        )
        try:
            wait_for_port(port)
            stats, queued_s, delivery_s, by_status = asyncio.run(main_async(args, port))
        finally:
            sink.terminate()
            sink.wait(timeout=30)
        ids = tally.read_text().split("\n") if tally.exists() else []
    sys.exit(report(args, stats, queued_s, delivery_s, by_status, ids))


if __name__ == "__main__":
    main()
