"""Drafting help through the real `openai` client against the fake OpenAI API: the prompts
it receives, the suggestion it produces, every way the service fails, and the template
used without AI."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from adapters.openai import OpenAIChat
from bot.settings import load_settings
from handlers.core.errors import DomainError
from handlers.core.ports import LLMError
from handlers.drafting.ai import (
    AI_LABEL,
    BODY_MAX,
    CAPTION_COUNT,
    CAPTION_MAX,
    CONTEXT_CHARS,
    LIMITS,
    MESSAGES,
    TEMPLATE_LABEL,
    TITLE_MAX,
    AiUnavailable,
    DraftInput,
    DraftSuggestion,
    request_data,
    suggest_draft,
    template_draft,
)
from handlers.drafting.prompts import load_prompt
from testing.fakes.openai_api import CHAT, MALFORMED_JSON, FakeOpenAI
from testing.fakes.openai_api import request_data as sent_data

MODEL = "gpt-4o-mini"
STEPS = ["outline", "first_draft", "captions"]
DATA = DraftInput(
    topic="Zero-downtime Kubernetes upgrades",
    context="From a customer call: how do you patch clusters without an outage?",
    audience="platform engineers",
    tags=("kubernetes", "site reliability"),
    requester_name="Rita Sales",
    expert_name="Alice Ops",
    expert_bio="SRE lead; runs our production clusters.",
    notes="Surge upgrades, PodDisruptionBudgets, a canary node pool first.",
)
# Valid JSON, but not what the outline schema asks for.
MISMATCHED = json.dumps({"title": "T", "sections": "one, two, three"})


@pytest.fixture
async def fake_openai() -> AsyncIterator[FakeOpenAI]:
    fake = FakeOpenAI()
    await fake.start()
    yield fake
    await fake.close()


def make_llm(fake: FakeOpenAI, **options: Any) -> OpenAIChat:
    values: dict[str, Any] = {
        "api_key": fake.api_key,
        "model": MODEL,
        "base_url": fake.url,
        "timeout": 2.0,
        "max_retries": 0,
        **options,
    }
    return OpenAIChat(**values)


@pytest.fixture
async def llm(fake_openai: FakeOpenAI) -> AsyncIterator[OpenAIChat]:
    chat = make_llm(fake_openai)
    yield chat
    await chat.close()


# -- the happy path -----------------------------------------------------------------------


async def test_a_suggestion_is_outline_then_draft_then_captions(
    fake_openai: FakeOpenAI, llm: OpenAIChat
) -> None:
    suggestion = await suggest_draft(llm, DATA)

    topic = DATA.topic
    assert suggestion.outline == tuple(f"Section {i} on {topic}" for i in (1, 2, 3))
    assert suggestion.title == f"Title on {topic}"  # from the first draft, not the outline
    assert suggestion.body == f"Body on {topic}"
    assert suggestion.captions == tuple(f"Caption {i} on {topic}" for i in (1, 2, 3))
    assert suggestion.ai_assisted is True
    assert suggestion.label == AI_LABEL

    calls = fake_openai.calls_to(CHAT)
    assert [c.api_key for c in calls] == [fake_openai.api_key] * 3
    for name, body in zip(STEPS, fake_openai.chats(), strict=True):
        template = load_prompt(name)
        # The configured model, the prompt file's settings and its schema, strictly.
        assert body["model"] == MODEL
        assert body["temperature"] == template.temperature
        assert body["max_completion_tokens"] == template.max_tokens
        assert body["response_format"] == {
            "type": "json_schema",
            "json_schema": {
                "name": template.schema_name,
                "schema": template.schema,
                "strict": True,
            },
        }
        # The request's own text reaches the model, as data, in every step.
        assert [m["role"] for m in body["messages"]] == ["system", "user"]
        assert sent_data(body) == request_data(DATA)
        assert DATA.notes in body["messages"][1]["content"]
    # Each step builds on the one before, passed as data too.
    outline, draft, captions = fake_openai.chats()
    assert sent_data(outline, "working_draft") is None
    assert sent_data(draft, "working_draft") == {
        "title": f"Title on {topic}",
        "outline": list(suggestion.outline),
    }
    assert sent_data(captions, "working_draft") == {
        "title": suggestion.title,
        "body": suggestion.body,
    }


async def test_the_chat_model_is_configured_by_the_openai_settings(
    fake_openai: FakeOpenAI,
) -> None:
    settings = load_settings(
        openai_api_key=fake_openai.api_key, openai_base_url=fake_openai.url, _env_file=None
    )
    chat = OpenAIChat.from_settings(settings, timeout=2.0, max_retries=0)
    try:
        assert chat.model == MODEL  # the default OPENAI_MODEL
        await suggest_draft(chat, DATA)
    finally:
        await chat.close()
    assert {body["model"] for body in fake_openai.chats()} == {MODEL}
    fake_openai.chat_models.add("gpt-4o")
    chat = OpenAIChat.from_settings(
        load_settings(
            openai_api_key=fake_openai.api_key,
            openai_base_url=fake_openai.url,
            openai_model="gpt-4o",
            _env_file=None,
        )
    )
    try:
        await suggest_draft(chat, DATA)
    finally:
        await chat.close()
    assert fake_openai.chats()[-1]["model"] == "gpt-4o"
    with pytest.raises(ValueError, match="OPENAI_API_KEY"):
        OpenAIChat.from_settings(load_settings(openai_api_key=None, _env_file=None))


async def test_a_model_named_in_the_prompt_file_wins_over_the_default(
    fake_openai: FakeOpenAI, llm: OpenAIChat, tmp_path: Path
) -> None:
    source = load_prompt("outline").path.read_text()
    (tmp_path / "outline.yml").write_text(
        source.replace("model: null", "model: gpt-4o").replace(
            "temperature: 0.4", "temperature: null"
        )
    )
    fake_openai.chat_models.add("gpt-4o")
    prompt = load_prompt("outline", tmp_path).render(request=request_data(DATA), limits=LIMITS)
    answer = await llm.complete_json(prompt)
    body = fake_openai.chats()[0]
    assert body["model"] == "gpt-4o"
    assert "temperature" not in body  # null: the model's own default
    assert answer["title"] == f"Title on {DATA.topic}"


# -- retries of bad answers ---------------------------------------------------------------


@pytest.mark.parametrize("bad", [MALFORMED_JSON, MISMATCHED, "[1, 2, 3]"])
async def test_one_bad_answer_is_asked_for_again(
    fake_openai: FakeOpenAI, llm: OpenAIChat, bad: str
) -> None:
    fake_openai.reply(bad)
    suggestion = await suggest_draft(llm, DATA)
    assert suggestion.title == f"Title on {DATA.topic}"
    bodies = fake_openai.chats()
    assert len(bodies) == 4
    # The retry is the same prompt again.
    assert bodies[0] == bodies[1]


async def test_an_answer_breaking_a_limit_the_schema_cannot_express_is_retried(
    fake_openai: FakeOpenAI, llm: OpenAIChat
) -> None:
    too_long = json.dumps({"title": "T", "body": "x" * (BODY_MAX + 1)})
    fake_openai.reply(too_long, after=1)
    suggestion = await suggest_draft(llm, DATA)
    assert suggestion.body == f"Body on {DATA.topic}"
    assert [b["response_format"]["json_schema"]["name"] for b in fake_openai.chats()] == [
        "content_outline",
        "first_draft",
        "first_draft",
        "share_captions",
    ]


async def test_answers_are_tidied_but_not_rewritten(
    fake_openai: FakeOpenAI, llm: OpenAIChat
) -> None:
    fake_openai.reply(
        json.dumps(
            {"title": '  "Surge   upgrades,\nexplained"  ', "body": "  Para one.\n\nTwo.  "}
        ),
        after=1,
    )
    suggestion = await suggest_draft(llm, DATA)
    assert suggestion.title == "Surge upgrades, explained"
    assert suggestion.body == "Para one.\n\nTwo."


# -- failures -----------------------------------------------------------------------------


async def _unavailable(llm: OpenAIChat) -> AiUnavailable:
    with pytest.raises(AiUnavailable) as raised:
        await suggest_draft(llm, DATA)
    return raised.value


@pytest.mark.parametrize(
    ("failure", "reason", "calls"),
    [
        ("500", "unavailable", 2),  # the client's own retry, then give up
        ("429", "rate_limited", 2),
        ("timeout", "timeout", 2),
        ("malformed twice", "malformed", 2),
        ("mismatched twice", "malformed", 2),
        ("cut off twice", "malformed", 2),
        ("refusal", "refused", 1),
        ("content filter", "refused", 1),
        ("quota", "rejected", 1),
        ("bad key", "rejected", 1),
        ("unknown model", "rejected", 1),
    ],
)
async def test_every_failure_is_a_clear_message_and_no_suggestion(
    fake_openai: FakeOpenAI, failure: str, reason: str, calls: int
) -> None:
    options: dict[str, Any] = {"max_retries": 1}
    if failure == "500":
        fake_openai.fail(CHAT, 500, times=2)
    elif failure == "429":
        fake_openai.fail(CHAT, 429, times=2, retry_after=0.01)
    elif failure == "timeout":
        fake_openai.slow(CHAT, delay=1.0, times=2)
        options["timeout"] = 0.2
    elif failure == "malformed twice":
        fake_openai.reply(MALFORMED_JSON, times=2)
    elif failure == "mismatched twice":
        fake_openai.reply(MISMATCHED, times=2)
    elif failure == "cut off twice":
        fake_openai.reply('{"title": "Zero-downtime', times=2, finish_reason="length")
    elif failure == "refusal":
        fake_openai.reply("", refusal="I can't help with that.")
    elif failure == "content filter":
        fake_openai.reply("", finish_reason="content_filter")
    elif failure == "quota":
        fake_openai.fail(CHAT, 429, code="insufficient_quota")
        options["max_retries"] = 0
    elif failure == "bad key":
        options["api_key"] = "sk-wrong-key-abcdef"
    elif failure == "unknown model":
        options["model"] = "gpt-unknown"
    llm = make_llm(fake_openai, **options)
    try:
        error = await _unavailable(llm)
    finally:
        await llm.close()
    assert error.reason == reason
    assert error.message == MESSAGES[reason] == str(error)
    assert "your draft is unchanged" in error.message
    assert isinstance(error, DomainError)  # the router's polite-reply path understands it
    assert len(fake_openai.calls_to(CHAT)) == calls  # the outline step never got further


async def test_the_rate_limit_message_says_to_wait(fake_openai: FakeOpenAI) -> None:
    fake_openai.fail(CHAT, 429, retry_after=0.01)
    llm = make_llm(fake_openai)
    try:
        error = await _unavailable(llm)
    finally:
        await llm.close()
    assert error.message == (
        "The AI service is busy right now (rate limited) — your draft is unchanged; "
        "try again in a few minutes or write it by hand."
    )


async def test_a_server_error_once_is_absorbed_by_the_clients_retry(
    fake_openai: FakeOpenAI,
) -> None:
    fake_openai.fail(CHAT, 500)
    llm = make_llm(fake_openai, max_retries=1)
    try:
        suggestion = await suggest_draft(llm, DATA)
    finally:
        await llm.close()
    assert suggestion.ai_assisted
    assert len(fake_openai.calls_to(CHAT)) == 4


async def test_a_connection_failure_is_unavailable() -> None:
    llm = OpenAIChat(
        api_key="sk-test", model=MODEL, base_url="http://127.0.0.1:9/v1", max_retries=0
    )
    try:
        error = await _unavailable(llm)
    finally:
        await llm.close()
    assert error.reason == "unavailable"


@pytest.mark.parametrize("step", [1, 2])
async def test_a_failure_in_a_later_step_returns_nothing_half_done(
    fake_openai: FakeOpenAI, llm: OpenAIChat, step: int
) -> None:
    fake_openai.reply(MALFORMED_JSON, times=2, after=step)
    error = await _unavailable(llm)
    assert error.reason == "malformed"
    assert len(fake_openai.chats()) == step + 2


async def test_the_adapter_never_echoes_the_api_key(fake_openai: FakeOpenAI) -> None:
    secret = "sk-live-SECRETSECRET-9876"
    llm = make_llm(fake_openai, api_key=secret)
    try:
        with pytest.raises(LLMError) as raised:
            await llm.complete_json(
                load_prompt("outline").render(request=request_data(DATA), limits=LIMITS)
            )
    finally:
        await llm.close()
    assert raised.value.reason == "rejected"
    assert "HTTP 401 invalid_api_key" in raised.value.detail
    assert "9876" not in str(raised.value) and "SECRET" not in str(raised.value)


# -- without AI ---------------------------------------------------------------------------


def test_the_template_is_a_structured_outline_from_the_request() -> None:
    suggestion = template_draft(DATA)
    assert suggestion.ai_assisted is False
    assert suggestion.label == TEMPLATE_LABEL
    assert suggestion.title == DATA.topic
    assert [line.split(":")[0] for line in suggestion.outline] == [
        "The problem",
        "The context",
        "The approach",
        "Proof",
        "Call to action",
    ]
    assert DATA.audience in suggestion.outline[0] and DATA.topic in suggestion.outline[0]
    assert DATA.expert_name in suggestion.outline[2]
    for heading in ("The problem", "The context", "The approach", "Proof", "What to do next"):
        assert f"\n\n{heading}\n[" in suggestion.body
    assert f"[Your notes: {DATA.notes}]" in suggestion.body
    # The customer's words are pointed to, not pasted into something meant for publishing.
    assert DATA.context not in suggestion.body
    assert len(suggestion.captions) == CAPTION_COUNT
    assert len(set(suggestion.captions)) == CAPTION_COUNT
    assert all(c.endswith("#kubernetes #SiteReliability") for c in suggestion.captions)


def test_the_template_holds_its_limits_whatever_the_request() -> None:
    huge = DraftInput(
        topic="kubernetes " * 500,
        context="c" * 20_000,
        audience="a very particular audience " * 50,
        tags=("#", "C++", "zero downtime", "ZERO-downtime", "k8s", "x" * 300),
        requester_name="R",
        expert_name="E" * 500,
        expert_bio="",
        notes="n " * 20_000,
    )
    suggestion = template_draft(huge)
    assert 0 < len(suggestion.title) <= TITLE_MAX and suggestion.title.endswith("…")
    assert 0 < len(suggestion.body) <= BODY_MAX
    assert all(0 < len(c) <= CAPTION_MAX for c in suggestion.captions)
    assert "#C #ZeroDowntime" in suggestion.captions[0]  # two hashtags, no duplicates

    empty = template_draft(DraftInput("", "", "", (), "", "", "", ""))
    assert empty.title == "this topic"
    assert "[Your notes" not in empty.body
    assert all("#" not in c for c in empty.captions)


def test_what_the_model_receives_is_bounded() -> None:
    sent = request_data(replace(DATA, context="word " * 10_000, tags=(*DATA.tags, "  ")))
    assert len(sent["context"]) <= CONTEXT_CHARS
    assert sent["context"].startswith("word word")
    assert sent["tags"] == list(DATA.tags)


def test_a_suggestion_cannot_break_the_limits() -> None:
    good = template_draft(DATA)
    with pytest.raises(ValueError, match="body"):
        replace(good, body="x" * (BODY_MAX + 1))
    with pytest.raises(ValueError, match="captions"):
        replace(good, captions=("one", "two"))
    with pytest.raises(ValueError, match="captions"):
        replace(good, captions=("one", "two", "x" * (CAPTION_MAX + 1)))
    with pytest.raises(ValueError, match="title"):
        replace(good, title="")
    assert isinstance(replace(good, label="Template outline — the AI is busy"), DraftSuggestion)
