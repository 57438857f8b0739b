"""Who should answer a request: BM25 over expert profiles, embeddings blended in, load-aware.

Relevance comes first and decides who may be asked at all: BM25 (bm25s) over each
expert's topics (weighted highest), the content they published and their bio, plus the
cosine similarity of embeddings when an embedder is configured. Availability rules
(snooze, capacity, the weekly ping cap, never the requester) remove people outright.
Among the rest, past responsiveness and spare capacity nudge the order moderately, so a
better match is not overtaken by a merely idle colleague. The explanation shown to the
expert ("you listed kubernetes") is read off the same token matches that scored them.
Words come from `routing.words`; the cached index of a workspace is in `routing.ranking`.
"""

from __future__ import annotations

import heapq
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from itertools import pairwise
from typing import Any

import bm25s
import numpy as np
from numpy.typing import NDArray

from handlers.routing.words import WORD, terms, terms_in_place

# Field weights: what someone says they know counts most, then what they showed by
# publishing, then what their bio happens to mention.
TOPIC_WEIGHT = 3.0
PUBLISHED_WEIGHT = 1.5
BIO_WEIGHT = 1.0
# Share of relevance given to embeddings when they are available.
SEMANTIC_WEIGHT = 0.4
# Cosine similarity below which two texts are treated as unrelated. Embedding models put
# unrelated texts well above zero, so similarity is rescaled from this floor.
SEMANTIC_FLOOR = 0.3
# Candidates far weaker than the best match (a lone common word in a bio) are not worth
# anyone's attention: relevance below this share of the best is treated as none.
MIN_RELEVANCE_SHARE = 0.15
# Responsiveness is a Beta prior: a newcomer counts as PRIOR answered and PRIOR ignored.
RESPONSIVENESS_PRIOR = 2.0
# Largest boost or penalty for responsiveness, and largest penalty for a full plate.
RESPONSIVENESS_SPAN = 0.15
CAPACITY_SPAN = 0.15
MAX_ADJUSTMENT = 1.0 + RESPONSIVENESS_SPAN
# Topics, titles and bio words named in one explanation.
REASON_ITEMS = 3
TITLE_MAX = 80

SEMANTIC_REASON = "your profile is close in meaning to the question"

_PUNCTUATION = ".,;:!?()[]{}<>\"'“”‘’"


@dataclass(frozen=True, slots=True)
class ExpertDoc:
    """One expert's searchable profile."""

    member_id: int
    user_id: str
    name: str
    topics: tuple[str, ...]
    bio: str
    published: tuple[str, ...]  # titles/bodies of content they published, title first
    capacity: int
    snoozed_until: date | None


@dataclass(frozen=True, slots=True)
class ExpertLoad:
    """Facts from routing history for one expert."""

    open_assignments: int = 0
    pings_this_week: int = 0
    answered: int = 0
    ignored: int = 0


NO_LOAD = ExpertLoad()


@dataclass(frozen=True, slots=True)
class Candidate:
    """An expert worth asking, with a score and the reasons to show them."""

    member_id: int
    user_id: str
    score: float
    reasons: tuple[str, ...]


# -- words ------------------------------------------------------------------------------


def _bigrams(words: Sequence[str]) -> list[str]:
    # Multi-word topics ("zero downtime") match as a phrase on top of their words.
    return [f"{a}_{b}" for a, b in pairwise(words)]


def _title(item: str) -> str:
    line = next((line.strip() for line in item.splitlines() if line.strip()), "")
    return line if len(line) <= TITLE_MAX else line[: TITLE_MAX - 1].rstrip() + "…"


def _join(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def profile_text(doc: ExpertDoc) -> str:
    """The text of a profile that is embedded: topics, bio and published titles."""
    parts = []
    if doc.topics:
        parts.append("Topics: " + ", ".join(doc.topics))
    if doc.bio.strip():
        parts.append(doc.bio.strip())
    titles = [title for title in map(_title, doc.published) if title]
    if titles:
        parts.append("Published: " + "; ".join(titles))
    return "\n".join(parts)


# -- the index --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WeightedField:
    """One BM25 index over one field of a set of documents, with the field's weight."""

    weight: float
    retriever: Any  # bm25s.BM25, or None when no profile has a word in this field
    vocabulary: Mapping[str, int]

    @classmethod
    def build(cls, weight: float, corpus: list[list[str]]) -> WeightedField:
        if not any(corpus):
            return cls(weight, None, {})
        retriever = bm25s.BM25()
        retriever.index(corpus, show_progress=False)
        return cls(weight, retriever, retriever.vocab_dict)

    def scores(self, words: Iterable[str]) -> NDArray[np.float32] | None:
        ids = [self.vocabulary[word] for word in words if word in self.vocabulary]
        if not ids:
            return None
        scores: NDArray[np.float32] = self.retriever.get_scores_from_ids(ids)
        return scores


@dataclass(frozen=True, slots=True)
class _Query:
    words: frozenset[str]
    phrases: frozenset[str]
    lexical: NDArray[np.float32]
    bio: NDArray[np.float32] | None  # the bio field's own scores: zero means no bio reason
    semantic: NDArray[np.float32] | None


class ExpertIndex:
    """The experts of one workspace, indexed once and ranked for many questions."""

    def __init__(
        self,
        docs: tuple[ExpertDoc, ...],
        fields: tuple[WeightedField, WeightedField, WeightedField],
        topics: list[tuple[tuple[str, frozenset[str]], ...]],
        published: list[tuple[tuple[str, frozenset[str]], ...]],
        bios: list[tuple[str, ...]],
    ) -> None:
        self._docs = docs
        self._topic_field, self._published_field, self._bio_field = fields
        self._topics = topics
        self._published = published
        self._bios = bios
        self._position = {doc.member_id: i for i, doc in enumerate(docs)}
        self._available = np.array([doc.capacity > 0 for doc in docs], dtype=bool)
        self._snoozed_until = np.array(
            [doc.snoozed_until.toordinal() if doc.snoozed_until else 0 for doc in docs],
            dtype=np.int64,
        )

    @classmethod
    def build(cls, docs: Sequence[ExpertDoc]) -> ExpertIndex:
        """Tokenize and index every profile (the costly part, done once per change)."""
        docs = tuple(docs)
        topic_corpus, published_corpus, bio_corpus = [], [], []
        topics, published, bios = [], [], []
        for doc in docs:
            doc_topics, doc_topic_words = [], []
            for topic in doc.topics:
                words = terms(topic)
                tokens = words + _bigrams(words)
                doc_topic_words += tokens
                doc_topics.append((topic, frozenset(tokens)))
            doc_items, doc_item_words = [], []
            for item in doc.published:
                words = terms(item)
                doc_item_words += words
                doc_items.append((_title(item), frozenset(words)))
            topic_corpus.append(doc_topic_words)
            published_corpus.append(doc_item_words)
            bio = terms_in_place(doc.bio)
            bios.append(bio)
            bio_corpus.append([term for term in bio if term])
            topics.append(tuple(doc_topics))
            published.append(tuple(doc_items))
        fields = (
            WeightedField.build(TOPIC_WEIGHT, topic_corpus),
            WeightedField.build(PUBLISHED_WEIGHT, published_corpus),
            WeightedField.build(BIO_WEIGHT, bio_corpus),
        )
        return cls(docs, fields, topics, published, bios)

    def __len__(self) -> int:
        return len(self._docs)

    @property
    def docs(self) -> tuple[ExpertDoc, ...]:
        """The profiles this index was built from, in index order."""
        return self._docs

    def rank(
        self,
        query: str,
        *,
        loads: Mapping[int, ExpertLoad],
        today: date,
        weekly_cap: int,
        exclude: Collection[int] = (),
        semantic: Mapping[int, float] | None = None,
        limit: int = 10,
    ) -> list[Candidate]:
        """The best `limit` experts to ask, best first; only people worth asking appear."""
        if limit <= 0 or not self._docs:
            return []
        q = self._score(query, semantic)
        relevance = q.lexical
        best = float(relevance.max())
        if best > 0:
            relevance = relevance / best
        if q.semantic is not None:
            relevance = (1.0 - SEMANTIC_WEIGHT) * relevance + SEMANTIC_WEIGHT * q.semantic
        top = float(relevance.max())
        if top <= 0:
            return []
        eligible = (
            (relevance >= top * MIN_RELEVANCE_SHARE)
            & self._available
            & (self._snoozed_until < today.toordinal())
        )
        positions = np.flatnonzero(eligible)
        order = positions[np.argsort(-relevance[positions], kind="stable")]
        excluded = set(exclude)
        chosen: list[tuple[float, int]] = []  # min-heap of (score, -position)
        for position in order.tolist():
            rel = float(relevance[position])
            if len(chosen) >= limit and rel * MAX_ADJUSTMENT < chosen[0][0]:
                break  # nobody further down can climb into the list
            doc = self._docs[position]
            load = loads.get(doc.member_id, NO_LOAD)
            if (
                doc.member_id in excluded
                or load.open_assignments >= doc.capacity
                or load.pings_this_week >= weekly_cap
            ):
                continue
            entry = (rel * _adjustment(doc, load), -position)
            if len(chosen) < limit:
                heapq.heappush(chosen, entry)
            elif entry > chosen[0]:
                heapq.heapreplace(chosen, entry)
        return [
            Candidate(
                member_id=self._docs[-neg].member_id,
                user_id=self._docs[-neg].user_id,
                score=score,
                reasons=self._reasons(-neg, q),
            )
            for score, neg in sorted(chosen, reverse=True)
        ]

    def _score(self, query: str, semantic: Mapping[int, float] | None) -> _Query:
        words = list(dict.fromkeys(terms(query)))
        phrases = list(dict.fromkeys(_bigrams(words)))
        lexical = np.zeros(len(self._docs), dtype=np.float32)
        bio = None
        for field_, field_words in (
            (self._topic_field, words + phrases),
            (self._published_field, words),
            (self._bio_field, words),
        ):
            scores = field_.scores(field_words)
            if scores is not None:
                lexical += np.float32(field_.weight) * scores
                bio = scores if field_ is self._bio_field else bio
        closeness = None
        if semantic:
            closeness = np.zeros(len(self._docs), dtype=np.float32)
            for member_id, similarity in semantic.items():
                position = self._position.get(member_id)
                if position is not None:
                    closeness[position] = similarity
            closeness = np.clip((closeness - SEMANTIC_FLOOR) / (1.0 - SEMANTIC_FLOOR), 0.0, 1.0)
        return _Query(frozenset(words), frozenset(phrases), lexical, bio, closeness)

    def _reasons(self, position: int, q: _Query) -> tuple[str, ...]:
        """Why this expert: the matched topics, titles and bio words, strongest first."""
        reasons = []
        explained: set[str] = set()
        wanted = q.words | q.phrases
        topics = [
            (len(tokens & wanted), -i, topic)
            for i, (topic, tokens) in enumerate(self._topics[position])
            if tokens & q.words
        ]
        if topics:
            names = [topic for _, _, topic in sorted(topics, reverse=True)[:REASON_ITEMS]]
            reasons.append(f"you listed {_join(names)}")
            for topic, tokens in self._topics[position]:
                if topic in names:
                    explained |= tokens & q.words
        items = [
            (len(tokens & q.words), -i, title, tokens)
            for i, (title, tokens) in enumerate(self._published[position])
            if title and tokens & q.words - explained
        ]
        if items:
            _, _, title, tokens = max(items)
            reasons.append(f"you wrote '{title}'")
            explained |= tokens & q.words
        unexplained = q.words - explained
        phrases = (
            _bio_phrases(self._docs[position].bio, self._bios[position], unexplained)
            if unexplained and q.bio is not None and q.bio[position] > 0
            else []
        )
        if phrases:
            reasons.append(f"your bio mentions {_join(phrases)}")
        if not reasons and q.semantic is not None and q.semantic[position] > 0:
            reasons.append(SEMANTIC_REASON)
        return tuple(reasons)


def _bio_phrases(bio: str, stems: tuple[str, ...], wanted: frozenset[str]) -> list[str]:
    """The bio's words whose stems matched, as written (hyphens and all), in order."""
    hits = [i for i, stem in enumerate(stems) if stem in wanted]
    phrases: list[str] = []
    if not hits:
        return phrases
    seen: set[str] = set()
    wanted_positions = set(hits)
    for i, match in enumerate(WORD.finditer(bio)):
        if i in wanted_positions:
            start, end = match.span()
            while start > 0 and not bio[start - 1].isspace():
                start -= 1
            while end < len(bio) and not bio[end].isspace():
                end += 1
            phrase = bio[start:end].strip(_PUNCTUATION)
            if phrase.lower() not in seen:
                seen.add(phrase.lower())
                phrases.append(phrase)
        if len(phrases) == REASON_ITEMS or i >= hits[-1]:
            break
    return phrases


def _adjustment(doc: ExpertDoc, load: ExpertLoad) -> float:
    """Between 1 - spans and 1 + RESPONSIVENESS_SPAN: responsive, unburdened people first."""
    rate = (load.answered + RESPONSIVENESS_PRIOR) / (
        load.answered + load.ignored + 2 * RESPONSIVENESS_PRIOR
    )
    responsiveness = 1.0 + RESPONSIVENESS_SPAN * (2.0 * rate - 1.0)
    busy = min(max(load.open_assignments, 0) / doc.capacity, 1.0)
    return responsiveness * (1.0 - CAPACITY_SPAN * busy)
