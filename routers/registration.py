"""Public sign-up: BioCommons, and SBP (mounted only when ENABLE_SBP_REGISTRATION allows it)."""

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from sqlmodel.ext.asyncio.session import AsyncSession

from routers.deps import (
    Auth0Dep,
    GroupAdminsCacheDep,
    RecaptchaDep,
    SessionDep,
    SettingsDep,
    client_address,
    form_body,
    rate_limited,
)
from schemas.errors import LOOKUPS, RATE_LIMITED
from schemas.registration import RegistrationCreate, RegistrationPublic, SbpRegistrationCreate
from services.auth0 import Auth0Gateway
from services.kit.cache import TtlCache
from services.registration import signup as registration_service
from services.registration.recaptcha import RecaptchaVerifier
from services.settings import Settings

router = APIRouter(tags=["registration"], responses={**LOOKUPS, **RATE_LIMITED})
sbp_router = APIRouter(prefix="/sbp", tags=["registration"], responses={**LOOKUPS, **RATE_LIMITED})


def register_route(model: type[RegistrationCreate]) -> dict[str, Any]:
    """The sign-up routes' options: rate limited, and `model` documented as the body (the
    route reads it as a form, see routers.deps.form_body)."""
    return {
        "dependencies": [rate_limited("register")],
        "responses": {
            400: {"description": "Invalid data submitted, with field_errors"},
            429: {"description": "Too many attempts"},
        },
        "openapi_extra": {
            "requestBody": {"content": {"application/json": {"schema": model.model_json_schema()}}}
        },
    }


@dataclass
class Registrar:
    """What both sign-up routes need, gathered once per request."""

    session: AsyncSession
    auth0: Auth0Gateway
    recaptcha: RecaptchaVerifier
    settings: Settings
    remote_ip: str
    admins_cache: TtlCache[frozenset[str]]

    async def register(self, form: RegistrationCreate, **options: Any) -> RegistrationPublic:
        return await registration_service.register(
            self.session,
            self.auth0,
            self.recaptcha,
            self.settings,
            form,
            remote_ip=self.remote_ip,
            admins_cache=self.admins_cache,
            **options,
        )


async def get_registrar(
    request: Request,
    session: SessionDep,
    auth0: Auth0Dep,
    recaptcha: RecaptchaDep,
    settings: SettingsDep,
    admins_cache: GroupAdminsCacheDep,
) -> Registrar:
    return Registrar(session, auth0, recaptcha, settings, client_address(request), admins_cache)


RegistrarDep = Annotated[Registrar, Depends(get_registrar)]
FormDep = Annotated[RegistrationCreate, form_body(RegistrationCreate)]
SbpFormDep = Annotated[SbpRegistrationCreate, form_body(SbpRegistrationCreate)]


@router.post("/biocommons/register", **register_route(RegistrationCreate))
async def register(registrar: RegistrarDep, form: FormDep) -> RegistrationPublic:
    """Create an account: Auth0 user, default platforms, requested bundles."""
    return await registrar.register(form)


@sbp_router.post("/register", **register_route(SbpRegistrationCreate))
async def register_sbp(registrar: RegistrarDep, form: SbpFormDep) -> RegistrationPublic:
    """Create an account asking for SBP access (pending until an SBP admin approves)."""
    registration_service.check_sbp_email(registrar.settings, form.email)
    return await registrar.register(form, app="sbp", pending_platforms=("sbp",))
