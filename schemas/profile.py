from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from schemas.registration import check_email, check_password, check_username


class NameUpdate(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")
    first_name: str = Field(min_length=1, max_length=255)
    last_name: str = Field(min_length=1, max_length=255)


class UsernameUpdate(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")
    username: str = Field(min_length=3, max_length=128)

    @field_validator("username")
    @classmethod
    def _username(cls, value: str) -> str:
        return check_username(value)


class EmailUpdate(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")
    email: str = Field(min_length=3, max_length=254)

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        return check_email(value)


class EmailCode(BaseModel):
    model_config = ConfigDict(extra="forbid")
    otp: str = Field(pattern=r"^\d{6}$")


class PasswordUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # The portal's password modal looks for these names in field_errors (portal contract,
    # call 9), though it sends the body in snake_case.
    form_field_names: ClassVar[dict[str, str]] = {
        "current_password": "currentPassword",
        "new_password": "newPassword",
    }
    current_password: str = Field(min_length=1, max_length=128)
    new_password: str = Field(min_length=8, max_length=72)

    @field_validator("new_password")
    @classmethod
    def _password(cls, value: str) -> str:
        return check_password(value)


class Done(BaseModel):
    message: str
