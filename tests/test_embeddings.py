"""Embeddings through the real `openai` client against the fake OpenAI API: vectors cached
by text hash, semantic blending, and a lexical ranking whenever the service fails."""

from __future__ import annotations

from collections.abc import AsyncIterator

import numpy as np
import pytest
import structlog
from sqlmodel import select

from adapters.openai import OpenAIEmbedder
from bot.settings import load_settings
from handlers.core.ports import EmbeddingError
from handlers.routing.embeddings import text_hash
from handlers.routing.matching import SEMANTIC_REASON, profile_text
from handlers.routing.ranking import IndexCache, load_docs
from storage.db import SessionFactory, create_engine, session_factory
from storage.models import Embedding
from testing.fakes.clock import FrozenClock
from testing.fakes.openai_api import FakeOpenAI
from tests.test_matching import K8S, PROFILES, edit_profile, ranked, seed, users

MODEL = "text-embedding-3-small"
# Sam knows the subject but shares no word with the question; the fake's synonyms
# (kubernetes ~ orchestration, upgrade ~ patch, downtime ~ available) make them close.
WITH_SAM = {
    **PROFILES,
    "USAM": (
        "Sam",
        ("container orchestration",),
        "I keep our clusters patched and available around the clock.",
    ),
}


@pytest.fixture
async def fake_openai() -> AsyncIterator[FakeOpenAI]:
    fake = FakeOpenAI()
    await fake.start()
    yield fake
    await fake.close()


def make_embedder(fake: FakeOpenAI, **options: object) -> OpenAIEmbedder:
    values: dict[str, object] = {
        "api_key": fake.api_key,
        "model": MODEL,
        "base_url": fake.url,
        "timeout": 2.0,
        "max_retries": 0,
        **options,
    }
    return OpenAIEmbedder(**values)  # type: ignore[arg-type]


@pytest.fixture
async def embedder(fake_openai: FakeOpenAI) -> AsyncIterator[OpenAIEmbedder]:
    embedder = make_embedder(fake_openai)
    yield embedder
    await embedder.close()


@pytest.fixture
async def sessions(migrated_url: str) -> AsyncIterator[SessionFactory]:
    engine = create_engine(migrated_url)
    yield session_factory(engine)
    await engine.dispose()


async def stored(sessions: SessionFactory) -> list[Embedding]:
    async with sessions() as session:
        return list((await session.exec(select(Embedding))).all())


# -- the adapter on its own --------------------------------------------------------------


async def test_vectors_come_back_in_order_in_batches(fake_openai: FakeOpenAI) -> None:
    embedder = make_embedder(fake_openai, batch_size=2)
    texts = ["kubernetes upgrades", "oracle to postgresql", "kafka", "soc 2 audit", "ios"]
    try:
        vectors = await embedder.embed(texts)
    finally:
        await embedder.close()
    assert fake_openai.embedded() == [texts[0:2], texts[2:4], texts[4:5]]
    for text, vector in zip(texts, vectors, strict=True):
        assert np.allclose(vector, fake_openai.vector(text), atol=1e-6)
    call = fake_openai.calls_to("embeddings")[0]
    assert call.body["model"] == MODEL
    assert call.api_key == fake_openai.api_key


async def test_the_embedder_is_configured_by_the_openai_settings(fake_openai: FakeOpenAI) -> None:
    settings = load_settings(
        openai_api_key=fake_openai.api_key, openai_base_url=fake_openai.url, _env_file=None
    )
    embedder = OpenAIEmbedder.from_settings(settings)
    try:
        assert embedder.model == MODEL  # the default OPENAI_EMBEDDING_MODEL
        await embedder.embed(["kafka"])
    finally:
        await embedder.close()
    assert fake_openai.embedded() == [["kafka"]]
    with pytest.raises(ValueError, match="OPENAI_API_KEY"):
        OpenAIEmbedder.from_settings(load_settings(openai_api_key=None, _env_file=None))


@pytest.mark.parametrize("failure", ["500", "429", "timeout", "unknown model", "bad key"])
async def test_every_failure_is_an_embedding_error(fake_openai: FakeOpenAI, failure: str) -> None:
    embedder = _failing(fake_openai, failure)
    try:
        with pytest.raises(EmbeddingError):
            await embedder.embed(["kubernetes upgrades"])
    finally:
        await embedder.close()
    assert len(fake_openai.calls_to("embeddings")) == 1  # no retries were allowed


@pytest.mark.parametrize("status", [429, 500, 503])
async def test_a_passing_failure_is_retried_by_the_client(
    fake_openai: FakeOpenAI, status: int
) -> None:
    fake_openai.fail(status=status, retry_after=0.01)
    embedder = make_embedder(fake_openai, max_retries=1)
    try:
        [vector] = await embedder.embed(["kafka"])
    finally:
        await embedder.close()
    assert np.allclose(vector, fake_openai.vector("kafka"), atol=1e-6)
    assert len(fake_openai.calls_to("embeddings")) == 2


def _failing(fake: FakeOpenAI, failure: str) -> OpenAIEmbedder:
    if failure == "500":
        fake.fail(status=500)
    elif failure == "429":
        fake.fail(status=429, retry_after=0.01)
    elif failure == "timeout":
        fake.slow(delay=1.0)
        return make_embedder(fake, timeout=0.2)
    elif failure == "unknown model":
        return make_embedder(fake, model="text-embedding-unknown")
    elif failure == "bad key":
        return make_embedder(fake, api_key="sk-wrong")
    return make_embedder(fake)


# -- ranking with embeddings -------------------------------------------------------------


async def test_embeddings_bring_in_an_expert_who_shares_no_words(
    sessions: SessionFactory, clock: FrozenClock, embedder: OpenAIEmbedder
) -> None:
    workspace_id, _ = await seed(sessions, clock, profiles=WITH_SAM)
    lexical = await ranked(sessions, workspace_id, K8S, IndexCache())
    assert users(lexical) == ["UALICE"]
    found = await ranked(sessions, workspace_id, K8S, IndexCache(), embedder=embedder)
    assert users(found) == ["UALICE", "USAM"]
    assert found[1].reasons == (SEMANTIC_REASON,)
    assert found[0].reasons == lexical[0].reasons


async def test_vectors_are_cached_by_text_hash(
    sessions: SessionFactory,
    clock: FrozenClock,
    fake_openai: FakeOpenAI,
    embedder: OpenAIEmbedder,
) -> None:
    workspace_id, members = await seed(sessions, clock, profiles=WITH_SAM)
    async with sessions() as session:
        texts = [profile_text(doc) for doc in await load_docs(session, workspace_id)]
    cache = IndexCache()
    first = await ranked(sessions, workspace_id, K8S, cache, embedder=embedder, now=clock.now())

    # One request carrying the question and every profile, for the configured model.
    assert fake_openai.embedded() == [[K8S, *texts]]
    [call] = fake_openai.calls_to("embeddings")
    assert call.body["model"] == MODEL
    rows = await stored(sessions)
    assert sorted(row.text_hash for row in rows) == sorted(map(text_hash, [K8S, *texts]))
    assert {(row.workspace_id, row.model, row.dimensions) for row in rows} == {
        (workspace_id, MODEL, 256)
    }
    assert {row.created_at for row in rows} == {clock.now()}

    # The same question from another process (nothing in memory): all from the database.
    again = await ranked(sessions, workspace_id, K8S, IndexCache(), embedder=embedder)
    assert again == first
    assert len(fake_openai.embedded()) == 1

    # A new question: only the question is embedded.
    await ranked(sessions, workspace_id, "Kafka streaming", cache, embedder=embedder)
    assert fake_openai.embedded()[1:] == [["Kafka streaming"]]

    # Bob rewrites his bio: only his profile's new text is embedded.
    bio = "Now I mostly run Kubernetes upgrades for the database fleet."
    await edit_profile(sessions, members["UBOB"], bio=bio)
    found = await ranked(sessions, workspace_id, K8S, cache, embedder=embedder)
    async with sessions() as session:
        [bob] = [d for d in await load_docs(session, workspace_id) if d.user_id == "UBOB"]
    assert fake_openai.embedded()[2:] == [[profile_text(bob)]]
    assert bio in profile_text(bob)
    assert "UBOB" in users(found)
    assert len(await stored(sessions)) == len(texts) + 3


@pytest.mark.parametrize("failure", ["500", "429", "timeout", "unknown model", "bad key"])
async def test_when_embeddings_fail_the_ranking_is_lexical(
    sessions: SessionFactory, clock: FrozenClock, fake_openai: FakeOpenAI, failure: str
) -> None:
    workspace_id, _ = await seed(sessions, clock, profiles=WITH_SAM)
    lexical = await ranked(sessions, workspace_id, K8S, IndexCache())
    embedder = _failing(fake_openai, failure)
    try:
        with structlog.testing.capture_logs() as logs:
            found = await ranked(sessions, workspace_id, K8S, IndexCache(), embedder=embedder)
    finally:
        await embedder.close()
    assert found == lexical
    assert len(fake_openai.calls_to("embeddings")) == 1
    assert await stored(sessions) == []
    [warning] = [entry for entry in logs if entry["event"] == "matching.embeddings_unavailable"]
    assert warning["log_level"] == "warning"
    assert warning["workspace_id"] == workspace_id
    assert "sk-" not in str(warning)  # never the key, not even a masked one

    # The service is back: the next ranking is semantic again.
    healthy = make_embedder(fake_openai)
    try:
        found = await ranked(sessions, workspace_id, K8S, IndexCache(), embedder=healthy)
    finally:
        await healthy.close()
    assert users(found) == ["UALICE", "USAM"]
