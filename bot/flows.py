"""The flows Flywheel runs. A flow is a package under `handlers/` with a `register`
function; adding one is adding its package and a line here."""

from __future__ import annotations

from collections.abc import Callable

from handlers import (
    admin,
    content,
    drafting,
    help,
    home,
    impact,
    linkedin,
    requests,
    review,
    routing,
    sharing,
    welcome,
)
from handlers.core.context import Config
from handlers.core.ports import Clock
from handlers.core.router import Router
from storage.db import SessionFactory

FLOWS = (
    help,
    requests,
    home,
    admin,
    routing,
    drafting,
    review,
    sharing,
    content,
    impact,
    linkedin,
    welcome,
)


def build_router(
    sessions: SessionFactory,
    clock: Clock,
    config: Config,
    on_commit: Callable[[], None] = lambda: None,
) -> Router:
    """The one router, with every flow's commands, actions, forms and scheduled work."""
    router = Router(sessions, clock, config, on_commit)
    for flow in FLOWS:
        flow.register(router)
    return router
