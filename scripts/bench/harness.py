"""What the benchmarks share: settings and a raw connection for the scratch database, the
API under uvicorn, a cheap keep-alive client, wrk, tokens from the emulator, percentiles, and
process memory and CPU."""

import asyncio
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from sqlalchemy.engine import URL

from scripts.auth0_emulator.server import free_port
from services.settings import Settings, load_settings


def bench_settings(db_url: URL, emulator_url: str, **extra: Any) -> Settings:
    """Settings for in-process jobs against the emulator, whose rate limit is off."""
    return load_settings(
        _env_file=None,
        db_url=db_url.render_as_string(hide_password=False),
        db_host=None,
        auth0_domain=emulator_url,
        auth0_mgmt_rps=1000,
        auth0_mgmt_burst=1000,
        **extra,
    )


@asynccontextmanager
async def raw_connection(db_url: URL) -> AsyncIterator[asyncpg.Connection]:
    """A plain asyncpg connection, for COPY and set-up SQL outside the application's code."""
    dsn = db_url.set(drivername="postgresql").render_as_string(hide_password=False)
    connection = await asyncpg.connect(dsn)
    try:
        yield connection
    finally:
        await connection.close()


def start_api(
    db_url: URL,
    emulator_url: str,
    env: Mapping[str, str],
    *,
    workers: int = 2,
    code: Path | None = None,
    app: str = "main:create_app",
) -> tuple[subprocess.Popen[bytes], str]:
    """The API as deployed (uvicorn, `workers` processes), ready to serve; from `code` (a
    checkout of another revision, for before/after figures in one run) if given; `app` is
    another app factory to serve the same way (the admin list's floor)."""
    port = free_port()
    process_env = {
        **os.environ,
        "DB_URL": db_url.render_as_string(hide_password=False),
        "AUTH0_DOMAIN": emulator_url,
        "LOG_LEVEL": "warning",
        **env,
    }
    process_env.pop("DB_HOST", None)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            app,
            "--factory",
            "--workers",
            str(workers),
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        cwd=code or Path(__file__).resolve().parents[2],
        env=process_env,
    )
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base_url}/health/ready", timeout=2).status_code == 200:
                return process, base_url
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    process.terminate()
    raise RuntimeError("the API did not become ready within 60 s")


async def backends_started(connection: asyncpg.Connection) -> int:
    """Connections ever opened to the connection's database (pg_stat_database.sessions,
    Postgres 14+), read afresh: the difference over a run is the connection churn."""
    await connection.execute("SELECT pg_stat_clear_snapshot()")
    value = await connection.fetchval(
        "SELECT sessions FROM pg_stat_database WHERE datname = current_database()"
    )
    return int(value or 0)


def stop(*processes: subprocess.Popen[Any] | None) -> None:
    """Terminate the benchmark's child processes (those that were started) and reap them."""
    for process in processes:
        if process is not None:
            process.terminate()
            process.wait(timeout=30)


class Connection:
    """A minimal HTTP/1.1 keep-alive client. httpx costs a few milliseconds of CPU per
    request, and on a 2-core machine that CPU is taken from the server being measured."""

    def __init__(self, base_url: str) -> None:
        url = httpx.URL(base_url)
        self.host, self.port = url.host, url.port or 80
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(
        self, method: str, path: str, token: str, body: Any = None
    ) -> tuple[int, bytes]:
        """Status and body. A dropped connection raises OSError; reopen with `reset`."""
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Authorization: Bearer {token}\r\n"
        )
        payload = b""
        if body is not None:
            payload = json.dumps(body).encode()
            head += f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
        self.writer.write(head.encode() + b"\r\n" + payload)
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionResetError("connection closed")
        status = int(status_line.split()[1])
        length, chunked = 0, False
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            if name.lower() == "content-length":
                length = int(value)
            elif name.lower() == "transfer-encoding" and "chunked" in value.lower():
                chunked = True
        if chunked:
            parts = []
            while (size := int((await self.reader.readline()).strip(), 16)) > 0:
                parts.append((await self.reader.readexactly(size + 2))[:-2])
            await self.reader.readline()
            return status, b"".join(parts)
        return status, await self.reader.readexactly(length)

    async def reset(self) -> None:
        await self.close()
        self.reader = self.writer = None

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def mint(emulator_url: str, user: str, role: str | None = None) -> tuple[str, str]:
    """An access token for an emulator user (holding `role`, else the user's own roles),
    and the user's id."""
    tokens = await mint_many(emulator_url, [user], role)
    return tokens[0]


async def mint_many(
    emulator_url: str, users: list[str], role: str | None = None, *, concurrency: int = 8
) -> list[tuple[str, str]]:
    """Tokens for many users through the emulator's test endpoint, in order."""
    results: list[tuple[str, str]] = [("", "")] * len(users)
    queue = list(enumerate(users))
    async with httpx.AsyncClient(base_url=emulator_url, timeout=30) as http:

        async def worker() -> None:
            while queue:
                index, user = queue.pop()
                request: dict[str, Any] = {"user": user, "expires_in": 3600}
                if role is not None:
                    request["roles"] = [role]
                response = await http.post("/_emulator/tokens", json=request)
                response.raise_for_status()
                body = response.json()
                results[index] = (body["access_token"], body["user_id"])

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return results


def percentile(ordered: list[float], share: float) -> float:
    """The nearest-rank percentile of an ascending list (0 for an empty one)."""
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def process_peak_rss_mb(pid: int) -> float:
    """Peak resident memory of a live process (VmHWM, which only grows), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name == "VmHWM":
            return int(value.split()[0]) / 1024
    return 0.0


def worker_pids(uvicorn_pid: int) -> list[int]:
    """uvicorn's worker processes (not multiprocessing's resource tracker beside them)."""
    workers: list[int] = []
    for task in Path(f"/proc/{uvicorn_pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                workers.append(int(child))
    return workers


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a live process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def postgres_cpu_seconds() -> float:
    """CPU time of every process named postgres on this machine (the server and backends)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() == "postgres":
                total += cpu_seconds(int(entry.name))
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


WRK_SCRIPT = """
local paths = {%s}
local threads, index = 0, 0
function setup(thread)
  -- Each thread walks the paths from its own point, so two threads do not move in step.
  thread:set("start", threads * 7919)
  threads = threads + 1
end
function init(args)
  index = start
end
function request()
  index = index + 1
  return wrk.format("GET", paths[index %% #paths + 1])
end
function done(summary, latency, requests)
  io.write(string.format(
    '\\nWRK {"requests": %%d, "duration_us": %%d, "status": %%d, "socket": %%d, ' ..
    '"p50_us": %%d, "p99_us": %%d}\\n',
    summary.requests, summary.duration, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write
      + summary.errors.timeout,
    latency:percentile(50.0), latency:percentile(99.0)))
end
"""


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


async def wrk_drive(
    base_url: str, token: str, paths: list[str], clients: int, seconds: float
) -> dict[str, float]:
    """Drive `paths` (in turn) with wrk, the load generator the issue's baseline was
    measured with: C, two threads, so the client takes little of the CPU the server is
    measured on. Errors are responses with a status of 400 or more plus socket errors and
    timeouts. (A warm-up is a run of its own whose figures the caller drops.)"""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT % ", ".join(json.dumps(path) for path in paths))
    try:
        process = await asyncio.create_subprocess_exec(
            "wrk", "-t2", f"-c{clients}", f"-d{max(1, round(seconds))}s", "--timeout", "10s",
            "-H", f"Authorization: Bearer {token}", "-s", script.name, base_url,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        output, _ = await process.communicate()
    finally:
        os.unlink(script.name)
    summaries = [line for line in output.decode().splitlines() if line.startswith("WRK ")]
    if not summaries:
        raise RuntimeError(f"wrk printed no summary: {output.decode()[-500:]}")
    figures = json.loads(summaries[-1][4:])
    return {
        "requests": figures["requests"],
        "rps": figures["requests"] / (figures["duration_us"] / 1e6),
        "p50_ms": figures["p50_us"] / 1000,
        "p99_ms": figures["p99_us"] / 1000,
        "errors": figures["status"] + figures["socket"],
    }


def connections_per_worker(port: int, workers: list[int]) -> list[int]:
    """Established connections to `port` that each worker holds (from /proc: the sockets
    in each worker's fds against the kernel's TCP table). Workers share one listening
    socket and whichever wakes first accepts what is waiting, so a burst of connections
    can land unevenly, and each worker serves only its own."""
    established = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port == port and fields[3] == "01":  # 01: ESTABLISHED
                established.add(fields[9])
    counts = []
    for pid in workers:
        held = 0
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1] in established:
                held += 1
        counts.append(held)
    return counts
