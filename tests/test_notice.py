"""A short notice is one Message shape wherever it is written: text alone, or with a muted
detail line under it; every adapter shows it as literal text."""

from __future__ import annotations

from adapters.console.render import render_message
from adapters.slack import blocks as slack
from adapters.teams import cards as teams
from handlers.core.interactions import Reply
from handlers.core.messages import ContextLine, Message, Section, notice


def test_a_notice_is_its_text() -> None:
    assert notice("That form is no longer open.") == Message(text="That form is no longer open.")


def test_a_detail_goes_under_the_text_in_a_muted_line() -> None:
    assert notice("Not now.", "Ask an admin to add you.") == Message(
        text="Not now.",
        blocks=(Section(text="Not now."), ContextLine(text="Ask an admin to add you.")),
    )


def test_reply_say_is_a_notice() -> None:
    assert Reply.say("Saved.") == Reply(message=notice("Saved."))


def test_every_renderer_shows_a_notice_literally() -> None:
    typed = "*not bold* <@U1> <https://evil.test|here>"
    message = notice(typed, typed)
    assert typed in "\n".join(render_message(message).lines)
    card = teams.message_card(message)
    assert "**not bold**" not in str(card) and "<at>" not in str(card)
    rendered = slack.message(message)
    assert "&lt;@U1&gt;" in str(rendered)
