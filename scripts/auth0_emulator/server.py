"""Run the emulator on loopback in a background thread (tests, benchmarks, the dev run)."""

import ipaddress
import socket
import threading
import time
from types import TracebackType

import uvicorn

from scripts.auth0_emulator.app import EmulatorState, create_emulator_app
from scripts.auth0_emulator.limits import Faults
from scripts.auth0_emulator.tenant import Tenant


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class EmulatorServer:
    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        audience: str = "https://api.aai-backend.local",
        rate_limit: str = "off",
        faults: Faults | None = None,
        allow_remote: bool = False,
        public_url: str | None = None,
        custom_domain: bool | str = False,
        **tenant_options: object,
    ) -> None:
        """`custom_domain`: serve the tenant on a second host name too, as a tenant with a
        custom domain is (True: `localhost` on the same port; or a URL)."""
        if not allow_remote and not is_loopback(host):
            raise ValueError(
                f"the Auth0 emulator only serves loopback addresses, not {host!r} (pass allow_remote)"
            )
        self.host = host
        self.port = port or free_port(host)
        # The address clients use (e.g. a compose service name) names the issuer and the
        # discovery URLs; it differs from the bound one inside a container network.
        issuer = f"{(public_url or self.base_url).rstrip('/')}/"
        custom: str | None = None
        if custom_domain is True:
            custom = f"http://localhost:{self.port}/"
        elif custom_domain:
            custom = f"{str(custom_domain).rstrip('/')}/"
        self.tenant = Tenant(
            issuer=issuer,
            audience=audience,
            custom_issuer=custom,
            **tenant_options,  # type: ignore[arg-type]  # options are Tenant's keyword arguments, passed through
        )
        self.state = EmulatorState(self.tenant, rate_limit=rate_limit, faults=faults)
        self.app = create_emulator_app(self.state)
        config = uvicorn.Config(
            self.app, host=host, port=self.port, log_level="warning", lifespan="off"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="auth0-emulator", daemon=True)

    @property
    def base_url(self) -> str:
        """The canonical domain (the Management API's)."""
        return f"http://{self.host}:{self.port}"

    @property
    def custom_url(self) -> str | None:
        """The custom domain (logins, user tokens' issuer), if the tenant has one."""
        issuer = self.tenant.custom_issuer
        return issuer.rstrip("/") if issuer else None

    def start(self) -> "EmulatorServer":
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the Auth0 emulator did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)

    def __enter__(self) -> "EmulatorServer":
        return self.start()

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        self.stop()
