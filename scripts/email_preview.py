"""Render every email the service sends, with its example values, to files.

    uv run python -m scripts.email_preview [--out var/email-preview]

Writes <name>.html, <name>.txt and <name>.eml (both parts, as a mail client gets it) per
message, and index.html linking them with their subjects. Uses the current settings for
AAI_PORTAL_URL, SUPPORT_EMAIL and the sender.
"""

import argparse
import html
import uuid
from pathlib import Path

from services.email.backends import OutgoingEmail
from services.email.templates import MESSAGES, render
from services.settings import load_settings


def write_previews(out: Path) -> list[Path]:
    settings = load_settings()
    out.mkdir(parents=True, exist_ok=True)
    written = []
    rows = []
    for name, message in MESSAGES.items():
        rendered = render(name, settings, message.example)
        (out / f"{name}.html").write_text(rendered.html, encoding="utf-8")
        (out / f"{name}.txt").write_text(
            f"Subject: {rendered.subject}\n\n{rendered.text}", encoding="utf-8"
        )
        eml = OutgoingEmail(
            id=uuid.uuid5(uuid.NAMESPACE_URL, name),
            sender=settings.no_reply_email_sender,
            to="recipient@example.org",
            subject=rendered.subject,
            html=rendered.html,
            text=rendered.text,
        ).mime()
        (out / f"{name}.eml").write_bytes(eml.as_bytes())
        written += [out / f"{name}.{ext}" for ext in ("html", "txt", "eml")]
        rows.append(
            f'<tr><td><a href="{name}.html">{name}</a></td><td>{html.escape(rendered.subject)}</td>'
            f'<td><a href="{name}.txt">text</a> · <a href="{name}.eml">.eml</a></td></tr>'
        )
    index = out / "index.html"
    index.write_text(
        "<!DOCTYPE html><meta charset='utf-8'><title>Email previews</title>"
        "<table border='1' cellpadding='6'><tr><th>message</th><th>subject</th><th></th></tr>"
        + "".join(rows)
        + "</table>\n",
        encoding="utf-8",
    )
    return [index, *written]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path("var/email-preview"))
    args = parser.parse_args()
    written = write_previews(args.out)
    print(f"{len(MESSAGES)} messages rendered to {args.out}/ (open {written[0]})")


if __name__ == "__main__":
    main()
