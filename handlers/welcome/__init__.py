"""Welcome: the first hello when Flywheel is installed or first opened, once per person."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from handlers.core.router import Router


def register(router: Router) -> None:
    """Everything this flow answers."""
    from handlers.welcome import greeting

    greeting.register(router)
