"""How every Management API request is made: the shared HTTP client and token, pacing,
the circuit breaker, retries, the request-path deadline, and Auth0's errors as domain errors.

Built on auth0-python 6.x `AsyncAuth0` with the SDK's own retries turned off: this
module decides what is retried. 429s are waited out (Retry-After / X-RateLimit-Reset)
and paced for everyone sharing the client; 5xx, connection failures and answers that do
not parse (auth0-python's `ParsingError`) are retried with backoff, but only for idempotent
calls; a 409 is never retried. Failures leave
as domain errors (404, 409 naming the field, 400, 502, 503).

In the API every call is bounded by one deadline (AUTH0_REQUEST_DEADLINE_S): pacing,
retries and backoff included, a call that has not finished by then is a 503, so a
request never holds its database connection on Auth0 for longer. `bounded()` gives a
composite lookup (several calls) one deadline for all of them. The scheduler has none.
"""

import asyncio
import contextlib
import contextvars
import logging
import math
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Self, TypeVar

import httpx
from auth0.management import AsyncAuth0
from auth0.management.core.api_error import ApiError
from auth0.management.core.parse_error import ParsingError

from services.auth0.breaker import CircuitBreaker
from services.auth0.budget import TenantBudget
from services.auth0.credentials import ManagementTokenProvider
from services.auth0.pacing import Pacer, SharedBudget, retry_after_seconds
from services.errors import (
    AppError,
    BadRequest,
    Conflict,
    NotFound,
    ServiceUnavailable,
    UpstreamError,
)
from services.kit.observability import record_auth0_response
from services.kit.outbound import tls_context
from services.settings import Settings

logger = logging.getLogger("aai.auth0")

T = TypeVar("T")

# The loop time by which the calls of the current `bounded()` block must be done.
_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "auth0_deadline", default=None
)
# The operation whose request is in flight, for the response hook to learn its bucket.
_operation: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "auth0_operation", default=None
)


@dataclass
class Auth0Stats:
    requests: int = 0
    by_status: dict[int, int] = field(default_factory=dict)
    throttled: int = 0
    retries: int = 0
    held: int = 0  # calls held back because Auth0 said their bucket was spent
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


def _message(exc: ApiError) -> str:
    body = exc.body
    if isinstance(body, dict):
        return str(body.get("message") or body.get("error") or body)
    return str(body or exc.status_code)


class Auth0Transport:
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
        deadline_s: float | None = None,
        rate_reserve: int | None = 1,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._sleep = sleep
        self.base_url = base_url.rstrip("/")
        self.stats = Auth0Stats()
        self.breaker = CircuitBreaker(breaker_threshold, breaker_cooloff_s, clock=clock)
        # None: unbounded (the scheduler). In the API, every call ends by then.
        self.deadline_s = deadline_s
        self.max_retries = max_retries
        self.max_wait_s = max_wait_s
        self.backoff_base_s = backoff_base_s
        self._pacer = Pacer(rps, burst, clock=clock, sleep=sleep)
        # The tenant's buckets kept in Postgres for every process (services/auth0/budget.py),
        # set once the process has its engine; None: this process paces itself.
        self.tenant_budget: TenantBudget | None = None
        # What Auth0's answers say is left of the tenant's buckets (None: not read).
        self.budget = (
            SharedBudget(rate_reserve, wall_clock=wall_clock) if rate_reserve is not None else None
        )
        # Calls made for anonymous callers (registration-info, sign-up) also pass a small
        # bucket of their own, so a flood of them can take at most this share of the
        # tenant's rate and signed-in users' calls still get through.
        self._anonymous = (
            Pacer(
                rps * anonymous_share,
                max(1, int(burst * anonymous_share)),
                clock=clock,
                sleep=sleep,
            )
            if anonymous_share > 0
            else None
        )
        self._http = httpx.AsyncClient(
            verify=tls_context(),
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
            clock=clock,
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
    def from_settings(cls, settings: Settings, **overrides: Any) -> Self:
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
            "deadline_s": settings.auth0_request_deadline_s or None,
            "rate_reserve": settings.auth0_rate_reserve,
        }
        return cls(**{**options, **overrides})

    async def _on_response(self, response: httpx.Response) -> None:
        if response.request.url.path.startswith("/api/v2/"):
            self.stats.record(response)
            record_auth0_response(response.status_code)
            operation = _operation.get()
            if operation is not None and self.budget is not None:
                self.budget.learn(operation, response.headers)

    async def aclose(self) -> None:
        await self._http.aclose()

    # ---- the retry loop ---------------------------------------------------------------

    def _backoff(self, attempt: int) -> float:
        return min(self.backoff_base_s * 2**attempt, 10.0) * (0.8 + random.random() * 0.4)

    async def _pause(self, attempt: int) -> None:
        if attempt < self.max_retries:  # no sleep before giving up
            await self._sleep(self._backoff(attempt))

    @contextlib.asynccontextmanager
    async def bounded(self) -> AsyncIterator[None]:
        """One deadline for every call inside the block (a lookup made of several calls),
        instead of one per call. Without a deadline setting this changes nothing."""
        if self.deadline_s is None or _deadline.get() is not None:
            yield
            return
        token = _deadline.set(asyncio.get_running_loop().time() + self.deadline_s)
        try:
            yield
        finally:
            _deadline.reset(token)

    async def _share_budget(self, operation: str) -> None:
        """Wait for this call's turn in the tenant's budget: a token from the buckets every
        process shares (`tenant_budget`, when AUTH0_PLAN names them), and no call to a
        bucket Auth0's last answers said was spent. A request path does not wait past
        AUTH0_MAX_WAIT_S: it is a 503 with Retry-After, its token given back."""
        hold = 0.0
        if self.tenant_budget is not None:
            hold = await self.tenant_budget.take(operation)
        if self.budget is not None:
            hold = max(hold, self.budget.hold(operation))
        if hold > self.max_wait_s:
            if self.tenant_budget is not None:
                await self.tenant_budget.give_back(operation)
            raise ServiceUnavailable(
                f"Auth0's rate limit for {operation} is spent; retry in {hold:.0f}s",
                retry_after_s=math.ceil(hold),
            )
        if hold > 0:
            self.stats.held += 1
            await self._sleep(hold)

    async def call(
        self,
        operation: str,
        request: Callable[[AsyncAuth0], Awaitable[T]],
        *,
        idempotent: bool = True,
        anonymous: bool = False,
    ) -> T:
        """Run one Management API request with pacing, retries and error mapping, within
        the deadline if there is one.
        `anonymous`: made for a caller who is not signed in (its own small share)."""
        if self.deadline_s is None:
            return await self._attempts(operation, request, idempotent, anonymous)
        loop = asyncio.get_running_loop()
        when = _deadline.get() or loop.time() + self.deadline_s
        try:
            async with asyncio.timeout_at(when):
                return await self._attempts(operation, request, idempotent, anonymous)
        except TimeoutError:
            raise ServiceUnavailable(
                f"Auth0 did not answer {operation} within {self.deadline_s:g}s",
                retry_after_s=max(1, round(self.deadline_s)),
            ) from None

    async def _attempts(
        self,
        operation: str,
        request: Callable[[AsyncAuth0], Awaitable[T]],
        idempotent: bool,
        anonymous: bool,
    ) -> T:
        failure: AppError | None = None
        for attempt in range(self.max_retries + 1):
            self.breaker.admit(operation)
            if attempt:
                self.stats.retries += 1
            try:
                if anonymous and self._anonymous is not None:
                    await self._anonymous.wait(self.max_wait_s)
                await self._pacer.wait(self.max_wait_s)
                await self._share_budget(operation)
                token = _operation.set(operation)
                try:
                    result = await request(self.client)
                finally:
                    _operation.reset(token)
            except ParsingError as exc:
                # A 2xx whose body does not fit the SDK's model (response drift, a proxy's
                # page): not an ApiError, and no answer we can use. An upstream failure,
                # retried like a 5xx and counted by the breaker, never a crash.
                self.breaker.failed()
                failure = UpstreamError(
                    f"Auth0 answered {operation} with a body that does not parse "
                    f"({exc.status_code})"
                )
                logger.warning("auth0 unparseable answer on %s: %s", operation, exc.cause)
                if not idempotent:  # it may well have been done: never twice
                    raise failure from exc
                await self._pause(attempt)
                continue
            except ApiError as exc:
                status = exc.status_code or 0
                if 200 <= status < 300:
                    # Not JSON at all: the SDK reports it as an ApiError with the 2xx status.
                    self.breaker.failed()
                    failure = UpstreamError(
                        f"Auth0 answered {operation} with a body that is not JSON ({status})"
                    )
                    logger.warning("auth0 non-JSON answer on %s (%s)", operation, status)
                    if not idempotent:
                        raise failure from exc
                    await self._pause(attempt)
                    continue
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
