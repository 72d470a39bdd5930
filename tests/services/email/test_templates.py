"""Every message renders, in both parts, inside the branded layout, with safe values."""

from pathlib import Path

import pytest

from scripts.email_preview import write_previews
from services.email.templates import MESSAGES, render
from services.settings import load_settings

SETTINGS = load_settings(
    _env_file=None, aai_portal_url="https://portal.test/", support_email="help@portal.test"
)


@pytest.mark.parametrize("name", sorted(MESSAGES))
def test_every_message_renders_both_parts_in_the_layout(name: str):
    rendered = render(name, SETTINGS, MESSAGES[name].example)

    assert rendered.subject
    assert "\n" not in rendered.subject
    assert rendered.html.startswith("<!DOCTYPE html>")
    assert 'href="https://portal.test"' in rendered.html  # the layout's link, no double slash
    assert "help@portal.test" in rendered.html
    assert "help@portal.test" in rendered.text
    assert rendered.text.startswith("BioCommons Access\n")
    assert "<p" not in rendered.text  # no markup in the text part
    for value in MESSAGES[name].example.values():
        if isinstance(value, str) and value:
            assert value in rendered.text or value in rendered.subject


def test_user_given_values_are_escaped_in_html_but_not_in_text_or_subject():
    rendered = render(
        "group_request_admin",
        SETTINGS,
        {
            "requester": '<script>alert("x")</script>',
            "group_name": "R&D <Group>",
            "reason": "<img src=x onerror=alert(1)>",
            "review_url": "https://portal.test/user/auth0%7C5f3c",
        },
    )
    assert "<script>" not in rendered.html
    assert "&lt;script&gt;" in rendered.html
    assert "<img" not in rendered.html
    assert rendered.subject == "New request to join R&D <Group>"
    assert "R&D <Group>" in rendered.text


def test_line_breaks_cannot_reach_the_subject_header():
    rendered = render("membership_approved", SETTINGS, {"target_name": "Galaxy\r\nBcc: x@evil"})
    assert "\n" not in rendered.subject
    assert "\r" not in rendered.subject


def test_a_missing_value_or_an_unknown_message_is_an_error_not_a_blank():
    with pytest.raises(ValueError, match="target_name"):
        render("membership_approved", SETTINGS, {})
    with pytest.raises(KeyError, match="no email message"):
        render("no_such_message", SETTINGS, {})


def test_the_optional_reason_is_left_out_when_there_is_none():
    rendered = render("membership_revoked", SETTINGS, {"target_name": "Galaxy", "reason": None})
    assert "Reason" not in rendered.text
    assert "Reason" not in rendered.html


def test_preview_command_writes_every_message(tmp_path: Path):
    written = write_previews(tmp_path)
    names = {p.name for p in written}
    for name in MESSAGES:
        assert {f"{name}.html", f"{name}.txt", f"{name}.eml"} <= names
    index = (tmp_path / "index.html").read_text()
    assert all(f'href="{name}.html"' in index for name in MESSAGES)
    eml = (tmp_path / "email_change_code.eml").read_text()
    assert "Content-Type: multipart/alternative" in eml
    assert "042917" in eml
