"""The markup inside the neutral message model's texts, for every renderer to read alike.

Handlers write Slack-style markup: `*bold*`, `_italic_`, `~strike~`, and angled references
`<@user>`, `<#channel|name>`, `<!here>`, `<https://…|label>`. Each adapter renders it its
own way (Block Kit takes it as is); the grammar lives here once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

BOLD = re.compile(r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])")
ITALIC = re.compile(r"(?<![\w_])_(?=\S)([^_\n]+?)(?<=\S)_(?![\w_])")
STRIKE = re.compile(r"(?<![\w~])~(?=\S)([^~\n]+?)(?<=\S)~(?![\w~])")
# The inside of an angled reference is group 1.
ANGLED = re.compile(r"<([^<>\s][^<>]*)>")


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
