"""API shapes of the scheduler's runs, as admins read them."""

from datetime import datetime
from typing import Any

from pydantic import BaseModel


class SyncRunPublic(BaseModel):
    id: int
    job: str
    status: str
    dry_run: bool
    started_at: datetime
    finished_at: datetime | None
    duration_s: float | None
    counts: dict[str, Any]
    error: str | None
    host: str | None
