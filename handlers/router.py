"""The one action router: commands, buttons, forms and events to their handlers.

Every platform adapter hands its translated interactions here. The router opens the unit
of work, resolves workspace and actor, runs the handler, and turns domain errors into
polite replies — once, for every platform.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from uuid import uuid4

import structlog

from handlers.context import Config, Context
from handlers.errors import DomainError, FormInvalid
from handlers.interactions import (
    NO_REPLY,
    Action,
    Command,
    Event,
    Interaction,
    Reply,
    Submission,
)
from handlers.members import ensure_member, ensure_workspace
from handlers.messages import Message
from handlers.ports import Clock, Directory
from storage import events, outbox
from storage.db import SessionFactory, transaction

log = structlog.get_logger(__name__)

Handler = Callable[[Context, Any], Awaitable[Reply]]


@dataclass(frozen=True, slots=True)
class CommandInfo:
    name: str
    usage: str
    summary: str
    handler: Handler


class Router:
    """Maps names to handlers; `dispatch` runs one interaction in one transaction."""

    def __init__(
        self,
        sessions: SessionFactory,
        clock: Clock,
        config: Config,
        on_commit: Callable[[], None] = lambda: None,
    ) -> None:
        self.sessions = sessions
        self.clock = clock
        self.config = config
        self.on_commit = on_commit
        self.commands: dict[str, CommandInfo] = {}
        self.actions: dict[str, Handler] = {}
        self.forms: dict[str, Handler] = {}
        self.events: dict[str, Handler] = {}
        self.fallback_command: Handler | None = None
        # Per platform: who is who, for people who have not spoken to the bot themselves.
        self.directories: dict[str, Directory] = {}

    def command(self, name: str, *, usage: str, summary: str) -> Callable[[Handler], Handler]:
        def register(fn: Handler) -> Handler:
            self.commands[name] = CommandInfo(name, usage, summary, fn)
            return fn

        return register

    def action(self, name: str) -> Callable[[Handler], Handler]:
        return self._into(self.actions, name)

    def form(self, form_id: str) -> Callable[[Handler], Handler]:
        return self._into(self.forms, form_id)

    def event(self, name: str) -> Callable[[Handler], Handler]:
        return self._into(self.events, name)

    @staticmethod
    def _into(table: dict[str, Handler], name: str) -> Callable[[Handler], Handler]:
        def register(fn: Handler) -> Handler:
            if name in table:
                raise ValueError(f"{name!r} is registered twice")
            table[name] = fn
            return fn

        return register

    def handler_for(self, interaction: Interaction) -> Handler:
        match interaction:
            case Command(name=name):
                info = self.commands.get(name)
                if info is not None:
                    return info.handler
                assert self.fallback_command is not None, "no help command registered"
                return self.fallback_command
            case Action(action=name):
                return self.actions.get(name) or _unknown("That button")
            case Submission(form_id=name):
                return self.forms.get(name) or _unknown("That form")
            case Event(name=name):
                return self.events.get(name) or _ignore
        raise TypeError(f"not an interaction: {interaction!r}")

    async def dispatch(self, interaction: Interaction) -> Reply:
        """Run one interaction; replies meant for later are queued in the same transaction."""
        handler = self.handler_for(interaction)
        origin = interaction.origin
        bound = log.bind(
            platform=origin.platform,
            workspace=origin.workspace_id,
            user=interaction.actor.user_id,
            interaction=type(interaction).__name__,
            name=_name(interaction),
        )
        try:
            async with transaction(self.sessions) as session:
                ctx = await self._context(session, interaction)
                reply = await handler(ctx, interaction)
                await self._queue_reply(ctx, interaction, reply)
        except FormInvalid as invalid:
            bound.info("form.invalid", fields=sorted(invalid.errors))
            return Reply.invalid(invalid.errors)
        except DomainError as refused:
            bound.info("interaction.refused", reason=refused.message)
            reply = Reply.say(refused.message)
            if origin.reply_to is not None:
                async with transaction(self.sessions) as session:
                    await self._queue_reply(
                        await self._context(session, interaction), interaction, reply
                    )
                self.on_commit()
                return NO_REPLY
            return reply
        self.on_commit()
        if origin.reply_to is not None and reply.message is not None:
            return Reply(form=reply.form, errors=reply.errors)
        return reply

    async def first_delivery(self, platform: str, workspace: str, event_id: str) -> bool:
        """Record an inbound event id; False when it was processed before (a platform retry)."""
        async with transaction(self.sessions) as session:
            return await events.first_delivery(
                session,
                platform=platform,
                workspace=workspace,
                event_id=event_id,
                now=self.clock.now(),
            )

    async def _context(self, session: Any, interaction: Interaction) -> Context:
        now = self.clock.now()
        workspace = await ensure_workspace(session, interaction.origin, now)
        member = await ensure_member(session, workspace, interaction.actor, now)
        directory = self.directories.get(interaction.origin.platform)
        return Context(
            session, self.clock, self.config, workspace, member=member, directory=directory
        )

    async def _queue_reply(self, ctx: Context, interaction: Interaction, reply: Reply) -> None:
        """Replies to platforms that answer asynchronously (threads, response URLs) go out
        through the outbox, so they survive a crash between acknowledgement and send."""
        target = interaction.origin.reply_to
        if target is None or reply.message is None:
            return
        await outbox.enqueue(
            ctx.session,
            workspace_id=ctx.workspace_id,
            dedupe_key=f"{ctx.workspace_id}:reply:{uuid4().hex}",
            kind="message",
            target=target,
            payload=reply.message.model_dump(mode="json"),
            now=ctx.now,
        )


def _name(interaction: Interaction) -> str:
    match interaction:
        case Command(name=n) | Action(action=n) | Submission(form_id=n) | Event(name=n):
            return n
    return "?"


def _unknown(what: str) -> Handler:
    async def refuse(ctx: Context, interaction: Any) -> Reply:
        return Reply(message=Message(text=f"{what} isn't something I know any more. Try `help`."))

    return refuse


async def _ignore(ctx: Context, interaction: Any) -> Reply:
    return NO_REPLY
