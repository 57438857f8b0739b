"""The one tokenizer of questions and profiles: what a text is about, word by word.

Matching (who should answer) and duplicate detection (was this asked already) read text
through these functions, so that both agree that "Postgres" is "PostgreSQL" and that
"migrating" is "migration".
"""

from __future__ import annotations

import re
import threading
from functools import lru_cache
from typing import Any

import Stemmer

# Words that carry no subject: grammar, and what kind of content is wanted or who wants it
# ("lessons learned from our team's ..."). Matching on them pings the wrong people and
# calls unrelated questions the same.
STOPWORDS = frozenset(
    """a an and are as at be but by can do does for from has have how i in into is it its
    of on or our should so than that the their them then there these they this to us was
    we what when where which who why will with without would you your about any some
    need want best way ways get
    also am anyone article articles been being blog blogs both company could content did
    doing during e.g each etc explain explainer few folks further had he her here hers him his
    i.e if just learned lesson lessons lets like may me might mine more most much must my no
    not nor off once one only other ours out over own people piece please post posts question
    questions same she shall someone something such team teams too topic two up
    very vs via were while write writing writeup yours""".split()
)
# Spellings people use for the same technology.
ALIASES = {"k8s": "kubernetes", "postgres": "postgresql", "golang": "go", "js": "javascript"}

# Words keep inner dots and trailing plus or hash (node.js, c++, c#); hyphens and slashes
# split them, so "zero-downtime" and "zero downtime" read the same.
WORD = re.compile(r"[a-z0-9][a-z0-9+#.]*[a-z0-9+#]|[a-z0-9]", re.IGNORECASE)
# PyStemmer objects are not thread-safe, and indexes are built off the event loop.
_local = threading.local()


def _stemmer() -> Any:
    stemmer = getattr(_local, "stemmer", None)
    if stemmer is None:
        stemmer = _local.stemmer = Stemmer.Stemmer("english")
    return stemmer


@lru_cache(maxsize=200_000)
def term(word: str) -> str:
    """The stem a word counts as, or "" for a word that says nothing about the subject."""
    word = ALIASES.get(word.lower(), word.lower())
    if len(word) < 2 or word in STOPWORDS:
        return ""
    # Names with digits or symbols (node.js, c++, ec2) are identifiers, not English.
    return str(_stemmer().stemWord(word)) if word.isalpha() else word


def terms_in_place(text: str) -> tuple[str, ...]:
    """One entry per `WORD` of `text`, "" where the word is dropped.

    The n-th entry is the n-th `WORD` match, so a matched stem can be shown as the author
    wrote it.
    """
    return tuple(map(term, WORD.findall(text)))


def terms(text: str) -> list[str]:
    """The meaningful words of `text`, lower-cased and stemmed, in order, repeats kept."""
    return [t for t in map(term, WORD.findall(text)) if t]
