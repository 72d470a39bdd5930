"""Structural Biology Platform sign-up (mounted when ENABLE_SBP_REGISTRATION allows it)."""

from typing import Annotated

from fastapi import APIRouter, Request

from routers.deps import (
    Auth0Dep,
    RecaptchaDep,
    SessionDep,
    SettingsDep,
    client_address,
    form_body,
    rate_limited,
)
from schemas.registration import RegistrationCreate, RegistrationPublic
from services import registration as registration_service

router = APIRouter(prefix="/sbp", tags=["registration"])


@router.post(
    "/register",
    dependencies=[rate_limited("register")],
    responses={
        400: {"description": "Invalid data submitted, with field_errors"},
        429: {"description": "Too many attempts"},
    },
    openapi_extra={
        "requestBody": {
            "content": {"application/json": {"schema": RegistrationCreate.model_json_schema()}}
        }
    },
)
async def register(
    request: Request,
    session: SessionDep,
    auth0: Auth0Dep,
    recaptcha: RecaptchaDep,
    settings: SettingsDep,
    form: Annotated[RegistrationCreate, form_body(RegistrationCreate)],
) -> RegistrationPublic:
    """Create an account asking for SBP access (pending until an SBP admin approves)."""
    registration_service.check_sbp_email(settings, form.email)
    return await registration_service.register(
        session,
        auth0,
        recaptcha,
        settings,
        form,
        remote_ip=client_address(request),
        app="sbp",
        pending_platforms=("sbp",),
    )
