"""Request dependencies shared by every router.

The request's `AsyncSession` is the unit of work: `get_session` commits after the
handler returns and before the response is sent (`scope="function"`), and rolls back
if anything raised. Services only flush; routers never commit.
"""

from collections.abc import AsyncIterator
from typing import Annotated, Any, TypeVar

from fastapi import Body, Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession

from db.engine import SessionFactory, session_scope
from db.reads import Reader, RequestReader
from schemas.users import UserCounts
from services.auth0 import Auth0Gateway
from services.errors import Forbidden, InvalidFields
from services.identity import admin_scope
from services.identity.admin_scope import Scope, Targets
from services.identity.live_roles import LiveRoles
from services.identity.tokens import (
    CurrentUser,
    authenticate,
    claimed_user,
    refuse_deactivated,
)
from services.kit.cache import TtlCache
from services.kit.ratelimit import RateLimiter
from services.registration.recaptcha import RecaptchaVerifier
from services.settings import Settings


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    factory: SessionFactory = request.state.session_factory
    async with session_scope(factory) as session:
        yield session


# Dependencies are `async def` even when they only read request state: FastAPI runs a
# plain `def` dependency on its thread pool, a hand-off per dependency per request that
# showed up in the load benchmark's profile.
async def get_session_factory(request: Request) -> SessionFactory:
    return request.state.session_factory


async def get_engine(request: Request) -> AsyncEngine:
    return request.state.engine


async def get_app_settings(request: Request) -> Settings:
    return request.state.settings


async def get_auth0(request: Request) -> Auth0Gateway:
    return request.state.auth0


FormT = TypeVar("FormT", bound=BaseModel)

SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
EngineDep = Annotated[AsyncEngine, Depends(get_engine)]


async def get_reader(request: Request, session: SessionDep) -> Reader:
    return RequestReader(session, request.state.reader)


# The hot reads' one statement (db/reads.py).
ReaderDep = Annotated[Reader, Depends(get_reader)]
# For work that outlives the request's unit of work (a streamed body).
SessionFactoryDep = Annotated[SessionFactory, Depends(get_session_factory)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]
Auth0Dep = Annotated[Auth0Gateway, Depends(get_auth0)]

_bearer = HTTPBearer(auto_error=False, description="An Auth0 access token for this API")


async def get_current_user(
    request: Request,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> CurrentUser:
    header = f"Bearer {credentials.credentials}" if credentials else None
    return await authenticate(
        session, request.state.token_validator, request.state.settings, header
    )


CurrentUserDep = Annotated[CurrentUser, Depends(get_current_user)]


async def get_claimed_user(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> CurrentUser:
    header = f"Bearer {credentials.credentials}" if credentials else None
    return await claimed_user(request.state.token_validator, request.state.settings, header)


# The token's caller, not yet checked for deactivation: only for the hot reads, whose one
# statement checks it (services/users/json_reads.py) and answers 401 as CurrentUserDep does.
ClaimedUserDep = Annotated[CurrentUser, Depends(get_claimed_user)]


async def get_administered(request: Request, session: SessionDep, caller: CurrentUserDep) -> Scope:
    return await admin_scope.administered(session, caller, request.state.scope_cache)


async def get_admin_scope(request: Request, session: SessionDep, caller: CurrentUserDep) -> Scope:
    return await admin_scope.scope_for(session, caller, request.state.scope_cache)


async def get_claimed_admin_scope(
    request: Request, session: SessionDep, caller: ClaimedUserDep
) -> Scope:
    """AdminScopeDep for the hot reads: a deactivated caller is refused by their statement,
    or here with 401 (not 403) when they are no admin either."""
    try:
        return await admin_scope.scope_for(session, caller, request.state.scope_cache)
    except Forbidden:
        await refuse_deactivated(session, caller.id)
        raise


ClaimedAdminScopeDep = Annotated[Scope, Depends(get_claimed_admin_scope)]


async def get_live_roles(request: Request) -> LiveRoles:
    return request.state.live_roles


LiveRolesDep = Annotated[LiveRoles, Depends(get_live_roles)]


async def get_admin_write_scope(
    request: Request, session: SessionDep, caller: CurrentUserDep, live_roles: LiveRolesDep
) -> Scope:
    return await admin_scope.confirmed_scope(
        session, caller, live_roles, request.state.settings, request.state.scope_cache
    )


# What the caller administers (possibly nothing) / the same, refusing non-admins with 403
# / the same with the caller's admin roles confirmed by Auth0 (for writes).
AdministeredDep = Annotated[Scope, Depends(get_administered)]
AdminScopeDep = Annotated[Scope, Depends(get_admin_scope)]
AdminWriteScopeDep = Annotated[Scope, Depends(get_admin_write_scope)]


async def require_general_admin(caller: CurrentUserDep) -> CurrentUser:
    if not caller.permissions.general_admin:
        raise Forbidden("only general admins (a role in ADMIN_ROLES) may do this")
    return caller


async def require_confirmed_general_admin(
    caller: CurrentUserDep, scope: AdminWriteScopeDep
) -> CurrentUser:
    """A general admin whose ADMIN_ROLES role Auth0 confirms (for writes)."""
    await require_general_admin(caller)
    if not scope.everything:
        raise Forbidden("your general admin role has been removed; sign in again")
    return caller


GeneralAdminDep = Annotated[CurrentUser, Depends(require_general_admin)]
ConfirmedGeneralAdminDep = Annotated[CurrentUser, Depends(require_confirmed_general_admin)]


async def get_counts_cache(request: Request) -> TtlCache[UserCounts]:
    return request.state.counts_cache


async def get_scope_cache(request: Request) -> TtlCache[Targets]:
    return request.state.scope_cache


async def get_group_admins_cache(request: Request) -> TtlCache[frozenset[str]]:
    return request.state.group_admins_cache


CountsCacheDep = Annotated[TtlCache[UserCounts], Depends(get_counts_cache)]
ScopeCacheDep = Annotated[TtlCache[Targets], Depends(get_scope_cache)]
GroupAdminsCacheDep = Annotated[TtlCache[frozenset[str]], Depends(get_group_admins_cache)]


async def get_recaptcha(request: Request) -> RecaptchaVerifier:
    return request.state.recaptcha


RecaptchaDep = Annotated[RecaptchaVerifier, Depends(get_recaptcha)]


def client_address(request: Request) -> str:
    # The app's proxy-headers middleware has already put the real client here (main.py).
    return request.client.host if request.client else "unknown"


def rate_limited(scope: str) -> Any:
    """A dependency allowing each client PUBLIC_RATE_LIMIT_PER_MINUTE calls to `scope`,
    counted across every process (services/kit/ratelimit.py)."""

    async def check(request: Request) -> None:
        limiter: RateLimiter = request.state.rate_limiter
        await limiter.check(scope, client_address(request))

    return Depends(check)


def user_rate_limited(scope: str) -> Any:
    """A dependency allowing each signed-in user PASSWORD_CHECKS_PER_MINUTE calls to
    `scope`, counted across every process, whichever address they come from."""

    async def check(request: Request, caller: CurrentUserDep, settings: SettingsDep) -> None:
        limiter: RateLimiter = request.state.rate_limiter
        await limiter.check(scope, caller.id, limit=settings.password_checks_per_minute)

    return Depends(check)


# Request bodies whose invalid input is answered as a form: 400 with named fields.
FORM_MODELS: set[type[BaseModel]] = set()


def form_body(model: type[FormT]) -> Any:
    """A JSON body declared in the OpenAPI document like any other, whose problems are
    reported as 400 field errors (the shape the portal's forms show) rather than
    FastAPI's 422: see `form_errors`, used by the app's validation handler."""
    FORM_MODELS.add(model)
    return Body()


def form_errors(request: Request, exc: RequestValidationError) -> InvalidFields | None:
    """The form-shaped error for a request to a form route; None for any other route."""
    body = getattr(request.scope.get("route"), "body_field", None)
    if body is None or body.field_info.annotation not in FORM_MODELS:
        return None
    # A form may name its fields in errors as the page that shows them expects.
    names: dict[str, str] = getattr(body.field_info.annotation, "form_field_names", {})
    errors = []
    for error in exc.errors():
        location = [str(part) for part in error["loc"]][1:]  # drop "body"
        if error["type"] in ("json_invalid", "model_attributes_type", "dict_type") or (
            error["type"] == "missing" and not location
        ):
            errors.append({"field": "body", "message": "The request body must be JSON"})
            continue
        field = ".".join(location) or "body"
        errors.append(
            {
                "field": names.get(field, field),
                "message": str(error["msg"]).removeprefix("Value error, "),
            }
        )
    return InvalidFields(errors)


class JsonBody(Response):
    """A body already serialised to JSON (the hot reads): sent as is. The route declares
    its schema with `response_model`, which the JSON is held equal to in tests."""

    media_type = "application/json"
