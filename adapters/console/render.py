"""Terminal text for the neutral message model: what Block Kit is to Slack, this is to a shell.

Markdown-ish emphasis becomes plain text (or ANSI bold and dim on a real terminal),
platform mentions become `@name`, and buttons become numbers the person can type.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TextIO

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

DIVIDER = "-" * 40
# How much of a long current value a prompt shows before the ellipsis.
DEFAULT_SHOWN = 60
# Short limits (a time zone, a number) go without saying; long ones are worth knowing.
LIMIT_WORTH_SAYING = 100


@dataclass(frozen=True, slots=True)
class Style:
    """ANSI styling on a terminal; none when the output is a file, a pipe or a test."""

    ansi: bool = False

    def bold(self, text: str) -> str:
        return f"\x1b[1m{text}\x1b[22m" if self.ansi and text else text

    def dim(self, text: str) -> str:
        return f"\x1b[2m{text}\x1b[22m" if self.ansi and text else text

    def italic(self, text: str) -> str:
        return f"\x1b[3m{text}\x1b[23m" if self.ansi and text else text


PLAIN = Style()


# Terminal control sequences a person could type: escapes, bells, carriage returns.
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def shown(text: str) -> str:
    """Text shown as typed, without the control characters that would drive the terminal."""
    return _CONTROLS.sub("", text)


def inline(text: str, style: Style = PLAIN) -> str:
    """Rich text as terminal text: emphasis dropped (or styled), mentions as @name.

    User text inside it is shown as typed.
    """

    def read(skeleton: str) -> str:
        skeleton = markup.ANGLED.sub(_angled, skeleton)
        skeleton = markup.BOLD.sub(lambda m: style.bold(m.group(1)), skeleton)
        skeleton = markup.ITALIC.sub(lambda m: style.italic(m.group(1)), skeleton)
        return markup.STRIKE.sub(lambda m: m.group(1), skeleton)

    return markup.render(text, read, shown)


def _angled(match: re.Match[str]) -> str:
    """Slack-style references: `<@id>`, `<#channel|name>`, `<!here>`, `<url|label>`."""
    ref = markup.reference(match.group(1))
    match ref.kind:
        case "user":
            return "@" + (ref.label or ref.target)
        case "channel":
            return "#" + (ref.label or ref.target)
        case "special":
            return ref.label or "@" + ref.target
        case "link":
            return (
                f"{ref.label} ({ref.target})"
                if ref.label and ref.label != ref.target
                else ref.target
            )
    return match.group(0)


def _field(text: str, style: Style) -> str:
    """A section field on one line: Slack's `*Label*\nvalue` columns read as `Label: value`."""
    lines = [line.strip() for line in inline(text, style).splitlines() if line.strip()]
    return ": ".join(lines) if len(lines) == 2 else " ".join(lines)


@dataclass(frozen=True, slots=True)
class Rendered:
    """A message as lines, and its buttons in the order of their numbers."""

    lines: tuple[str, ...]
    buttons: tuple[Button, ...]


def button_label(button: Button, number: int | None, style: Style = PLAIN) -> str:
    """`[2] +1`; a link button says where it goes."""
    mark = "" if number is None else f"[{number}] "
    arrow = " ↗" if button.url else ""
    label = shown(button.label)
    label = style.bold(label) if button.style == "primary" else label
    return f"{mark}{label}{arrow}"


def render_blocks(
    blocks: Iterable[Block], *, first: int | None = 1, style: Style = PLAIN
) -> Rendered:
    """Blocks as lines; buttons are numbered from `first` (unnumbered when it is None)."""
    lines: list[str] = []
    buttons: list[Button] = []

    def number(button: Button) -> str:
        buttons.append(button)
        return button_label(button, None if first is None else first + len(buttons) - 1, style)

    for block in blocks:
        match block:
            case Header(text=text):
                lines.append(style.bold(f"== {shown(text)} =="))
            case Section(text=text, fields=fields, button=button):
                body = inline(text, style).splitlines() if text else []
                body += [f"  {_field(field, style)}" for field in fields]
                if button is not None:
                    pressed = number(button)
                    if body:
                        body[-1] = f"{body[-1]}  {pressed}"
                    else:
                        body.append(pressed)
                lines += body
            case Buttons(buttons=row):
                lines.append("   ".join(number(b) for b in row))
            case ContextLine(text=text):
                lines += [style.dim(line) for line in inline(text, style).splitlines()]
            case Image(url=url, alt=alt, title=title):
                lines.append(f"[image: {shown(title or alt)}] {url}")
            case Divider():
                lines.append(style.dim(DIVIDER))
    return Rendered(tuple(lines), tuple(buttons))


def render_message(message: Message, *, first: int = 1, style: Style = PLAIN) -> Rendered:
    """A message as terminal lines; without blocks its text is the message."""
    if message.blocks:
        return render_blocks(message.blocks, first=first, style=style)
    return Rendered(tuple(inline(message.text, style).splitlines() or [""]), ())


def form_heading(form: Form, style: Style = PLAIN) -> list[str]:
    """The form's title and intro, before its questions."""
    lines = [style.bold(f"== {shown(form.title)} ==")]
    lines += render_blocks(form.intro, first=None, style=style).lines
    lines.append(
        style.dim(
            "Enter keeps the answer in [brackets], - clears an optional one, /cancel abandons."
        )
    )
    return lines


def field_heading(field: FormField, *, answered: bool = False, style: Style = PLAIN) -> list[str]:
    """The question for one field: its label, what it takes, and its choices.

    A placeholder is an example for an empty field; once there is an answer it is noise.
    """
    notes: list[str] = ["optional"] if field.optional else []
    if field.hint:
        notes.append(_note(field.hint))
    match field:
        case TextField(placeholder=placeholder, max_length=limit):
            if placeholder and not answered:
                notes.append(f"e.g. {shown(placeholder)}")
            if limit and limit >= LIMIT_WORTH_SAYING:
                notes.append(f"up to {limit} characters")
        case SelectField(multi=multi):
            notes.append("numbers, comma-separated" if multi else "a number")
        case UserField(multi=multi):
            notes.append("names, comma-separated" if multi else "a name")
        case ChannelField(multi=multi):
            notes.append("channel names, comma-separated" if multi else "a channel name")
        case DateField():
            notes.append("YYYY-MM-DD")
    label = style.bold(shown(field.label))
    lines = [f"{label} ({'; '.join(notes)})" if notes else label]
    if isinstance(field, SelectField):
        lines += [f"  [{i}] {shown(o.label)}" for i, o in enumerate(field.options, 1)]
    return lines


def _note(hint: str) -> str:
    """A hint as a note in parentheses: no closing full stop, no capital unless a name's."""
    hint = shown(hint).strip().rstrip(".")
    if len(hint) > 1 and hint[0].isupper() and hint[1].islower():
        hint = hint[0].lower() + hint[1:]
    return hint


def field_prompt(shown_default: str) -> str:
    """The input prompt under a question, with the answer Enter keeps."""
    shown_default = shown(shown_default)
    if not shown_default:
        return "  > "

    if len(shown_default) > DEFAULT_SHOWN:
        shown_default = shown_default[: DEFAULT_SHOWN - 1].rstrip() + "…"
    return f"  [{shown_default}] > "


def show_default(field: FormField, default: str | Sequence[str] | None) -> str:
    """How a field's current value reads in its prompt."""
    if default is None:
        return ""
    values = (default,) if isinstance(default, str) else tuple(default)
    values = tuple(v for v in values if v)
    match field:
        case SelectField(options=options):
            positions = {o.value: str(i) for i, o in enumerate(options, 1)}
            return ",".join(positions[v] for v in values if v in positions)
        case UserField():
            return ", ".join(f"@{v}" for v in values)
        case ChannelField():
            return ", ".join(f"#{v}" for v in values)
    return " ".join(values)


class Screen:
    """The terminal the console writes to, and the buttons its latest output showed.

    Numbers count up across everything printed in one turn (the reply and the messages
    delivered after it), so each number names one button until the next turn.
    """

    def __init__(self, out: TextIO, style: Style = PLAIN) -> None:
        self.out = out
        self.style = style
        self.buttons: list[tuple[Button, str | None]] = []
        self._fresh = True

    def new_turn(self) -> None:
        """The next output starts numbering at 1; earlier numbers stop working."""
        self._fresh = True

    def say(self, *lines: str) -> None:
        """Print lines of the console's own (not the bot's) text."""
        self.out.write("".join(f"{line}\n" for line in lines))
        self.out.flush()

    def show(self, message: Message, *, heading: str = "", owner: str | None = None) -> None:
        """Print a message, numbering its buttons; `owner` is whose DM it is, if anyone's."""
        if self._fresh:
            self.buttons = []
            self._fresh = False
        rendered = render_message(message, first=len(self.buttons) + 1, style=self.style)
        self.buttons += [(button, owner) for button in rendered.buttons]
        lines = list(rendered.lines)
        if heading:
            lead = self.style.dim(heading)
            lines = [f"{lead} {lines[0]}".rstrip(), *(f"  {line}" for line in lines[1:])]
        self.say(*lines)
