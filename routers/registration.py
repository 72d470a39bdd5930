"""Public sign-up."""

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

router = APIRouter(tags=["registration"])


@router.post(
    "/biocommons/register",
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
    """Create an account: Auth0 user, default platforms, requested bundles."""
    return await registration_service.register(
        session, auth0, recaptcha, settings, form, remote_ip=client_address(request)
    )
