"""Block Kit rendering of the neutral model, within Block Kit's published limits.

Text over a limit is cut with an ellipsis rather than rejected by Slack with
`invalid_blocks`, which would lose the whole message.

User text in mrkdwn is escaped as Slack prescribes (`&`, `<`, `>`), so `<!channel>` or
`<https://evil.example|Reset your password>` typed by a person is shown, never obeyed.
Plain-text objects are never parsed by Slack and carry user text as it is.
"""

from __future__ import annotations

import re
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
    Header,
    Image,
    Message,
    Section,
    SelectField,
    TextField,
    UserField,
)

MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
SECTION_TEXT = 3000
SECTION_FIELDS = 10
FIELD_TEXT = 2000
HEADER_TEXT = 150
BUTTON_TEXT = 75
BUTTON_VALUE = 2000
URL = 3000
ACTIONS_ELEMENTS = 25
CONTEXT_TEXT = 3000
FALLBACK_TEXT = 3000
VIEW_TITLE = 24
VIEW_BUTTON = 24
PRIVATE_METADATA = 3000
LABEL = 2000
PLACEHOLDER = 150
OPTION_TEXT = 75
OPTION_VALUE = 150
SELECT_OPTIONS = 100
INPUT_MAX = 3000

Json = dict[str, Any]


def clip(text: str, limit: int) -> str:
    """Cut `text` to `limit` characters, marking the cut with an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def plain(text: str, limit: int) -> Json:
    return {"type": "plain_text", "text": clip(text, limit) or " ", "emoji": True}


_PARTIAL_ENTITY = re.compile(r"&[a-z]{0,3}$")


def escape(text: str) -> str:
    """User text for mrkdwn: Slack's three control characters as entities."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def text(value: str, limit: int) -> str:
    """Neutral rich text as mrkdwn: Flywheel's markup as is, user text escaped, within `limit`."""
    rendered = markup.render(value, lambda skeleton: skeleton, escape)
    if len(rendered) <= limit:
        return rendered
    # A cut inside `&amp;` would show a stray `&am`.
    return _PARTIAL_ENTITY.sub("", rendered[: limit - 1]) + "…"


def mrkdwn(value: str, limit: int) -> Json:
    return {"type": "mrkdwn", "text": text(value, limit) or " "}


def button(b: Button) -> Json:
    element: Json = {
        "type": "button",
        "text": plain(b.label, BUTTON_TEXT),
        "action_id": b.action,
    }
    if b.value:
        element["value"] = clip(b.value, BUTTON_VALUE)
    if b.url:
        element["url"] = b.url[:URL]
    if b.style:
        element["style"] = b.style
    return element


def block(b: Block) -> Json:
    match b:
        case Header(text=text):
            return {"type": "header", "text": plain(text, HEADER_TEXT)}
        case Section(text=text, fields=fields, button=accessory):
            out: Json = {"type": "section"}
            if text or not fields:
                out["text"] = mrkdwn(text, SECTION_TEXT)
            if fields:
                out["fields"] = [mrkdwn(f, FIELD_TEXT) for f in fields[:SECTION_FIELDS]]
            if accessory is not None:
                out["accessory"] = button(accessory)
            return out
        case Buttons(buttons=buttons):
            return {"type": "actions", "elements": [button(x) for x in buttons[:ACTIONS_ELEMENTS]]}
        case ContextLine(text=text):
            return {"type": "context", "elements": [mrkdwn(text, CONTEXT_TEXT)]}
        case Image(url=url, alt=alt, title=title):
            image: Json = {"type": "image", "image_url": url[:URL], "alt_text": clip(alt, 2000)}
            if title:
                image["title"] = plain(title, 2000)
            return image
        case Divider():
            return {"type": "divider"}
    raise TypeError(f"unknown block {b!r}")


def blocks(items: tuple[Block, ...], limit: int = MAX_MESSAGE_BLOCKS) -> list[Json]:
    """Render blocks; past the limit, the last one says that some were left out."""
    rendered = [block(b) for b in items]
    if len(rendered) > limit:
        rendered = [*rendered[: limit - 1], {"type": "context", "elements": [mrkdwn("…", 10)]}]
    return rendered


def message(m: Message) -> Json:
    """`chat.postMessage` / `chat.update` arguments for a message."""
    return {"text": text(m.text, FALLBACK_TEXT), "blocks": blocks(m.blocks)}


def home_view(m: Message) -> Json:
    return {"type": "home", "blocks": blocks(m.blocks, MAX_VIEW_BLOCKS)}


def _optional_hint(f: FormField, element: Json) -> Json:
    out: Json = {
        "type": "input",
        "block_id": f.name,
        "label": plain(f.label, LABEL),
        "optional": f.optional,
        "element": {**element, "action_id": f.name},
    }
    if f.hint:
        out["hint"] = plain(f.hint, LABEL)
    return out


def _option(value: str, label: str) -> Json:
    return {"text": plain(label, OPTION_TEXT), "value": value[:OPTION_VALUE]}


def field(f: FormField) -> Json:
    match f:
        case TextField():
            element: Json = {"type": "plain_text_input", "multiline": f.multiline}
            if f.initial:
                element["initial_value"] = f.initial[: f.max_length or INPUT_MAX]
            if f.placeholder:
                element["placeholder"] = plain(f.placeholder, PLACEHOLDER)
            # Slack enforces max_length itself; we still validate, to give our own message.
            element["max_length"] = min(f.max_length or INPUT_MAX, INPUT_MAX)
            return _optional_hint(f, element)
        case SelectField():
            options = [_option(o.value, o.label) for o in f.options[:SELECT_OPTIONS]]
            chosen = [o for o in options if o["value"] in f.initial]
            element = {
                "type": "multi_static_select" if f.multi else "static_select",
                "options": options,
            }
            if chosen:
                if f.multi:
                    element["initial_options"] = chosen
                else:
                    element["initial_option"] = chosen[0]
            return _optional_hint(f, element)
        case UserField():
            element = {"type": "multi_users_select" if f.multi else "users_select"}
            if f.initial:
                element["initial_users" if f.multi else "initial_user"] = (
                    list(f.initial) if f.multi else f.initial[0]
                )
            return _optional_hint(f, element)
        case ChannelField():
            element = {
                "type": "multi_conversations_select" if f.multi else "conversations_select",
                "filter": {"include": ["public", "private"], "exclude_bot_users": True},
            }
            if f.initial:
                key = "initial_conversations" if f.multi else "initial_conversation"
                element[key] = list(f.initial) if f.multi else f.initial[0]
            return _optional_hint(f, element)
        case DateField():
            element = {"type": "datepicker"}
            if f.initial:
                element["initial_date"] = f.initial
            return _optional_hint(f, element)
    raise TypeError(f"unknown field {f!r}")


def modal(form: Form) -> Json:
    """A modal view for `views.open` or a `response_action: update`."""
    view: Json = {
        "type": "modal",
        "callback_id": form.form_id,
        "title": plain(form.title, VIEW_TITLE),
        "close": plain("Cancel", VIEW_BUTTON),
        "blocks": blocks((*form.intro,), MAX_VIEW_BLOCKS - len(form.fields))
        + [field(f) for f in form.fields],
    }
    if form.fields:
        view["submit"] = plain(form.submit_label, VIEW_BUTTON)
    if form.state:
        view["private_metadata"] = form.state[:PRIVATE_METADATA]
    return view
