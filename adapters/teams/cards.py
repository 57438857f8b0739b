"""Adaptive Card rendering of the neutral model, and card submits back to neutral values.

Cards are version 1.5 with `Action.Submit`, which every Teams client (desktop, web,
mobile) handles. Teams refuses a message over about 28 KB, so texts and lists are cut to
per-element limits and, past the card budget, trailing elements are left out with a note,
the way the Block Kit renderer keeps within Slack's limits.

Form inputs are named `<shape>:<field>` (`text:topic`, `many:tags`): the reserved submit
keys (`form`, `state`, `action`, `value`) have no colon, so an input can never overwrite
them, and the shape tells `parse_submit` how to read a value even without the form.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from handlers.core import markup
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

# Teams refuses messages over ~28 KB including the activity around the card.
CARD_BUDGET = 25_000
TEXT = 3000
FIELD_TEXT = 2000
SECTION_FIELDS = 10
HEADER_TEXT = 150
BUTTON_TITLE = 75
BUTTON_VALUE = 2000
BUTTONS = 25
# Teams shows at most six actions in a row; more go on further rows.
ACTIONS_PER_ROW = 6
URL = 3000
FALLBACK_TEXT = 3000
SUMMARY = 200
LABEL = 2000
PLACEHOLDER = 150
OPTION_TITLE = 75
OPTION_VALUE = 150
OPTIONS = 100
INPUT_MAX = 3000
STATE = 3000
NAME = 255
MAX_INPUTS = 100
ACTION_NAME = 255

TRIMMED_NOTE = "… (shortened to fit in Teams)"
NO_CHANNELS = "No channels to choose from yet: add Flywheel to a team first."

Json = dict[str, Any]

_TOKEN = re.compile("\x01(\\d+)\x01")
_NEWLINES = re.compile(r"\n+")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def clip(text: str, limit: int) -> str:
    """Cut `text` to `limit` characters, marking the cut with an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def size(card: Json) -> int:
    """Bytes of the card as the Bot Framework sends it (non-ASCII escaped, the worst case)."""
    return len(json.dumps(card, separators=(",", ":")).encode())


# -- text: the neutral mrkdwn as Adaptive Card markdown --------------------------------------


class _Text:
    """Translates the neutral markup and collects the mentions it made.

    User text is escaped for Adaptive Card markdown: emphasis, link brackets and list
    markers are backslash-escaped, and an `<at>` tag typed by a person is broken with a
    zero-width space, so only the mentions Flywheel made can ever match an entity.
    """

    def __init__(
        self, names: Mapping[str, str] | None = None, channels: Mapping[str, str] | None = None
    ) -> None:
        self.names = dict(names or {})
        self.channels = dict(channels or {})
        self.mentions: dict[str, Json] = {}

    def markdown(self, text: str, limit: int = TEXT) -> str:
        """`*bold*` → `**bold**`, `<url|label>` → `[label](url)`, `<@id>` → `<at>Name</at>`."""
        rendered = markup.render(markup.clip(text, limit), self._markdown, escape_markdown)
        # A single newline is only a space in markdown; Slack's means a new line.
        return _NEWLINES.sub("\n\n", rendered.strip("\n"))

    def _markdown(self, skeleton: str) -> str:
        tokens: list[str] = []

        def hold(match: re.Match[str]) -> str:
            tokens.append(self._angled(match.group(1), rich=True))
            return f"\x01{len(tokens) - 1}\x01"

        # Links and mentions are held aside so emphasis never reaches into a URL.
        text = markup.ANGLED.sub(hold, skeleton)
        text = markup.BOLD.sub(r"**\1**", text)
        text = markup.STRIKE.sub(r"\1", text)
        return _TOKEN.sub(lambda m: tokens[int(m.group(1))], text)

    def plain(self, text: str, limit: int) -> str:
        """Text for places without markdown (labels, choices, titles, notifications)."""
        return clip(markup.render(text, self._plain, lambda held: held), limit)

    def _plain(self, skeleton: str) -> str:
        text = markup.ANGLED.sub(lambda m: self._angled(m.group(1), rich=False), skeleton)
        text = markup.BOLD.sub(r"\1", text)
        text = markup.ITALIC.sub(r"\1", text)
        return markup.STRIKE.sub(r"\1", text)

    def literal(self, text: str, limit: int = TEXT) -> str:
        """Plain text (a header, a hint, an error) for a TextBlock, which reads markdown."""
        shown = escape_markdown(clip(markup.strip_delimiters(text), limit))
        return _NEWLINES.sub("\n\n", shown.strip("\n"))

    def _angled(self, inner: str, *, rich: bool) -> str:
        ref = markup.reference(inner)
        match ref.kind:
            case "user":
                return self._mention(ref.target, ref.label, rich=rich)
            case "channel":
                name = self.channels.get(ref.target)
                if name is not None:
                    return "#" + (escape_markdown(name) if rich else name)
                return "#" + (ref.label or ref.target)
            case "special":
                return ref.label or "@" + ref.target
            case "link":
                shown = ref.label or ref.target.removeprefix("mailto:")
                if not rich:
                    label, target = ref.label, ref.target
                    return f"{shown} ({target})" if label and label != target else target
                target = ref.target[:URL].replace("(", "%28").replace(")", "%29")
                return f"[{_escape_link_text(shown)}]({target})"
        return f"<{inner}>"

    def _mention(self, user_id: str, label: str, *, rich: bool) -> str:
        name = _clean_name(self.names.get(user_id) or label)
        if not name:
            return "someone"
        if not rich:
            return "@" + name
        tag = f"<at>{name}</at>"
        self.mentions.setdefault(
            user_id, {"type": "mention", "text": tag, "mentioned": {"id": user_id, "name": name}}
        )
        return tag

    def entities(self, card: Json) -> list[Json]:
        """Mention entities for the mentions still in the card (a trimmed card has fewer)."""
        shown = json.dumps(card.get("body", []), ensure_ascii=False)
        return [
            e
            for e in self.mentions.values()
            if json.dumps(e["text"], ensure_ascii=False)[1:-1] in shown
        ]


# Intraword underscores (snake_case) never make emphasis, and Teams has no code spans.
_MARKDOWN_SPECIAL = re.compile(r"([\\*\[\]~]|(?<!\w)_|_(?!\w))")
_LIST_MARK = re.compile(r"^([ \t]*)([-+>#])(?=\s|$)", re.MULTILINE)
_NUMBERED = re.compile(r"^([ \t]*\d+)\.(?=\s|$)", re.MULTILINE)
_AT_TAG = re.compile(r"<(/?at\b)", re.IGNORECASE)


def escape_markdown(text: str) -> str:
    """Text shown as typed in an Adaptive Card TextBlock: no emphasis, link, list or mention."""
    text = _MARKDOWN_SPECIAL.sub(r"\\\1", text)
    text = _LIST_MARK.sub(r"\1\\\2", text)
    text = _NUMBERED.sub(r"\1\\.", text)
    return _AT_TAG.sub("<\u200b\\1", text)


def summary(message: Message, *, names: Mapping[str, str] | None = None) -> str:
    """The notification line of a message: what a person reads, no markup, no ids."""
    return _Text(names).plain(message.text, SUMMARY)


def _clean_name(name: str) -> str:
    return " ".join(name.replace("<", "").replace(">", "").split())[:NAME]


def _escape_link_text(text: str) -> str:
    return text.replace("[", "(").replace("]", ")")


# -- blocks ---------------------------------------------------------------------------------


def _text_block(text: str, **style: Any) -> Json:
    return {"type": "TextBlock", "text": text or " ", "wrap": True, **style}


def _action(b: Button, t: _Text) -> Json:
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


def _action_rows(buttons: Sequence[Button], t: _Text) -> list[Json]:
    actions = [_action(b, t) for b in buttons[:BUTTONS]]
    return [
        {"type": "ActionSet", "actions": actions[i : i + ACTIONS_PER_ROW]}
        for i in range(0, len(actions), ACTIONS_PER_ROW)
    ]


def _fields(fields: Sequence[str], t: _Text) -> list[Json]:
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


def _block(b: Block, t: _Text) -> list[Json]:
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


def _body(blocks: Sequence[Block], t: _Text) -> list[Json]:
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


def _finish(card: Json, t: _Text) -> Json:
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
    t = _Text(names, channels)
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


def _choices(pairs: Sequence[tuple[str, str]], t: _Text) -> list[Json]:
    return [
        {"title": clip(label, OPTION_TITLE) or value, "value": value[:OPTION_VALUE]}
        for value, label in pairs[:OPTIONS]
    ]


def _input(
    f: FormField, shown: tuple[str, ...], channels: Sequence[tuple[str, str]], t: _Text
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
            if shown and shown[0] and _ISO_DATE.fullmatch(shown[0]):
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
    t: _Text,
) -> list[Json]:
    out = [_input(f, _initial(f, values), channels, t)]
    if isinstance(f, ChannelField) and not channels and not out[0]["choices"]:
        out.append(_text_block(NO_CHANNELS, size="Small", isSubtle=True, spacing="None"))
    if f.hint:
        out.append(_text_block(t.literal(f.hint, LABEL), size="Small", isSubtle=True))
    if error:
        out.append(_error(error, t))
    return out


def _error(message: str, t: _Text) -> Json:
    return _text_block(t.literal(message, LABEL), color="Attention", size="Small", spacing="Small")


def form_card(
    form: Form,
    *,
    errors: Mapping[str, str] | None = None,
    values: Mapping[str, FormValue] | None = None,
    channels: Sequence[tuple[str, str]] = (),
) -> dict[str, Any]:
    """The Adaptive Card for a neutral form; Action.Submit carries the form id and state."""
    t = _Text()
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


# -- submits --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Pressed:
    """A button press: the action name and its value."""

    action: str
    value: str


@dataclass(frozen=True, slots=True)
class Submitted:
    """A submitted form: values in the same shapes the Slack adapter produces."""

    form_id: str
    state: str
    values: dict[str, FormValue]


class BadSubmit(ValueError):
    """Submit data that is not ours or is malformed; the message is safe to show."""


# Keys Teams itself may add to a submit's data.
_TEAMS_KEYS = frozenset({"msteams"})


def _string(data: Mapping[str, Any], key: str, limit: int, *, required: bool) -> str:
    value = data.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise BadSubmit(f"{key!r} must be text, not {type(value).__name__}")
    if required and not value:
        raise BadSubmit(f"{key!r} is empty")
    if len(value) > limit:
        raise BadSubmit(f"{key!r} is longer than {limit} characters")
    return value


def parse_submit(
    data: Mapping[str, Any], forms: Mapping[str, Form] | None = None
) -> Pressed | Submitted:
    """Card submit data back to a neutral press or submission; BadSubmit on anything else.

    With `forms`, a submission is also checked against its form: only its fields, within
    their lengths, choices among its options, dates as dates.
    """
    if not isinstance(data, Mapping):
        raise BadSubmit(f"submit data must be an object, not {type(data).__name__}")
    if "form" in data and "action" in data:
        raise BadSubmit("submit data has both 'form' and 'action'")
    if "action" in data:
        extra = set(data) - {"action", "value"} - _TEAMS_KEYS
        if extra:
            raise BadSubmit(f"unexpected keys in a button press: {', '.join(sorted(extra))}")
        return Pressed(
            action=_string(data, "action", ACTION_NAME, required=True),
            value=_string(data, "value", BUTTON_VALUE, required=False),
        )
    if "form" not in data:
        raise BadSubmit("submit data has neither 'action' nor 'form'")
    form_id = _string(data, "form", NAME, required=True)
    state = _string(data, "state", STATE, required=False)
    inputs = {k: v for k, v in data.items() if k not in ("form", "state") and k not in _TEAMS_KEYS}
    if len(inputs) > MAX_INPUTS:
        raise BadSubmit(f"more than {MAX_INPUTS} inputs")
    if forms is None:
        return Submitted(form_id, state, _loose_values(inputs))
    form = forms.get(form_id)
    if form is None:
        raise BadSubmit(f"unknown form {form_id!r}")
    return Submitted(form_id, state, _form_values(form, inputs))


def _split_id(key: str) -> tuple[str, str]:
    shape, sep, name = key.partition(":")
    if not sep or shape not in SHAPES or not name or len(name) > NAME:
        raise BadSubmit(f"unexpected input {clip(key, 60)!r}")
    return shape, name


def _raw(key: str, value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise BadSubmit(f"input {clip(key, 60)!r} must be text, not {type(value).__name__}")
    return value


def _shaped(shape: str, name: str, raw: str) -> FormValue:
    """One input's value in the Slack translation's shapes."""
    match shape:
        case "text":
            if len(raw) > INPUT_MAX:
                raise BadSubmit(f"{name!r} is longer than {INPUT_MAX} characters")
            return raw
        case "one":
            if len(raw) > OPTION_VALUE:
                raise BadSubmit(f"{name!r} is longer than {OPTION_VALUE} characters")
            return raw
        case "many":
            picked = tuple(v for v in raw.split(",") if v) if raw else ()
            if len(picked) > OPTIONS or any(len(v) > OPTION_VALUE for v in picked):
                raise BadSubmit(f"{name!r} has too many or too long choices")
            return picked
    if not raw:
        return None
    try:
        if not _ISO_DATE.fullmatch(raw):
            raise ValueError(raw)
        date.fromisoformat(raw)
    except ValueError:
        raise BadSubmit(f"{name!r} is not a date (YYYY-MM-DD)") from None
    return raw


def _loose_values(inputs: Mapping[str, Any]) -> dict[str, FormValue]:
    values: dict[str, FormValue] = {}
    for key, value in inputs.items():
        shape, name = _split_id(key)
        values[name] = _shaped(shape, name, _raw(key, value))
    return values


def _form_values(form: Form, inputs: Mapping[str, Any]) -> dict[str, FormValue]:
    by_id = {input_id(f): f for f in form.fields}
    unknown = [k for k in inputs if k not in by_id]
    if unknown:
        raise BadSubmit(f"{clip(unknown[0], 60)!r} is not a field of {form.form_id!r}")
    values: dict[str, FormValue] = {}
    for key, f in by_id.items():
        shape, name = _split_id(key)
        raw = _raw(key, inputs.get(key))
        match f:
            case TextField(max_length=limit) if limit is not None and len(raw) > limit:
                raise BadSubmit(f"{f.label!r} is longer than {limit} characters")
            case SelectField(options=options):
                allowed = [o.value[:OPTION_VALUE] for o in options[:OPTIONS]]
                values[name] = _among(f, raw, allowed)
                continue
        values[name] = _shaped(shape, name, raw)
    return values


def _among(f: SelectField, raw: str, allowed: Sequence[str]) -> FormValue:
    """Chosen option values; Teams joins a multi-select's with commas, which values may hold."""
    if not raw:
        return () if f.multi else ""
    if not f.multi:
        if raw not in allowed:
            raise BadSubmit(f"{f.label!r}: {clip(raw, 60)!r} is not one of the choices")
        return raw
    parts = raw.split(",")
    picked: list[str] = []
    i = 0
    while i < len(parts):
        for j in range(len(parts), i, -1):
            candidate = ",".join(parts[i:j])
            if candidate in allowed:
                picked.append(candidate)
                i = j
                break
        else:
            raise BadSubmit(f"{f.label!r}: {clip(parts[i], 60)!r} is not one of the choices")
    return tuple(picked)


__all__ = [
    "CARD_BUDGET",
    "CARD_VERSION",
    "CONTENT_TYPE",
    "BadSubmit",
    "Pressed",
    "Submitted",
    "attachment",
    "form_card",
    "input_id",
    "message_card",
    "parse_submit",
]
