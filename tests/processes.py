"""Running the project's own commands as the deployment does: a separate Python process."""

import asyncio
import sys
from pathlib import Path


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
