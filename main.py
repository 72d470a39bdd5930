"""The API process: `uvicorn --factory main:create_app` (or, as the old backend ran,
`uvicorn main:app`)."""

import gc
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sa_exc
from starlette.middleware.sessions import SessionMiddleware
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from db.engine import create_engine, create_session_factory
from db.migrations import head_revisions, upgrade_head
from db.reads import PoolReader
from routers import (
    admin,
    catalog_admin,
    db_admin,
    events,
    health,
    me,
    metrics,
    registration,
    utils,
)
from routers.deps import form_errors
from routers.hot_reads import HotReads
from schemas import errors
from services.auth0 import Auth0Gateway
from services.auth0.budget import TenantBudget
from services.auth0.tenant_check import StartupCheck
from services.dashboard.login import SESSION_HOURS as DASHBOARD_SESSION_HOURS
from services.errors import AppError
from services.identity.live_roles import LiveRoles
from services.identity.tokens import JwksCache, TokenValidator
from services.kit.cache import TtlCache
from services.kit.http_security import SecurityHeadersMiddleware
from services.kit.observability import ObservabilityMiddleware, configure_logging
from services.kit.outbound import tls_context
from services.kit.ratelimit import RateLimiter
from services.kit.version import app_version
from services.registration.recaptcha import RecaptchaVerifier
from services.settings import ConfigError, Settings, get_settings

logger = logging.getLogger("aai.api")

# Failures outside the driver that mean "the database is unreachable right now"; the
# driver's own errors are sorted by `_database_error`.
DB_UNAVAILABLE = (sa_exc.TimeoutError, ConnectionError, TimeoutError)


def _lifespan(settings: Settings, clock: Callable[[], float]) -> Any:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        url = settings.database_url
        if url.get_backend_name() == "sqlite":
            # The embedded default migrates itself; Postgres is migrated by the
            # `migrate` step before the API starts, never by API workers racing.
            await upgrade_head(url)
        auth0 = Auth0Gateway.from_settings(settings)
        outbound = httpx.AsyncClient(timeout=settings.auth0_timeout_s, verify=tls_context())
        jwks = JwksCache(
            outbound,
            f"{settings.auth0_base_url}/.well-known/jwks.json",
            ttl_s=settings.auth0_jwks_ttl_s,
            cooldown_s=settings.auth0_jwks_cooldown_s,
            clock=clock,
        )
        engine = create_engine(
            url,
            process="api",
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            connect_timeout_s=settings.db_connect_timeout_s,
            statement_timeout_s=settings.db_statement_timeout_s,
        )
        # Everything built so far lives as long as the process. Freezing it keeps the
        # collector from rescanning it: unfrozen, each full collection paused a worker
        # for 120-140 ms under the admin-list benchmark; frozen, 5-16 ms.
        dashboard = getattr(_app.state, "db_admin_sessions", None)
        if dashboard is not None:
            db_admin.bind(dashboard, engine)
        if settings.auth0_plan:
            auth0.tenant_budget = TenantBudget(engine, settings.auth0_plan)
        if settings.auth0_action_legacy_tokens:
            logger.warning(
                "AUTH0_ACTION_LEGACY_TOKENS is on: Action session tokens of the old backend "
                "(signed with the management client's secret, no audience) are accepted; "
                "switch it off once the Actions are redeployed with AUTH0_ACTION_TOKEN_SECRET"
            )
        tenant_check = StartupCheck()
        if settings.auth0_startup_check:
            tenant_check.start(auth0, outbound, settings)
        gc.freeze()
        try:
            yield {
                "settings": settings,
                "engine": engine,
                "session_factory": create_session_factory(engine),
                "reader": PoolReader(engine, settings.db_hot_read_concurrency),
                "expected_heads": head_revisions(),
                "auth0": auth0,
                "tenant_check": tenant_check,
                "token_validator": TokenValidator(settings, jwks),
                "recaptcha": RecaptchaVerifier(
                    outbound,
                    secret=settings.recaptcha_secret.get_secret_value()
                    if settings.recaptcha_secret
                    else None,
                    verify_url=settings.recaptcha_verify_url,
                ),
                "rate_limiter": RateLimiter(engine, settings.public_rate_limit_per_minute),
                "counts_cache": TtlCache(settings.admin_counts_cache_s, clock=clock),
                "scope_cache": TtlCache(settings.admin_scope_cache_s, clock=clock),
                "group_admins_cache": TtlCache(settings.group_admins_cache_s, clock=clock),
                "live_roles": LiveRoles(auth0, settings.live_roles_cache_s, clock=clock),
            }
        finally:
            await tenant_check.stop()
            await engine.dispose()
            await auth0.aclose()
            await outbound.aclose()

    return lifespan


async def _app_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    return JSONResponse(exc.body(), status_code=exc.status_code, headers=exc.headers)


async def _db_unavailable(request: Request, exc: Exception) -> JSONResponse:
    logger.warning("database unavailable during %s %s: %r", request.method, request.url.path, exc)
    return JSONResponse(
        {
            "detail": "the database is unavailable; try again shortly",
            "error": "service_unavailable",
        },
        status_code=503,
        headers={"Retry-After": "5"},
    )


async def _invalid_request(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    form = form_errors(request, exc)
    if form is not None:
        return JSONResponse(form.body(), status_code=form.status_code)
    return await request_validation_exception_handler(request, exc)


async def _not_unicode(_request: Request, _exc: Exception) -> JSONResponse:
    # JSON may carry lone surrogates ("\\ud800"); neither Postgres nor a form post to
    # Auth0 can encode them. Refused before anything is half done (the unit of work
    # rolls back and compensates as for any error).
    return JSONResponse(
        {"detail": "the request contains text that is not valid Unicode", "error": "bad_request"},
        status_code=400,
    )


# SQLSTATEs for text Postgres cannot store (a NUL character, say): bad input, not a bug.
UNSTORABLE_TEXT = {"22021", "22P05"}


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    """Every error the database driver raises, sorted once: bad input (400), the database
    unavailable (503), or a bug (500)."""
    orig = getattr(exc, "orig", None)
    cause = getattr(orig, "__cause__", None)
    state = str(getattr(orig, "sqlstate", None) or getattr(cause, "sqlstate", "") or "")
    if state in UNSTORABLE_TEXT:
        return JSONResponse(
            {
                "detail": "the request contains text that cannot be stored (e.g. a NUL character)",
                "error": "bad_request",
            },
            status_code=400,
        )
    # Connection trouble (08xxx) and a server shutting down or starting (57Pxx) can also
    # arrive as plain DBAPI errors from asyncpg: the database is unavailable, not the code.
    if (
        isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError)
        or state.startswith(("08", "57P"))
        or getattr(exc, "connection_invalidated", False)
    ):
        return await _db_unavailable(request, exc)
    return await _unhandled(request, exc)


async def _unhandled(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("unhandled error in %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse(
        {"detail": "internal server error", "error": "internal_error"}, status_code=500
    )


def create_app(
    settings: Settings | None = None, *, clock: Callable[[], float] = time.monotonic
) -> FastAPI:
    """The API. Called without settings (uvicorn's factory mode), it is the process's own
    app and also sets up logging; tests pass settings and keep their log capture, and may
    pass the clock the per-process caches expire by."""
    if settings is None:
        try:
            settings = get_settings()
        except ConfigError as exc:
            raise SystemExit(f"aai-backend: {exc}") from None
        configure_logging(settings.effective_log_format, settings.log_level, process="api")

    docs = settings.api_docs
    app = FastAPI(
        title="AAI Backend",
        version=app_version(),
        lifespan=_lifespan(settings, clock),
        responses=errors.UNAVAILABLE,
        max_body_size=settings.max_request_body_bytes,
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
        openapi_url="/openapi.json" if docs else None,
    )
    # Innermost: the hot reads' fast lane, which passes to the routes whatever it does not
    # answer with a 200 (routers/hot_reads.py).
    app.add_middleware(HotReads)
    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.derived_key("session"),
        https_only=settings.is_production,
        # The cookie lives as long as a dashboard session, not Starlette's default 14 days.
        max_age=DASHBOARD_SESSION_HOURS * 3600,
        same_site="lax",
    )
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_credentials=True,
        allow_methods=["*"],
        allow_headers=["*"],
    )
    app.add_middleware(SecurityHeadersMiddleware, hsts=settings.is_production)
    # The request id and timing cover everything below.
    app.add_middleware(ObservabilityMiddleware, metrics=settings.enable_prometheus_metrics)
    # Outermost, so everything sees the real client: X-Forwarded-* are believed only from
    # FORWARDED_ALLOW_IPS, and the client is the right-most hop not in it (the address the
    # load balancer saw), never what the client wrote into the header. The app does this
    # itself rather than uvicorn's --proxy-headers, so every way of serving it agrees.
    app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.forwarded_allow_ips)
    app.add_exception_handler(AppError, _app_error)
    for error_type in DB_UNAVAILABLE:
        app.add_exception_handler(error_type, _db_unavailable)
    app.add_exception_handler(sa_exc.DBAPIError, _database_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(UnicodeEncodeError, _not_unicode)
    app.add_exception_handler(Exception, _unhandled)

    app.include_router(health.router)
    app.include_router(me.router)
    app.include_router(admin.router)
    app.include_router(catalog_admin.router)
    app.include_router(registration.router)
    app.include_router(utils.router)
    app.include_router(events.router)
    if settings.sbp_registration_enabled:
        app.include_router(registration.sbp_router)
    if settings.enable_prometheus_metrics:
        app.include_router(metrics.router)
    if settings.enable_admin_dashboard:
        app.state.db_admin_sessions = db_admin.mount(app, settings)
    return app


def __getattr__(name: str) -> Any:
    """`main.app`: the process's app, built on first use, so the old backend's command
    `uvicorn main:app` keeps working (importing this module builds nothing)."""
    if name == "app":
        global _process_app
        if _process_app is None:
            _process_app = create_app()
        return _process_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_process_app: FastAPI | None = None
