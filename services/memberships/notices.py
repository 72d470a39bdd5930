"""Mail about a request for access, to the requester and to the target's admins: for a
group request, a bundle chosen at sign-up, or an SBP sign-up's platform. Apart from the
request flows so sign-up can use it too (it must not import who the caller is)."""

import logging
from collections.abc import Sequence
from urllib.parse import quote

import sqlalchemy as sa
from sqlmodel.ext.asyncio.session import AsyncSession

from db.models import User
from services.auth0 import Auth0Gateway
from services.email.queue import enqueue
from services.errors import AppError
from services.kit.cache import TtlCache
from services.memberships.kinds import Kind
from services.settings import Settings

logger = logging.getLogger("aai.memberships")


async def admin_emails(
    session: AsyncSession,
    auth0: Auth0Gateway,
    kind: Kind,
    target_id: str,
    cache: TtlCache[frozenset[str]],
) -> frozenset[str]:
    """The addresses of a platform's or group's admins: the holders of its admin roles in
    Auth0.

    Every request for the target needs them, so each process reuses them for a while (and
    past that while Auth0 is failing): a notice to an admin who has just lost the role
    is a smaller harm than holding each request, and its connection, on Auth0."""
    links = kind.links
    role_ids = list(
        (
            await session.execute(sa.select(links.c.role_id).where(kind.link_target == target_id))
        ).scalars()
    )

    async def lookup() -> frozenset[str]:
        emails: set[str] = set()
        for role_id in role_ids:
            async for member in auth0.iter_role_members(role_id):
                if member.get("email"):
                    emails.add(str(member["email"]).lower())
        return frozenset(emails)

    async def bounded() -> frozenset[str]:
        # A slow Auth0 must not hold the requester's page: one deadline for all the calls.
        async with auth0.bounded():
            return await lookup()

    key = (kind.name, target_id, tuple(sorted(role_ids)))
    return await cache.get(key, bounded, stale_on=(AppError,))


async def notify_request(
    session: AsyncSession,
    auth0: Auth0Gateway,
    settings: Settings,
    user: User,
    kind: Kind,
    requested: Sequence[tuple[str, str | None, object]],
    admins_cache: TtlCache[frozenset[str]],
) -> None:
    """Queue the requester's confirmation and each admin's notice, in this transaction:
    for a group request, a bundle chosen at sign-up, or an SBP sign-up's platform.

    `requested` holds (target id, reason, a key of the request: its history row or its
    new membership); keyed on that, a new request (after a rejection) mails again, a
    retried one does not. The admin's link is the requester's page in the portal
    (`/user/<id>`; the portal has no page per request, portal-contract §6)."""
    who = " ".join(p for p in (user.email, f"({user.username})" if user.username else None) if p)
    review = f"{settings.portal_url}/user/{quote(user.id, safe='')}"
    for target_id, reason, request_key in requested:
        target = await kind.find_target(session, target_id)
        target_name = target.name if target is not None else target_id
        if user.email and kind.name == "group":
            await enqueue(
                session,
                settings,
                "group_request_confirmation",
                to=user.email,
                context={"group_name": target_name},
                dedupe_key=f"group-request:{request_key}",
            )
        try:
            admins = await admin_emails(session, auth0, kind, target_id, admins_cache)
        except (AppError, TimeoutError) as exc:
            # The request itself is recorded; admins still see it among pending requests.
            logger.warning("could not look up the admins of %s to notify them: %r", target_id, exc)
            continue
        for admin in sorted(admins):
            await enqueue(
                session,
                settings,
                "group_request_admin",
                to=admin,
                context={
                    "requester": who or user.id,
                    "group_name": target_name,
                    "reason": reason,
                    "review_url": review,
                },
                dedupe_key=f"{kind.name}-request-admin:{request_key}:{admin}",
            )
