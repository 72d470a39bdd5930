"""Registration input. Messages are the ones the portal shows next to each field."""

import re
from typing import Annotated

from email_validator import EmailNotValidError, validate_email
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

USERNAME = re.compile(r"^[a-z0-9][-_a-z0-9]+$")
SPECIAL = re.compile(r"[^A-Za-z0-9]")


def check_username(value: str) -> str:
    if not USERNAME.match(value):
        raise ValueError(
            "Username must start with a lowercase letter or digit and use only lowercase letters, digits, - and _"
        )
    return value


def check_email(value: str) -> str:
    """An address as RFC 5321/5322 and IDNA allow it, with a real domain name (no DNS
    lookup: that would block and can fail for good addresses). A pattern of "something @
    something . something" let `=HYPERLINK("...")@x.org` in, which a spreadsheet of users
    would run."""
    try:
        checked = validate_email(value, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError:
        raise ValueError("Enter a valid email address") from None
    return checked.normalized.lower()


def check_password(value: str) -> str:
    missing = [
        label
        for label, ok in (
            ("an uppercase letter", any(c.isupper() for c in value)),
            ("a lowercase letter", any(c.islower() for c in value)),
            ("a digit", any(c.isdigit() for c in value)),
            ("a special character", bool(SPECIAL.search(value))),
        )
        if not ok
    ]
    if missing:
        raise ValueError("Password must contain " + ", ".join(missing))
    return value


class BundleChoice(BaseModel):
    bundle_id: str = Field(min_length=1, max_length=64)
    reason: str | None = Field(default=None, max_length=255)


class RegistrationCreate(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")

    # Auth0's limits: given_name and family_name at most 150 characters, name 300.
    first_name: str = Field(min_length=1, max_length=150)
    last_name: str = Field(min_length=1, max_length=150)
    email: str = Field(min_length=3, max_length=254)
    username: str = Field(min_length=3, max_length=128)
    # Kept exactly as typed: a password with a leading or trailing space, stripped here,
    # would not match what the user types at sign-in.
    password: Annotated[str, StringConstraints(strip_whitespace=False)] = Field(
        min_length=8, max_length=72
    )
    recaptcha_token: str = Field(min_length=1, max_length=4096)
    bundle: str | None = Field(default=None, max_length=64)
    bundles: list[BundleChoice] | None = Field(default=None, max_length=10)
    request_reason: str | None = Field(default=None, max_length=255)

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        return check_email(value)

    @field_validator("username")
    @classmethod
    def _username(cls, value: str) -> str:
        return check_username(value)

    @field_validator("password")
    @classmethod
    def _password(cls, value: str) -> str:
        return check_password(value)

    @model_validator(mode="after")
    def _one_bundle_form(self) -> "RegistrationCreate":
        if self.bundle is not None and self.bundles is not None:
            raise ValueError("send either bundle or bundles, not both")
        return self

    def bundle_choices(self) -> list[BundleChoice]:
        if self.bundles is not None:
            return self.bundles
        if self.bundle:
            return [BundleChoice(bundle_id=self.bundle, reason=self.request_reason)]
        return []


class FieldError(BaseModel):
    field: str
    message: str


class RegistrationPublic(BaseModel):
    message: str
    user_id: str
    email: str
    username: str
    platforms: list[str]
    groups_requested: list[str]


class Availability(BaseModel):
    available: bool
    field_errors: list[FieldError]


class SbpRegistrationCreate(RegistrationCreate):
    """The SBP sign-up. The page of the portal that ran beside the old backend sends no
    reCAPTCHA token (portal contract, call 35), although it shows one; the route is off in
    production and limited to SBP's institutions' addresses and the public rate limit."""

    # Empty: not sent (the only form where that is allowed).
    recaptcha_token: str = Field(default="", max_length=4096)
