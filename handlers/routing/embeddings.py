"""Embedding vectors, cached in the database by model and a hash of the exact text.

A text is sent to the embedder at most once per workspace and model: unchanged profiles
and repeated questions are read back from the `embedding` table, never recomputed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime

import numpy as np
from numpy.typing import NDArray
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from handlers.core.ports import Embedder, EmbeddingError
from storage.models import Embedding
from storage.upsert import insert_ignore

Vector = NDArray[np.float32]

# Keeps `IN (...)` lists well under SQLite's and PostgreSQL's parameter limits.
LOOKUP_CHUNK = 500
# Stored little-endian whatever the machine, so a database moves between hosts intact.
STORED_DTYPE = np.dtype("<f4")


def text_hash(text: str) -> str:
    """The cache key of a text: SHA-256 of its UTF-8 bytes, hex."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


async def embed_texts(
    session: AsyncSession,
    workspace_id: int,
    embedder: Embedder,
    texts: Sequence[str],
    *,
    now: datetime,
) -> list[Vector]:
    """One vector per text, from the cache when the same text was embedded before.

    Only texts never seen with this model reach the embedder, in a single call; their
    vectors are stored in the caller's transaction. Raises EmbeddingError when the
    embedder fails or answers with something that is not one vector per text.
    """
    by_hash: dict[str, str] = {}
    hashes = []
    for text in texts:
        digest = text_hash(text)
        by_hash.setdefault(digest, text)
        hashes.append(digest)
    found = await _cached(session, workspace_id, embedder.model, list(by_hash))
    missing = [digest for digest in by_hash if digest not in found]
    if missing:
        fresh = _checked(await embedder.embed([by_hash[digest] for digest in missing]), missing)
        for digest, vector in zip(missing, fresh, strict=True):
            # Another worker may have stored the same text meanwhile: the unique key keeps one.
            await insert_ignore(
                session,
                Embedding.__table__,  # type: ignore[attr-defined]
                {
                    "workspace_id": workspace_id,
                    "model": embedder.model,
                    "text_hash": digest,
                    "dimensions": int(vector.shape[0]),
                    "vector": vector.astype(STORED_DTYPE).tobytes(),
                    "created_at": now,
                },
                ("workspace_id", "model", "text_hash"),
            )
            found[digest] = vector
    return [found[digest] for digest in hashes]


def cosine(query: Vector, matrix: Vector) -> Vector:
    """Cosine similarity of `query` with each row of `matrix` (rows need not be unit length)."""
    if matrix.size == 0:
        return np.zeros(matrix.shape[0], dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1) * float(np.linalg.norm(query))
    dots = matrix @ query
    out = np.zeros_like(dots)
    np.divide(dots, norms, out=out, where=norms > 0)
    return out


async def _cached(
    session: AsyncSession, workspace_id: int, model: str, hashes: list[str]
) -> dict[str, Vector]:
    found: dict[str, Vector] = {}
    for start in range(0, len(hashes), LOOKUP_CHUNK):
        chunk = hashes[start : start + LOOKUP_CHUNK]
        rows = await session.exec(
            select(Embedding.text_hash, Embedding.vector).where(
                Embedding.workspace_id == workspace_id,
                Embedding.model == model,
                col(Embedding.text_hash).in_(chunk),
            )
        )
        for digest, blob in rows:
            found[digest] = np.frombuffer(bytes(blob), dtype=STORED_DTYPE).astype(np.float32)
    return found


def _checked(vectors: list[list[float]], expected: list[str]) -> list[Vector]:
    if len(vectors) != len(expected):
        raise EmbeddingError(f"asked for {len(expected)} embeddings, got {len(vectors)}")
    arrays = [np.asarray(vector, dtype=np.float32) for vector in vectors]
    shapes = {array.shape for array in arrays}
    if len(shapes) != 1 or len(next(iter(shapes))) != 1 or 0 in next(iter(shapes)):
        raise EmbeddingError(f"embeddings of inconsistent or empty shape: {sorted(shapes)}")
    if not all(np.isfinite(array).all() for array in arrays):
        raise EmbeddingError("embeddings contain non-finite values")
    return arrays
