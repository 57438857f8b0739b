"""Slack payloads to neutral interactions, and submitted view state to form values.

The edge checks a payload's shape once (`payloads.parse_body`), so the translators here can
read the fields every payload of that kind is guaranteed to carry.
"""

from __future__ import annotations

import re
from typing import Any

from adapters.slack.payloads import Body, get, kind
from handlers.core import markup
from handlers.core.interactions import (
    Action,
    Actor,
    Command,
    Event,
    Origin,
    SourceMessage,
    Submission,
)
from handlers.core.messages import FormValue

DEFAULT_COMMAND = "help"

_MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")
_REFERENCE = re.compile(r"<([^<>]*)>")


def describe(body: Body) -> dict[str, str]:
    """What a log line needs to find the request again: kind, workspace, user and name."""
    k = kind(body)
    described = {"kind": k, "team": team_id(body), "user": user_id(body), "name": _name(body, k)}
    if k == "event_callback":
        described["event_id"] = str(body.get("event_id", ""))
    return described


def _name(body: Body, k: str) -> str:
    actions = body.get("actions")
    match k:
        case "command":
            return f"{body.get('command')} {_sub(str(body.get('text', '')))}"
        case "event_callback":
            return str(get(body, "event.type") or "")
        case "block_actions" if isinstance(actions, list) and actions:
            first = actions[0]
            return str(first.get("action_id", "")) if isinstance(first, dict) else ""
        case "view_submission":
            return str(get(body, "view.callback_id") or "")
        case "shortcut" | "message_action":
            return str(body.get("callback_id", ""))
    return ""


# -- who and where ------------------------------------------------------------------------


def team_id(body: Body) -> str:
    """The workspace: slash commands and events carry `team_id`, interactivity a `team`."""
    return str(
        body.get("team_id")
        or get(body, "team.id")
        or get(body, "user.team_id")
        or get(body, "view.team_id")
        or ""
    )


def user_id(body: Body) -> str:
    """Who acted: commands carry `user_id`, interactivity a `user`, events `event.user`."""
    return str(body.get("user_id") or get(body, "user.id") or get(body, "event.user") or "")


def user_name(body: Body) -> str:
    """The name the payload itself gives, for when the profile cannot be fetched."""
    name = body.get("user_name") or get(body, "user.username") or get(body, "user.name")
    return str(name or "")


def _team_domain(body: Body) -> str:
    return str(body.get("team_domain") or get(body, "team.domain") or "")


def _channel_id(body: Body) -> str | None:
    channel = body.get("channel_id") or get(body, "channel.id") or get(body, "event.channel")
    return str(channel) if channel else None


def origin(
    body: Body, *, reply_to: dict[str, Any] | None = None, can_open_forms: bool = True
) -> Origin:
    """Where a payload came from: the workspace (team id and domain) and the channel."""
    return Origin(
        platform="slack",
        workspace_id=team_id(body),
        workspace_name=_team_domain(body),
        channel_id=_channel_id(body),
        reply_to=reply_to,
        can_open_forms=can_open_forms,
    )


def _reply_to_actor(body: Body) -> dict[str, Any]:
    """Answer through the response URL when Slack gave one, else by DM."""
    url = body.get("response_url")
    return {"response_url": url, "user": user_id(body)} if url else {"user": user_id(body)}


# -- payloads to interactions -------------------------------------------------------------


def _sub(text: str) -> str:
    return text.strip().split(maxsplit=1)[0].lower() if text.strip() else DEFAULT_COMMAND


def typed(text: str) -> str:
    """Slack's formatted text as the person typed it: references readable, entities decoded.

    Slack sends what people type with `&`, `<` and `>` as entities and mentions and links
    as references; Flywheel keeps the words, which every adapter then shows as text.
    """
    return (
        _REFERENCE.sub(_readable, text)
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
    )


def _readable(match: re.Match[str]) -> str:
    ref = markup.reference(match.group(1))
    match ref.kind:
        case "user":
            return "@" + (ref.label or ref.target)
        case "channel":
            return "#" + (ref.label or ref.target)
        case "special":
            return ref.label or "@" + ref.target
        case "link":
            target = ref.target.removeprefix("mailto:")
            return f"{ref.label} ({target})" if ref.label and ref.label != target else target
    return match.group(0)


def parse_command(text: str) -> tuple[str, str]:
    """`request zero-downtime migrations` → (`request`, `zero-downtime migrations`)."""
    parts = text.strip().split(maxsplit=1)
    if not parts:
        return DEFAULT_COMMAND, ""
    return parts[0].lower(), parts[1].strip() if len(parts) > 1 else ""


def slash_command(body: Body, actor: Actor) -> Command:
    """`/flywheel <sub> [text]`; the answer is the acknowledgement itself."""
    name, text = parse_command(typed(str(body.get("text", ""))))
    return Command(origin=origin(body), actor=actor, name=name, text=text)


def shortcut(body: Body, actor: Actor, *, name: str, permalink: str | None = None) -> Command:
    """A shortcut stands for the command `name`; a message shortcut starts from the message."""
    source = None
    if body["type"] == "message_action":
        message = body["message"]
        source = SourceMessage(
            text=typed(str(message.get("text") or "")),
            permalink=permalink,
            author_id=message.get("user"),
        )
    return Command(
        origin=origin(body, reply_to=_reply_to_actor(body)),
        actor=actor,
        name=name,
        source=source,
    )


def strip_mentions(text: str, bot_user_id: str | None) -> str:
    """Remove the bot's mentions; without its id, the leading mention is taken to be it."""
    if bot_user_id:
        stripped = _MENTION.sub(lambda m: "" if m.group(1) == bot_user_id else m.group(0), text)
    elif text.lstrip().startswith("<@"):
        stripped = _MENTION.sub("", text.lstrip(), count=1)
    else:
        stripped = text
    return " ".join(stripped.split())


def mention(body: Body, actor: Actor, *, bot_user_id: str | None) -> Command:
    """`@Flywheel request …`: parsed like the slash command, answered in the thread."""
    event = body["event"]
    name, text = parse_command(typed(strip_mentions(str(event.get("text") or ""), bot_user_id)))
    thread = event.get("thread_ts") or event["ts"]
    return Command(
        origin=origin(
            body, reply_to={"channel": event["channel"], "thread": thread}, can_open_forms=False
        ),
        actor=actor,
        name=name,
        text=text,
    )


def direct_message(body: Body, actor: Actor) -> Command | Event | None:
    """A message written to the bot in its Messages tab: a command, as in Teams; a reply
    in a thread of the bot's (a ping) is for that thread's flow. None for what is not a
    person writing: edits, deletions, bots, and the bot's own messages."""
    event = body["event"]
    if event.get("channel_type") != "im" or event.get("subtype") or event.get("bot_id"):
        return None
    text = typed(str(event.get("text") or "")).strip()
    channel = str(event.get("channel") or "")
    thread = event.get("thread_ts")
    if thread and thread != event.get("ts"):
        return Event(
            origin=origin(body, reply_to={"channel": channel, "thread": thread}),
            actor=actor,
            name="thread_reply",
            data={"channel": channel, "thread": str(thread), "text": text},
        )
    name, rest = parse_command(text)
    return Command(
        # Answered in the same chat; a form is offered as a button (no trigger to open one).
        origin=origin(body, reply_to={"user": actor.user_id}, can_open_forms=False),
        actor=actor,
        name=name,
        text=rest,
    )


def first_contact(interaction: Command | Event) -> Event:
    """A person writing to the bot directly: the welcome, if they never had it."""
    return Event(origin=interaction.origin, actor=interaction.actor, name="first_contact")


def home_opened(body: Body, actor: Actor) -> Event | None:
    """The home tab opened; the messages tab is not an event Flywheel acts on."""
    if body["event"].get("tab", "home") != "home":
        return None
    return Event(
        origin=origin(body, reply_to={"user": actor.user_id}), actor=actor, name="home_opened"
    )


def action_value(action: Body) -> str:
    """A button's value, or the option chosen in a select placed in a message."""
    if "value" in action:
        return str(action["value"] or "")
    selected = action.get("selected_option")
    return str(selected.get("value", "")) if isinstance(selected, dict) else ""


def block_action(body: Body, actor: Actor) -> Action:
    """A button press; Slack sends one action per `block_actions` payload."""
    action = body["actions"][0]
    return Action(
        origin=origin(body, reply_to=_reply_to_actor(body)),
        actor=actor,
        action=str(action["action_id"]),
        value=action_value(action),
    )


def from_modal(body: Body) -> bool:
    """True when a button was pressed inside a modal (a new form is pushed onto it)."""
    return bool(get(body, "view.type") == "modal")


def view_submission(body: Body, actor: Actor) -> Submission:
    """A submitted modal: its callback id is the form id, its metadata the form's state."""
    view = body["view"]
    return Submission(
        origin=origin(body, reply_to={"user": actor.user_id}),
        actor=actor,
        form_id=str(view["callback_id"]),
        values=form_values(view["state"]["values"]),
        state=str(view.get("private_metadata") or ""),
    )


# -- view state to form values ------------------------------------------------------------


def form_values(state: dict[str, dict[str, Body]]) -> dict[str, FormValue]:
    """Values by field name: Flywheel's input blocks are named after their field."""
    values: dict[str, FormValue] = {}
    for block_id, elements in state.items():
        for element in elements.values():
            values[block_id] = element_value(element)
    return values


def _options(selected: Any) -> tuple[str, ...]:
    if not isinstance(selected, list):
        return ()
    return tuple(str(o["value"]) for o in selected if isinstance(o, dict) and "value" in o)


def _ids(selected: Any) -> tuple[str, ...]:
    return tuple(str(x) for x in selected) if isinstance(selected, list) else ()


def element_value(element: Body) -> FormValue:
    """One input element's value: text and single picks as str, multi picks as a tuple."""
    match element.get("type"):
        case "plain_text_input" | "email_text_input" | "url_text_input" | "number_input":
            return str(element.get("value") or "")
        case "static_select" | "external_select" | "radio_buttons":
            option = element.get("selected_option")
            return str(option.get("value", "")) if isinstance(option, dict) else ""
        case "multi_static_select" | "multi_external_select" | "checkboxes":
            return _options(element.get("selected_options"))
        case "users_select":
            return str(element.get("selected_user") or "")
        case "multi_users_select":
            return _ids(element.get("selected_users"))
        case "conversations_select":
            return str(element.get("selected_conversation") or "")
        case "multi_conversations_select":
            return _ids(element.get("selected_conversations"))
        case "channels_select":
            return str(element.get("selected_channel") or "")
        case "multi_channels_select":
            return _ids(element.get("selected_channels"))
        case "datepicker":
            return str(element["selected_date"]) if element.get("selected_date") else None
        case "timepicker":
            return str(element["selected_time"]) if element.get("selected_time") else None
    return None


def input_block_ids(view: Body) -> list[str]:
    """The block ids of a view's inputs, in order."""
    blocks = view.get("blocks")
    if not isinstance(blocks, list):
        return []
    return [
        str(b["block_id"])
        for b in blocks
        if isinstance(b, dict) and b.get("type") == "input" and b.get("block_id")
    ]


def view_errors(view: Body, errors: dict[str, str]) -> dict[str, str]:
    """Errors keyed by input block; Slack refuses the response if a key names no block,
    so errors about fields the view lacks are shown on its first input."""
    ids = input_block_ids(view)
    known = {k: v for k, v in errors.items() if k in ids}
    stray = [v for k, v in errors.items() if k not in ids]
    if stray and ids:
        first = ids[0]
        known[first] = " ".join(filter(None, [known.get(first, ""), *stray]))
    return known
