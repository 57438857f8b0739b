"""Impact: what the loop did, in numbers, and who hears it.

The read model: `query` (periods, tables), `clicks` (the click tally), `reach` (shares and
clicks by post, sharer or author), `totals` (headline numbers), `rankings` (the week's
lists), `people` (one person's part). The weekly digest: `digest_schedule` (when),
`digest_figures` (what it says), `digest_message` (how it reads), `digest_sweep` (sent once
per channel, refusals told to admins), `digest_status`, `digest_preview`, `digest_page`
(read back for the web page) and `digest_claim` (its "I'll take it"). Then `notes` (each
person's weekly note), `stats` and `digest_settings` (the admin form's digest fields).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from handlers.core.router import Router


def register(router: Router) -> None:
    """Everything this flow answers and schedules."""
    # Imported here so that importing one module of the package loads only what it needs.
    from handlers.impact import digest_claim, digest_preview, digest_sweep, notes, stats

    stats.register(router)
    digest_preview.register(router)
    digest_claim.register(router)
    notes.register(router)
    router.sweep(digest_sweep.sweep)
