"""The emulator's HTTP surface: Auth0's Authentication API (OAuth/OIDC), the Management
API v2 subset this project uses, and `/_emulator/*` controls for tests and demos."""

import asyncio
import json
import math
import re
import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from scripts.auth0_emulator.limits import Faults, RateLimits, limits_for
from scripts.auth0_emulator.tenant import (
    Tenant,
    TenantError,
)

MAX_PAGED_RESULTS = 1000
FAULT_SETTINGS = (
    "error_rate",
    "error_status",
    "latency_ms",
    "fail_exports",
    "exports_enabled",
    "export_delay_s",
    "down",
    "drift",
    "cut_pages",
    "stale_export_locations",
    "long_reset_s",
)


def auth0_error(
    status: int, message: str, error_code: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    names = {
        400: "Bad Request",
        401: "Unauthorized",
        403: "Forbidden",
        404: "Not Found",
        409: "Conflict",
        429: "Too Many Requests",
        500: "Internal Server Error",
        503: "Service Unavailable",
    }
    body = {
        "statusCode": status,
        "error": names.get(status, "Error"),
        "message": message,
        "errorCode": error_code,
    }
    return JSONResponse(body, status_code=status, headers=headers)


class EmulatorState:
    def __init__(
        self, tenant: Tenant, rate_limit: str = "off", faults: Faults | None = None
    ) -> None:
        self.tenant = tenant
        self.limits: RateLimits | None = limits_for(rate_limit)
        self.rate_limit = rate_limit
        self.faults = faults or Faults()
        self.requests: dict[str, int] = {}
        self.throttled = 0

    def set_rate_limit(self, preset: str) -> None:
        self.limits = limits_for(preset)
        self.rate_limit = preset


# ---- Lucene subset for GET /users?q= ----------------------------------------------

_ID_SEGMENT = re.compile(r"/(auth0|google-oauth2|sms|email|rol|job)[|_%][^/]*")


class LimitsAndFaults:
    """Counts requests, injects latency and failures, and applies the rate limit.

    Plain ASGI rather than Starlette's BaseHTTPMiddleware: at thousands of Management API
    calls per benchmark run the emulator must not be the bottleneck.
    """

    def __init__(self, app: Any, state: EmulatorState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state, path = self.state, scope["path"]
        is_management = path.startswith("/api/v2/")
        key = f"{scope['method']} {_ID_SEGMENT.sub('/{id}', path)}"
        state.requests[key] = state.requests.get(key, 0) + 1
        faults = state.faults
        if faults.latency_ms and (is_management or path == "/oauth/token"):
            await asyncio.sleep(faults.latency_ms / 1000)
        if (is_management or path == "/oauth/token") and faults.should_fail():
            await auth0_error(faults.error_status, "Injected failure", "emulator_fault")(
                scope, receive, send
            )
            return
        if is_management and faults.drift and scope["method"] == "GET":
            drifted = (
                Response("<html><body>Service update</body></html>", media_type="text/html")
                if faults.drift == "html"
                else Response('"unexpected"', media_type="application/json")
            )
            await drifted(scope, receive, send)
            return
        if not is_management or state.limits is None:
            await self.app(scope, receive, send)
            return
        taken = state.limits.take(scope["method"], _ID_SEGMENT.sub("/{id}", path))
        if taken is None:
            await self.app(scope, receive, send)
            return
        bucket_name, bucket, allowed, remaining, reset = taken
        if not allowed and state.faults.long_reset_s:
            # A 429 whose bucket is full again only much later (a per-minute bucket spent,
            # or Auth0 holding the tenant back): its reset is that far away.
            reset = math.ceil(time.time() + state.faults.long_reset_s)
        headers = [
            (b"x-ratelimit-limit", str(bucket.capacity).encode()),
            (b"x-ratelimit-remaining", str(remaining).encode()),
            (b"x-ratelimit-reset", str(reset).encode()),
            # Not Auth0's: which of the preset's buckets counted the request, for tests.
            (b"x-emulator-bucket", bucket_name.encode()),
        ]
        if not allowed:
            state.throttled += 1
            # The two messages Auth0 is seen to send (shared reference, rate limits): the
            # global bucket's, and the one for the per-endpoint buckets.
            message = (
                "Global limit has been reached"
                if bucket_name == "management"
                else "Too many requests. Check the X-RateLimit-Limit, X-RateLimit-Remaining "
                "and X-RateLimit-Reset headers."
            )
            response = auth0_error(429, message, "too_many_requests")
            response.raw_headers.extend(headers)
            await response(scope, receive, send)
            return

        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *headers]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def fast_json(body: Any, status: int = 200) -> Response:
    """Serialise straight to bytes, skipping FastAPI's response-model encoding."""
    return Response(
        json.dumps(body, separators=(",", ":")), status_code=status, media_type="application/json"
    )


def create_emulator_app(state: EmulatorState) -> FastAPI:
    app = FastAPI(
        title="Auth0 emulator", docs_url="/_emulator/docs", openapi_url="/_emulator/openapi.json"
    )
    app.state.emulator = state

    @app.exception_handler(TenantError)
    async def _tenant_error(_request: Request, exc: TenantError) -> JSONResponse:
        return auth0_error(exc.status, exc.message, exc.error_code)

    app.add_middleware(LimitsAndFaults, state=state)

    # Imported here: each area module builds on EmulatorState from this one.
    from scripts.auth0_emulator.authentication import authentication_routes
    from scripts.auth0_emulator.controls import control_routes
    from scripts.auth0_emulator.management import management_routes

    app.include_router(authentication_routes(state))
    app.include_router(management_routes(state), prefix="/api/v2")
    app.include_router(control_routes(state))
    return app
