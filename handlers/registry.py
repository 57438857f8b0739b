"""Builds the router with every feature registered."""

from __future__ import annotations

from collections.abc import Callable

from handlers import admin, drafting, experts, help, home, requests, review, routing, stats
from handlers.context import Config
from handlers.ports import Clock
from handlers.router import Router
from storage.db import SessionFactory

FEATURES = (help, requests, home, admin, experts, routing, drafting, review, stats)


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
