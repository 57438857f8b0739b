"""LinkedIn: connect once, post approved posts as yourself, and know they were posted."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from handlers.core.router import Router


def register(router: Router) -> None:
    """Everything this flow answers and schedules."""
    from handlers.linkedin import connection, posting

    connection.register(router)
    posting.register(router)
