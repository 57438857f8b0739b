"""Block Kit's published limits: text past a limit is cut with an ellipsis, never rejected."""

from __future__ import annotations

from typing import Any

import pytest

from adapters.slack import blocks
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

ELLIPSIS = "…"


def _cut(text: str, limit: int) -> None:
    assert len(text) == limit
    assert text.endswith(ELLIPSIS)


def test_text_within_a_limit_is_untouched() -> None:
    rendered = blocks.block(Section(text="x" * 3000))
    assert rendered["text"]["text"] == "x" * 3000


def test_a_message_has_at_most_50_blocks_and_says_so() -> None:
    message = Message(text="many", blocks=tuple(Section(text=f"line {i}") for i in range(80)))

    rendered = blocks.message(message)["blocks"]

    assert len(rendered) == 50
    assert rendered[48]["text"]["text"] == "line 48"
    assert rendered[-1] == {"type": "context", "elements": [{"type": "mrkdwn", "text": ELLIPSIS}]}


def test_exactly_50_blocks_are_all_kept() -> None:
    message = Message(text="full", blocks=tuple(Section(text=f"{i}") for i in range(50)))
    assert [b["text"]["text"] for b in blocks.message(message)["blocks"]] == [
        str(i) for i in range(50)
    ]


@pytest.mark.parametrize(
    ("block", "path", "limit"),
    [
        (Section(text="s" * 3500), ("text", "text"), 3000),
        (Header(text="h" * 200), ("text", "text"), 150),
        (ContextLine(text="c" * 3100), ("elements", 0, "text"), 3000),
        (Section(fields=("f" * 2100,)), ("fields", 0, "text"), 2000),
        (Image(url="https://x.test/i.png", alt="a" * 2100), ("alt_text",), 2000),
    ],
    ids=["section", "header", "context", "field", "image-alt"],
)
def test_block_text_is_cut_at_its_limit(block: Any, path: tuple[Any, ...], limit: int) -> None:
    rendered: Any = blocks.block(block)
    for key in path:
        rendered = rendered[key]
    _cut(rendered, limit)


def test_buttons_are_cut_at_75_characters_of_text_and_2000_of_value() -> None:
    button = Button(label="b" * 90, action="request_vote", value="v" * 2100)

    rendered = blocks.button(button)

    _cut(rendered["text"]["text"], 75)
    _cut(rendered["value"], 2000)
    assert rendered["action_id"] == "request_vote"


def test_section_fields_and_action_elements_are_capped() -> None:
    section = blocks.block(Section(text="t", fields=tuple(f"f{i}" for i in range(14))))
    actions = blocks.block(
        Buttons(buttons=tuple(Button(label=str(i), action=f"a{i}") for i in range(30)))
    )
    assert len(section["fields"]) == 10
    assert len(actions["elements"]) == 25


def test_fallback_text_is_cut_at_3000() -> None:
    _cut(blocks.message(Message(text="n" * 4000))["text"], 3000)


def test_modal_title_and_buttons_are_cut_at_24() -> None:
    form = Form(
        form_id="request_form",
        title="A title much longer than a modal allows",
        submit_label="Submit this request right now please",
        fields=(TextField(name="topic", label="Topic"),),
    )

    view = blocks.modal(form)

    _cut(view["title"]["text"], 24)
    _cut(view["submit"]["text"], 24)
    assert view["close"]["text"] == "Cancel"


def test_form_labels_placeholders_options_and_metadata_are_capped() -> None:
    form = Form(
        form_id="request_form",
        title="Request",
        state="m" * 3500,
        fields=(
            TextField(name="topic", label="l" * 2100, placeholder="p" * 200, max_length=200),
            SelectField(
                name="similar",
                label="Similar",
                options=tuple(Option(value=f"{i}" * 200, label="o" * 90) for i in range(120)),
            ),
        ),
    )

    view = blocks.modal(form)
    topic, similar = view["blocks"]

    _cut(topic["label"]["text"], 2000)
    _cut(topic["element"]["placeholder"]["text"], 150)
    assert topic["element"]["max_length"] == 200
    options = similar["element"]["options"]
    assert len(options) == 100
    _cut(options[0]["text"]["text"], 75)
    assert len(options[0]["value"]) == 150
    assert len(view["private_metadata"]) == 3000


def test_a_modal_keeps_its_fields_within_100_blocks() -> None:
    form = Form(
        form_id="request_form",
        title="Request",
        intro=tuple(Section(text=f"intro {i}") for i in range(120)),
        fields=(TextField(name="topic", label="Topic"),),
    )

    view = blocks.modal(form)

    assert len(view["blocks"]) == 100
    assert view["blocks"][-1]["block_id"] == "topic"  # the field survives, the intro is cut


def test_empty_text_is_a_single_space_because_slack_rejects_empty_text() -> None:
    assert blocks.block(Section(text=""))["text"]["text"] == " "
