"""Sharing: distribution to the right people, captions, share buttons, tracked links, find, wins."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from handlers.core.router import Router


def register(router: Router) -> None:
    """Everything this flow answers and schedules."""
    # Imported here so that importing one module of the package loads only what it needs.
    from handlers.sharing import distribution, find, share, wins

    share.register(router)
    find.register(router)
    wins.register(router)
    router.sweep(distribution.sweep)
    router.job(distribution.write_variants)
