"""Public sign-up."""

import json
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import ValidationError

from routers.deps import (
    Auth0Dep,
    RecaptchaDep,
    SessionDep,
    SettingsDep,
    client_address,
    rate_limited,
)
from schemas.registration import RegistrationCreate, RegistrationPublic
from services import registration as registration_service
from services.errors import InvalidFields

router = APIRouter(tags=["registration"])


async def registration_form(request: Request) -> RegistrationCreate:
    """Parse the body into field errors the portal's form can show (400, not 422)."""
    try:
        payload = json.loads(await request.body())
    except (ValueError, UnicodeDecodeError):
        raise InvalidFields(
            [{"field": "body", "message": "The request body must be JSON"}]
        ) from None
    try:
        return RegistrationCreate.model_validate(payload)
    except ValidationError as exc:
        errors = []
        for error in exc.errors():
            field = ".".join(str(part) for part in error["loc"]) or "body"
            errors.append({"field": field, "message": error["msg"].removeprefix("Value error, ")})
        raise InvalidFields(errors) from None


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
    form: Annotated[RegistrationCreate, Depends(registration_form)],
) -> RegistrationPublic:
    """Create an account: Auth0 user, default platforms, requested bundles."""
    return await registration_service.register(
        session, auth0, recaptcha, settings, form, remote_ip=client_address(request)
    )
