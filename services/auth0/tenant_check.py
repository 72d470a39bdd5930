"""Is the Auth0 tenant set up the way this service needs? For ops after a deploy
(`python -m scripts.entrypoint check-auth0`) and, once, at API start (logged, and a
configuration fault turns /health/ready to 503).

What it catches is what a real tenant refuses and an outage does not explain:
- a management token refused: most often AUTH0_DOMAIN set to the custom (login) domain, so
  the token is asked for audience `https://<custom domain>/api/v2/`, which Auth0 answers
  403 "Service not enabled within domain" (the Management API is only ever the canonical
  `{tenant}.{region}.auth0.com` one); or a client without a grant, or a wrong secret;
- a grant missing scopes the service uses (services/auth0/scopes.py);
- a Management API that refuses a read with that token;
- a login domain whose tokens carry an issuer the API does not trust;
- a password client (AUTH0_PASSWORD_CLIENT_ID) Auth0 does not let check passwords.
Auth0 being unreachable is reported as such, not as a fault of the configuration.
"""

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

import httpx

from schemas.health import CheckResult
from services.auth0.gateway import Auth0Gateway, PasswordCheckRefused
from services.auth0.scopes import missing_scopes
from services.errors import AppError, ServiceUnavailable
from services.settings import Settings

logger = logging.getLogger("aai.auth0")


@dataclass
class TenantCheck:
    # Faults of the configuration: the service cannot work until they are fixed.
    problems: list[str] = field(default_factory=list)
    # Could not tell (Auth0 unreachable): says nothing about the configuration.
    unknown: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    scopes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and not self.unknown

    def lines(self) -> list[str]:
        return (
            [f"ok: {note}" for note in self.notes]
            + [f"FAULT: {problem}" for problem in self.problems]
            + [f"unknown: {item}" for item in self.unknown]
        )


async def _management(check: TenantCheck, gateway: Auth0Gateway, settings: Settings) -> None:
    gateway.tokens.invalidate()
    try:
        await gateway.tokens.get()
    except ServiceUnavailable as exc:
        check.unknown.append(f"management token: {exc.detail}")
        return
    except AppError as exc:
        hints = "".join(f" ({problem})" for problem in settings.auth0_domain_problems())
        check.problems.append(f"management token: {exc.detail}{hints}")
        return
    check.scopes = sorted(gateway.tokens.scopes)
    check.notes.append(f"management token for {gateway.base_url}/api/v2/")
    missing = missing_scopes(gateway.tokens.scopes)
    if missing:
        check.problems.append(
            "the management client's grant lacks scopes this service uses: " + " ".join(missing)
        )
    else:
        check.notes.append("the management grant holds every scope this service uses")
    try:
        await gateway.call("roles.list", lambda c: c.roles.list(per_page=1))
    except ServiceUnavailable as exc:
        check.unknown.append(f"Management API read: {exc.detail}")
    except AppError as exc:
        check.problems.append(f"Management API read refused: {exc.detail}")
    else:
        check.notes.append("the Management API answers a read")


async def _login_domain(check: TenantCheck, http: httpx.AsyncClient, settings: Settings) -> None:
    url = f"{settings.auth0_login_url}/.well-known/openid-configuration"
    try:
        response = await http.get(url)
        issuer = str(response.json().get("issuer")) if response.status_code == 200 else None
    except (httpx.HTTPError, ValueError) as exc:
        check.unknown.append(f"login domain discovery {url}: {type(exc).__name__}")
        return
    if issuer is None:
        check.problems.append(f"login domain discovery {url} answered {response.status_code}")
    elif issuer not in settings.auth0_issuers:
        check.problems.append(
            f"users log in at {settings.auth0_login_url}, whose tokens carry issuer {issuer}, "
            f"which the API does not trust (it trusts {', '.join(settings.auth0_issuers)})"
        )
    else:
        check.notes.append(f"users log in at {settings.auth0_login_url} (issuer {issuer})")


async def _password_client(check: TenantCheck, gateway: Auth0Gateway, settings: Settings) -> None:
    """The current-password check itself, for an address nobody holds: a wrong password
    means Auth0 lets the client check passwords; a refusal of the client is the fault."""
    client_id = settings.auth0_password_client_id
    try:
        await gateway.verify_password(
            "check-auth0@invalid.example",
            "not-a-password",
            realm=settings.auth0_db_connection,
            client=(client_id, settings.auth0_password_client_secret.get_secret_value()),
        )
    except PasswordCheckRefused as exc:
        check.problems.append(
            f"password client {client_id}: {exc.reason}; it needs the Password grant and the "
            "tenant a default directory"
        )
    except AppError as exc:
        check.unknown.append(f"password client: {exc.detail}")
    else:
        check.notes.append("the password client may check current passwords")


async def check_tenant(
    gateway: Auth0Gateway,
    http: httpx.AsyncClient,
    settings: Settings,
    *,
    password_client: bool = False,
) -> TenantCheck:
    """`password_client`: also try the password client, with a failed login for an address
    nobody holds. Only when ops ask (check-auth0): at every API start it would add failed
    logins from the server's address, which Auth0's suspicious-IP throttling counts."""
    check = TenantCheck()
    await _management(check, gateway, settings)
    await _login_domain(check, http, settings)
    if password_client:
        await _password_client(check, gateway, settings)
    return check


async def log_tenant_check(
    gateway: Auth0Gateway, http: httpx.AsyncClient, settings: Settings
) -> TenantCheck:
    """The start-up check: the grant's scopes at info, every fault at error."""
    check = await check_tenant(gateway, http, settings)
    if check.scopes:
        logger.info("auth0 management token scopes: %s", " ".join(check.scopes))
    for problem in check.problems:
        logger.error("auth0 tenant misconfigured: %s", problem)
    for item in check.unknown:
        logger.warning("auth0 tenant check incomplete: %s", item)
    return check


class StartupCheck:
    """The check the API runs once in the background at start. Until it has finished, and
    when Auth0 could not be reached, it holds nothing against readiness: only a fault of
    the configuration makes the API not ready (so a deploy with a misconfigured tenant
    never takes traffic, while an Auth0 outage does not take the API down)."""

    def __init__(self) -> None:
        self.result: TenantCheck | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self, gateway: Auth0Gateway, http: httpx.AsyncClient, settings: Settings) -> None:
        self._task = asyncio.create_task(self._run(gateway, http, settings))

    async def _run(
        self, gateway: Auth0Gateway, http: httpx.AsyncClient, settings: Settings
    ) -> None:
        try:
            self.result = await log_tenant_check(gateway, http, settings)
        except Exception:  # a check must never take the process down
            logger.exception("auth0 tenant check failed")

    async def stop(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def readiness(self) -> CheckResult | None:
        if self.result is None or not self.result.problems:
            return None
        return CheckResult(ok=False, detail="; ".join(self.result.problems))
