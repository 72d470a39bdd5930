"""The one async Management API client, shared by the API and the scheduler.

Built on auth0-python 6.x `AsyncAuth0` with the SDK's own retries turned off: this
module decides what is retried. 429s are waited out (Retry-After / X-RateLimit-Reset)
and paced for everyone sharing the gateway; 5xx and connection failures are retried
with backoff, but only for idempotent calls; a 409 is never retried. Failures leave
as domain errors (404, 409 naming the field, 400, 502, 503).

A circuit breaker sits in front of the retry loop: once Auth0 has failed several
attempts in a row, calls fail at once (503) for a cool-off instead of each waiting
through its own retries. In the API that matters more than the Auth0 call itself: a
request waiting on Auth0 holds its database connection, and during an outage enough
of them drained the pool and stalled reads that never touch Auth0.
"""

import asyncio
import json
import logging
import math
import random
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import httpx
from auth0.management import AsyncAuth0
from auth0.management.core.api_error import ApiError
from auth0.management.types.create_export_users_fields import CreateExportUsersFields

from services.auth0.credentials import ManagementTokenProvider
from services.errors import (
    AppError,
    BadRequest,
    Conflict,
    NotFound,
    ServiceUnavailable,
    UpstreamError,
)
from services.kit.observability import record_auth0_response
from services.settings import Settings

logger = logging.getLogger("aai.auth0")

T = TypeVar("T")

USERS_LIST_CAP = 1000  # Auth0 never pages past the first 1000 results of a search


class ExportUnavailable(UpstreamError):
    """The tenant refuses user export jobs (Auth0's Free plan)."""


@dataclass
class Auth0Stats:
    requests: int = 0
    by_status: dict[int, int] = field(default_factory=dict)
    throttled: int = 0
    retries: int = 0
    rate_limit: int | None = None
    rate_remaining: int | None = None
    rate_reset: int | None = None

    def record(self, response: httpx.Response) -> None:
        self.requests += 1
        self.by_status[response.status_code] = self.by_status.get(response.status_code, 0) + 1
        if response.status_code == 429:
            self.throttled += 1
        headers = response.headers
        if "x-ratelimit-remaining" in headers:
            try:
                self.rate_limit = int(headers["x-ratelimit-limit"])
                self.rate_remaining = int(headers["x-ratelimit-remaining"])
                self.rate_reset = int(headers["x-ratelimit-reset"])
            except (KeyError, ValueError):
                return
            if self.rate_limit and self.rate_remaining <= self.rate_limit // 5:
                logger.info(
                    "auth0 rate-limit headroom low: %s/%s left, full at %s",
                    self.rate_remaining,
                    self.rate_limit,
                    self.rate_reset,
                )


class Pacer:
    """A client-side token bucket matching the tenant's (`rps` sustained, `burst` at once),
    which also holds everyone back after a 429."""

    # Requests reach Auth0 with a few milliseconds of jitter; running a hair under the
    # tenant's bucket keeps that jitter from turning into 429s and full-bucket waits.
    SAFETY = 0.97

    def __init__(self, rps: float, burst: int = 1) -> None:
        self._rate = rps * self.SAFETY
        self._capacity = float(max(burst - 1, 1))
        self._tokens = self._capacity
        self._updated = time.monotonic()
        self._blocked_until = 0.0
        self._lock = asyncio.Lock()

    async def wait(self, max_wait_s: float = float("inf")) -> None:
        """Wait for a turn; when the turn is more than `max_wait_s` away, take none and
        raise ServiceUnavailable instead (a request should not hold its caller, and its
        database connection, in a queue behind everyone else's Auth0 calls)."""
        async with self._lock:
            now = time.monotonic()
            self._tokens = min(self._capacity, self._tokens + (now - self._updated) * self._rate)
            self._updated = now
            # A negative balance is a queue of reservations, each 1/rate apart.
            ready_at = now + max(0.0, (1.0 - self._tokens) / self._rate)
            start = max(ready_at, self._blocked_until)
            if start - now > max_wait_s:
                raise ServiceUnavailable(
                    "Auth0 is busy; try again shortly", retry_after_s=math.ceil(start - now)
                )
            self._tokens -= 1.0
        if start > now:
            await asyncio.sleep(start - now)

    def block_for(self, seconds: float) -> None:
        self._blocked_until = max(self._blocked_until, time.monotonic() + seconds)


class CircuitBreaker:
    """Opens after `threshold` consecutive failed attempts (5xx, unreachable); while open,
    calls are refused for `cooloff_s`. Then one trial call is let through: its success
    closes the circuit, its failure opens it for another cool-off. A threshold of 0
    turns the breaker off (the scheduler's jobs would rather wait Auth0 out)."""

    def __init__(self, threshold: int, cooloff_s: float) -> None:
        self.threshold = threshold
        self.cooloff_s = cooloff_s
        self.failures = 0
        self.opened = 0  # times the circuit has opened, for logs and tests
        self._open_until = 0.0
        self._trial_running = False

    def admit(self, operation: str) -> None:
        """Let an attempt go to Auth0 (as the trial, if one is due), or raise
        ServiceUnavailable while the circuit is open."""
        if not self.threshold or self.failures < self.threshold:
            return
        now = time.monotonic()
        if now < self._open_until or self._trial_running:
            wait = max(self._open_until - now, 1.0)
            raise ServiceUnavailable(
                f"Auth0 failed {self.failures} attempts in a row; {operation} not tried, "
                f"retry in {wait:.0f}s",
                retry_after_s=int(wait) + 1,
            )
        self._trial_running = True

    def succeeded(self) -> None:
        if self.failures >= self.threshold > 0:
            logger.info("auth0 answers again; circuit closed")
        self.failures = 0
        self._trial_running = False

    def failed(self) -> None:
        self.failures += 1
        self._trial_running = False
        if self.threshold and self.failures >= self.threshold:
            if time.monotonic() >= self._open_until:
                self.opened += 1
                logger.warning(
                    "auth0 failed %s attempts in a row; refusing calls for %.0fs",
                    self.failures,
                    self.cooloff_s,
                )
            self._open_until = time.monotonic() + self.cooloff_s

    def abandoned(self) -> None:
        """The attempt ended without an answer either way (cancelled): let another try."""
        self._trial_running = False


def retry_after_seconds(headers: dict[str, str] | httpx.Headers | None) -> float | None:
    """How long Auth0 asks us to wait: Retry-After (seconds or date), else X-RateLimit-Reset."""
    if not headers:
        return None
    lowered = {k.lower(): v for k, v in dict(headers).items()}
    retry_after = lowered.get("retry-after")
    if retry_after:
        try:
            return max(float(retry_after), 0.0)
        except ValueError:
            try:
                return max(parsedate_to_datetime(retry_after).timestamp() - time.time(), 0.0)
            except (TypeError, ValueError):
                pass
    reset = lowered.get("x-ratelimit-reset")
    if reset:
        try:
            return max(float(reset) - time.time(), 0.0)
        except ValueError:
            return None
    return None


def _message(exc: ApiError) -> str:
    body = exc.body
    if isinstance(body, dict):
        return str(body.get("message") or body.get("error") or body)
    return str(body or exc.status_code)


class Auth0Gateway:
    def __init__(
        self,
        *,
        base_url: str,
        client_id: str,
        client_secret: str,
        rps: float = 10.0,
        burst: int = 10,
        max_retries: int = 4,
        timeout_s: float = 10.0,
        max_wait_s: float = 30.0,
        backoff_base_s: float = 0.5,
        breaker_threshold: int = 5,
        breaker_cooloff_s: float = 10.0,
        anonymous_share: float = 0.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.stats = Auth0Stats()
        self.breaker = CircuitBreaker(breaker_threshold, breaker_cooloff_s)
        self.max_retries = max_retries
        self.max_wait_s = max_wait_s
        self.backoff_base_s = backoff_base_s
        self._pacer = Pacer(rps, burst)
        # Calls made for anonymous callers (registration-info, sign-up) also pass a small
        # bucket of their own, so a flood of them can take at most this share of the
        # tenant's rate and signed-in users' calls still get through.
        self._anonymous = (
            Pacer(rps * anonymous_share, max(1, int(burst * anonymous_share)))
            if anonymous_share > 0
            else None
        )
        self._http = httpx.AsyncClient(
            timeout=timeout_s,
            transport=transport,
            limits=httpx.Limits(max_connections=20, max_keepalive_connections=10),
            event_hooks={"response": [self._on_response]},
        )
        self.tokens = ManagementTokenProvider(
            self._http,
            token_url=f"{self.base_url}/oauth/token",
            client_id=client_id,
            client_secret=client_secret,
            audience=f"{self.base_url}/api/v2/",
        )
        self.client = AsyncAuth0(
            base_url=f"{self.base_url}/api/v2",
            token="",  # replaced per request by async_token
            async_token=self.tokens.get,
            httpx_client=self._http,
            max_retries=0,
            timeout=timeout_s,
        )

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> "Auth0Gateway":
        options: dict[str, Any] = {
            "base_url": settings.auth0_base_url,
            "client_id": settings.auth0_management_id,
            "client_secret": settings.auth0_management_secret.get_secret_value(),
            "rps": settings.auth0_mgmt_rps,
            "burst": settings.auth0_mgmt_burst,
            "max_retries": settings.auth0_max_retries,
            "timeout_s": settings.auth0_timeout_s,
            "max_wait_s": settings.auth0_max_wait_s,
            "breaker_threshold": settings.auth0_breaker_threshold,
            "breaker_cooloff_s": settings.auth0_breaker_cooloff_s,
            "anonymous_share": settings.auth0_anonymous_share,
        }
        return cls(**{**options, **overrides})

    async def _on_response(self, response: httpx.Response) -> None:
        if response.request.url.path.startswith("/api/v2/"):
            self.stats.record(response)
            record_auth0_response(response.status_code)

    async def aclose(self) -> None:
        await self._http.aclose()

    # ---- the retry loop ---------------------------------------------------------------

    def _backoff(self, attempt: int) -> float:
        return min(self.backoff_base_s * 2**attempt, 10.0) * (0.8 + random.random() * 0.4)

    async def _pause(self, attempt: int) -> None:
        if attempt < self.max_retries:  # no sleep before giving up
            await asyncio.sleep(self._backoff(attempt))

    async def call(
        self,
        operation: str,
        request: Callable[[AsyncAuth0], Awaitable[T]],
        *,
        idempotent: bool = True,
        anonymous: bool = False,
    ) -> T:
        """Run one Management API request with pacing, retries and error mapping.
        `anonymous`: made for a caller who is not signed in (its own small share)."""
        failure: AppError | None = None
        for attempt in range(self.max_retries + 1):
            self.breaker.admit(operation)
            if attempt:
                self.stats.retries += 1
            try:
                if anonymous and self._anonymous is not None:
                    await self._anonymous.wait(self.max_wait_s)
                await self._pacer.wait(self.max_wait_s)
                result = await request(self.client)
            except ApiError as exc:
                status = exc.status_code or 0
                if status >= 500:
                    self.breaker.failed()
                else:
                    self.breaker.succeeded()  # an answer, if not the one we wanted
                if status == 429:
                    wait = retry_after_seconds(exc.headers) or self._backoff(attempt)
                    if wait > self.max_wait_s:
                        raise ServiceUnavailable(
                            f"Auth0 rate limit reached during {operation}; retry in {wait:.0f}s",
                            retry_after_s=int(wait) + 1,
                        ) from exc
                    logger.warning("auth0 429 on %s; waiting %.2fs", operation, wait)
                    self._pacer.block_for(wait)
                    failure = ServiceUnavailable(f"Auth0 rate limit reached during {operation}")
                    continue
                if status == 401 and attempt == 0:
                    self.tokens.invalidate()
                    continue
                if status >= 500:
                    failure = (
                        ServiceUnavailable(f"Auth0 is unavailable ({status}) during {operation}")
                        if status in (502, 503, 504)
                        else UpstreamError(f"Auth0 failed ({status}) during {operation}")
                    )
                    if not idempotent:
                        raise failure from exc
                    logger.warning("auth0 %s on %s (attempt %s)", status, operation, attempt + 1)
                    await self._pause(attempt)
                    continue
                raise self._client_error(operation, exc) from exc
            except ServiceUnavailable as exc:  # the token endpoint could not be reached
                self.breaker.failed()
                failure = exc
                await self._pause(attempt)
                continue
            except httpx.TransportError as exc:
                self.breaker.failed()
                # A connect error means nothing was sent, so even a create may be retried.
                failure = ServiceUnavailable(
                    f"Auth0 is unreachable during {operation} ({type(exc).__name__})"
                )
                if not idempotent and not isinstance(exc, httpx.ConnectError):
                    raise failure from exc
                logger.warning("auth0 unreachable on %s: %r", operation, exc)
                await self._pause(attempt)
                continue
            except BaseException:
                self.breaker.abandoned()
                raise
            self.breaker.succeeded()
            return result
        assert failure is not None
        raise failure

    def _client_error(self, operation: str, exc: ApiError) -> AppError:
        status = exc.status_code or 0
        message = _message(exc)
        if status == 404:
            return NotFound(message)
        if status == 409:
            return Conflict(message)
        if status == 400:
            return BadRequest(message)
        return UpstreamError(f"Auth0 refused {operation} ({status}): {message}")

    # ---- users ------------------------------------------------------------------------

    async def get_user(self, user_id: str, *, anonymous: bool = False) -> dict[str, Any]:
        user = await self.call("users.get", lambda c: c.users.get(user_id), anonymous=anonymous)
        return user.model_dump(mode="json", exclude_none=True)

    async def users_by_email(self, email: str, *, anonymous: bool = False) -> list[dict[str, Any]]:
        users = await self.call(
            "users.by_email",
            lambda c: c.users.list_users_by_email(email=email.lower()),
            anonymous=anonymous,
        )
        return [u.model_dump(mode="json", exclude_none=True) for u in users]

    async def _conflict_field(self, email: str | None) -> str:
        if email and await self.users_by_email(email):
            return "email"
        return "username" if email else "email"

    async def create_user(self, **fields: Any) -> dict[str, Any]:
        """POST /users, never retried blindly: a duplicate is a 409 naming the field."""
        try:
            user = await self.call(
                "users.create", lambda c: c.users.create(**fields), idempotent=False
            )
        except Conflict as exc:
            field_name = await self._conflict_field(fields.get("email"))
            raise Conflict(
                f"a user with this {field_name} already exists", field=field_name
            ) from exc
        return user.model_dump(mode="json", exclude_none=True)

    async def update_user(self, user_id: str, **fields: Any) -> dict[str, Any]:
        try:
            user = await self.call("users.update", lambda c: c.users.update(user_id, **fields))
        except Conflict as exc:
            if "email" in fields and "username" not in fields:
                field_name = "email"
            elif "username" in fields and "email" not in fields:
                field_name = "username"
            else:
                field_name = await self._conflict_field(fields.get("email"))
            raise Conflict(f"another user already has this {field_name}", field=field_name) from exc
        return user.model_dump(mode="json", exclude_none=True)

    async def delete_user(self, user_id: str) -> None:
        await self.call("users.delete", lambda c: c.users.delete(user_id))

    async def revoke_refresh_tokens(self, user_id: str) -> None:
        await self.call(
            "users.refresh_tokens.delete", lambda c: c.users.refresh_token.delete(user_id)
        )

    async def list_users_page(
        self, *, page: int, per_page: int = 100, q: str | None = None, sort: str | None = None
    ) -> tuple[list[dict[str, Any]], int]:
        pager = await self.call(
            "users.list",
            lambda c: c.users.list(
                page=page, per_page=per_page, include_totals=True, q=q, sort=sort
            ),
        )
        total = int(getattr(pager.response, "total", 0) or 0)
        return [u.model_dump(mode="json", exclude_none=True) for u in pager.items or []], total

    async def iter_users(
        self, *, q: str | None = None, per_page: int = 100
    ) -> AsyncIterator[dict[str, Any]]:
        """Every user matching `q` through paged listing; refuses more than Auth0 will page."""
        page = 0
        seen = 0
        while True:
            users, total = await self.list_users_page(page=page, per_page=per_page, q=q)
            if total > USERS_LIST_CAP:
                raise UpstreamError(
                    f"{total} users match; Auth0 pages through {USERS_LIST_CAP} at most, use an export job"
                )
            for user in users:
                yield user
            seen += len(users)
            page += 1
            if not users or seen >= total:
                return

    async def verify_password(self, username: str, password: str, *, realm: str) -> bool:
        """Check a database-connection password with the Authentication API's
        password-realm grant (the management client must allow that grant)."""
        form = {
            "grant_type": "http://auth0.com/oauth/grant-type/password-realm",
            "username": username,
            "password": password,
            "realm": realm,
            "client_id": self.tokens.client_id,
            "client_secret": self.tokens.client_secret,
            "scope": "openid",
        }
        try:
            response = await self._http.post(f"{self.base_url}/oauth/token", data=form)
        except httpx.TransportError as exc:
            raise ServiceUnavailable(f"Auth0 is unreachable ({type(exc).__name__})") from exc
        if response.status_code == 200:
            return True
        if response.status_code in (401, 403):
            return False
        if response.status_code == 429 or response.status_code >= 500:
            raise ServiceUnavailable(f"Auth0 could not check the password ({response.status_code})")
        raise UpstreamError(f"Auth0 refused the password check ({response.status_code})")

    async def request_password_reset(self, email: str, *, client_id: str, connection: str) -> None:
        """Auth0 emails the user a password-reset link (Authentication API)."""
        body = {"client_id": client_id, "email": email, "connection": connection}
        try:
            response = await self._http.post(
                f"{self.base_url}/dbconnections/change_password", json=body
            )
        except httpx.TransportError as exc:
            raise ServiceUnavailable(f"Auth0 is unreachable ({type(exc).__name__})") from exc
        if response.status_code == 429 or response.status_code >= 500:
            raise ServiceUnavailable(
                f"Auth0 could not send the reset email ({response.status_code})"
            )
        if response.status_code != 200:
            raise BadRequest(f"Auth0 refused the reset request ({response.status_code})")

    # ---- roles ------------------------------------------------------------------------

    async def list_roles(self) -> list[dict[str, Any]]:
        roles: list[dict[str, Any]] = []
        page = 0
        while True:
            pager = await self.call(
                "roles.list",
                lambda c, p=page: c.roles.list(page=p, per_page=100, include_totals=True),
            )
            items = [r.model_dump(mode="json", exclude_none=True) for r in pager.items or []]
            roles.extend(items)
            total = int(getattr(pager.response, "total", 0) or 0)
            page += 1
            if not items or len(roles) >= total:
                return roles

    async def create_role(self, name: str, description: str | None = None) -> dict[str, Any]:
        role = await self.call(
            "roles.create",
            lambda c: c.roles.create(name=name, description=description or name),
            idempotent=False,
        )
        return role.model_dump(mode="json", exclude_none=True)

    async def update_role(self, role_id: str, *, description: str) -> dict[str, Any]:
        role = await self.call(
            "roles.update", lambda c: c.roles.update(role_id, description=description)
        )
        return role.model_dump(mode="json", exclude_none=True)

    async def find_role(self, name: str) -> dict[str, Any] | None:
        """The role with exactly this name (Auth0's name filter matches substrings)."""
        pager = await self.call(
            "roles.list", lambda c: c.roles.list(name_filter=name, per_page=100)
        )
        for role in pager.items or []:
            if role.name == name:
                return role.model_dump(mode="json", exclude_none=True)
        return None

    async def delete_role(self, role_id: str) -> None:
        await self.call("roles.delete", lambda c: c.roles.delete(role_id))

    async def iter_role_members(
        self, role_id: str, *, take: int = 100
    ) -> AsyncIterator[dict[str, Any]]:
        """Checkpoint paging: no 1000-member cap."""
        cursor: str | None = None
        while True:
            pager = await self.call(
                "roles.users.list",
                lambda c, f=cursor: c.roles.users.list(role_id, from_=f, take=take),
            )
            for user in pager.items or []:
                # Attribute reads, not model_dump: this loop runs for every member of every role.
                yield {"user_id": user.user_id, "email": user.email}
            cursor = getattr(pager.response, "next", None)
            if not cursor or not pager.items:
                return

    async def user_roles(self, user_id: str) -> list[dict[str, Any]]:
        pager = await self.call(
            "users.roles.list",
            lambda c: c.users.roles.list(user_id, per_page=100, include_totals=True),
        )
        return [r.model_dump(mode="json", exclude_none=True) for r in pager.items or []]

    async def assign_roles(self, user_id: str, role_ids: list[str]) -> None:
        # Assigning a held role is a no-op in Auth0, so this is safe to retry.
        await self.call(
            "users.roles.assign", lambda c: c.users.roles.assign(user_id, roles=role_ids)
        )

    async def remove_roles(self, user_id: str, role_ids: list[str]) -> None:
        await self.call(
            "users.roles.delete", lambda c: c.users.roles.delete(user_id, roles=role_ids)
        )

    # ---- jobs and tickets -------------------------------------------------------------

    async def send_verification_email(self, user_id: str) -> None:
        await self.call(
            "jobs.verification_email",
            lambda c: c.jobs.verification_email.create(user_id=user_id),
            idempotent=False,
        )

    async def password_change_ticket(self, user_id: str, *, result_url: str | None = None) -> str:
        kwargs: dict[str, Any] = {"user_id": user_id}
        if result_url:
            kwargs["result_url"] = result_url
        ticket = await self.call(
            "tickets.password_change",
            lambda c: c.tickets.change_password(**kwargs),
            idempotent=False,
        )
        return str(ticket.ticket)

    async def export_users(
        self,
        fields: list[str],
        *,
        connection_id: str | None = None,
        poll_interval_s: float = 0.25,
        timeout_s: float = 3600.0,
    ) -> AsyncIterator[dict[str, Any]]:
        """Run a user export job and stream its NDJSON lines."""
        export_fields = [CreateExportUsersFields(name=name) for name in fields]
        options: dict[str, Any] = {"format": "json", "fields": export_fields}
        if connection_id:
            options["connection_id"] = connection_id
        try:
            job = await self.call(
                "jobs.users_exports.create",
                lambda c: c.jobs.users_exports.create(**options),
                idempotent=False,
            )
        except UpstreamError as exc:
            if "(403)" in exc.detail:
                raise ExportUnavailable(exc.detail) from exc
            raise
        deadline = time.monotonic() + timeout_s
        while job.status not in ("completed", "failed"):
            if time.monotonic() > deadline:
                raise UpstreamError(
                    f"Auth0 export job {job.id} did not finish within {timeout_s:.0f}s"
                )
            await asyncio.sleep(poll_interval_s)
            # Small exports finish in a second; large ones take minutes: back off.
            poll_interval_s = min(poll_interval_s * 1.5, 10.0)
            job = await self.call("jobs.get", lambda c, job_id=job.id: c.jobs.get(job_id))
        if job.status == "failed" or not job.location:
            raise UpstreamError(
                f"Auth0 export job {job.id} failed: {getattr(job, 'status_details', None) or 'no details'}"
            )
        async for line in self._download_ndjson(job.location):
            yield line

    async def _download_ndjson(self, location: str) -> AsyncIterator[dict[str, Any]]:
        # A pre-signed URL: no Authorization header, and gzip whatever the headers say.
        decompressor: Any = None
        buffer = b""
        try:
            async with (
                httpx.AsyncClient(timeout=60.0) as plain,
                plain.stream("GET", location) as response,
            ):
                if response.status_code != 200:
                    raise UpstreamError(f"Auth0 export download answered {response.status_code}")
                async for chunk in response.aiter_raw():
                    if decompressor is None:
                        gzipped = chunk[:2] == b"\x1f\x8b"
                        decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS) if gzipped else None
                        if decompressor is None:
                            decompressor = _Identity()
                    buffer += decompressor.decompress(chunk)
                    *lines, buffer = buffer.split(b"\n")
                    for line in lines:
                        if line.strip():
                            yield json.loads(line)
        except httpx.TransportError as exc:
            raise ServiceUnavailable(
                f"Auth0 export download failed ({type(exc).__name__})"
            ) from exc
        if decompressor is not None:
            buffer += decompressor.flush()
            for line in buffer.split(b"\n")[:-1]:
                if line.strip():
                    yield json.loads(line)
            buffer = buffer.split(b"\n")[-1]
        if buffer.strip():
            yield json.loads(buffer)


class _Identity:
    def decompress(self, data: bytes) -> bytes:
        return data

    def flush(self) -> bytes:
        return b""
