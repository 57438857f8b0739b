"""Adaptive Card rendering of the neutral model; `submits` reads card submits back.

Cards are version 1.5 with `Action.Submit`, which every Teams client (desktop, web,
mobile) handles. Teams refuses a message over about 28 KB, so texts and lists are cut to
per-element limits and, past the card budget, trailing elements are left out with a note,
the way the Block Kit renderer keeps within Slack's limits.

Form inputs are named `<shape>:<field>` (`text:topic`, `many:tags`): the reserved submit
keys (`form`, `state`, `action`, `value`) have no colon, so an input can never overwrite
them, and the shape tells `submits.parse_submit` how to read a value even without the form.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from adapters.teams.markdown import CardText
from adapters.teams.sizes import (
    ACTIONS_PER_ROW,
    BUTTON_TITLE,
    BUTTON_VALUE,
    BUTTONS,
    CARD_BUDGET,
    FALLBACK_TEXT,
    FIELD_TEXT,
    HEADER_TEXT,
    INPUT_MAX,
    LABEL,
    OPTION_TITLE,
    OPTION_VALUE,
    OPTIONS,
    PLACEHOLDER,
    SECTION_FIELDS,
    STATE,
    URL,
    clip,
    size,
)
from handlers.core.messages import (
    Block,
    Button,
    Buttons,
    ChannelField,
    ContextLine,
    DateField,
    Divider,
    Form,
    FormField,
    FormValue,
    Header,
    Image,
    Message,
    Section,
    SelectField,
    TextField,
    UserField,
)

CARD_VERSION = "1.5"
CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
PEOPLE = {"type": "Data.Query", "dataset": "graph.microsoft.com/users"}

TRIMMED_NOTE = "… (shortened to fit in Teams)"
NO_CHANNELS = "No channels to choose from yet: add Flywheel to a team first."

Json = dict[str, Any]

ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


# -- blocks ---------------------------------------------------------------------------------


def _text_block(text: str, **style: Any) -> Json:
    return {"type": "TextBlock", "text": text or " ", "wrap": True, **style}


def _action(b: Button, t: CardText) -> Json:
    title = clip(b.label, BUTTON_TITLE) or " "
    if b.url:
        return {"type": "Action.OpenUrl", "title": title, "url": b.url[:URL]}
    action: Json = {
        "type": "Action.Submit",
        "title": title,
        "data": {"action": b.action, "value": clip(b.value, BUTTON_VALUE)},
    }
    if b.style:
        action["style"] = "positive" if b.style == "primary" else "destructive"
    return action


def _action_rows(buttons: Sequence[Button], t: CardText) -> list[Json]:
    actions = [_action(b, t) for b in buttons[:BUTTONS]]
    return [
        {"type": "ActionSet", "actions": actions[i : i + ACTIONS_PER_ROW]}
        for i in range(0, len(actions), ACTIONS_PER_ROW)
    ]


def _fields(fields: Sequence[str], t: CardText) -> list[Json]:
    """Slack's two-column section fields as rows of two columns."""
    cells = [t.markdown(f, FIELD_TEXT) for f in fields[:SECTION_FIELDS]]
    rows = []
    for i in range(0, len(cells), 2):
        columns = [
            {"type": "Column", "width": "stretch", "items": [_text_block(cell)]}
            for cell in cells[i : i + 2]
        ]
        if len(columns) == 1:
            columns.append({"type": "Column", "width": "stretch", "items": []})
        rows.append({"type": "ColumnSet", "columns": columns})
    return rows


def _block(b: Block, t: CardText) -> list[Json]:
    match b:
        case Header(text=text):
            return [
                _text_block(
                    t.literal(text, HEADER_TEXT), size="Large", weight="Bolder", style="heading"
                )
            ]
        case Section(text=text, fields=fields, button=button):
            out: list[Json] = []
            if text or not fields:
                out.append(_text_block(t.markdown(text)))
            if button is not None:
                # The button sits beside the text, as Slack's accessory does.
                beside = {"type": "ActionSet", "actions": [_action(button, t)]}
                items = out or [_text_block(" ")]
                out = [
                    {
                        "type": "ColumnSet",
                        "columns": [
                            {"type": "Column", "width": "stretch", "items": items},
                            {
                                "type": "Column",
                                "width": "auto",
                                "verticalContentAlignment": "Center",
                                "items": [beside],
                            },
                        ],
                    }
                ]
            return out + _fields(fields, t)
        case Buttons(buttons=buttons):
            return _action_rows(buttons, t)
        case ContextLine(text=text):
            return [_text_block(t.markdown(text), size="Small", isSubtle=True)]
        case Image(url=url, alt=alt, title=title):
            out = [_text_block(t.literal(title, HEADER_TEXT), weight="Bolder")] if title else []
            return [*out, {"type": "Image", "url": url[:URL], "altText": clip(alt, LABEL)}]
        case Divider():
            return []
    raise TypeError(f"unknown block {b!r}")


def _body(blocks: Sequence[Block], t: CardText) -> list[Json]:
    """Blocks as card elements; a divider becomes the separator line above the next one."""
    body: list[Json] = []
    divide = False
    for b in blocks:
        if isinstance(b, Divider):
            divide = bool(body)
            continue
        elements = _block(b, t)
        if elements and divide:
            elements[0] = {**elements[0], "separator": True, "spacing": "Medium"}
            divide = False
        body += elements
    return body


def _card(body: list[Json], actions: list[Json], fallback: str) -> Json:
    card: Json = {"type": "AdaptiveCard", "$schema": SCHEMA, "version": CARD_VERSION}
    card["body"] = body
    if actions:
        card["actions"] = actions
    if fallback:
        card["fallbackText"] = fallback
    return card


def _fit(card: Json, keep: int, removable: int) -> Json:
    """Drop body elements from `keep + removable` backwards to `keep` until the card fits."""
    body: list[Json] = card["body"]
    end = keep + removable
    trimmed = False
    while size(card) > CARD_BUDGET and end > keep:
        end -= 1
        del body[end]
        trimmed = True
    if trimmed:
        body.insert(end, _text_block(TRIMMED_NOTE, size="Small", isSubtle=True))
    return card


def _finish(card: Json, t: CardText) -> Json:
    entities = t.entities(card)
    if entities:
        card["msteams"] = {"entities": entities}
    return card


def message_card(
    message: Message,
    *,
    names: Mapping[str, str] | None = None,
    channels: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The Adaptive Card (the attachment's `content`) for a neutral message.

    `names` maps platform user ids to display names for the neutral `<@id>` mention tokens,
    `channels` conversation ids to channel names for `<#id>`.
    """
    t = CardText(names, channels)
    body = _body(message.blocks, t) if message.blocks else [_text_block(t.markdown(message.text))]
    fallback = t.plain(message.text, FALLBACK_TEXT)
    card = _fit(_card(body, [], fallback), 0, len(body))
    return _finish(card, t)


# -- forms ----------------------------------------------------------------------------------

SHAPES = ("text", "one", "many", "date")


def input_id(f: FormField) -> str:
    """The input's id: its value shape and the field's name (`many:tags`)."""
    match f:
        case TextField():
            shape = "text"
        case DateField():
            shape = "date"
        case SelectField() | UserField() | ChannelField():
            shape = "many" if f.multi else "one"
        case _:
            raise TypeError(f"unknown field {f!r}")
    return f"{shape}:{f.name}"


def _initial(f: FormField, values: Mapping[str, FormValue]) -> tuple[str, ...]:
    """The field's value to show: what the person typed if it is being re-shown."""
    value = values.get(f.name, f.initial)
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


def _choices(pairs: Sequence[tuple[str, str]], t: CardText) -> list[Json]:
    return [
        {"title": clip(label, OPTION_TITLE) or value, "value": value[:OPTION_VALUE]}
        for value, label in pairs[:OPTIONS]
    ]


def _input(
    f: FormField, shown: tuple[str, ...], channels: Sequence[tuple[str, str]], t: CardText
) -> Json:
    element: Json = {"id": input_id(f), "label": clip(f.label, LABEL)}
    if not f.optional:
        element["isRequired"] = True
        element["errorMessage"] = clip(f"{element['label']} is required.", LABEL)
    match f:
        case TextField():
            limit = min(f.max_length or INPUT_MAX, INPUT_MAX)
            element.update(type="Input.Text", isMultiline=f.multiline, maxLength=limit)
            if f.placeholder:
                element["placeholder"] = clip(f.placeholder, PLACEHOLDER)
            if shown and shown[0]:
                element["value"] = shown[0][:limit]
        case SelectField():
            choices = _choices([(o.value, o.label) for o in f.options], t)
            known = {c["value"] for c in choices}
            element.update(type="Input.ChoiceSet", choices=choices, style="compact")
            _pick(element, [v for v in shown if v in known], f.multi)
        case UserField():
            # Teams' people picker: search the tenant's directory as the person types.
            element.update(type="Input.ChoiceSet", choices=[], **{"choices.data": dict(PEOPLE)})
            _pick(element, [v for v in shown if v], f.multi)
        case ChannelField():
            pairs = list(channels)
            ids = {cid for cid, _ in pairs}
            # A current value outside the list stays choosable rather than silently dropped.
            pairs += [(v, v) for v in shown if v and v not in ids]
            choices = _choices([(cid, f"#{name.lstrip('#')}") for cid, name in pairs], t)
            element.update(type="Input.ChoiceSet", choices=choices, style="compact")
            _pick(element, [v for v in shown if v], f.multi)
        case DateField():
            element["type"] = "Input.Date"
            if shown and shown[0] and ISO_DATE.fullmatch(shown[0]):
                element["value"] = shown[0]
    return element


def _pick(element: Json, chosen: Sequence[str], multi: bool) -> None:
    if multi:
        element["isMultiSelect"] = True
    if chosen:
        element["value"] = ",".join(chosen) if multi else chosen[0]


def _field(
    f: FormField,
    values: Mapping[str, FormValue],
    error: str | None,
    channels: Sequence[tuple[str, str]],
    t: CardText,
) -> list[Json]:
    out = [_input(f, _initial(f, values), channels, t)]
    if isinstance(f, ChannelField) and not channels and not out[0]["choices"]:
        out.append(_text_block(NO_CHANNELS, size="Small", isSubtle=True, spacing="None"))
    if f.hint:
        out.append(_text_block(t.literal(f.hint, LABEL), size="Small", isSubtle=True))
    if error:
        out.append(_error(error, t))
    return out


def _error(message: str, t: CardText) -> Json:
    return _text_block(t.literal(message, LABEL), color="Attention", size="Small", spacing="Small")


def form_card(
    form: Form,
    *,
    errors: Mapping[str, str] | None = None,
    values: Mapping[str, FormValue] | None = None,
    channels: Sequence[tuple[str, str]] = (),
) -> dict[str, Any]:
    """The Adaptive Card for a neutral form; Action.Submit carries the form id and state."""
    t = CardText()
    errors = dict(errors or {})
    values = dict(values or {})
    names = {f.name for f in form.fields}
    title = _text_block(
        t.literal(form.title, HEADER_TEXT), size="Large", weight="Bolder", style="heading"
    )
    intro = _body(form.intro, t)
    # Errors about no field of this form still reach the person, above the fields.
    stray = [_error(message, t) for name, message in errors.items() if name not in names]
    fields = [x for f in form.fields for x in _field(f, values, errors.get(f.name), channels, t)]
    actions: list[Json] = []
    if form.fields:
        data = {"form": form.form_id, "state": clip(form.state, STATE)}
        actions.append(
            {
                "type": "Action.Submit",
                "title": clip(form.submit_label, BUTTON_TITLE) or "Submit",
                "style": "positive",
                "data": data,
            }
        )
    card = _card([title, *intro, *stray, *fields], actions, clip(form.title, FALLBACK_TEXT))
    # Only the introduction may be cut: the inputs are the form.
    return _finish(_fit(card, 1, len(intro)), t)


def attachment(card: dict[str, Any]) -> dict[str, Any]:
    """The Bot Framework attachment carrying an Adaptive Card."""
    return {"contentType": CONTENT_TYPE, "content": card}


__all__ = [
    "CARD_VERSION",
    "CONTENT_TYPE",
    "SHAPES",
    "attachment",
    "form_card",
    "input_id",
    "message_card",
]
