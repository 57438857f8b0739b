"""Where a draft stands: its statuses and the moves between them, checked in one place."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from handlers.core.errors import InvalidTransition
from storage.models import Draft


class DraftStatus(StrEnum):
    EDITING = "editing"
    IN_REVIEW = "in_review"
    CHANGES_REQUESTED = "changes_requested"
    APPROVED = "approved"
    REJECTED = "rejected"


ALLOWED: dict[DraftStatus, frozenset[DraftStatus]] = {
    DraftStatus.EDITING: frozenset({DraftStatus.IN_REVIEW}),
    DraftStatus.IN_REVIEW: frozenset(
        {DraftStatus.CHANGES_REQUESTED, DraftStatus.APPROVED, DraftStatus.REJECTED}
    ),
    DraftStatus.CHANGES_REQUESTED: frozenset({DraftStatus.IN_REVIEW}),
    DraftStatus.APPROVED: frozenset(),
    DraftStatus.REJECTED: frozenset(),
}

# The author may change the working copy (by hand or with AI help) only in these.
EDITABLE = frozenset({DraftStatus.EDITING, DraftStatus.CHANGES_REQUESTED})

LABELS: dict[DraftStatus, str] = {
    DraftStatus.EDITING: "being written",
    DraftStatus.IN_REVIEW: "in review",
    DraftStatus.CHANGES_REQUESTED: "back with its author for changes",
    DraftStatus.APPROVED: "approved",
    DraftStatus.REJECTED: "rejected",
}
_VERBS: dict[DraftStatus, str] = {
    DraftStatus.EDITING: "edited",
    DraftStatus.IN_REVIEW: "sent for review",
    DraftStatus.CHANGES_REQUESTED: "sent back for changes",
    DraftStatus.APPROVED: "approved",
    DraftStatus.REJECTED: "rejected",
}


def require_editable(draft: Draft) -> None:
    """Refuse politely unless the draft's author may change it now."""
    status = DraftStatus(draft.status)
    if status not in EDITABLE:
        raise InvalidTransition(f"This draft is {LABELS[status]}, so it can't be edited now.")


def move_draft(draft: Draft, target: DraftStatus, now: datetime) -> None:
    """Move the draft to `target`, or refuse politely if that move is not allowed."""
    status = DraftStatus(draft.status)
    if target not in ALLOWED[status]:
        raise InvalidTransition(
            f"This draft is {LABELS[status]}, so it can't be {_VERBS[target]} now."
        )
    draft.status, draft.updated_at = target, now
