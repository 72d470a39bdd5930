"""Public helpers of the registration pages. Each is rate limited per client."""

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from routers.deps import Auth0Dep, SessionDep, SettingsDep, rate_limited
from schemas.errors import LOOKUPS, RATE_LIMITED, UNAVAILABLE
from schemas.registration import Availability
from services.registration import signup as registration_service

router = APIRouter(
    prefix="/utils", tags=["utils"], responses={**LOOKUPS, **RATE_LIMITED, **UNAVAILABLE}
)


class RegistrationInfo(BaseModel):
    app: str | None


class ResearchInstitution(BaseModel):
    is_australian_research_institution: bool


class WelcomeEmailRequest(BaseModel):
    email: str = Field(min_length=3, max_length=254)


class Accepted(BaseModel):
    message: str


@router.get("/register/check-username-availability", dependencies=[rate_limited("availability")])
async def check_username(
    session: SessionDep, settings: SettingsDep, username: Annotated[str, Query(max_length=256)]
) -> Availability:
    """Whether a username may be registered (never used before, valid)."""
    return await registration_service.username_availability(session, settings, username)


@router.get("/register/check-email-availability", dependencies=[rate_limited("availability")])
async def check_email(
    session: SessionDep, settings: SettingsDep, email: Annotated[str, Query(max_length=320)]
) -> Availability:
    """Whether an email address may be registered (in the database connection)."""
    return await registration_service.email_availability(
        session, email, settings.auth0_db_connection
    )


@router.get("/register/registration-info", dependencies=[rate_limited("availability")])
async def registration_info(
    session: SessionDep,
    auth0: Auth0Dep,
    user_email: Annotated[str, Query(min_length=3, max_length=320)],
) -> RegistrationInfo:
    """The app an account was registered through, for the login page's hints."""
    return RegistrationInfo(
        app=await registration_service.registration_app(session, auth0, user_email)
    )


@router.get(
    "/register/check-australian-research-institution",
    dependencies=[rate_limited("availability")],
)
async def check_research_institution(
    settings: SettingsDep, email: Annotated[str, Query(min_length=3, max_length=320)]
) -> ResearchInstitution:
    """Whether an address belongs to an Australian research institution: the profile page
    warns that a change to another address ends SBP bundle access."""
    return ResearchInstitution(
        is_australian_research_institution=registration_service.is_research_institution_email(
            settings, email
        )
    )


@router.post("/send-welcome-email", dependencies=[rate_limited("welcome")])
async def send_welcome_email(
    session: SessionDep, auth0: Auth0Dep, settings: SettingsDep, body: WelcomeEmailRequest
) -> Accepted:
    """Queue the welcome email for a verified account (once); the same answer for anyone."""
    await registration_service.send_welcome(session, auth0, settings, body.email)
    return Accepted(message="If the account exists and is verified, a welcome email is on its way")
