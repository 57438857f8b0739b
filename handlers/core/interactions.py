"""What reaches the handlers from a chat surface, and what they answer.

Adapters turn platform payloads into these; the router hands them to a handler and the
adapter renders the `Reply` in whatever way its platform answers a user.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from handlers.core.messages import Form, FormValue, Message, notice

Platform = Literal["slack", "teams", "console"]


@dataclass(frozen=True, slots=True)
class Actor:
    """The person who acted, as their platform describes them."""

    user_id: str
    name: str = ""
    email: str | None = None
    tz: str | None = None
    title: str | None = None  # job title, when the platform knows it
    is_platform_admin: bool = False
    is_bot: bool = False
    # False when the platform could not be asked (an outage): the fields above are then
    # guesses, and must not overwrite what is known about the person.
    profile_known: bool = True


@dataclass(frozen=True, slots=True)
class Origin:
    """Where an interaction happened: enough to find the workspace and to answer."""

    platform: Platform
    workspace_id: str  # Slack team id, Teams tenant id, console workspace name
    workspace_name: str = ""
    channel_id: str | None = None
    # Where an asynchronous reply to the actor goes (opaque to handlers): a Slack
    # response_url, a thread, a DM. None means the adapter answers synchronously.
    reply_to: dict[str, Any] | None = None
    can_open_forms: bool = True


@dataclass(frozen=True, slots=True)
class SourceMessage:
    """A chat message an interaction started from (a message shortcut)."""

    text: str
    permalink: str | None = None
    author_id: str | None = None


@dataclass(frozen=True, slots=True)
class Command:
    """A typed command: `/flywheel request topic`, `@Flywheel help`, a shortcut."""

    origin: Origin
    actor: Actor
    name: str
    text: str = ""
    source: SourceMessage | None = None


@dataclass(frozen=True, slots=True)
class Action:
    """A button press."""

    origin: Origin
    actor: Actor
    action: str
    value: str = ""


@dataclass(frozen=True, slots=True)
class Submission:
    """A submitted form: values by field name, plus the state the form carried."""

    origin: Origin
    actor: Actor
    form_id: str
    values: dict[str, FormValue]
    state: str = ""


@dataclass(frozen=True, slots=True)
class Event:
    """Something that happened without a command: the home tab opened, the app installed."""

    origin: Origin
    actor: Actor
    name: str
    data: dict[str, Any] = field(default_factory=dict)


Interaction = Command | Action | Submission | Event


@dataclass(frozen=True, slots=True)
class Reply:
    """A handler's answer to the actor.

    `message` is shown to the actor only; `form` opens a form; for a submission, `errors`
    keeps the form open with inline errors, `form` replaces it and otherwise it closes.
    `private` marks an answer about the actor alone (their links, their figures): asked in
    a shared place (a channel mention), it goes to them directly instead of the thread.
    """

    message: Message | None = None
    form: Form | None = None
    errors: dict[str, str] = field(default_factory=dict)
    private: bool = False

    @classmethod
    def say(cls, text: str) -> Reply:
        return cls(message=notice(text))

    @classmethod
    def invalid(cls, errors: dict[str, str]) -> Reply:
        return cls(errors=errors)


NO_REPLY = Reply()
