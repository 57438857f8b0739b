"""`help`: the vocabulary, built from what is registered, so it never lists what isn't there."""

from __future__ import annotations

from typing import TYPE_CHECKING

from handlers.core.interactions import Command, Reply
from handlers.core.messages import ContextLine, Message, Section

if TYPE_CHECKING:
    from handlers.core.router import Router


def register(router: Router) -> None:
    async def show_help(command: Command) -> Reply:
        lines = [
            f"• `{info.usage}` — {info.summary}"
            for info in sorted(router.commands.values(), key=lambda i: i.name)
        ]
        unknown = command.name not in router.commands and command.name not in ("", "help")
        lead = (
            f"I don't know `{command.name}`. Here is what I can do:"
            if unknown
            else "Here is what I can do:"
        )
        return Reply(
            message=Message(
                text=lead + "\n" + "\n".join(lines),
                blocks=(
                    Section(text=lead),
                    Section(text="\n".join(lines)),
                    ContextLine(
                        text="Buttons in my messages do the rest: "
                        "+1 a request; claim, suggest or pass."
                    ),
                ),
            )
        )

    # Help reads nothing stored, so answering it costs no database work.
    router.plain_command("help", usage="help", summary="everything I can do")(show_help)
    router.fallback_command = show_help
