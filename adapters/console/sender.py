"""The console side of the outbox: messages the bot sends later are printed, labelled by where
they went, so one terminal shows every colleague's DMs and every channel."""

from __future__ import annotations

from itertools import count

from pydantic import ValidationError

from adapters.console.render import Screen
from handlers.core.messages import Message
from handlers.core.ports import Delivered, Delivery, PermanentError


class ConsoleSender:
    """Prints outbox deliveries: `[DM to @alice] …`, `[#general] …`; home views succeed silently."""

    platform = "console"

    def __init__(self, screen: Screen) -> None:
        self.screen = screen
        self._ids = count(1)

    async def send(self, delivery: Delivery) -> Delivered:
        """Print one delivery; returns where it landed, so later updates can say so."""
        if delivery.kind == "home":
            # There is no home tab in a terminal; `home` shows the same view on demand.
            return Delivered()
        try:
            message = Message.stored(delivery.payload)
        except ValidationError as error:
            raise PermanentError(f"not a message: {error.error_count()} problem(s)") from None
        if delivery.kind == "update":
            where = delivery.channel or ""
            heading = f"[{_place(where)}, edited]"
        else:
            where = _destination(delivery.target)
            thread = ", in thread" if delivery.target.get("thread") else ""
            heading = f"[{_place(where)}{thread}]"
        owner = where[1:] if where.startswith("@") else None
        self.screen.show(message, heading=heading, owner=owner)
        return Delivered(channel=where, message_id=str(next(self._ids)))


def _destination(target: dict[str, object]) -> str:
    """`#channel` or `@user`, from an outbox target."""
    channel, user = target.get("channel"), target.get("user")
    if isinstance(channel, str) and channel:
        return "#" + channel.lstrip("#")
    if isinstance(user, str) and user:
        return "@" + user.lstrip("@")
    raise PermanentError(f"no console destination in {sorted(target)}")


def _place(where: str) -> str:
    return f"DM to {where}" if where.startswith("@") else where


__all__ = ["ConsoleSender"]
