"""Flywheel's neutral markup as Adaptive Card markdown, with the mentions it makes.

A person's text is escaped so it shows as typed; only the links and mentions Flywheel
itself wrote become markdown links and `<at>` mentions.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from adapters.teams.sizes import NAME, SUMMARY, TEXT, URL, clip
from handlers.core import markup
from handlers.core.messages import Message

Json = dict[str, Any]

_TOKEN = re.compile("\x01(\\d+)\x01")
_NEWLINES = re.compile(r"\n+")


class CardText:
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
    """The notification line of a message: what a person reads, no markup, no ids.

    Mentions become `@Name`; an `<at>` tag a person typed is broken as on the card, so a
    client never draws the notification as a mention either."""
    return _AT_TAG.sub("<\u200b\\1", CardText(names).plain(message.text, SUMMARY))


def _clean_name(name: str) -> str:
    return " ".join(name.replace("<", "").replace(">", "").split())[:NAME]


def _escape_link_text(text: str) -> str:
    return text.replace("[", "(").replace("]", ")")
