"""The neutral message model: what handlers say, whatever the chat surface.

Handlers build `Message`s and `Form`s; adapters render them as Block Kit, Adaptive Cards
or terminal text. The models are frozen and serialise to JSON, because messages sent
later travel through the outbox.

Texts come in two kinds. `RichText` (a section, its fields, a context line, a message's
notification text) reads Flywheel's markup where it is `Markup` and shows everything else
literally (see `handlers.core.markup`). `PlainText` (headers, labels, titles, options, hints,
a field's value) is never markup. A message read back from the outbox is validated with
`STORED` as its context, so the user text it carries keeps its marks.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainValidator, ValidationInfo

from handlers.core.markup import Markup, literal, strip_delimiters

STORED = {"stored": True}
"""Validation context for a message or form read back from storage: its marks are its own."""


def _rich(value: Any, info: ValidationInfo) -> Markup:
    if isinstance(value, Markup):
        return value
    if not isinstance(value, str):
        raise ValueError(f"text must be a string, not {type(value).__name__}")
    if info.context and info.context.get("stored"):
        return Markup(value)
    return literal(value)


def _plain(value: Any) -> Any:
    if isinstance(value, Markup):
        raise ValueError("this text is shown as typed: markup is not allowed here")
    return strip_delimiters(value) if isinstance(value, str) else value


RichText = Annotated[str, PlainValidator(_rich)]
"""Markup where it is `Markup`; any other text is shown literally."""

PlainText = Annotated[str, BeforeValidator(_plain)]
"""Shown as typed, on every surface."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    @classmethod
    def stored(cls, payload: Any) -> Self:
        """The model from its JSON form as stored (in the outbox, or a form kept for later)."""
        return cls.model_validate(payload, context=STORED)


class Button(_Frozen):
    """A button that triggers `action` with `value`, or opens `url` (or both)."""

    label: PlainText
    action: str
    value: str = ""
    url: str | None = None
    style: Literal["primary", "danger"] | None = None


class Header(_Frozen):
    kind: Literal["header"] = "header"
    text: PlainText


class Section(_Frozen):
    """Markdown-ish text (`*bold*`, `_italic_`, links), optional two-column fields."""

    kind: Literal["section"] = "section"
    text: RichText = ""
    fields: tuple[RichText, ...] = ()
    button: Button | None = None


class Buttons(_Frozen):
    kind: Literal["buttons"] = "buttons"
    buttons: tuple[Button, ...]


class ContextLine(_Frozen):
    """A small, muted line: who, when, why."""

    kind: Literal["context"] = "context"
    text: RichText


class Image(_Frozen):
    kind: Literal["image"] = "image"
    url: str
    alt: PlainText
    title: PlainText | None = None


class Divider(_Frozen):
    kind: Literal["divider"] = "divider"


Block = Annotated[
    Header | Section | Buttons | ContextLine | Image | Divider, Field(discriminator="kind")
]


class Message(_Frozen):
    """A message: `text` is the notification and plain-text fallback."""

    text: RichText
    blocks: tuple[Block, ...] = ()


def notice(text: str, detail: str | None = None) -> Message:
    """A short notice: one line, and with `detail` that line over a quieter one."""
    if detail is None:
        return Message(text=text)
    return Message(text=text, blocks=(Section(text=text), ContextLine(text=detail)))


class Option(_Frozen):
    value: str
    label: PlainText


class TextField(_Frozen):
    kind: Literal["text"] = "text"
    name: str
    label: PlainText
    initial: PlainText = ""
    placeholder: PlainText = ""
    hint: PlainText = ""
    multiline: bool = False
    max_length: int | None = None
    optional: bool = False


class SelectField(_Frozen):
    kind: Literal["select"] = "select"
    name: str
    label: PlainText
    options: tuple[Option, ...]
    initial: tuple[str, ...] = ()
    multi: bool = False
    hint: PlainText = ""
    optional: bool = False


class UserField(_Frozen):
    """Pick people of the workspace (values are platform user ids)."""

    kind: Literal["user"] = "user"
    name: str
    label: PlainText
    initial: tuple[str, ...] = ()
    multi: bool = False
    hint: PlainText = ""
    optional: bool = False


class ChannelField(_Frozen):
    """Pick channels of the workspace (values are platform channel ids)."""

    kind: Literal["channel"] = "channel"
    name: str
    label: PlainText
    initial: tuple[str, ...] = ()
    multi: bool = False
    hint: PlainText = ""
    optional: bool = False


class DateField(_Frozen):
    kind: Literal["date"] = "date"
    name: str
    label: PlainText
    initial: str = ""  # ISO date
    hint: PlainText = ""
    optional: bool = False


FormField = Annotated[
    TextField | SelectField | UserField | ChannelField | DateField, Field(discriminator="kind")
]


class Form(_Frozen):
    """A modal or dialog: `intro` blocks above the fields, `state` carried back on submit."""

    form_id: str
    title: PlainText
    submit_label: PlainText = "Submit"
    intro: tuple[Block, ...] = ()
    fields: tuple[FormField, ...] = ()
    state: str = ""


FormValue = str | tuple[str, ...] | None
