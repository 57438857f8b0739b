"""JSON request bodies as every HTTP edge reads them: parsed, and bounded in depth.

No platform sends JSON nested more than a dozen levels deep. Anything deeper is refused
before it is authenticated or handed to an SDK, whose parsers, deserializers and encoders
recurse and would otherwise fail with a RecursionError (a 500 and a traceback in the
error log, for whoever cares to send one).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

# Slack's view states and Teams' card data reach about ten levels; this leaves room.
MAX_DEPTH = 32


class BadJson(ValueError):
    """A body that is not JSON a platform would send; the message says why, for a 400."""


def load_json(data: str | bytes, what: str = "body") -> Any:
    """Parse `data`; BadJson if it is not UTF-8 JSON or nests deeper than MAX_DEPTH."""
    try:
        value = json.loads(data)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise BadJson(f"{what} is not valid JSON") from None
    if too_deep(value, MAX_DEPTH):
        raise BadJson(f"{what} is nested more than {MAX_DEPTH} levels deep")
    return value


def too_deep(value: Any, limit: int) -> bool:
    """Whether containers in `value` nest more than `limit` levels (walked without recursion)."""
    pending: list[tuple[Any, int]] = [(value, 1)] if isinstance(value, dict | list) else []
    while pending:
        node, depth = pending.pop()
        children: Iterable[Any] = node.values() if isinstance(node, dict) else node
        if depth > limit:
            return True
        pending.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False
