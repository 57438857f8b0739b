"""Suggested captions: varied between colleagues, never the same one twice in a row.

Twenty colleagues posting identical words look like a campaign, not like people. Each
recipient of a post gets one caption from a pool: variants written for their role (when
an LLM is configured), the captions the reviewer approved, and light variations of those,
so the pool always holds at least two. A `Rotation` hands them out in delivery order and
never gives the next person the caption the previous one got.

AI variants are written once per post, for the most common roles among its recipients,
off the acknowledgement path; each must pass the workspace's compliance rules, and the
person sharing sees and edits the text before anything is posted.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Annotated, Final

import structlog
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from handlers.core.ports import LLM, LLMError
from handlers.drafting.compliance import Content, Rules, check
from handlers.drafting.prompts import load_prompt
from handlers.sharing.composer import shorten

log = structlog.get_logger(__name__)

CAPTION_MAX: Final = 280
# Variants are written for this many of the most common roles among a post's recipients.
ROLES_MAX: Final = 6
ROLE_CHARS: Final = 60
EVERYONE: Final = ""
# Openers that turn one approved caption into several, when a post has only one.
OPENERS: Final = (
    "Worth a read:",
    "From our team:",
    "Useful if this is on your plate:",
    "We get asked this a lot:",
)


def role_key(title: str | None) -> str:
    """A job title as a pool key: case and spacing do not make a different role."""
    return " ".join((title or "").lower().split())[:ROLE_CHARS]


def pool(captions: Sequence[str], title: str, variants: Sequence[str] = ()) -> list[str]:
    """The captions one recipient may get, role variants first; always at least two."""
    found: list[str] = []
    seen: set[str] = set()
    for caption in (*variants, *captions):
        text = caption.strip()
        if text and text.casefold() not in seen:
            seen.add(text.casefold())
            found.append(text)
    base = found[0] if found else shorten(title, CAPTION_MAX)
    for opener in OPENERS:
        if len(found) >= 2:
            break
        text = shorten(f"{opener} {base}", CAPTION_MAX)
        if text.casefold() not in seen:
            seen.add(text.casefold())
            found.append(text)
    return found


class Rotation:
    """Hands out captions in turn, so two people in a row never get the same one."""

    def __init__(self) -> None:
        self._turn = 0
        self._last: str | None = None

    def next(self, choices: Sequence[str]) -> str:
        if not choices:
            raise ValueError("a rotation needs at least one caption")
        for step in range(len(choices)):
            caption = choices[(self._turn + step) % len(choices)]
            if caption != self._last:
                break
        self._turn += 1
        self._last = caption
        return caption


# -- AI variants --------------------------------------------------------------------------

Caption = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=CAPTION_MAX)
]


class _RoleCaptions(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    role: str
    captions: Annotated[list[Caption], Field(min_length=2, max_length=2)]


class VariantsAnswer(BaseModel):
    """The answer to prompts/caption_variants.yml."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    roles: list[_RoleCaptions]


def common_roles(titles: Iterable[str | None], limit: int = ROLES_MAX) -> list[str]:
    """The most common role keys among recipients, most common first (ties by name)."""
    counts: dict[str, int] = {}
    for title in titles:
        key = role_key(title)
        if key:
            counts[key] = counts.get(key, 0) + 1
    return sorted(counts, key=lambda key: (-counts[key], key))[:limit]


async def write_variants(
    llm: LLM,
    *,
    title: str,
    summary: str,
    captions: Sequence[str],
    tags: Sequence[str],
    roles: Sequence[str],
    rules: Rules,
) -> dict[str, list[str]]:
    """Caption variants by role key; {} when the model gives nothing usable."""
    if not roles:
        return {}
    prompt = load_prompt("caption_variants").render(
        caption_max=CAPTION_MAX,
        post={
            "title": title,
            "summary": summary,
            "approved_captions": list(captions),
            "tags": list(tags),
            "roles": list(roles),
        },
    )
    for attempt in (1, 2):
        try:
            answer = VariantsAnswer.model_validate(await llm.complete_json(prompt))
        except LLMError as error:
            log.warning("captions.llm_failed", attempt=attempt, reason=error.reason)
            if error.reason != "malformed" or attempt == 2:
                return {}
            continue
        except ValidationError as error:
            log.warning("captions.answer_invalid", attempt=attempt, problems=error.error_count())
            if attempt == 2:
                return {}
            continue
        return _usable(answer, roles, rules)
    return {}


def _usable(answer: VariantsAnswer, roles: Sequence[str], rules: Rules) -> dict[str, list[str]]:
    """Variants for the roles asked about, each passing the compliance rules."""
    wanted = set(roles)
    # A caption carries no body, so only the rules about words and links apply to it.
    rules = Rules(banned_phrases=rules.banned_phrases, allowed_domains=rules.allowed_domains)
    variants: dict[str, list[str]] = {}
    for entry in answer.roles:
        key = role_key(entry.role)
        if key not in wanted:
            continue
        kept = [
            caption
            for caption in entry.captions
            if not check(Content(title="", body="", canonical_url=None, captions=(caption,)), rules)
        ]
        if kept:
            variants[key] = kept
    return variants
