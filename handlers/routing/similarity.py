"""Is a new request the same question as an open one? Word overlap, forgiving of form."""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from typing import TypeVar

T = TypeVar("T")

STOPWORDS = frozenset(
    """a an and are as at be but by can do does for from has have how i in into is it its
    of on or our should so than that the their them then there these they this to us was
    we what when where which who why will with without would you your about any some
    need want best way ways get""".split()
)

_WORD = re.compile(r"[a-z0-9][a-z0-9+#.\-]*[a-z0-9+#]|[a-z0-9]")
_SUFFIXES = ("ations", "ation", "ings", "ing", "ions", "ion", "ies", "es", "ed", "s", "e")

# Minimum share of the shorter question's terms found in the other.
THRESHOLD = 0.5


@lru_cache(maxsize=4096)
def _stem(word: str) -> str:
    for suffix in _SUFFIXES:
        if len(word) - len(suffix) >= 4 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def terms(text: str) -> frozenset[str]:
    """Meaningful, lightly stemmed words of a question."""
    words = _WORD.findall(text.lower())
    return frozenset(_stem(w) for w in words if w not in STOPWORDS and len(w) > 1)


def overlap(a: frozenset[str], b: frozenset[str]) -> float:
    """Share of the smaller term set present in the larger one (0 to 1)."""
    if not a or not b:
        return 0.0
    return len(a & b) / min(len(a), len(b))


def most_similar(
    text: str, candidates: Iterable[tuple[T, str]], *, limit: int = 3
) -> list[tuple[T, float]]:
    """The candidates whose text asks the same thing as `text`, best first."""
    wanted = terms(text)
    scored = [(item, overlap(wanted, terms(other))) for item, other in candidates]
    similar = [(item, score) for item, score in scored if score >= THRESHOLD and len(wanted) > 0]
    similar.sort(key=lambda pair: pair[1], reverse=True)
    return similar[:limit]
