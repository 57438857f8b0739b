"""Is a new request the same question as an open one? Shared terms, forgiving of form.

The terms are matching's (`routing.words`): stemmed, stop words dropped, aliases
resolved, so "Postgres on k8s" is the same question as "PostgreSQL on Kubernetes".
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

from handlers.routing.words import terms

T = TypeVar("T")

# Minimum share of the shorter question's terms found in the other.
THRESHOLD = 0.5


def overlap(a: frozenset[str], b: frozenset[str]) -> float:
    """Share of the smaller term set present in the larger one (0 to 1)."""
    if not a or not b:
        return 0.0
    return len(a & b) / min(len(a), len(b))


def most_similar(
    text: str, candidates: Iterable[tuple[T, str]], *, limit: int = 3
) -> list[tuple[T, float]]:
    """The candidates whose text asks the same thing as `text`, best first."""
    wanted = frozenset(terms(text))
    scored = [(item, overlap(wanted, frozenset(terms(other)))) for item, other in candidates]
    similar = [(item, score) for item, score in scored if score >= THRESHOLD and len(wanted) > 0]
    similar.sort(key=lambda pair: pair[1], reverse=True)
    return similar[:limit]
