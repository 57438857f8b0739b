"""Drafting help: an outline, a first draft and share captions, from the AI or a template.

With an LLM, three prompts run in turn (outline → first draft → captions), each answer
checked against the models below, which mirror the prompt's JSON schema and add what
strict structured output cannot express (lengths, distinct captions). A malformed or
non-matching answer is asked for once more; a second one, or a service failure, is
`AiUnavailable` with a sentence for the expert, and nothing of the earlier steps is
returned. Without an LLM, `template_draft` builds a structured outline from the request.
These calls take seconds: callers run them off the acknowledgement path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any, Final, TypeVar

import structlog
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
)

from handlers.core.errors import DomainError
from handlers.core.ports import LLM, LLMError, LLMFailure
from handlers.drafting.prompts import load_prompt

log = structlog.get_logger(__name__)

# LinkedIn's post limit, and what a Slack modal's text input holds.
BODY_MAX: Final = 3000
TITLE_MAX: Final = 150
# Short enough for X, so one caption works on every network.
CAPTION_MAX: Final = 280
CAPTION_COUNT: Final = 3
SECTIONS_MIN: Final = 3
SECTIONS_MAX: Final = 7
SECTION_MAX: Final = 200
# The length asked for: well under BODY_MAX, since models overshoot word counts.
BODY_WORDS: Final = 350
# Bounds on what the request sends to the model, so a pasted transcript cannot blow the
# context window or the bill; the start of a long text carries its gist.
TOPIC_CHARS: Final = 500
CONTEXT_CHARS: Final = 6000
NOTES_CHARS: Final = 6000
BIO_CHARS: Final = 1500
NAME_CHARS: Final = 120

AI_LABEL: Final = "AI-assisted first draft — edit before submitting"
TEMPLATE_LABEL: Final = "Template outline — no AI configured"

_UNCHANGED = "your draft is unchanged"
MESSAGES: Final[dict[LLMFailure, str]] = {
    "rate_limited": (
        f"The AI service is busy right now (rate limited) — {_UNCHANGED}; "
        "try again in a few minutes or write it by hand."
    ),
    "unavailable": (
        "The AI service is having trouble right now (it failed or could not be reached) — "
        f"{_UNCHANGED}; try again later or write it by hand."
    ),
    "timeout": (
        f"The AI service took too long to answer — {_UNCHANGED}; "
        "try again in a moment or write it by hand."
    ),
    "rejected": (
        "The AI service refused the request, so its settings need an admin's attention — "
        f"{_UNCHANGED}; write it by hand for now."
    ),
    "refused": (
        f"The AI declined to write this piece — {_UNCHANGED}; write it by hand, "
        "or adjust your notes and try again."
    ),
    "malformed": (
        "The AI answered twice with something that was not a usable draft — "
        f"{_UNCHANGED}; try again or write it by hand."
    ),
}
# Retried once: a fresh sample usually fixes a garbled answer; service failures are not,
# since the OpenAI client already retried those.
_RETRIED: frozenset[LLMFailure] = frozenset({"malformed"})
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class DraftInput:
    """What a draft is written from: the request, its context and the expert."""

    topic: str
    context: str
    audience: str
    tags: tuple[str, ...]
    requester_name: str
    expert_name: str
    expert_bio: str
    notes: str  # the expert's own notes, may be ""


@dataclass(frozen=True, slots=True)
class DraftSuggestion:
    """A draft to prefill the form with; the expert edits it before submitting."""

    outline: tuple[str, ...]  # section headings with what each says
    title: str
    body: str
    captions: tuple[str, ...]  # exactly CAPTION_COUNT, each fits on X
    ai_assisted: bool  # False for the template
    label: str  # shown with the draft, says where it came from

    def __post_init__(self) -> None:
        if not self.title or len(self.title) > TITLE_MAX:
            raise ValueError(f"title must be 1 to {TITLE_MAX} characters")
        if not self.body or len(self.body) > BODY_MAX:
            raise ValueError(f"body must be 1 to {BODY_MAX} characters")
        if len(self.captions) != CAPTION_COUNT or not all(
            0 < len(caption) <= CAPTION_MAX for caption in self.captions
        ):
            raise ValueError(f"{CAPTION_COUNT} captions of 1 to {CAPTION_MAX} characters")


class AiUnavailable(DomainError):
    """No AI suggestion this time; `message` tells the expert why and what to do."""

    def __init__(self, reason: LLMFailure, message: str | None = None) -> None:
        super().__init__(message or MESSAGES[reason])
        self.reason: LLMFailure = reason


# -- the answers, as each prompt's schema describes them ---------------------------------


def _one_line(value: str) -> str:
    return _SPACES.sub(" ", value).strip()


def _title_text(value: str) -> str:
    # Models like to wrap titles in quotes; the form should not show them.
    return _one_line(value).strip("\"'“”").strip()


def _distinct(values: list[str]) -> list[str]:
    if len({_one_line(value).casefold() for value in values}) != len(values):
        raise ValueError("items must differ from each other")
    return values


Title = Annotated[
    str, AfterValidator(_title_text), StringConstraints(min_length=1, max_length=TITLE_MAX)
]
Section = Annotated[
    str, AfterValidator(_one_line), StringConstraints(min_length=1, max_length=SECTION_MAX)
]
Body = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=BODY_MAX)]
Caption = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=CAPTION_MAX)
]


class _Answer(BaseModel):
    # Strict: "3" is not a list and 3 is not a string; extra keys mean a different schema.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class OutlineAnswer(_Answer):
    """The answer to prompts/outline.yml."""

    title: Title
    sections: Annotated[
        list[Section],
        Field(min_length=SECTIONS_MIN, max_length=SECTIONS_MAX),
        AfterValidator(_distinct),
    ]


class FirstDraftAnswer(_Answer):
    """The answer to prompts/first_draft.yml."""

    title: Title
    body: Body


class CaptionsAnswer(_Answer):
    """The answer to prompts/captions.yml."""

    captions: Annotated[
        list[Caption],
        Field(min_length=CAPTION_COUNT, max_length=CAPTION_COUNT),
        AfterValidator(_distinct),
    ]


LIMITS: Final[dict[str, int]] = {
    "title_max": TITLE_MAX,
    "body_max": BODY_MAX,
    "body_words": BODY_WORDS,
    "caption_max": CAPTION_MAX,
    "captions": CAPTION_COUNT,
    "sections_min": SECTIONS_MIN,
    "sections_max": SECTIONS_MAX,
    "section_max": SECTION_MAX,
}

AnswerT = TypeVar("AnswerT", bound=_Answer)


# -- with the AI --------------------------------------------------------------------------


async def suggest_draft(llm: LLM, data: DraftInput) -> DraftSuggestion:
    """Outline, then first draft, then captions; AiUnavailable if any step fails."""
    request = request_data(data)
    outline = await _ask(llm, "outline", OutlineAnswer, request=request)
    draft = await _ask(
        llm,
        "first_draft",
        FirstDraftAnswer,
        request=request,
        working={"title": outline.title, "outline": list(outline.sections)},
    )
    captions = await _ask(
        llm,
        "captions",
        CaptionsAnswer,
        request=request,
        working={"title": draft.title, "body": draft.body},
    )
    return DraftSuggestion(
        outline=tuple(outline.sections),
        title=draft.title,
        body=draft.body,
        captions=tuple(captions.captions),
        ai_assisted=True,
        label=AI_LABEL,
    )


def request_data(data: DraftInput) -> dict[str, Any]:
    """What the prompts receive about the request, bounded in size; all of it is data."""
    return {
        "topic": _clip(data.topic.strip(), TOPIC_CHARS),
        "audience": _clip(data.audience.strip(), NAME_CHARS * 2),
        "tags": [_clip(tag.strip(), NAME_CHARS) for tag in data.tags if tag.strip()],
        "context": _clip(data.context.strip(), CONTEXT_CHARS),
        "requester": _clip(data.requester_name.strip(), NAME_CHARS),
        "expert": {
            "name": _clip(data.expert_name.strip(), NAME_CHARS),
            "bio": _clip(data.expert_bio.strip(), BIO_CHARS),
        },
        "expert_notes": _clip(data.notes.strip(), NOTES_CHARS),
    }


async def _ask(llm: LLM, name: str, answer: type[AnswerT], **values: Any) -> AnswerT:
    prompt = load_prompt(name).render(limits=LIMITS, **values)
    for attempt in (1, 2):
        try:
            raw = await llm.complete_json(prompt)
        except LLMError as error:
            log.warning(
                "ai_drafting.llm_failed",
                prompt=name,
                attempt=attempt,
                reason=error.reason,
                error=error.detail,
            )
            if error.reason in _RETRIED and attempt == 1:
                continue
            raise AiUnavailable(error.reason) from error
        try:
            return answer.model_validate(raw)
        except ValidationError as error:
            # Where and what, never the text itself: it may quote a customer.
            first = error.errors()[0]
            log.warning(
                "ai_drafting.answer_invalid",
                prompt=name,
                attempt=attempt,
                problems=error.error_count(),
                first=f"{'.'.join(map(str, first['loc'])) or 'answer'}: {first['msg']}",
            )
            if attempt == 2:
                raise AiUnavailable("malformed") from error
    raise AssertionError("unreachable: the second attempt returns or raises")


# -- without it ---------------------------------------------------------------------------


def template_draft(data: DraftInput) -> DraftSuggestion:
    """A structured outline, body skeleton and captions built from the request alone."""
    topic = _one_line(data.topic) or "this topic"
    audience = _one_line(data.audience) or "your readers"
    expert = _one_line(data.expert_name) or "our expert"
    short_topic = _clip(topic, 80)
    short_audience = _clip(audience, 60)
    outline = (
        f"The problem: what {short_audience} run into with {short_topic}",
        "The context: why it matters now"
        + (" (see the request's context)" if data.context.strip() else ""),
        f"The approach: how {_clip(expert, 60)} recommends tackling it",
        "Proof: an example, a result or a lesson learned",
        "Call to action: the one thing the reader should do next",
    )
    notes = _clip(_one_line(data.notes), 1200)
    sections = [
        f"[Opening: one sentence on what {short_audience} run into with {short_topic}.]",
        "The problem\n[Describe it as your readers experience it, in their words.]",
        "The context\n[Why it matters now: what changed, what it costs to ignore it.]",
        "The approach\n[What you recommend, step by step.]"
        + (f"\n[Your notes: {notes}]" if notes else ""),
        "Proof\n[An example, a result or a lesson learned. Name no customer without consent.]",
        "What to do next\n[The one thing the reader should do, and how to reach you.]",
    ]
    hashtags = " ".join(_hashtags(data.tags)[:2])
    captions = tuple(
        _clip(f"{text} {hashtags}".strip(), CAPTION_MAX)
        for text in (
            f"{short_topic}: the problem, the approach that works, and what to do next.",
            f"What {short_audience} should know about {short_topic}, from {_clip(expert, 60)}.",
            f"How does your team handle {short_topic}? Here is one approach that works.",
        )
    )
    return DraftSuggestion(
        outline=outline,
        title=_clip(topic, TITLE_MAX),
        body=_clip("\n\n".join(sections), BODY_MAX),
        captions=captions,
        ai_assisted=False,
        label=TEMPLATE_LABEL,
    )


def _hashtags(tags: tuple[str, ...]) -> list[str]:
    found: list[str] = []
    for tag in tags:
        words = re.findall(r"[^\W_]+", tag)
        if not words:
            continue
        joined = words[0] if len(words) == 1 else "".join(w[:1].upper() + w[1:] for w in words)
        hashtag = f"#{joined[:40]}"
        if hashtag.casefold() not in {h.casefold() for h in found}:
            found.append(hashtag)
    return found


def _clip(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, at a word boundary when one is near."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space >= limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:.-—") + "…"
