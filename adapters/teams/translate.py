"""Bot Framework activities to neutral interactions, and the checks that come first.

`check` reads the raw JSON once, before authentication's result is used and before the
SDK sees it, so the translators below can rely on the fields every activity of that kind
is guaranteed to carry.
"""

from __future__ import annotations

import html
import re
from dataclasses import replace
from typing import Any

from botbuilder.schema import Activity

from adapters.teams.references import CHANNEL, GROUP, PERSONAL, Seen
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

Body = dict[str, Any]

CHANNEL_ID = "msteams"
KINDS = frozenset({PERSONAL, CHANNEL, GROUP})
# Activities Flywheel acts on; others (typing, reactions…) are acknowledged and ignored.
TYPES = frozenset(
    {
        "message",
        "invoke",
        "conversationUpdate",
        "installationUpdate",
        "messageReaction",
        "typing",
        "event",
        "messageUpdate",
        "messageDelete",
        "endOfConversation",
    }
)
DEFAULT_COMMAND = "help"
MAX_TEXT = 40_000
# Fields the SDK and the handler read, with the JSON type each has whenever it is present:
# the SDK copies whatever it is given, and a list where an object belongs fails deep in a
# turn instead of at the door.
OBJECTS = ("from", "conversation", "recipient", "channelData", "channelData.tenant")
STRINGS = (
    "id",
    "name",
    "action",
    "replyToId",
    "locale",
    "localTimezone",
    "textFormat",
    "from.id",
    "from.name",
    "from.aadObjectId",
    "conversation.name",
    "conversation.conversationType",
    "conversation.tenantId",
)
ADDRESSES = ("id", "replyToId", "conversation.id", "from.id", "recipient.id")
_ADDRESS = re.compile(r"[\x21-\x7e]{1,512}")
LISTS_OF_OBJECTS = (
    "membersAdded",
    "membersRemoved",
    "entities",
    "attachments",
    "reactionsAdded",
    "reactionsRemoved",
)

_AT = re.compile(r"<at\b[^>]*>.*?</at>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]+>")
# Mentions that open a message address someone (the bot, a colleague): they are not what
# the message is about. Tags and spaces between them go too.
_LEADING_AT = re.compile(
    r"^(?:\s|&nbsp;|<(?!at\b)[^>]*>)*(?:<at\b[^>]*>.*?</at>(?:\s|&nbsp;|,)*)+",
    re.IGNORECASE | re.DOTALL,
)
_BREAK = re.compile(r"<\s*(br|/p|/div|/li)\s*/?>", re.IGNORECASE)


class MalformedActivity(ValueError):
    """An activity this app cannot understand; answered 400 and never processed."""


# -- the edge: a raw activity is checked before anything else reads it --------------------


def _get(body: Body, path: str) -> Any:
    value: Any = body
    for key in path.split("."):
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _require(body: Body, *paths: str) -> None:
    for path in paths:
        value = _get(body, path)
        if not isinstance(value, str) or not value:
            raise MalformedActivity(f"missing or invalid {path!r}")


def check(body: Any) -> Body:
    """The shape every activity must have, and what its type adds; MalformedActivity if not."""
    if not isinstance(body, dict):
        raise MalformedActivity("the activity is not a JSON object")
    _require(body, "type", "serviceUrl", "channelId", "conversation.id", "recipient.id")
    _check_types(body)
    kind = body["type"]
    if kind not in TYPES:
        raise MalformedActivity(f"unsupported activity type {kind!r}")
    if body["channelId"] != CHANNEL_ID:
        raise MalformedActivity(f"unsupported channel {body['channelId']!r}")
    if not str(body["serviceUrl"]).startswith(("https://", "http://")):
        raise MalformedActivity("'serviceUrl' is not an http(s) URL")
    tenant_from_data = _get(body, "channelData.tenant.id")
    tenant_from_conversation = _get(body, "conversation.tenantId")
    tenant = tenant_from_data or tenant_from_conversation
    if not isinstance(tenant, str) or not tenant:
        raise MalformedActivity("missing tenant id ('channelData.tenant.id')")
    if (
        isinstance(tenant_from_data, str)
        and isinstance(tenant_from_conversation, str)
        and tenant_from_data != tenant_from_conversation
    ):
        raise MalformedActivity("the activity names two different tenants")
    conversation_type = _get(body, "conversation.conversationType") or PERSONAL
    if conversation_type not in KINDS:
        raise MalformedActivity(f"unsupported conversation type {conversation_type!r}")
    if kind in ("message", "invoke"):
        _require(body, "from.id")
    if kind == "message":
        text = body.get("text", "")
        if text is not None and not isinstance(text, str):
            raise MalformedActivity("invalid 'text'")
        if isinstance(text, str) and len(text) > MAX_TEXT:
            raise MalformedActivity("'text' is too long")
        value = body.get("value")
        if value is not None and not isinstance(value, dict):
            raise MalformedActivity("invalid 'value': card submit data is a JSON object")
    if kind == "invoke":
        _require(body, "name")
        value = body.get("value")
        if value is not None and not isinstance(value, dict):
            raise MalformedActivity("invalid 'value'")
    return body


def _check_types(body: Body) -> None:
    # Teams always sends it, and the SDK's Teams handler reads it on every turn.
    if not isinstance(body.get("channelData"), dict):
        raise MalformedActivity("missing or invalid 'channelData': expected an object")
    for path in OBJECTS:
        value = _get(body, path)
        if value is not None and not isinstance(value, dict):
            raise MalformedActivity(f"invalid {path!r}: expected an object")
    data = body.get("channelData") or {}
    for key in ("team", "channel", "settings"):
        value = data.get(key)
        if value is not None and not isinstance(value, dict):
            raise MalformedActivity(f"invalid 'channelData.{key}': expected an object")
    if data.get("eventType") is not None and not isinstance(data["eventType"], str):
        raise MalformedActivity("invalid 'channelData.eventType': expected a string")
    for path in STRINGS:
        value = _get(body, path)
        if value is not None and not isinstance(value, str):
            raise MalformedActivity(f"invalid {path!r}: expected a string")
    for key in LISTS_OF_OBJECTS:
        value = body.get(key)
        if value is not None and not (
            isinstance(value, list) and all(isinstance(item, dict) for item in value)
        ):
            raise MalformedActivity(f"invalid {key!r}: expected a list of objects")
    # These go into the Connector's URLs when the bot answers: Teams' own are printable
    # ASCII without spaces.
    for path in ADDRESSES:
        value = _get(body, path)
        if isinstance(value, str) and not _ADDRESS.fullmatch(value):
            raise MalformedActivity(f"invalid {path!r}: not an id Teams would send")
    for key in ("membersAdded", "membersRemoved"):
        for member in body.get(key) or ():
            if not isinstance(member.get("id"), str) or not member["id"]:
                raise MalformedActivity(f"invalid {key!r}: a member without an id")


# -- who and where ------------------------------------------------------------------------


def tenant_id(activity: Activity) -> str:
    """The tenant: a Teams tenant is a Flywheel workspace."""
    data = activity.channel_data if isinstance(activity.channel_data, dict) else {}
    tenant = (data.get("tenant") or {}).get("id") if isinstance(data.get("tenant"), dict) else None
    return str(tenant or activity.conversation.tenant_id or "")


def conversation_kind(activity: Activity) -> str:
    return str(activity.conversation.conversation_type or PERSONAL)


def team(activity: Activity) -> tuple[str | None, str]:
    """The team (id, name) of a channel activity; (None, "") elsewhere."""
    data = activity.channel_data if isinstance(activity.channel_data, dict) else {}
    found = data.get("team")
    if not isinstance(found, dict) or not found.get("id"):
        return None, ""
    return str(found["id"]), str(found.get("name") or "")


def channel_name(activity: Activity) -> str:
    data = activity.channel_data if isinstance(activity.channel_data, dict) else {}
    channel = data.get("channel")
    if isinstance(channel, dict) and channel.get("name"):
        return str(channel["name"])
    return str(activity.conversation.name or "")


def user_id(activity: Activity) -> str:
    """Who acted: their Entra object id, the id Teams' people picker, mentions and rosters
    all accept and which stays the same across bots; the bot-scoped `29:…` id without one."""
    person = activity.from_property
    if person is None:
        return ""
    return str(person.aad_object_id or person.id or "")


def user_name(activity: Activity) -> str:
    return str(activity.from_property.name or "") if activity.from_property else ""


def seen(activity: Activity, reference: dict[str, Any], *, installed: bool = True) -> Seen:
    """The conversation this activity came from, as a reference worth keeping."""
    kind = conversation_kind(activity)
    team_id, team_name = team(activity)
    name = team_name if kind == CHANNEL else ""
    if kind == CHANNEL:
        channel = channel_name(activity)
        name = f"{team_name} › {channel}" if team_name and channel else channel or team_name
    return Seen(
        conversation_id=str(activity.conversation.id),
        kind=kind,
        tenant_id=tenant_id(activity),
        service_url=str(activity.service_url),
        bot_id=str(activity.recipient.id),
        reference=reference,
        user_id=user_id(activity) if kind == PERSONAL and activity.from_property else None,
        team_id=team_id,
        name=name,
        installed=installed,
    )


def origin(activity: Activity, *, reply: bool = True, dialog: bool = False) -> Origin:
    """Where an activity came from; replies go to the same chat, or the channel thread."""
    kind = conversation_kind(activity)
    reply_to: dict[str, Any] | None = None
    if reply:
        reply_to = (
            {"user": user_id(activity)}
            if kind == PERSONAL
            else {"channel": str(activity.conversation.id)}
        )
    return Origin(
        platform="teams",
        workspace_id=tenant_id(activity),
        channel_id=str(activity.conversation.id),
        reply_to=reply_to,
        # A form is a card only its reader should see: opened in a personal chat or a
        # dialog, or offered as a button elsewhere.
        can_open_forms=dialog or kind == PERSONAL,
    )


# -- text ---------------------------------------------------------------------------------


def plain_text(text: str) -> str:
    """Teams message text as plain words: mentions of the bot and markup removed."""
    text = _BREAK.sub("\n", text)
    text = _TAG.sub("", text)
    return html.unescape(text).strip()


def command_text(activity: Activity) -> str:
    """What the person typed to the bot, without the `@Flywheel` mention."""
    return " ".join(plain_text(_AT.sub(" ", activity.text or "")).split())


def parse_command(text: str) -> tuple[str, str]:
    """`request zero-downtime migrations` → (`request`, `zero-downtime migrations`)."""
    parts = text.strip().split(maxsplit=1)
    if not parts:
        return DEFAULT_COMMAND, ""
    return parts[0].lower(), parts[1].strip() if len(parts) > 1 else ""


def command(activity: Activity, actor: Actor) -> Command:
    """A message to the bot: the first word is the command, the rest its text."""
    name, text = parse_command(command_text(activity))
    return Command(origin=origin(activity), actor=actor, name=name, text=text)


def message_payload(value: Body) -> SourceMessage:
    """The message a message-extension action started from."""
    payload = value.get("messagePayload")
    payload = payload if isinstance(payload, dict) else {}
    found = payload.get("body")
    body: Body = found if isinstance(found, dict) else {}
    author = _get(payload, "from.user.id")
    link = payload.get("linkToMessage")
    return SourceMessage(
        text=plain_text(_LEADING_AT.sub("", str(body.get("content") or ""), count=1)),
        permalink=str(link) if isinstance(link, str) and link.startswith("https://") else None,
        author_id=str(author) if author else None,
    )


def from_message(activity: Activity, actor: Actor, name: str) -> Command:
    """A message action: the command `name`, started from the message it was used on."""
    value = activity.value if isinstance(activity.value, dict) else {}
    return Command(
        origin=origin(activity, reply=False, dialog=True),
        actor=actor,
        name=name,
        source=message_payload(value),
    )


def installed(activity: Activity, actor: Actor) -> Event:
    """The app added to a team, a chat or a person's scope, by `actor`."""
    return Event(origin=origin(activity, reply=False), actor=actor, name="installed")


def first_contact(activity: Activity, actor: Actor) -> Event:
    """A person writing to the bot in its personal chat: the welcome, if they never had it."""
    return Event(origin=origin(activity, reply=False), actor=actor, name="first_contact")


def action(activity: Activity, actor: Actor, name: str, value: str) -> Action:
    """A card button pressed. What it answers is for the presser alone, as on Slack, where
    the answer is ephemeral: Teams has no message only one person in a channel sees, so a
    press in a channel or group chat is answered in the presser's 1:1 chat with the bot."""
    found = origin(activity, reply=False)
    return Action(
        origin=replace(found, reply_to={"user": actor.user_id}),
        actor=actor,
        action=name,
        value=value,
    )


def submission(
    activity: Activity,
    actor: Actor,
    form_id: str,
    values: dict[str, FormValue],
    state: str,
    *,
    reply: bool = True,
) -> Submission:
    # Whatever the form was opened from, what a submission says goes to the person.
    found = origin(activity, reply=reply)
    if reply:
        found = Origin(
            platform=found.platform,
            workspace_id=found.workspace_id,
            channel_id=found.channel_id,
            reply_to={"user": actor.user_id},
            can_open_forms=True,
        )
    return Submission(origin=found, actor=actor, form_id=form_id, values=values, state=state)


def describe(body: Body) -> dict[str, str]:
    """What a log line needs to find an activity again: kind, tenant, user and name."""
    return {
        "kind": str(body.get("type", "")),
        "tenant": str(_get(body, "channelData.tenant.id") or _get(body, "conversation.tenantId")),
        "user": str(_get(body, "from.id") or ""),
        "name": str(body.get("name") or ""),
        "activity_id": str(body.get("id") or ""),
    }
