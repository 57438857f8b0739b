"""Card submits parsed back to the same values the Slack adapter's translation gives, and
malformed or foreign submit data refused with a clear reason."""

from __future__ import annotations

from typing import Any

import pytest

from adapters.slack import blocks as slack_blocks
from adapters.slack.translate import form_values as slack_form_values
from adapters.teams.cards import form_card, input_id, message_card
from adapters.teams.submits import BadSubmit, Pressed, Submitted, parse_submit
from handlers.core.messages import Form, FormValue, Option, SelectField, TextField
from tests.test_teams_cards import CHANNELS, EVERY_BLOCK, EVERY_FIELD, inputs, of_type

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
