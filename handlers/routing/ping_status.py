"""What became of a ping: its statuses and the moves between them, checked in one place."""

from __future__ import annotations

from enum import StrEnum

from handlers.core.errors import InvalidTransition
from storage.models import Ping


class PingStatus(StrEnum):
    PENDING = "pending"
    CLAIMED = "claimed"
    DECLINED = "declined"
    PASSED = "passed"
    EXPIRED = "expired"
    WITHDRAWN = "withdrawn"


# The expert said something: counts towards their responsiveness.
ANSWERED = frozenset({PingStatus.CLAIMED, PingStatus.DECLINED, PingStatus.PASSED})

# Only a ping still waiting can be declined, expire or be withdrawn. Claiming and
# suggesting someone stay open to whoever was asked for as long as the request itself is
# open (its lifecycle is what closes that door): a late answer is still an answer.
_REANSWER = frozenset({PingStatus.CLAIMED, PingStatus.PASSED})
ALLOWED: dict[PingStatus, frozenset[PingStatus]] = {
    PingStatus.PENDING: frozenset(
        {
            PingStatus.CLAIMED,
            PingStatus.DECLINED,
            PingStatus.PASSED,
            PingStatus.EXPIRED,
            PingStatus.WITHDRAWN,
        }
    ),
    **{status: _REANSWER for status in PingStatus if status is not PingStatus.PENDING},
}


def can_move(current: str | PingStatus, target: PingStatus) -> bool:
    """Whether a ping in `current` may become `target`."""
    return target in ALLOWED[PingStatus(current)]


def sources(target: PingStatus) -> list[PingStatus]:
    """The statuses from which a ping may become `target`, for set-wise updates."""
    return [status for status in PingStatus if target in ALLOWED[status]]


def move_ping(ping: Ping, target: PingStatus) -> None:
    """Set the ping's status to `target`, or refuse politely if that move is not allowed."""
    current = PingStatus(ping.status)
    if not can_move(current, target):
        raise InvalidTransition(
            f"You already answered this one ({current.value}), so it can't be {target.value} now."
        )
    ping.status = target
