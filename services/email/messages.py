"""Messages sent from more than one flow. (Branded templates come with the email issue.)"""

from sqlmodel.ext.asyncio.session import AsyncSession

from services.email.queue import enqueue
from services.settings import Settings


async def queue_welcome(
    session: AsyncSession, settings: Settings, *, to: str, user_id: str, name: str | None
) -> bool:
    """The welcome email, at most once per user whichever flow asks for it."""
    greeting = name or "there"
    portal = settings.portal_url
    return await enqueue(
        session,
        to=to,
        subject="Welcome to BioCommons Access",
        body_text=f"Hello {greeting},\n\nwelcome! Sign in at {portal} to request access to platforms and groups.",
        body_html=f'<p>Hello {greeting},</p><p>welcome! Sign in at <a href="{portal}">{portal}</a> '
        "to request access to platforms and groups.</p>",
        template="welcome",
        dedupe_key=f"welcome:{user_id}",
        sender=settings.no_reply_email_sender,
    )
