"""The workspace's expert index, cached per database and workspace, and ranking with it.

An index is rebuilt only when a profile, a member or a post changed (a fingerprint of
cheap aggregates says so); profile embeddings are kept with it per model. `rank_experts`
is what routing calls: the index's ranking, with embeddings blended in when configured.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import structlog
from sqlalchemy import String, Table, cast, func
from sqlalchemy import select as sa_select
from sqlmodel.ext.asyncio.session import AsyncSession

from handlers.core.ports import Embedder, EmbeddingError
from handlers.routing.embeddings import Vector, cosine, embed_texts
from handlers.routing.matching import Candidate, ExpertDoc, ExpertIndex, ExpertLoad, profile_text
from storage.models import ExpertProfile, Member, Post

log = structlog.get_logger(__name__)

_profile: Table = ExpertProfile.__table__  # type: ignore[attr-defined]
_member: Table = Member.__table__  # type: ignore[attr-defined]
_post: Table = Post.__table__  # type: ignore[attr-defined]
# The newest posts say most about what an expert knows now.
PUBLISHED_PER_EXPERT = 20


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
