"""Small pieces of wording every feature uses: counts, cut-off texts, form values."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from handlers.core.messages import FormValue
from handlers.core.quiet_hours import zone
from handlers.core.workspace_settings import load
from storage.models import Member, Workspace


def plural(n: int, noun: str, nouns: str | None = None) -> str:
    """`1 share`, `2,000 shares` (or `nouns` where adding an s is wrong)."""
    return f"{n:,} {noun if n == 1 else nouns or noun + 's'}"


def clip(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, with an ellipsis when it was cut."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def first(value: FormValue) -> str:
    """A single-choice or text field's value, "" when empty."""
    if isinstance(value, tuple):
        return value[0] if value else ""
    return value or ""


def joined(value: FormValue) -> str:
    """A field's value as text, a multi-choice joined with commas."""
    if isinstance(value, tuple):
        return ", ".join(value)
    return value or ""


def their_zone(member: Member, workspace: Workspace) -> ZoneInfo:
    """The zone a person reads dates and times in: their own, else the workspace's."""
    return zone(member.tz or load(workspace).timezone)
