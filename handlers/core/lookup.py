"""The one tenant-checked lookup: this id, in this workspace, or a polite not-found.

Tenants never mix: a row of another workspace is as good as unknown, and says so in the
same words as a row that does not exist.
"""

from __future__ import annotations

from typing import TypeVar

from sqlmodel import SQLModel

from handlers.core.context import Scope
from handlers.core.errors import NotFound
from handlers.core.ids import maybe_id

Row = TypeVar("Row", bound=SQLModel)

GONE = "I can't find that — it may have been removed."
REQUEST_GONE = "I can't find that request — it may have been removed."
DRAFT_GONE = "I can't find that draft — it may have been removed."


async def find(scope: Scope, model: type[Row], ident: int | str | None) -> Row | None:
    """The `model` row with this id in the scope's workspace, or None.

    `ident` may be an id read back from a button, a form or a card (see `handlers.core.ids`).
    """
    row_id = maybe_id(ident) if isinstance(ident, str) else ident
    if row_id is None:
        return None
    row = await scope.session.get(model, row_id)
    # A table without a workspace column can never be looked up this way: no row matches.
    if row is None or getattr(row, "workspace_id", None) != scope.workspace_id:
        return None
    return row


async def get(scope: Scope, model: type[Row], ident: int | str | None, missing: str = GONE) -> Row:
    """Like `find`, or NotFound with `missing` (the polite words for that kind of thing)."""
    row = await find(scope, model, ident)
    if row is None:
        raise NotFound(missing)
    return row
