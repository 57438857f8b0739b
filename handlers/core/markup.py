"""The markup inside the neutral message model's texts, and the line between it and user text.

Handlers write Slack-style markup: `*bold*`, `_italic_`, `~strike~`, and angled references
`<@user>`, `<#channel|name>`, `<!here>`, `<https://…|label>`. Each adapter renders it its
own way; the grammar lives here once.

Text a person typed (a topic, a title, a caption, a name) is data, never markup. Only
`Markup` is markup: Flywheel's own wording, built with `md()`, `mention()` and `link()`.
Any other text that reaches a message is user text, and is carried inside invisible
delimiters (two Unicode private-use characters) so that every renderer, even one reading
the message back from the outbox, shows it literally. Forgetting to mark text shows
asterisks; it can never ping a channel.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal, SupportsIndex
from urllib.parse import quote

BOLD = re.compile(r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])")
ITALIC = re.compile(r"(?<![\w_])_(?=\S)([^_\n]+?)(?<=\S)_(?![\w_])")
STRIKE = re.compile(r"(?<![\w~])~(?=\S)([^~\n]+?)(?<=\S)~(?![\w~])")
# The inside of an angled reference is group 1.
ANGLED = re.compile(r"<([^<>\s][^<>]*)>")

OPEN = "\ue000"
CLOSE = "\ue001"
_DELIMITERS = re.compile(f"[{OPEN}{CLOSE}]")
# An opener without its closer (a text cut short) is still user text, to the end.
_LITERAL = re.compile(f"{OPEN}([^{OPEN}{CLOSE}]*)(?:{CLOSE}|$)")
# Where a renderer holds user text aside while it reads the markup around it.
_HELD = re.compile("\x00(\\d+)\x00")
# What may stand in a link's address: no spaces, and nothing that ends or splits a reference.
_UNSAFE_IN_URL = re.compile(r"[\s<>|\"\x00-\x1f\x7f]")
_SAFE_ID = re.compile(r"[\w.:@\-]+")
# What some renderer reads as markup (Slack's entities and references, emphasis, Teams'
# links, escapes and list markers) or a terminal obeys (control characters).
_ACTIVE = re.compile(
    r"[&<>*~\[\]\\\x00-\x08\x0b-\x1f\x7f-\x9f]|(?<!\w)_|_(?!\w)|^[ \t]*(?:[-+#>]|\d+\.)(?:\s|$)",
    re.MULTILINE,
)


LINK_SCHEMES = ("https://", "http://", "mailto:")


class Markup(str):
    """Text in the neutral markup, written by Flywheel; whatever is joined to it is user text.

    Like markupsafe's `Markup`, joining, adding and formatting keep markup markup and mark
    everything else as user text. Other `str` methods return plain `str`, which a message
    then shows literally: the safe way round.
    """

    __slots__ = ()

    def __add__(self, other: str) -> Markup:
        return Markup(str.__add__(self, _part(other)))

    def __radd__(self, other: str) -> Markup:
        return Markup(str.__add__(_part(other), self))

    def __mul__(self, count: SupportsIndex) -> Markup:
        return Markup(str.__mul__(self, count))

    def join(self, items: Iterable[str]) -> Markup:
        return Markup(str.join(self, (_part(item) for item in items)))

    def format(self, *args: Any, **kwargs: Any) -> Markup:
        return Markup(_FORMATTER.vformat(self, args, kwargs))

    def __repr__(self) -> str:
        return f"Markup({str.__repr__(self)})"


class _Formatter(string.Formatter):
    def format_field(self, value: Any, format_spec: str) -> str:
        if isinstance(value, Markup):
            return str(value)
        if isinstance(value, int | float) and not isinstance(value, bool):
            # Digits, signs and separators can never be markup.
            return format(value, format_spec)
        return _literal(format(value, format_spec))


_FORMATTER = _Formatter()


def md(template: str, *args: Any, **kwargs: Any) -> Markup:
    """Flywheel's own markup `template`, with the values filled in as user text.

    `md("*{}* is live", title)` makes the title bold, and only bold: `<!channel>` or
    `*` in the title stay characters. Values that are `Markup` (a `mention`, a `link`,
    another `md`) are kept as markup.
    """
    return Markup(template).format(*args, **kwargs)


def labelled(label: str, value: object) -> Markup:
    """A figure or fact under its bold label, as in a section's two columns."""
    return md("*{}*\n{}", label, value)


def quoted(text: str) -> Markup:
    """User text as a quotation, every line of it."""
    return Markup("\n").join(md("> {}", line) for line in text.split("\n"))


def literal(text: str) -> Markup:
    """User text as a piece of markup that every renderer shows character for character."""
    return Markup(_literal(text))


def _literal(text: str) -> str:
    cleaned = strip_delimiters(text)
    if not _ACTIVE.search(cleaned):
        # Nothing in it that any renderer could read as markup: it reads the same unmarked,
        # and stays readable in stored payloads and logs.
        return cleaned
    return f"{OPEN}{cleaned}{CLOSE}"


def _part(value: str) -> str:
    return str(value) if isinstance(value, Markup) else _literal(value)


def strip_delimiters(text: str) -> str:
    """`text` without the characters that mark user text (nobody can type their way out)."""
    return _DELIMITERS.sub("", text)


def mention(user_id: str) -> Markup:
    """A mention of a person by platform id; each adapter shows it its own way."""
    if not _SAFE_ID.fullmatch(user_id):
        return literal("someone")
    return Markup(f"<@{user_id}>")


def channel_mention(channel_id: str) -> Markup:
    """A reference to a channel by platform id, shown by its name where the platform can."""
    if not _SAFE_ID.fullmatch(channel_id):
        return literal("a channel")
    return Markup(f"<#{channel_id}>")


def link(url: str, label: str = "") -> Markup:
    """A link to `url` showing `label` (user text); a URL that isn't web or mail is not linked."""
    if not url.lower().startswith(LINK_SCHEMES):
        return literal(label or url)
    safe = _UNSAFE_IN_URL.sub(lambda m: quote(m.group(), safe=""), url)
    if not label:
        return Markup(f"<{strip_delimiters(safe)}>")
    return Markup(f"<{strip_delimiters(safe)}|") + label + Markup(">")


def clip(text: str, limit: int) -> str:
    """Cut `text` to `limit` characters a person sees, marking the cut with an ellipsis.

    The marks around user text take no room; a cut inside user text leaves it user text.
    """
    if len(text) <= limit:
        return text
    seen = 0
    for index, char in enumerate(text):
        if char not in (OPEN, CLOSE):
            seen += 1
            if seen == limit:
                if not any(c not in (OPEN, CLOSE) for c in text[index + 1 :]):
                    return text
                return text[:index] + "…"
    return text


def plain(text: str) -> str:
    """A text as a person reads it: user text as typed, the markup around it left out."""
    return render(text, _unmark, lambda held: held)


def render(text: str, markup: Callable[[str], str], user: Callable[[str], str]) -> str:
    """Render `text`: `markup` reads Flywheel's markup, `user` escapes each piece of user text.

    The user's pieces are held aside while `markup` runs, so no rule of the markup can
    reach into them, then put back as `user` escaped them.
    """
    if OPEN not in text and CLOSE not in text:
        # No user text in it: most of Flywheel's own wording.
        return markup(text)
    held: list[str] = []

    def hold(match: re.Match[str]) -> str:
        held.append(match.group(1))
        return f"\x00{len(held) - 1}\x00"

    skeleton = _LITERAL.sub(hold, strip_stray_closers(text))
    return _HELD.sub(lambda m: user(held[int(m.group(1))]), markup(skeleton))


def strip_stray_closers(text: str) -> str:
    """Drop closing delimiters that close nothing (a cut or a hand-made string)."""
    if CLOSE not in text:
        return text
    kept: list[str] = []
    inside = False
    start = 0
    for found in _DELIMITERS.finditer(text):
        if found.group() == OPEN:
            inside = True
        elif inside:
            inside = False
        else:
            kept.append(text[start : found.start()])
            start = found.end()
    kept.append(text[start:])
    return "".join(kept)


def _unmark(text: str) -> str:
    text = ANGLED.sub(lambda m: _plain_reference(reference(m.group(1))), text)
    text = BOLD.sub(r"\1", text)
    text = ITALIC.sub(r"\1", text)
    return STRIKE.sub(r"\1", text)


def _plain_reference(ref: Reference) -> str:
    match ref.kind:
        case "user":
            return "@" + (ref.label or ref.target)
        case "channel":
            return "#" + (ref.label or ref.target)
        case "special":
            return ref.label or "@" + ref.target
        case "link":
            return ref.label or ref.target.removeprefix("mailto:")
    return ref.target


@dataclass(frozen=True, slots=True)
class Reference:
    """One angled reference: what it points at, and the label it carries ("" if none)."""

    kind: Literal["user", "channel", "special", "link", "other"]
    target: str  # the user or channel id, the special word, or the URL
    label: str


def reference(inner: str) -> Reference:
    """What `<inner>` refers to."""
    target, _, label = inner.partition("|")
    if target.startswith("@"):
        return Reference("user", target[1:], label.lstrip("@"))
    if target.startswith("#"):
        return Reference("channel", target[1:], label.lstrip("#"))
    if target.startswith("!"):
        return Reference("special", target[1:].split("^")[0], label)
    if "://" in target or target.startswith("mailto:"):
        return Reference("link", target, label)
    return Reference("other", inner, "")
