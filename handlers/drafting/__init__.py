"""Drafting: the draft form, AI help from prompt files, compliance checks, sending for review."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from handlers.core.router import Router


def register(router: Router) -> None:
    """Everything this flow answers and schedules."""
    # Imported here so that importing one module of the package loads only what it needs.
    from handlers.drafting import ai_tasks, form, replies

    form.register(router)
    ai_tasks.register(router)
    replies.register(router)
    router.job(ai_tasks.run_ai_tasks)
