"""Teams' limits on an Adaptive Card and its parts, shared by rendering and submit parsing.

Teams refuses a message over about 28 KB, and clients cut or drop elements past their own
limits; a card is rendered within these, and a submit is read back within the same ones.
"""

from __future__ import annotations

import json
from typing import Any

# Teams refuses messages over ~28 KB including the activity around the card.
CARD_BUDGET = 25_000
TEXT = 3000
FIELD_TEXT = 2000
SECTION_FIELDS = 10
HEADER_TEXT = 150
BUTTON_TITLE = 75
BUTTON_VALUE = 2000
BUTTONS = 25
# Teams shows at most six actions in a row; more go on further rows.
ACTIONS_PER_ROW = 6
URL = 3000
FALLBACK_TEXT = 3000
SUMMARY = 200
LABEL = 2000
PLACEHOLDER = 150
OPTION_TITLE = 75
OPTION_VALUE = 150
OPTIONS = 100
INPUT_MAX = 3000
STATE = 3000
NAME = 255


def clip(text: str, limit: int) -> str:
    """Cut `text` to `limit` characters, marking the cut with an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def size(card: dict[str, Any]) -> int:
    """Bytes of the card as the Bot Framework sends it (non-ASCII escaped, the worst case)."""
    return len(json.dumps(card, separators=(",", ":")).encode())
