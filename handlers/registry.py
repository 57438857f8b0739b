"""Builds the router with every feature registered."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from handlers import (
    admin,
    digests,
    distribution,
    drafting,
    experts,
    find,
    help,
    home,
    notes,
    requests,
    review,
    routing,
    sharing,
    stats,
    wins,
)
from handlers.context import Config, Scope
from handlers.ports import Clock
from handlers.router import Router
from storage.db import SessionFactory

FEATURES = (
    help,
    requests,
    home,
    admin,
    experts,
    routing,
    drafting,
    review,
    sharing,
    find,
    wins,
    stats,
    digests,
    notes,
)

# Scheduled work besides routing, run by the worker for each workspace in its own
# transaction. Each must be idempotent: a sweep repeated or caught up sends nothing twice.
SWEEPS: tuple[Callable[[Scope], Awaitable[object]], ...] = (distribution.sweep, digests.sweep)


def build_router(
    sessions: SessionFactory,
    clock: Clock,
    config: Config,
    on_commit: Callable[[], None] = lambda: None,
) -> Router:
    router = Router(sessions, clock, config, on_commit)
    for feature in FEATURES:
        feature.register(router)
    return router
