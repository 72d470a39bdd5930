"""Job `otp.cleanup`: remove email-change codes that can no longer be used, and the
public rate-limit counts no check reads any more."""

import time
from datetime import timedelta

import sqlalchemy as sa

from db.base import utcnow
from db.bulk import affected
from db.models import EmailChangeOtp, RateLimitHit
from services.sync.runs import JobContext

KEEP_FOR = timedelta(days=1)


async def cleanup_codes(ctx: JobContext) -> None:
    codes = EmailChangeOtp.__table__
    hits = RateLimitHit.__table__
    # A check reads this minute's and the previous minute's counts (services/kit/ratelimit.py).
    current_window = int(time.time() // 60)
    async with ctx.transaction() as session:
        result = await session.execute(
            sa.delete(codes).where(codes.c.expires_at < utcnow() - KEEP_FOR)
        )
        ctx.count("deleted", affected(result))
        result = await session.execute(sa.delete(hits).where(hits.c.minute < current_window - 1))
        ctx.count("rate_limit_counts_deleted", affected(result))
