"""The neutral message model: what handlers say, whatever the chat surface.

Handlers build `Message`s and `Form`s; adapters render them as Block Kit, Adaptive Cards
or terminal text. The models are frozen and serialise to JSON, because messages sent
later travel through the outbox.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Button(_Frozen):
    """A button that triggers `action` with `value`, or opens `url` (or both)."""

    label: str
    action: str
    value: str = ""
    url: str | None = None
    style: Literal["primary", "danger"] | None = None


class Header(_Frozen):
    kind: Literal["header"] = "header"
    text: str


class Section(_Frozen):
    """Markdown-ish text (`*bold*`, `_italic_`, links), optional two-column fields."""

    kind: Literal["section"] = "section"
    text: str = ""
    fields: tuple[str, ...] = ()
    button: Button | None = None


class Buttons(_Frozen):
    kind: Literal["buttons"] = "buttons"
    buttons: tuple[Button, ...]


class Context(_Frozen):
    """A small, muted line: who, when, why."""

    kind: Literal["context"] = "context"
    text: str


class Image(_Frozen):
    kind: Literal["image"] = "image"
    url: str
    alt: str
    title: str | None = None


class Divider(_Frozen):
    kind: Literal["divider"] = "divider"


Block = Annotated[
    Header | Section | Buttons | Context | Image | Divider, Field(discriminator="kind")
]


class Message(_Frozen):
    """A message: `text` is the notification and plain-text fallback."""

    text: str
    blocks: tuple[Block, ...] = ()


class Option(_Frozen):
    value: str
    label: str


class TextField(_Frozen):
    kind: Literal["text"] = "text"
    name: str
    label: str
    initial: str = ""
    placeholder: str = ""
    hint: str = ""
    multiline: bool = False
    max_length: int | None = None
    optional: bool = False


class SelectField(_Frozen):
    kind: Literal["select"] = "select"
    name: str
    label: str
    options: tuple[Option, ...]
    initial: tuple[str, ...] = ()
    multi: bool = False
    hint: str = ""
    optional: bool = False


class UserField(_Frozen):
    """Pick people of the workspace (values are platform user ids)."""

    kind: Literal["user"] = "user"
    name: str
    label: str
    initial: tuple[str, ...] = ()
    multi: bool = False
    hint: str = ""
    optional: bool = False


class ChannelField(_Frozen):
    """Pick channels of the workspace (values are platform channel ids)."""

    kind: Literal["channel"] = "channel"
    name: str
    label: str
    initial: tuple[str, ...] = ()
    multi: bool = False
    hint: str = ""
    optional: bool = False


class DateField(_Frozen):
    kind: Literal["date"] = "date"
    name: str
    label: str
    initial: str = ""  # ISO date
    hint: str = ""
    optional: bool = False


FormField = Annotated[
    TextField | SelectField | UserField | ChannelField | DateField, Field(discriminator="kind")
]


class Form(_Frozen):
    """A modal or dialog: `intro` blocks above the fields, `state` carried back on submit."""

    form_id: str
    title: str
    submit_label: str = "Submit"
    intro: tuple[Block, ...] = ()
    fields: tuple[FormField, ...] = ()
    state: str = ""


FormValue = str | tuple[str, ...] | None
