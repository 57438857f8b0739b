"""Adaptive Cards for the neutral model: every block and field kind, Teams' limits, mentions.
Submits read back from these cards are in test_teams_submits."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from adapters.teams.cards import (
    CARD_VERSION,
    CONTENT_TYPE,
    TRIMMED_NOTE,
    attachment,
    form_card,
    message_card,
)
from adapters.teams.sizes import ACTIONS_PER_ROW, CARD_BUDGET, INPUT_MAX, TEXT, size
from handlers.core.markup import Markup
from handlers.core.messages import (
    Button,
    Buttons,
    ChannelField,
    ContextLine,
    DateField,
    Divider,
    Form,
    Header,
    Image,
    Message,
    Option,
    Section,
    SelectField,
    TextField,
    UserField,
)

SCHEMA = Path(__file__).resolve().parent / "fixtures" / "teams" / "adaptive-card.v1.5.schema.json"
ALICE = "29:1alice"
BOB = "29:1bob"


@pytest.fixture(scope="module")
def card_validator() -> jsonschema.protocols.Validator:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft6Validator.check_schema(schema)
    return jsonschema.Draft6Validator(schema)


def valid(validator: jsonschema.protocols.Validator, card: dict[str, Any]) -> list[str]:
    """Schema errors, outside Teams' two extensions: the card's `msteams` (mention entities)
    and the people picker's `choices.data` (a Data.Query, first in the 1.6 schema)."""

    def standard(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: standard(v) for k, v in node.items() if k not in ("msteams", "choices.data")}
        if isinstance(node, list):
            return [standard(item) for item in node]
        return node

    errors = validator.iter_errors(standard(card))
    return [f"{list(e.absolute_path)}: {e.message}" for e in errors]


def test_the_card_schema_check_is_real(card_validator: jsonschema.protocols.Validator) -> None:
    """Deliberately wrong cards fail, so the checks below can fail too."""
    good = message_card(EVERY_BLOCK)
    assert valid(card_validator, good) == []
    for broken in (
        {**good, "body": [{"type": "TextBlock"}]},
        {**good, "body": [{"type": "TextBlock", "text": "x", "size": "enormous"}]},
        {**good, "body": [{"type": "Input.Text", "label": "no id"}]},
        {**good, "actions": [{"type": "Action.OpenUrl", "title": "no url"}]},
        {**good, "surprise": True},
    ):
        assert valid(card_validator, broken), broken


def texts(card: dict[str, Any]) -> list[str]:
    """Every TextBlock's text, depth first."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "TextBlock":
                found.append(node["text"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(card["body"])
    return found


def of_type(card: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == kind:
                found.append(node)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(card)
    return found


EVERY_BLOCK = Message(
    text=Markup("New request: *Zero-downtime migrations*"),
    blocks=(
        Header(text="New request"),
        Section(
            text=Markup("*Zero-downtime migrations* asked by <@U1>"),
            fields=(Markup("*Due*\nFriday"), Markup("*Votes*\n3"), Markup("*Topic*\npostgres")),
            button=Button(label="+1", action="request_vote", value="42"),
        ),
        Divider(),
        Buttons(
            buttons=(
                Button(label="Claim", action="request_claim", value="42", style="primary"),
                Button(label="Not now", action="request_decline", value="42", style="danger"),
                Button(label="Open", action="open_link", url="https://example.com/r/42"),
            )
        ),
        ContextLine(text=Markup("Asked 2 hours ago · _why you_: you listed postgres")),
        Image(url="https://example.com/chart.png", alt="Clicks per day", title="This week"),
    ),
)


# -- messages -------------------------------------------------------------------------------


def test_every_block_kind_renders(card_validator: jsonschema.protocols.Validator) -> None:
    card = message_card(EVERY_BLOCK, names={"U1": "Alice Smith"})
    assert valid(card_validator, card) == []
    assert card["type"] == "AdaptiveCard" and card["version"] == CARD_VERSION == "1.5"
    assert card["fallbackText"] == "New request: Zero-downtime migrations"
    body = card["body"]
    header, section, fields_row1, fields_row2, actions, context, title, image = body
    assert header == {
        "type": "TextBlock",
        "text": "New request",
        "wrap": True,
        "size": "Large",
        "weight": "Bolder",
        "style": "heading",
    }
    # The accessory button sits beside the section text.
    text_column, button_column = section["columns"]
    assert (
        text_column["items"][0]["text"]
        == "**Zero-downtime migrations** asked by <at>Alice Smith</at>"
    )
    assert button_column["items"][0]["actions"] == [
        {"type": "Action.Submit", "title": "+1", "data": {"action": "request_vote", "value": "42"}}
    ]
    # Fields come in rows of two columns.
    assert [c["items"][0]["text"] for c in fields_row1["columns"]] == [
        "**Due**\n\nFriday",
        "**Votes**\n\n3",
    ]
    assert fields_row2["columns"][0]["items"][0]["text"] == "**Topic**\n\npostgres"
    assert fields_row2["columns"][1]["items"] == []
    # The divider is the separator above what follows it.
    assert actions["separator"] is True
    assert actions["actions"] == [
        {
            "type": "Action.Submit",
            "title": "Claim",
            "data": {"action": "request_claim", "value": "42"},
            "style": "positive",
        },
        {
            "type": "Action.Submit",
            "title": "Not now",
            "data": {"action": "request_decline", "value": "42"},
            "style": "destructive",
        },
        {"type": "Action.OpenUrl", "title": "Open", "url": "https://example.com/r/42"},
    ]
    assert context["size"] == "Small" and context["isSubtle"] is True
    assert context["text"] == "Asked 2 hours ago · _why you_: you listed postgres"
    assert title["text"] == "This week"
    assert image == {
        "type": "Image",
        "url": "https://example.com/chart.png",
        "altText": "Clicks per day",
    }
    assert attachment(card) == {"contentType": CONTENT_TYPE, "content": card}
    assert CONTENT_TYPE == "application/vnd.microsoft.card.adaptive"


def test_a_message_without_blocks_is_its_text() -> None:
    card = message_card(Message(text=Markup("Thanks, *Bob*!\nSee you")))
    assert texts(card) == ["Thanks, **Bob**!\n\nSee you"]
    assert "actions" not in card


def test_a_leading_or_trailing_divider_draws_nothing() -> None:
    card = message_card(Message(text="x", blocks=(Divider(), ContextLine(text="a"), Divider())))
    assert card["body"] == [
        {"type": "TextBlock", "text": "a", "wrap": True, "size": "Small", "isSubtle": True}
    ]


@pytest.mark.parametrize(
    ("neutral", "markdown"),
    [
        ("*bold* and _italic_", "**bold** and _italic_"),
        ("~gone~ text", "gone text"),
        ("see <https://example.com/a_b_c_|the docs>", "see [the docs](https://example.com/a_b_c_)"),
        (
            "<https://example.com/x_y_z_>",
            "[https://example.com/x_y_z_](https://example.com/x_y_z_)",
        ),
        ("*<https://example.com|bold link>*", "**[bold link](https://example.com)**"),
        ("in <#C1|general> and <#C2>", "in #general and #C2"),
        ("hey <!here>", "hey @here"),
        ("<mailto:a@example.com|write to us>", "[write to us](mailto:a@example.com)"),
        ("line one\nline two\n\n\nthree", "line one\n\nline two\n\nthree"),
        ("2 * 3 * 4 and snake_case_name", "2 * 3 * 4 and snake_case_name"),
        ("a <b> c", "a <b> c"),
    ],
)
def test_neutral_markdown_becomes_adaptive_card_markdown(neutral: str, markdown: str) -> None:
    assert texts(message_card(Message(text=Markup(neutral)))) == [markdown]


def test_mentions_become_teams_mentions_with_entities() -> None:
    message = Message(
        text="x",
        blocks=(
            Section(text=Markup("<@U1> asked <@U2>; <@U1> again")),
            ContextLine(text=Markup("cc <@U3|carol> and <@U4>")),
            Buttons(buttons=(Button(label="Thank <@U1>", action="thank", value="U1"),)),
        ),
    )
    card = message_card(message, names={"U1": "Alice Smith", "U2": "Bob <Ops>", "U4": "José Núñez"})
    assert texts(card) == [
        "<at>Alice Smith</at> asked <at>Bob Ops</at>; <at>Alice Smith</at> again",
        "cc <at>carol</at> and <at>José Núñez</at>",
    ]
    # A button title is plain text: never markup, never a mention.
    assert of_type(card, "Action.Submit")[0]["title"] == "Thank <@U1>"
    assert card["msteams"]["entities"] == [
        {
            "type": "mention",
            "text": "<at>Alice Smith</at>",
            "mentioned": {"id": "U1", "name": "Alice Smith"},
        },
        {
            "type": "mention",
            "text": "<at>Bob Ops</at>",
            "mentioned": {"id": "U2", "name": "Bob Ops"},
        },
        {"type": "mention", "text": "<at>carol</at>", "mentioned": {"id": "U3", "name": "carol"}},
        {
            "type": "mention",
            "text": "<at>José Núñez</at>",
            "mentioned": {"id": "U4", "name": "José Núñez"},
        },
    ]


def test_without_names_mentions_read_plainly_and_carry_no_entities() -> None:
    card = message_card(
        Message(text=Markup("<@U9> claimed it"), blocks=(Section(text=Markup("<@U9> claimed it")),))
    )
    assert texts(card) == ["someone claimed it"]
    assert card["fallbackText"] == "someone claimed it"
    assert "msteams" not in card


# -- limits ---------------------------------------------------------------------------------


def test_long_texts_and_lists_are_cut_to_teams_limits(
    card_validator: jsonschema.protocols.Validator,
) -> None:
    message = Message(
        text="t" * 5000,
        blocks=(
            Header(text="h" * 400),
            Section(text="s" * 5000, fields=tuple(Markup(f"*F{i}*\nv") for i in range(14))),
            Buttons(
                buttons=tuple(
                    Button(label=f"b{i}" * 40, action="a", value=str(i)) for i in range(30)
                )
            ),
        ),
    )
    card = message_card(message)
    assert valid(card_validator, card) == []
    assert size(card) <= CARD_BUDGET
    header, section, *rest = card["body"]
    assert len(header["text"]) == 150 and header["text"].endswith("…")
    assert len(section["text"]) == TEXT and section["text"].endswith("…")
    field_rows = [e for e in rest if e["type"] == "ColumnSet"]
    assert sum(len(r["columns"]) for r in field_rows) == 10
    rows = [e for e in rest if e["type"] == "ActionSet"]
    assert [len(r["actions"]) for r in rows] == [ACTIONS_PER_ROW] * 4 + [1]
    assert all(len(a["title"]) <= 75 for r in rows for a in r["actions"])
    assert len(card["fallbackText"]) == 3000


def test_an_oversized_message_is_shortened_with_a_note(
    card_validator: jsonschema.protocols.Validator,
) -> None:
    sections = tuple(Section(text=Markup(f"<@U{i}> ") + "é" * 2900) for i in range(20))
    card = message_card(
        Message(text="digest", blocks=(Header(text="Digest"), *sections)),
        names={f"U{i}": f"Person {i}" for i in range(20)},
    )
    assert valid(card_validator, card) == []
    assert size(card) <= CARD_BUDGET
    assert card["body"][0]["text"] == "Digest"
    assert card["body"][-1]["text"] == TRIMMED_NOTE
    shown = len(card["body"]) - 2
    assert 0 < shown < 20
    # Only the mentions still on the card have entities.
    assert [e["mentioned"]["id"] for e in card["msteams"]["entities"]] == [
        f"U{i}" for i in range(shown)
    ]


def test_a_message_that_fits_is_not_shortened() -> None:
    card = message_card(EVERY_BLOCK)
    assert TRIMMED_NOTE not in texts(card)


# -- forms ----------------------------------------------------------------------------------

TOPICS = tuple(Option(value=v, label=v.title()) for v in ("kubernetes", "postgres", "security"))
EVERY_FIELD = Form(
    form_id="request_form",
    title="Request content",
    submit_label="Send request",
    state="req:42",
    intro=(
        Section(text=Markup("Tell us *what* you need.")),
        ContextLine(text="Experts answer within a day."),
    ),
    fields=(
        TextField(name="topic", label="Topic", placeholder="e.g. zero-downtime", max_length=200),
        TextField(name="context", label="Context", multiline=True, optional=True, hint="Why now?"),
        SelectField(name="audience", label="Audience", options=TOPICS),
        SelectField(name="tags", label="Tags", options=TOPICS, multi=True, optional=True),
        UserField(name="reviewer", label="Reviewer"),
        UserField(name="experts", label="Experts", multi=True, optional=True),
        ChannelField(name="channel", label="Channel"),
        ChannelField(name="digests", label="Digest channels", multi=True, optional=True),
        DateField(name="needed_by", label="Needed by", optional=True),
    ),
)
CHANNELS = (("19:general@thread.tacv2", "General"), ("19:sales@thread.tacv2", "sales"))


def inputs(card: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["id"]: e for e in card["body"] if str(e.get("type", "")).startswith("Input.")}


def test_every_field_kind_renders(card_validator: jsonschema.protocols.Validator) -> None:
    card = form_card(EVERY_FIELD, channels=CHANNELS)
    assert valid(card_validator, card) == []
    title, intro_text, intro_context = card["body"][:3]
    assert title["text"] == "Request content" and title["style"] == "heading"
    assert intro_text["text"] == "Tell us **what** you need."
    assert intro_context["text"] == "Experts answer within a day."
    found = inputs(card)
    assert list(found) == [
        "text:topic",
        "text:context",
        "one:audience",
        "many:tags",
        "one:reviewer",
        "many:experts",
        "one:channel",
        "many:digests",
        "date:needed_by",
    ]
    assert found["text:topic"] == {
        "id": "text:topic",
        "label": "Topic",
        "isRequired": True,
        "errorMessage": "Topic is required.",
        "type": "Input.Text",
        "isMultiline": False,
        "maxLength": 200,
        "placeholder": "e.g. zero-downtime",
    }
    assert found["text:context"]["isMultiline"] is True
    assert found["text:context"]["maxLength"] == INPUT_MAX
    assert "isRequired" not in found["text:context"]
    assert found["one:audience"]["choices"] == [
        {"title": "Kubernetes", "value": "kubernetes"},
        {"title": "Postgres", "value": "postgres"},
        {"title": "Security", "value": "security"},
    ]
    assert "isMultiSelect" not in found["one:audience"]
    assert found["many:tags"]["isMultiSelect"] is True
    for picker in ("one:reviewer", "many:experts"):
        assert found[picker]["choices"] == []
        assert found[picker]["choices.data"] == {
            "type": "Data.Query",
            "dataset": "graph.microsoft.com/users",
        }
    assert found["many:experts"]["isMultiSelect"] is True
    assert found["one:channel"]["choices"] == [
        {"title": "#General", "value": "19:general@thread.tacv2"},
        {"title": "#sales", "value": "19:sales@thread.tacv2"},
    ]
    assert found["date:needed_by"]["type"] == "Input.Date"
    # The hint sits under its field.
    body = card["body"]
    hint = body[body.index(found["text:context"]) + 1]
    assert hint["text"] == "Why now?" and hint["isSubtle"] is True
    assert card["actions"] == [
        {
            "type": "Action.Submit",
            "title": "Send request",
            "style": "positive",
            "data": {"form": "request_form", "state": "req:42"},
        }
    ]


def test_initial_values_and_what_the_person_typed_are_shown() -> None:
    form = Form(
        form_id="expert_form",
        title="Profile",
        fields=(
            TextField(name="bio", label="Bio", initial="I build databases"),
            SelectField(
                name="topics",
                label="Topics",
                options=TOPICS,
                multi=True,
                initial=("postgres", "gone"),
            ),
            UserField(name="backup", label="Backup", initial=("aad-1",)),
            ChannelField(name="home", label="Home", initial=("19:old@thread.tacv2",)),
            DateField(name="snooze", label="Snooze until", initial="2025-03-01", optional=True),
        ),
    )
    found = inputs(form_card(form, channels=CHANNELS))
    assert found["text:bio"]["value"] == "I build databases"
    # Only known options are preselected.
    assert found["many:topics"]["value"] == "postgres"
    assert found["one:backup"]["value"] == "aad-1"
    # A current channel missing from the list stays choosable.
    assert found["one:home"]["value"] == "19:old@thread.tacv2"
    assert found["one:home"]["choices"][-1] == {
        "title": "#19:old@thread.tacv2",
        "value": "19:old@thread.tacv2",
    }
    assert found["date:snooze"]["value"] == "2025-03-01"

    typed = {
        "bio": "Databases, mostly",
        "topics": ("kubernetes", "security"),
        "backup": "aad-2",
        "home": "19:sales@thread.tacv2",
        "snooze": None,
    }
    again = inputs(form_card(form, values=typed, channels=CHANNELS))
    assert again["text:bio"]["value"] == "Databases, mostly"
    assert again["many:topics"]["value"] == "kubernetes,security"
    assert again["one:backup"]["value"] == "aad-2"
    assert again["one:home"]["value"] == "19:sales@thread.tacv2"
    assert "value" not in again["date:snooze"]


def test_errors_are_shown_under_their_fields_in_red(
    card_validator: jsonschema.protocols.Validator,
) -> None:
    errors = {
        "topic": "Say in a few words what you need.",
        "needed_by": "Pick a date in the future.",
        "nonexistent": "Something else went wrong.",
    }
    card = form_card(EVERY_FIELD, errors=errors, values={"topic": ""}, channels=CHANNELS)
    assert valid(card_validator, card) == []
    body = card["body"]
    found = inputs(card)
    for input_key, message in (
        ("text:topic", errors["topic"]),
        ("date:needed_by", errors["needed_by"]),
    ):
        under = body[body.index(found[input_key]) + 1]
        assert under["text"] == message
        assert under["color"] == "Attention"
    # An error about no field of the form is still shown, above the fields.
    stray = [e for e in body if e.get("text") == "Something else went wrong."]
    assert len(stray) == 1 and stray[0]["color"] == "Attention"
    assert body.index(stray[0]) < body.index(found["text:topic"])
    assert form_card(EVERY_FIELD, channels=CHANNELS)["body"] != body


def test_a_channel_field_without_channels_says_why() -> None:
    card = form_card(
        Form(
            form_id="admin_form",
            title="Settings",
            fields=(ChannelField(name="c", label="Channel"),),
        )
    )
    assert inputs(card)["one:c"]["choices"] == []
    assert "add Flywheel to a team" in texts(card)[-1]


def test_a_form_without_fields_has_no_submit_button() -> None:
    card = form_card(Form(form_id="info", title="All done", intro=(Section(text="Thanks!"),)))
    assert "actions" not in card
    assert texts(card) == ["All done", "Thanks!"]


def test_an_oversized_form_keeps_every_input_and_cuts_the_intro(
    card_validator: jsonschema.protocols.Validator,
) -> None:
    long_options = tuple(Option(value=f"v{i}", label=f"Option {i} " + "x" * 80) for i in range(150))
    form = Form(
        form_id="draft_form",
        title="Draft",
        intro=tuple(Section(text="intro " + "y" * 2900) for i in range(12)),
        fields=(
            TextField(
                name="body", label="Body", multiline=True, initial="z" * 5000, max_length=3000
            ),
            SelectField(name="pick", label="Pick", options=long_options),
        ),
    )
    card = form_card(form)
    assert valid(card_validator, card) == []
    assert size(card) <= CARD_BUDGET
    found = inputs(card)
    assert list(found) == ["text:body", "one:pick"]
    assert len(found["text:body"]["value"]) == 3000
    assert len(found["one:pick"]["choices"]) == 100
    assert all(len(c["title"]) <= 75 for c in found["one:pick"]["choices"])
    assert TRIMMED_NOTE in texts(card)
    assert card["actions"][0]["data"] == {"form": "draft_form", "state": ""}
