"""Row ids read back from what a platform returns: button values, form state, card data.

Whatever a button or a form carried came back through a person's client, so it is input
like any other. An id is accepted only as plain ASCII digits within the range of the id
columns; anything else is the polite "not found" of the thing it should have named, before
a database sees it (PostgreSQL refuses integers past its column type, SQLite past 64 bits).
"""

from __future__ import annotations

import re

from handlers.core.errors import NotFound

# Id columns are INTEGER on PostgreSQL: 4 bytes, signed. Rows start at 1.
MAX_ID = 2**31 - 1

_DIGITS = re.compile(r"[1-9][0-9]{0,9}")


def parse_id(raw: object, missing: str) -> int:
    """The id `raw` spells, or NotFound(`missing`) when it spells none a row could have.

    Refused: signs, spaces inside, underscores, non-ASCII digits, zero, leading zeros and
    anything above MAX_ID; surrounding whitespace is ignored.
    """
    found = maybe_id(raw)
    if found is None:
        raise NotFound(missing)
    return found


def maybe_id(raw: object) -> int | None:
    """Like `parse_id`, for where a missing or unreadable id is simply no choice made."""
    if not isinstance(raw, str):
        return None
    text = raw.strip()
    if not _DIGITS.fullmatch(text):
        return None
    value = int(text)
    return value if value <= MAX_ID else None
