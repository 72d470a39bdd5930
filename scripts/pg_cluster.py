"""A private, throwaway PostgreSQL cluster from the machine's binaries (no Docker).

initdb and pg_ctl refuse to run as root, so as root they run as the `postgres` user.
Used by generate_migrations.py and by tests that need to stop and restart a server.
"""

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType

from sqlalchemy.engine import URL


def find_pg_bin() -> Path:
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if candidates:
        return candidates[-1].parent
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    raise FileNotFoundError("no PostgreSQL binaries in /usr/lib/postgresql/*/bin or on PATH")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class TempCluster:
    def __init__(self, port: int | None = None, *, options: tuple[str, ...] = ()) -> None:
        """`options`: extra `-c name=value` server settings (TLS, say)."""
        self.bindir = find_pg_bin()
        self.port = port or free_port()
        self.options = options
        self.workdir = Path(tempfile.mkdtemp(prefix="aai-pg-"))
        self.data = self.workdir / "data"
        self._run_as: list[str] = []
        if os.geteuid() == 0:
            pg_user = pwd.getpwnam("postgres")
            os.chown(self.workdir, pg_user.pw_uid, pg_user.pw_gid)
            self._run_as = ["runuser", "-u", "postgres", "--"]
        self._pg(["initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust"])

    @property
    def url(self) -> URL:
        return URL.create(
            "postgresql+asyncpg",
            username="postgres",
            host="127.0.0.1",
            port=self.port,
            database="postgres",
        )

    def give_to_server(self, *paths: Path) -> None:
        """Make files readable by the server only (Postgres refuses a key others can read)."""
        for path in paths:
            path.chmod(0o600)
            if self._run_as:
                pg_user = pwd.getpwnam("postgres")
                os.chown(path, pg_user.pw_uid, pg_user.pw_gid)

    def _pg(self, args: list[str], *, check: bool = True) -> None:
        command = [*self._run_as, str(self.bindir / args[0]), *args[1:]]
        subprocess.run(command, check=check, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def start(self) -> None:
        options = " ".join(
            [
                f"-p {self.port} -k {self.workdir} -c listen_addresses=127.0.0.1 -c fsync=off",
                *(f"-c {option}" for option in self.options),
            ]
        )
        self._pg(
            [
                "pg_ctl",
                "-D",
                str(self.data),
                "-o",
                options,
                "-w",
                "-l",
                str(self.workdir / "log"),
                "start",
            ]
        )

    def stop(self, mode: str = "fast") -> None:
        self._pg(["pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop"], check=False)

    def remove(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> "TempCluster":
        self.start()
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        self.remove()
