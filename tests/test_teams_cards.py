"""Adaptive Cards for the neutral model: every block and field kind, Teams' limits, mentions,
and submits parsed back to the same values the Slack adapter's translation gives."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from adapters.slack import blocks as slack_blocks
from adapters.slack.translate import form_values as slack_form_values
from adapters.teams.cards import (
    ACTIONS_PER_ROW,
    CARD_BUDGET,
    CARD_VERSION,
    CONTENT_TYPE,
    INPUT_MAX,
    TEXT,
    TRIMMED_NOTE,
    BadSubmit,
    Pressed,
    Submitted,
    attachment,
    form_card,
    input_id,
    message_card,
    parse_submit,
    size,
)
from handlers.core.markup import Markup
from handlers.core.messages import (
    Button,
    Buttons,
    ChannelField,
    ContextLine,
    DateField,
    Divider,
    Form,
    FormValue,
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


# -- submits: round trips against the Slack translation -------------------------------------


def teams_submit(form: Form, answers: dict[str, FormValue], *, omit_empty: bool) -> dict[str, Any]:
    """The data Teams sends for `answers` typed into the form's card."""
    card = form_card(form, channels=CHANNELS)
    data: dict[str, Any] = dict(card["actions"][0]["data"])
    for key in inputs(card):
        name = key.split(":", 1)[1]
        answer = answers.get(name)
        text = ",".join(answer) if isinstance(answer, tuple) else (answer or "")
        if text or not omit_empty:
            data[key] = text
    return data


def slack_state(form: Form, answers: dict[str, FormValue]) -> dict[str, dict[str, Any]]:
    """The `view.state.values` Slack sends for the same answers in the same form's modal."""
    state: dict[str, dict[str, Any]] = {}
    for f in form.fields:
        element = slack_blocks.field(f)["element"]
        kind = element["type"]
        answer = answers.get(f.name)
        value: dict[str, Any] = {"type": kind}
        many = answer if isinstance(answer, tuple) else ()
        match kind:
            case "plain_text_input":
                value["value"] = answer or None
            case "static_select":
                value["selected_option"] = {"value": answer} if answer else None
            case "multi_static_select":
                value["selected_options"] = [{"value": v} for v in many]
            case "users_select":
                value["selected_user"] = answer or None
            case "multi_users_select":
                value["selected_users"] = list(many)
            case "conversations_select":
                value["selected_conversation"] = answer or None
            case "multi_conversations_select":
                value["selected_conversations"] = list(many)
            case "datepicker":
                value["selected_date"] = answer or None
        state[f.name] = {f.name: value}
    return state


FULL_ANSWERS: dict[str, FormValue] = {
    "topic": "Zero-downtime Postgres upgrades",
    "context": "A customer asked, twice.",
    "audience": "postgres",
    "tags": ("kubernetes", "security"),
    "reviewer": "aad-reviewer",
    "experts": ("aad-1", "aad-2"),
    "channel": "19:general@thread.tacv2",
    "digests": ("19:general@thread.tacv2", "19:sales@thread.tacv2"),
    "needed_by": "2025-06-30",
}
EMPTY_OPTIONALS = {
    "topic": "Kubernetes upgrades",
    "audience": "kubernetes",
    "reviewer": "aad-reviewer",
    "channel": "19:sales@thread.tacv2",
}


@pytest.mark.parametrize(
    "answers", [FULL_ANSWERS, EMPTY_OPTIONALS], ids=["full", "optionals-empty"]
)
@pytest.mark.parametrize("omit_empty", [False, True], ids=["empty-sent", "empty-omitted"])
@pytest.mark.parametrize("with_forms", [False, True], ids=["loose", "checked"])
def test_submits_round_trip_to_the_slack_shapes(
    answers: dict[str, FormValue], omit_empty: bool, with_forms: bool
) -> None:
    data = teams_submit(EVERY_FIELD, answers, omit_empty=omit_empty)
    forms = {"request_form": EVERY_FIELD} if with_forms else None
    submitted = parse_submit(data, forms)
    assert isinstance(submitted, Submitted)
    assert (submitted.form_id, submitted.state) == ("request_form", "req:42")
    expected = slack_form_values(slack_state(EVERY_FIELD, answers))
    if omit_empty and not with_forms:
        # Without the form, an input Teams left out is unknown rather than empty.
        sent = {key.split(":", 1)[1] for key in data if ":" in key}
        expected = {name: value for name, value in expected.items() if name in sent}
    assert submitted.values == expected
    if answers is EMPTY_OPTIONALS and with_forms:
        assert submitted.values["context"] == ""
        assert submitted.values["tags"] == ()
        assert submitted.values["needed_by"] is None


def test_multi_select_values_with_commas_survive_when_the_form_is_known() -> None:
    options = (
        Option(value="a,b", label="A and B"),
        Option(value="a", label="A"),
        Option(value="c", label="C"),
    )
    form = Form(
        form_id="f",
        title="F",
        fields=(SelectField(name="s", label="S", options=options, multi=True),),
    )
    submitted = parse_submit({"form": "f", "many:s": "a,b,c"}, {"f": form})
    assert isinstance(submitted, Submitted)
    assert submitted.values == {"s": ("a,b", "c")}


def test_input_ids_never_collide_with_the_reserved_keys() -> None:
    form = Form(
        form_id="f",
        title="F",
        state="s1",
        fields=tuple(TextField(name=n, label=n) for n in ("form", "state", "action", "value")),
    )
    ids = [input_id(f) for f in form.fields]
    assert not {"form", "state", "action", "value"} & set(ids)
    answers: dict[str, FormValue] = {"form": "x", "state": "y", "action": "z", "value": "w"}
    data = teams_submit(form, answers, omit_empty=False)
    assert parse_submit(data, {"f": form}) == Submitted("f", "s1", answers)


def test_button_presses_parse_to_pressed() -> None:
    card = message_card(EVERY_BLOCK)
    data = of_type(card, "Action.Submit")[0]["data"]
    assert parse_submit(data) == Pressed(action="request_vote", value="42")
    assert parse_submit({"action": "help"}) == Pressed(action="help", value="")
    assert parse_submit(
        {"action": "x", "value": "1", "msteams": {"type": "messageBack"}}
    ) == Pressed("x", "1")


# -- submits: malformed data ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (["action", "x"], "must be an object"),
        ({}, "neither 'action' nor 'form'"),
        ({"text": "hello"}, "neither 'action' nor 'form'"),
        ({"action": "x", "form": "f"}, "both 'form' and 'action'"),
        ({"action": 7}, "'action' must be text, not int"),
        ({"action": ""}, "'action' is empty"),
        ({"action": "x", "value": ["1"]}, "'value' must be text, not list"),
        ({"action": "x", "value": "v" * 2001}, "'value' is longer than 2000"),
        ({"action": "x" * 256}, "'action' is longer than 255"),
        ({"action": "x", "text:topic": "hi"}, "unexpected keys in a button press: text:topic"),
        ({"form": None}, "'form' must be text, not NoneType"),
        ({"form": "f", "state": {"a": 1}}, "'state' must be text, not dict"),
        ({"form": "f", "state": "s" * 3001}, "'state' is longer than 3000"),
        ({"form": "f", "topic": "no shape"}, "unexpected input 'topic'"),
        ({"form": "f", "blob:topic": "x"}, "unexpected input 'blob:topic'"),
        ({"form": "f", "text:": "x"}, "unexpected input 'text:'"),
        ({"form": "f", "text:topic": 3}, "must be text, not int"),
        ({"form": "f", "many:tags": ["a", "b"]}, "must be text, not list"),
        ({"form": "f", "text:topic": "t" * 3001}, "longer than 3000"),
        ({"form": "f", "one:pick": "p" * 151}, "longer than 150"),
        ({"form": "f", "many:tags": ",".join(str(i) for i in range(101))}, "too many or too long"),
        ({"form": "f", "date:due": "tomorrow"}, "not a date"),
        ({"form": "f", "date:due": "2025-02-30"}, "not a date"),
        ({"form": "f", **{f"text:f{i}": "x" for i in range(101)}}, "more than 100 inputs"),
    ],
)
def test_malformed_submits_are_refused_clearly(data: Any, message: str) -> None:
    with pytest.raises(BadSubmit, match=message):
        parse_submit(data)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"form": "win_form"}, "unknown form 'win_form'"),
        (
            {"form": "request_form", "text:nope": "x"},
            "'text:nope' is not a field of 'request_form'",
        ),
        # The same name in another shape is not the field either.
        ({"form": "request_form", "many:audience": "postgres"}, "is not a field of"),
        ({"form": "request_form", "text:topic": "t" * 201}, "'Topic' is longer than 200"),
        (
            {"form": "request_form", "one:audience": "cooking"},
            "'cooking' is not one of the choices",
        ),
        ({"form": "request_form", "many:tags": "postgres,cooking"}, "'cooking' is not one of"),
        ({"form": "request_form", "date:needed_by": "30/06/2025"}, "not a date"),
    ],
)
def test_submits_are_checked_against_their_form(data: dict[str, Any], message: str) -> None:
    with pytest.raises(BadSubmit, match=message):
        parse_submit(data, {"request_form": EVERY_FIELD})
