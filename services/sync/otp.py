"""Job `otp.cleanup`: remove email-change codes that can no longer be used."""

from datetime import timedelta

import sqlalchemy as sa

from db.base import utcnow
from db.models import EmailChangeOtp
from services.sync.runs import JobContext

KEEP_FOR = timedelta(days=1)


async def cleanup_codes(ctx: JobContext) -> None:
    table = EmailChangeOtp.__table__
    async with ctx.transaction() as session:
        result = await session.execute(
            sa.delete(table).where(table.c.expires_at < utcnow() - KEEP_FOR)
        )
        ctx.count("deleted", result.rowcount or 0)
