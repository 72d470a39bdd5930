"""Running the project's own commands as the deployment does: a separate Python process."""

import asyncio
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx


async def run_python(
    cwd: Path, env: dict[str, str], *args: str, timeout_s: float = 120
) -> tuple[int, str]:
    """Run `python *args` to the end; its exit code and its stdout and stderr together."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *args,
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=timeout_s)
    return process.returncode or 0, output.decode()


@asynccontextmanager
async def serving(cwd: Path, env: dict[str, str], port: int, *args: str) -> AsyncIterator[int]:
    """Run `python *args` as a server on `port` until the block ends; yields its pid once
    it answers `GET /`. It must then stop cleanly on SIGTERM."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *args,
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        async with httpx.AsyncClient() as client:
            for _ in range(200):
                try:
                    await client.get(f"http://127.0.0.1:{port}/")
                    break
                except httpx.HTTPError:
                    await asyncio.sleep(0.1)
            else:
                raise AssertionError(f"python {' '.join(args)} never answered on port {port}")
        yield process.pid
    finally:
        process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(process.wait(), timeout=30)
        # uvicorn shuts down gracefully, then re-raises the signal it caught.
        assert code in (0, -signal.SIGTERM)
