"""Every message the service sends: its subject, its HTML and plain-text parts (Jinja2,
one branded layout), and what it needs to be rendered.

Messages are rendered when they are queued, so the queue row holds exactly what was
sent and ops can read it. HTML is autoescaped (names and reasons come from users);
an unknown or missing variable is an error, not an empty string.
"""

from dataclasses import dataclass
from datetime import timedelta
from functools import cache
from pathlib import Path
from typing import Any

import jinja2

from services.settings import Settings

TEMPLATE_DIR = Path(__file__).parent / "templates"
PRIORITY_CODE = 10  # one-time codes go first
PRIORITY_NORMAL = 100


@dataclass(frozen=True)
class Message:
    name: str
    subject: str  # a Jinja2 expression template over the same context
    # An example context: the preview command and the tests render every message with it.
    example: dict[str, Any]
    priority: int = PRIORITY_NORMAL
    # Not worth sending after this long (a code that has expired): dropped as failed.
    lifetime: timedelta | None = None

    @property
    def required(self) -> frozenset[str]:
        return frozenset(self.example)


MESSAGES: dict[str, Message] = {
    m.name: m
    for m in (
        Message("welcome", "Welcome to BioCommons Access", {"name": "Ada"}),
        Message(
            "registration_received",
            "Your BioCommons Access account",
            {"first_name": "Ada", "username": "ada_l"},
        ),
        Message(
            "group_request_confirmation",
            "Your request to join {{ group_name }}",
            {"group_name": "Threatened Species Initiative"},
        ),
        Message(
            "group_request_admin",
            "New request to join {{ group_name }}",
            {
                "requester": "ada@example.org (ada_l)",
                "group_name": "Threatened Species Initiative",
                "reason": "I work on koala genomes.",
                "review_url": "https://portal.example/user/auth0%7C5f3c",
            },
        ),
        Message(
            "membership_approved",
            "Your access to {{ target_name }} was approved",
            {"target_name": "Galaxy Australia"},
        ),
        Message(
            "membership_rejected",
            "Your request to join {{ target_name }} was not approved",
            {"target_name": "Threatened Species Initiative", "reason": "Not a member institution."},
        ),
        Message(
            "membership_revoked",
            "Your access to {{ target_name }} was revoked",
            {"target_name": "Galaxy Australia", "reason": "Account shared with others."},
        ),
        Message(
            "membership_reconsidered",
            "Your request to join {{ target_name }} is being considered again",
            {"target_name": "Threatened Species Initiative"},
        ),
        Message(
            "email_change_code",
            "Your code to confirm {{ new_email }}",
            {"code": "042917", "minutes": 10, "new_email": "ada@new.example.org"},
            priority=PRIORITY_CODE,
            lifetime=timedelta(minutes=10),
        ),
        Message(
            "email_changed_notice",
            "The email address of your account was changed",
            {"new_email": "ada@new.example.org", "by_admin": False},
        ),
        Message(
            "username_changed_notice",
            "The username of your account was changed",
            {"username": "ada_lovelace", "by_admin": True},
        ),
        Message(
            "account_removed_invalid_email",
            "Please sign up for BioCommons Access again",
            {"username": "ada_l", "invalid_email": "ada@exmaple.org"},
        ),
    )
}


@dataclass(frozen=True)
class Rendered:
    subject: str
    html: str
    text: str


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("html",), default_for_string=False, default=False
        ),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        # Templates ship with the image; without this every render stats each file
        # (blocking file-system calls inside the request's event loop).
        auto_reload=False,
    )


@cache
def _subject(name: str) -> jinja2.Template:
    return _environment().from_string(MESSAGES[name].subject)


def render(name: str, settings: Settings, context: dict[str, Any]) -> Rendered:
    message = MESSAGES.get(name)
    if message is None:
        raise KeyError(f"no email message {name!r}; messages: {', '.join(MESSAGES)}")
    missing = message.required - context.keys()
    if missing:
        raise ValueError(f"email {name!r} needs {', '.join(sorted(missing))}")
    environment = _environment()
    values = {
        **context,
        "portal_url": settings.portal_url,
        "support_email": settings.support_email,
    }
    # Subjects are header text: no escaping, and no line breaks (header injection).
    subject = " ".join(_subject(name).render(values).split())
    values["subject"] = subject
    html = environment.get_template(f"{name}.html").render(values)
    text = environment.get_template(f"{name}.txt").render(values).strip() + "\n"
    return Rendered(subject=subject[:998], html=html, text=text)
