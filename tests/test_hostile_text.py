"""Text a person typed is data, never markup: on Slack, Teams and the console alike.

The whole loop runs with hostile strings in every field of every form (request, expert
profile, suggestion, draft, review, win); then every message the bot queued, and every
reply it printed, is rendered by each adapter and checked: no channel ping, no mention,
no disguised link, no formatting and no terminal control that a person typed.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlmodel import select

from adapters.console.render import field_heading, form_heading, render_message
from adapters.slack import blocks as slack
from adapters.teams import cards as teams
from adapters.teams.markdown import summary as teams_summary
from bot.app import Flywheel, build
from bot.settings import load_settings
from handlers.core import markup
from handlers.core.markup import Markup, md
from handlers.core.messages import (
    Button,
    Buttons,
    ContextLine,
    Form,
    Header,
    Image,
    Message,
    Option,
    Section,
    SelectField,
    TextField,
)
from storage.models import OutboxMessage
from testing.fakes.clock import FrozenClock
from testing.fakes.slack_api import FakeSlack
from tests.console_harness import ConsoleBot
from tests.slack_http import SlackHttp
from tests.test_console_drafting import button
from tests.test_slack_routing import TUESDAY_14, become_expert, settle

# What an employee might type to ping everyone, impersonate a link or restyle a message.
PINGS = ("<!channel>", "<!here>", "<!everyone>", "<@U0BOSS>", "<#C0SECRET>")
DISGUISED = "<https://evil.example|Reset your password>"
MARKDOWN_LINK = "[Reset](https://evil.example)"
TEAMS_MENTION = "<at>Bob</at>"
HOSTILE = " ".join((*PINGS, DISGUISED, MARKDOWN_LINK, TEAMS_MENTION, "**loud** & \x1b[2J"))
# Short fields get the pings alone.
SHORT = "<!channel> <@U0BOSS> &"


def hostile(prefix: str) -> str:
    return f"{prefix} {HOSTILE}"


# -- what each renderer must never show --------------------------------------------------


def slack_mrkdwn(payload: Any) -> Iterator[str]:
    """Every string Slack reads as mrkdwn: text objects of that type, and a message's text."""
    if isinstance(payload, dict):
        if payload.get("type") == "mrkdwn":
            yield payload["text"]
        if "blocks" in payload and isinstance(payload.get("text"), str):
            yield payload["text"]
        for value in payload.values():
            yield from slack_mrkdwn(value)
    elif isinstance(payload, list):
        for value in payload:
            yield from slack_mrkdwn(value)


def assert_slack_safe(payload: Any) -> None:
    for text in slack_mrkdwn(payload):
        for ping in PINGS:
            assert ping not in text, f"{ping} would reach Slack as markup in {text!r}"
        assert "<https://evil.example" not in text, text
        assert "\ue000" not in text and "\ue001" not in text, text


_UNESCAPED_LINK = re.compile(r"(?<!\\)\[[^\]]*(?<!\\)\]\(https://evil")
_UNESCAPED_BOLD = re.compile(r"(?<!\\)\*(?<!\\)\*loud")


def teams_texts(card: Any) -> Iterator[str]:
    if isinstance(card, dict):
        if card.get("type") == "TextBlock":
            yield card["text"]
        for value in card.values():
            yield from teams_texts(value)
    elif isinstance(card, list):
        for value in card:
            yield from teams_texts(value)


_LINK_TARGET = re.compile(r"\]\([^)\s]*\)")


def assert_teams_safe(card: dict[str, Any], *, known: set[str]) -> None:
    for shown in teams_texts(card):
        # Inside a link's address, `*` and `[` are the address's own characters.
        text = _LINK_TARGET.sub("](…)", shown)
        assert not _UNESCAPED_LINK.search(text), f"a disguised link in {text!r}"
        assert not _UNESCAPED_BOLD.search(text), f"user text formats in {text!r}"
        assert TEAMS_MENTION not in text, f"a typed mention in {text!r}"
        assert "](https://evil.example|" not in text
    mentioned = {e["mentioned"]["id"] for e in card.get("msteams", {}).get("entities", [])}
    assert mentioned <= known, f"mentions nobody made: {mentioned - known}"
    shown = [*teams_texts(card), card.get("fallbackText", "")]
    assert not any("\ue000" in text or "\ue001" in text for text in shown)


def assert_console_safe(lines: Any) -> None:
    text = "\n".join(lines) if not isinstance(lines, str) else lines
    assert "\x1b" not in text, "a terminal control sequence reached the screen"
    assert "\ue000" not in text and "\ue001" not in text


def render_everywhere(message: Message, *, known: set[str]) -> None:
    assert_slack_safe(slack.message(message))
    assert_slack_safe(slack.home_view(message))
    card = teams.message_card(message, names={"U0BOSS": "The Boss"})
    assert_teams_safe(card, known=known)
    assert "\ue000" not in teams_summary(message)
    assert_console_safe(render_message(message).lines)


# -- the whole loop, every form, hostile text everywhere ----------------------------------


@pytest.fixture
async def app(migrated_url: str, clock: FrozenClock) -> AsyncIterator[Flywheel]:
    flywheel = build(load_settings(database_url=migrated_url, _env_file=None), clock=clock)
    yield flywheel
    await flywheel.close()


async def test_every_field_of_every_form_reaches_every_renderer_as_text(
    app: Flywheel, clock: FrozenClock
) -> None:
    console = ConsoleBot(app)
    await console.start()
    try:
        await run_the_loop(console, clock)
    finally:
        await console.stop()
    # The hostile text did reach the screen, shown as typed.

    assert "<!channel> <!here>" in console.transcript
    assert DISGUISED in console.transcript

    async with app.sessions() as session:
        rows = (await session.exec(select(OutboxMessage))).all()
    messages = [Message.stored(row.payload) for row in rows if "blocks" in row.payload]
    assert len(messages) >= 8
    carrying = [m for m in messages if "<!channel>" in json.dumps(m.model_dump())]
    assert len(carrying) >= 5, "the hostile text should be in many of the bot's messages"
    known = {"alice", "bob", "carol", "dana", "erin", "U0BOSS"} | {
        user for m in messages for user in re.findall(r"<@([^>|]+)>", _markup_only(m))
    }
    for message in messages:
        render_everywhere(message, known=known)


def _markup_only(message: Message) -> str:
    """The message's own markup, with the user's text taken out."""
    dumped = json.dumps(message.model_dump(), ensure_ascii=False)
    return re.sub("\ue000[^\ue001]*\ue001", "", dumped)


async def run_the_loop(console: ConsoleBot, clock: FrozenClock) -> None:
    """Expert profile, request, suggestion, claim, draft, changes, approval, decline, win."""
    await console.say("/as erin")
    await console.say("expert")
    await console.fill({"Topics you know": "1", "A short bio": hostile("DBA")})
    await console.say("/as alice")
    await console.say(f"request Oracle to PostgreSQL migration without downtime {SHORT}")
    out = await console.fill(
        {"Context": hostile("A customer asked:"), "Audience": SHORT, "Tags": "oracle"}
    )
    suggest = button(out[out.index("[DM to @bob]") :], "Suggest someone")
    await console.say("/as bob")
    out = await console.say(suggest)
    out = await console.fill({"Colleague": "carol", "A word for them": hostile("Ask Carol:")})
    await console.say("/as carol")
    out = await console.say(button(out, "Claim"))
    out = await console.say(button(out, "Write the draft"))
    out = await console.fill(
        {
            "Title": hostile("Zero downtime")[:80],
            "Body": hostile("Dual writes, then a cut-over."),
            "Published at (URL)": "https://blog.acme.test/zdm",
            "Share caption 1": hostile("Caption one"),
            "Share caption 2": hostile("Caption two"),
        }
    )
    out = await console.say(button(out, "Submit for review"))
    changes = button(out, "Ask for changes")
    await console.say("/as dana")
    out = await console.say(changes)
    out = await console.fill({"What should change?": hostile("Please cite")})
    await console.say("/as carol")
    out = await console.say(button(out, "Edit draft"))
    clock.advance(minutes=5)
    out = await console.fill({"Body": hostile("Now with sources.")})
    out = await console.say(button(out, "Submit for review"))
    approve = button(out, "Approve")
    await console.say("/as dana")
    await console.say(approve)

    await console.say("/as alice")
    await console.say(f"request PostgreSQL logical replication for reporting {SHORT}")
    out = await console.fill({"Context": hostile("Security review:")})
    await console.say("/as bob")
    out = await console.say(button(out[out.index("[DM to @bob]") :], "Not now"))
    await console.fill({"Why (optional)": hostile("On leave")})

    await console.say("/as alice")
    await console.say("find oracle")
    await console.say("win")
    await console.fill(
        {
            "What happened?": "deal",
            "Tell the story": hostile("Initech signed"),
            "Account": SHORT,
            "Which post helped?": "1",
        }
    )
    out = await console.say("home")
    out = await console.say(button(out, "Sharing preferences"))
    await console.fill({"Send me posts to share": "1", "Interests": SHORT, "Team": SHORT})
    for line in ("digest preview", "stats", "home", f"find {SHORT}", f"{SHORT} hello"):
        await console.say(line)
    await console.say("/as dana")
    await console.say("admin")
    await console.fill({"Banned phrases": SHORT, "Required disclosure line": hostile("#ad")})
    await console.say("admin")
    await console.say("/cancel")


# -- every field of the model, any text, through each renderer ----------------------------

texts = st.one_of(
    st.sampled_from([HOSTILE, SHORT, *PINGS, DISGUISED, MARKDOWN_LINK, TEAMS_MENTION]),
    st.text(alphabet=st.sampled_from("<>!@#|&*_~[]()`\\\n -\ue000\ue001abcU:/."), max_size=60),
)


def every_field(text: str) -> tuple[Message, Form]:
    """One message and one form with `text` in every field that shows text."""
    message = Message(
        text=md("*{}* asked", text),
        blocks=(
            Header(text=text),
            Section(
                text=md("{} asks *{}* <@U1>", markup.mention("U1"), text),
                fields=(markup.labelled(text, text), text),
                button=Button(label=text, action="a", value=text),
            ),
            Section(text=md("{}", markup.link("https://ok.example/" + text, text))),
            Section(text=markup.quoted(text)),
            Buttons(buttons=(Button(label=text, action="b", url="https://ok.example"),)),
            ContextLine(text=text),
            Image(url="https://ok.example/i.png", alt=text, title=text),
        ),
    )
    form = Form(
        form_id="request_form",
        title=text,
        submit_label=text,
        intro=(Section(text=md("*Request:* {}", text)), ContextLine(text=text)),
        fields=(
            TextField(name="t", label=text, initial=text, placeholder=text, hint=text),
            SelectField(name="s", label=text, options=(Option(value="v", label=text),), hint=text),
        ),
    )
    return message, form


@settings(max_examples=150, deadline=None, derandomize=True)
@given(text=texts)
def test_any_text_in_any_field_is_shown_literally_by_every_renderer(text: str) -> None:
    message, form = every_field(text)
    render_everywhere(message, known={"U1"})
    render_everywhere(Message.stored(message.model_dump(mode="json")), known={"U1"})
    assert_slack_safe(slack.modal(form))
    assert_teams_safe(teams.form_card(form, errors={"t": text}), known=set())
    assert_console_safe(form_heading(form))
    for field in form.fields:
        assert_console_safe(field_heading(field))


def test_slack_escapes_user_text_as_slack_prescribes() -> None:
    message = Message(text=md("*{}* by {}", "<!channel> & <b>", markup.mention("U1")))
    assert slack.message(message)["text"] == "*&lt;!channel&gt; &amp; &lt;b&gt;* by <@U1>"


def test_a_disguised_link_typed_by_a_person_is_shown_not_linked() -> None:
    section = Section(text=md("Read {}", DISGUISED))
    assert slack.block(section)["text"]["text"] == (
        "Read &lt;https://evil.example|Reset your password&gt;"
    )
    [block] = teams.message_card(Message(text="x", blocks=(section,)))["body"]
    assert block["text"] == "Read <https://evil.example|Reset your password>"


def test_teams_escapes_markdown_and_breaks_typed_mentions() -> None:
    card = teams.message_card(
        Message(text=md("{} said {}", markup.mention("U1"), "**hi** [x](https://e.example)\n- a")),
        names={"U1": "Bob"},
    )
    [block] = card["body"]
    assert block["text"] == "<at>Bob</at> said \\*\\*hi\\*\\* \\[x\\](https://e.example)\n\n\\- a"
    typed = teams.message_card(Message(text=f"{TEAMS_MENTION} hi"), names={"U1": "Bob"})
    assert typed["body"][0]["text"] == "<\u200bat>Bob<\u200b/at> hi"
    assert "msteams" not in typed


def test_user_text_cannot_close_its_own_marks() -> None:
    sneaky = "\ue001*bold* <!channel>\ue000"
    rendered = slack.message(Message(text=md("{}", sneaky)))["text"]
    assert rendered == "*bold* &lt;!channel&gt;"


def test_a_cut_inside_user_text_leaves_it_user_text() -> None:
    text = markup.clip(md("ok {}", "<!channel> " * 10), 12)
    assert slack.text(text, 100) == "ok &lt;!channe…"


def test_markup_in_a_plain_field_is_refused() -> None:
    with pytest.raises(ValueError, match="shown as typed"):
        Header(text=Markup("*x*"))
    with pytest.raises(ValueError, match="shown as typed"):
        Button(label=md("{}", "x"), action="a")


# -- Slack, end to end: what a person types in Slack pings nobody when the bot repeats it ---


async def test_slack_text_is_read_as_typed_and_repeated_as_text(
    flywheel: Flywheel, fake_slack: FakeSlack, clock: FrozenClock
) -> None:
    clock.set(TUESDAY_14)
    client: TestClient[Any, Any] = TestClient(TestServer(flywheel.web_app()))
    await client.start_server()
    slack = SlackHttp(client, fake_slack, clock)
    try:
        await become_expert(slack, "UBOB", "oracle")
        # Slack sends `<!channel>` typed as text as entities, an @-mention as a reference.
        await slack.command(
            "request Oracle migration &lt;!channel&gt; &amp; <!here> <@UADA|ada> "
            "<https://evil.example|Reset your password>"
        )
        view = slack.opened_view()
        [topic] = [
            b["element"]["initial_value"] for b in view["blocks"] if b.get("block_id") == "topic"
        ]
        assert topic == (
            "Oracle migration <!channel> & @here @ada Reset your password (https://evil.example)"
        )
        # Text typed in a modal arrives as typed.
        response = await slack.interact(
            slack.submission(view, {"context": HOSTILE, "audience": SHORT, "tags": "oracle"})
        )
        assert response.status == 200
        await settle(flywheel)
    finally:
        await client.close()
    posted = fake_slack.calls_to("chat.postMessage") + fake_slack.calls_to("chat.update")
    assert any("Oracle migration" in str(c.args.get("text")) for c in posted)
    for call in posted:
        assert_slack_safe({"text": call.args.get("text", ""), "blocks": call.args.get("blocks")})
    [ping] = [c for c in posted if "Can you help" in str(c.args.get("text"))]
    shown = json.dumps(ping.args["blocks"])
    assert "&lt;!channel&gt; &amp; @here @ada" in shown
    assert "&lt;https://evil.example|Reset your password&gt;" in shown
