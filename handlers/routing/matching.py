"""Who should answer a request: BM25 over expert profiles, embeddings blended in, load-aware.

Relevance comes first and decides who may be asked at all: BM25 (bm25s) over each
expert's topics (weighted highest), the content they published and their bio, plus the
cosine similarity of embeddings when an embedder is configured. Availability rules
(snooze, capacity, the weekly ping cap, never the requester) remove people outright.
Among the rest, past responsiveness and spare capacity nudge the order moderately, so a
better match is not overtaken by a merely idle colleague. The explanation shown to the
expert ("you listed kubernetes") is read off the same token matches that scored them.
"""

from __future__ import annotations

import asyncio
import heapq
import re
import threading
from collections import OrderedDict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import lru_cache
from itertools import pairwise
from typing import Any

import bm25s
import numpy as np
import Stemmer
import structlog
from numpy.typing import NDArray
from sqlalchemy import String, Table, cast, func
from sqlalchemy import select as sa_select
from sqlmodel.ext.asyncio.session import AsyncSession

from handlers.core.ports import Embedder, EmbeddingError
from handlers.routing.embeddings import Vector, cosine, embed_texts
from handlers.routing.similarity import STOPWORDS as QUESTION_STOPWORDS
from storage.models import ExpertProfile, Member, Post

log = structlog.get_logger(__name__)

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

# Words that say what kind of content is wanted, or who wants it, rather than what it is
# about ("lessons learned from our team's ..."): matching on them pings the wrong people.
STOPWORDS = QUESTION_STOPWORDS | frozenset(
    """also am anyone article articles been being blog blogs both company could content did
    doing during e.g each etc explain explainer few folks further had he her here hers him his
    i.e if just learned lesson lessons lets like may me might mine more most much must my no
    not nor off once one only other ours out over own people piece please post posts question
    questions same she shall should someone something such team teams than too topic two up
    very vs via were while write writing writeup yours""".split()
)
# Spellings people use for the same technology.
ALIASES = {"k8s": "kubernetes", "postgres": "postgresql", "golang": "go", "js": "javascript"}

# Words keep inner dots and trailing plus or hash (node.js, c++, c#); hyphens and slashes
# split them, so "zero-downtime" and "zero downtime" read the same.
_WORD = re.compile(r"[a-z0-9][a-z0-9+#.]*[a-z0-9+#]|[a-z0-9]", re.IGNORECASE)
_PUNCTUATION = ".,;:!?()[]{}<>\"'“”‘’"
_profile: Table = ExpertProfile.__table__  # type: ignore[attr-defined]
_member: Table = Member.__table__  # type: ignore[attr-defined]
_post: Table = Post.__table__  # type: ignore[attr-defined]
# The newest posts say most about what an expert knows now.
PUBLISHED_PER_EXPERT = 20
# PyStemmer objects are not thread-safe, and indexes are built off the event loop.
_local = threading.local()


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


def _stemmer() -> Any:
    stemmer = getattr(_local, "stemmer", None)
    if stemmer is None:
        stemmer = _local.stemmer = Stemmer.Stemmer("english")
    return stemmer


@lru_cache(maxsize=200_000)
def _term(word: str) -> str:
    """The stem a word counts as, or "" for a word that says nothing about the subject."""
    word = ALIASES.get(word.lower(), word.lower())
    if len(word) < 2 or word in STOPWORDS:
        return ""
    # Names with digits or symbols (node.js, c++, ec2) are identifiers, not English.
    return str(_stemmer().stemWord(word)) if word.isalpha() else word


def _terms_in_place(text: str) -> tuple[str, ...]:
    # One entry per word of `text`, "" where the word is dropped, so that the n-th entry
    # is the n-th `_WORD` match and a matched stem can be shown as the author wrote it.
    return tuple(map(_term, _WORD.findall(text)))


def terms(text: str) -> list[str]:
    """The meaningful words of `text`, lower-cased and stemmed, in order, repeats kept."""
    return [term for term in map(_term, _WORD.findall(text)) if term]


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
            bio = _terms_in_place(doc.bio)
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
    for i, match in enumerate(_WORD.finditer(bio)):
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


# -- the workspace's index, cached --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProfileVectors:
    """Embeddings of the profiles of one index, for one model."""

    member_ids: tuple[int, ...]
    matrix: Vector


@dataclass(slots=True)
class _Entry:
    fingerprint: tuple[Any, ...]
    index: ExpertIndex
    vectors: dict[str, ProfileVectors] = field(default_factory=dict)


class IndexCache:
    """Expert indexes per database and workspace, rebuilt only after a profile changed."""

    def __init__(self, max_workspaces: int = 256) -> None:
        self._entries: OrderedDict[tuple[str, int], _Entry] = OrderedDict()
        self._max = max_workspaces
        self.builds = 0

    async def entry(self, session: AsyncSession, workspace_id: int) -> _Entry:
        """The current index of a workspace: the cached one unless its profiles changed."""
        key = (_database(session), workspace_id)
        # The queries below go through the connection, which does not autoflush: a profile
        # edited earlier in this unit of work must be visible to them.
        await session.flush()
        fingerprint = await _fingerprint(session, workspace_id)
        entry = self._entries.get(key)
        if entry is None or entry.fingerprint != fingerprint:
            docs = await load_docs(session, workspace_id)
            # Tokenizing thousands of profiles takes a while: keep the event loop free.
            index = await asyncio.to_thread(ExpertIndex.build, docs)
            entry = _Entry(fingerprint, index)
            self._entries[key] = entry
            self.builds += 1
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)
        return entry


# The process's cache; the database URL in its key keeps databases apart.
SHARED_CACHE = IndexCache()


def _database(session: AsyncSession) -> str:
    url = getattr(session.bind, "url", None)
    return url.render_as_string(hide_password=True) if url is not None else ""


async def _fingerprint(session: AsyncSession, workspace_id: int) -> tuple[Any, ...]:
    # updated_at alone misses two edits within one clock tick (and tests freeze the
    # clock), so cheap aggregates of the indexed columns are part of the key too.
    query = (
        sa_select(
            func.count(_profile.c.id),
            func.max(_profile.c.id),
            func.max(_profile.c.updated_at),
            func.max(_member.c.updated_at),
            func.sum(_profile.c.capacity),
            func.sum(func.length(_profile.c.bio)),
            func.sum(func.length(cast(_profile.c.topics, String))),
            func.count(_profile.c.snoozed_until),
            func.max(_profile.c.snoozed_until),
        )
        .join_from(_profile, _member, _member.c.id == _profile.c.member_id)
        .where(_profile.c.workspace_id == workspace_id)
    )
    # Publishing a post changes what its author is known for.
    posts = sa_select(func.count(_post.c.id), func.max(_post.c.id)).where(
        _post.c.workspace_id == workspace_id
    )
    # Core selects go through the session's connection (and its transaction): SQLModel's
    # exec() types only ORM selects of up to four columns.
    connection = await session.connection()
    return (*(await connection.execute(query)).one(), *(await connection.execute(posts)).one())


async def load_docs(session: AsyncSession, workspace_id: int) -> list[ExpertDoc]:
    """Every expert profile of the workspace with its member, in one query."""
    query = (
        sa_select(
            _member.c.id,
            _member.c.user_id,
            _member.c.name,
            _profile.c.topics,
            _profile.c.bio,
            _profile.c.capacity,
            _profile.c.snoozed_until,
        )
        .join_from(_profile, _member, _member.c.id == _profile.c.member_id)
        .where(
            _profile.c.workspace_id == workspace_id,
            _member.c.workspace_id == workspace_id,
            _member.c.is_bot.is_(False),
        )
        .order_by(_member.c.id)
    )
    connection = await session.connection()
    rows = (await connection.execute(query)).all()
    posts = (
        sa_select(_post.c.author_id, _post.c.title, _post.c.body)
        .where(_post.c.workspace_id == workspace_id)
        .order_by(_post.c.id.desc())
    )
    published: dict[int, list[str]] = {}
    for author_id, title, body in (await connection.execute(posts)).all():
        items = published.setdefault(author_id, [])
        if len(items) < PUBLISHED_PER_EXPERT:
            items.append(f"{title}\n{body}")
    return [
        ExpertDoc(
            member_id=member_id,
            user_id=user_id,
            name=name,
            topics=tuple(topics or ()),
            bio=bio or "",
            published=tuple(published.get(member_id, ())),
            capacity=capacity,
            snoozed_until=snoozed_until,
        )
        for member_id, user_id, name, topics, bio, capacity, snoozed_until in rows
    ]


async def rank_experts(
    session: AsyncSession,
    workspace_id: int,
    query: str,
    *,
    loads: Mapping[int, ExpertLoad],
    today: date,
    weekly_cap: int,
    exclude: Collection[int] = (),
    embedder: Embedder | None = None,
    limit: int = 10,
    cache: IndexCache | None = None,
    now: datetime | None = None,
) -> list[Candidate]:
    """The workspace's best experts for `query`, semantic when an embedder is configured.

    Embedding failures are logged and the ranking falls back to words alone: a request
    must still reach someone when the embeddings service is down.
    """
    entry = await (cache or SHARED_CACHE).entry(session, workspace_id)
    semantic = None
    if embedder is not None and len(entry.index) and query.strip():
        try:
            semantic = await _semantic(
                session, workspace_id, query, entry, embedder, now or datetime.now(UTC)
            )
        except EmbeddingError as error:
            log.warning(
                "matching.embeddings_unavailable",
                workspace_id=workspace_id,
                model=embedder.model,
                error=str(error),
            )
    return entry.index.rank(
        query,
        loads=loads,
        today=today,
        weekly_cap=weekly_cap,
        exclude=exclude,
        semantic=semantic,
        limit=limit,
    )


async def _semantic(
    session: AsyncSession,
    workspace_id: int,
    query: str,
    entry: _Entry,
    embedder: Embedder,
    now: datetime,
) -> dict[int, float]:
    vectors = entry.vectors.get(embedder.model)
    texts = [query]
    profiles: list[tuple[int, str]] = []
    if vectors is None:
        profiles = [(doc.member_id, profile_text(doc)) for doc in entry.index.docs]
        profiles = [(member_id, text) for member_id, text in profiles if text]
        texts += [text for _, text in profiles]
    embedded = await embed_texts(session, workspace_id, embedder, texts, now=now)
    question = embedded[0]
    if vectors is None:
        matrix = (
            np.vstack(embedded[1:])
            if profiles
            else np.zeros((0, question.shape[0]), dtype=np.float32)
        )
        vectors = ProfileVectors(tuple(member_id for member_id, _ in profiles), matrix)
        entry.vectors[embedder.model] = vectors
    if vectors.matrix.shape[1] != question.shape[0]:
        raise EmbeddingError(
            f"query has {question.shape[0]} dimensions, profiles {vectors.matrix.shape[1]}"
        )
    similarities = cosine(question, vectors.matrix)
    return dict(zip(vectors.member_ids, similarities.tolist(), strict=True))
