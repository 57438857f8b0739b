"""Content from outside the loop: links people share (`share <url>`) and company feeds."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from handlers.core.router import Router


def register(router: Router) -> None:
    """Everything this flow answers and schedules."""
    from handlers.content import feeds, links

    links.register(router)
    feeds.register(router)
