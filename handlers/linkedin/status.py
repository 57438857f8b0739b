"""The statuses of a LinkedIn post made from chat, and the moves between them."""

from __future__ import annotations

from enum import StrEnum

from handlers.core.errors import InvalidTransition


class LinkedInPostStatus(StrEnum):
    SCHEDULED = "scheduled"  # due at `due_at`, nothing sent yet
    SENDING = "sending"  # the request is on its way: never sent again by itself
    POSTED = "posted"  # LinkedIn answered with the post's URN
    UNCONFIRMED = "unconfirmed"  # sent, but the answer was lost: the member checks their feed
    WAITING = "waiting"  # the token expired or was refused: waits for the member to reconnect
    FAILED = "failed"  # LinkedIn refused it, or it could not be sent in time
    CANCELLED = "cancelled"  # the member cancelled it or disconnected, or the post retired


S = LinkedInPostStatus
ALLOWED: dict[S, frozenset[S]] = {
    S.SCHEDULED: frozenset({S.SENDING, S.WAITING, S.FAILED, S.CANCELLED}),
    # Back to scheduled only when LinkedIn said nothing was published (429, 5xx, unreachable).
    S.SENDING: frozenset({S.POSTED, S.UNCONFIRMED, S.SCHEDULED, S.WAITING, S.FAILED}),
    S.WAITING: frozenset({S.SCHEDULED, S.CANCELLED}),
    S.POSTED: frozenset(),
    S.UNCONFIRMED: frozenset(),
    S.FAILED: frozenset(),
    S.CANCELLED: frozenset(),
}
# A post in one of these is on its way: the member asking again gets it, not a second one.
ACTIVE = (S.SCHEDULED, S.SENDING, S.WAITING)


def move(current: str, target: S) -> S:
    """`target`, if the move from `current` is allowed; InvalidTransition otherwise."""
    status = S(current)
    if target not in ALLOWED[status]:
        raise InvalidTransition(_WORDS.get(status, "That LinkedIn post can't change any more."))
    return target


_WORDS = {
    S.SENDING: "That post is being published on LinkedIn right now.",
    S.POSTED: "That post is already on LinkedIn.",
    S.UNCONFIRMED: "That post was sent to LinkedIn already — check your feed.",
    S.CANCELLED: "That post was cancelled already.",
    S.FAILED: "That post didn't go out; it can't be changed now.",
}
