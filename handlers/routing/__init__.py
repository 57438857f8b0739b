"""Routing: who knows what (expert profiles, matching), pings, claims, reminders, escalation."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from handlers.core.router import Router


def register(router: Router) -> None:
    """Everything this flow answers and schedules."""
    # Imported here so that importing one module of the package loads only what it needs.
    from handlers.routing import experts, nominations, pings, sweeps

    experts.register(router)
    pings.register(router)
    nominations.register(router)
    router.sweep(sweeps.sweep)
