from typing import Literal

from pydantic import BaseModel


class RootInfo(BaseModel):
    message: str
    version: str


class Liveness(BaseModel):
    status: Literal["ok"] = "ok"


class CheckResult(BaseModel):
    ok: bool
    detail: str


class ReadinessReport(BaseModel):
    status: Literal["ready", "not_ready"]
    checks: dict[str, CheckResult]
