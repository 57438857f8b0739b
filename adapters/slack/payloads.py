"""Slack's inbound bytes to a checked body: form or JSON, of a kind this app serves, carrying
the fields every payload of that kind must have. Anything else is `MalformedRequest`.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from adapters.inbound import BadJson, load_json

Body = dict[str, Any]

JSON_TYPES = frozenset({"url_verification", "event_callback", "app_rate_limited"})
PAYLOAD_TYPES = frozenset({"block_actions", "view_submission", "shortcut", "message_action"})
# Slack's forms have at most a few dozen fields; a flood of them is not a Slack request.
MAX_FORM_FIELDS = 100


class MalformedRequest(ValueError):
    """A verified body that is not a Slack payload this app understands; answered 400."""


def parse_body(raw: bytes, content_type: str) -> tuple[Body, bool]:
    """Parse and check a request body; returns it and whether it came form-encoded."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedRequest("body is not UTF-8") from None
    if content_type == "application/json":
        body = _json_object(text, "body")
        _check_json(body)
        return body, False
    if content_type == "application/x-www-form-urlencoded":
        try:
            form = dict(parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS))
        except ValueError as error:
            raise MalformedRequest(f"form body: {error}") from None
        if "payload" in form:
            body = _json_object(form["payload"], "payload")
            _check_payload(body)
        else:
            body = form
            _check_form(body)
        return body, True
    raise MalformedRequest(f"unsupported content type {content_type or 'none'!r}")


def _json_object(text: str, what: str) -> Body:
    try:
        value = load_json(text, what)
    except BadJson as bad:
        raise MalformedRequest(str(bad)) from None
    if not isinstance(value, dict):
        raise MalformedRequest(f"{what} is not a JSON object")
    return value


def get(body: Body, path: str) -> Any:
    """The value at a dotted path (`view.state.values`), or None where any step is missing."""
    value: Any = body
    for key in path.split("."):
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _require(body: Body, *paths: str, kind: type = str) -> None:
    for path in paths:
        value = get(body, path)
        if not isinstance(value, kind) or (kind is str and not value):
            raise MalformedRequest(f"missing or invalid {path!r}")


# Fields Bolt and the listeners read, with the JSON type each has whenever it is present
# (null included: Slack sends `"enterprise": null`). Anything else is not from Slack.
_STRINGS = (
    "team_id",
    "enterprise_id",
    "api_app_id",
    "trigger_id",
    "callback_id",
    "response_url",
    "team.id",
    "team.domain",
    "user.id",
    "user.team_id",
    "user.username",
    "user.name",
    "enterprise.id",
    "channel.id",
    "container.type",
    "view.id",
    "view.type",
    "view.team_id",
    "view.callback_id",
    "view.private_metadata",
    "message.ts",
    "message.thread_ts",
    "message.user",
)
EVENT_STRINGS = {
    "app_mention": ("user", "channel", "ts", "thread_ts", "bot_id", "text", "team"),
    "app_home_opened": ("user", "channel", "tab"),
}
_OBJECTS = ("event", "team", "user", "enterprise", "channel", "container", "view", "message")
_LISTS = ("authorizations", "actions", "view.blocks", "response_urls")


def _check_types(body: Body) -> None:
    for path in _STRINGS:
        if get(body, path) is not None and not isinstance(get(body, path), str):
            raise MalformedRequest(f"invalid {path!r}: expected a string")
    for path in _OBJECTS:
        if body.get(path) is not None and not isinstance(body[path], dict):
            raise MalformedRequest(f"invalid {path!r}: expected an object")
    for path in _LISTS:
        value = get(body, path)
        if value is not None and not (
            isinstance(value, list) and all(isinstance(item, dict) for item in value)
        ):
            raise MalformedRequest(f"invalid {path!r}: expected a list of objects")
    for authorization in body.get("authorizations") or ():
        for key in ("enterprise_id", "team_id", "user_id"):
            if authorization.get(key) is not None and not isinstance(authorization[key], str):
                raise MalformedRequest(f"invalid 'authorizations.{key}': expected a string")


def _check_json(body: Body) -> None:
    _check_types(body)
    kind = body.get("type")
    if not isinstance(kind, str) or kind not in JSON_TYPES:
        raise MalformedRequest(f"unsupported event type {kind!r}")
    if kind == "url_verification":
        _require(body, "challenge")
    elif kind == "event_callback":
        _require(body, "event_id", "event.type")
        if not org_wide(body):
            _require(body, "team_id")
        event = body["event"]
        # Other events give some of these other types (`user_change` carries a user object).
        if event["type"] in EVENT_STRINGS:
            for key in EVENT_STRINGS[event["type"]]:
                if event.get(key) is not None and not isinstance(event[key], str):
                    raise MalformedRequest(f"invalid 'event.{key}': expected a string")
        if event["type"] == "app_mention":
            _require(body, "event.user", "event.channel", "event.ts")
            if not isinstance(event.get("text", ""), str):
                raise MalformedRequest("missing or invalid 'event.text'")
        elif event["type"] == "app_home_opened":
            _require(body, "event.user")


def org_wide(body: Body) -> bool:
    """An Enterprise Grid event of the whole organisation: it names no workspace (`team_id`),
    only the enterprise, so no workspace of Flywheel's can act on it."""
    enterprise = body.get("enterprise_id")
    return (
        body.get("type") == "event_callback"
        and not body.get("team_id")
        and isinstance(enterprise, str)
        and bool(enterprise)
    )


def _check_payload(body: Body) -> None:
    _check_types(body)
    kind = body.get("type")
    if not isinstance(kind, str) or kind not in PAYLOAD_TYPES:
        raise MalformedRequest(f"unsupported interaction type {kind!r}")
    _require(body, "user.id")
    if not (get(body, "team.id") or get(body, "user.team_id")):
        raise MalformedRequest("missing 'team.id'")
    if kind == "block_actions":
        _require(body, "trigger_id")
        actions = body.get("actions")
        if not isinstance(actions, list) or not actions or not isinstance(actions[0], dict):
            raise MalformedRequest("missing or invalid 'actions'")
        _require(actions[0], "action_id")
    elif kind == "view_submission":
        _require(body, "view.callback_id", "view.type")
        _require(body, "view.state.values", kind=dict)
        for block in body["view"]["state"]["values"].values():
            if not isinstance(block, dict) or not all(isinstance(e, dict) for e in block.values()):
                raise MalformedRequest("invalid 'view.state.values'")
    else:
        _require(body, "callback_id", "trigger_id")
        if kind == "message_action":
            _require(body, "channel.id", "message.ts")
            if not isinstance(get(body, "message.text") or "", str):
                raise MalformedRequest("invalid 'message.text'")


def _check_form(body: Body) -> None:
    if body.get("ssl_check"):
        return
    _require(body, "command", "team_id", "user_id", "trigger_id")


def kind(body: Body) -> str:
    """`command`, `ssl_check` or the payload's own type (`event_callback`, `block_actions`…)."""
    if "command" in body:
        return "command"
    if body.get("ssl_check"):
        return "ssl_check"
    return str(body.get("type", ""))
