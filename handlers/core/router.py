"""The one action router: commands, buttons, forms and events to their handlers.

Every platform adapter hands its translated interactions here. The router opens the unit
of work, resolves workspace and actor, runs the handler, and turns domain errors into
polite replies — once, for every platform.

Commands registered with `plain_command` (help) are answered from their own words: when
the answer goes straight back to the person, they run without a transaction, because the
workspace and member lookups would cost many times the answer while Slack's
acknowledgement waits for them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from uuid import uuid4

import structlog

from handlers.core.context import Config, Context, Scope, dm
from handlers.core.controls import clean_text, cleaned
from handlers.core.errors import DomainError, FormInvalid
from handlers.core.interactions import (
    NO_REPLY,
    Action,
    Command,
    Event,
    Interaction,
    Origin,
    Reply,
    Submission,
)
from handlers.core.members import ensure_workspace, resolve
from handlers.core.messages import Message, notice
from handlers.core.ports import AI, Clock, Directory
from storage import events, outbox
from storage.db import SessionFactory, transaction

log = structlog.get_logger(__name__)

PRIVATELY = "📬 That answer is yours alone: I've sent it to you in a direct message."

Handler = Callable[[Context, Any], Awaitable[Reply]]
# A command answered from its own words alone: it reads and writes nothing.
PlainHandler = Callable[[Command], Awaitable[Reply]]
# Scheduled work in one workspace, in its own transaction. Each must be idempotent: a sweep
# repeated or caught up after downtime sends nothing twice.
Sweep = Callable[[Scope, AI], Awaitable[object]]
# Scheduled work across workspaces that manages its own transactions (slow AI calls must
# not hold one open).
Job = Callable[[SessionFactory, Clock, Config, AI], Awaitable[object]]


@dataclass(frozen=True, slots=True)
class CommandInfo:
    name: str
    usage: str
    summary: str
    handler: Handler
    # Set for plain commands: the handler without a Context, run without a transaction.
    plain: PlainHandler | None = None


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
        # Unknown commands get the help text, which needs nothing from storage either.
        self.fallback_command: PlainHandler | None = None
        # Per platform: who is who, for people who have not spoken to the bot themselves.
        self.directories: dict[str, Directory] = {}
        # The scheduled work of every flow, in the order the flows registered it.
        self.sweeps: list[Sweep] = []
        self.jobs: list[Job] = []

    def command(self, name: str, *, usage: str, summary: str) -> Callable[[Handler], Handler]:
        def register(fn: Handler) -> Handler:
            self.commands[name] = CommandInfo(name, usage, summary, fn)
            return fn

        return register

    def plain_command(
        self, name: str, *, usage: str, summary: str
    ) -> Callable[[PlainHandler], PlainHandler]:
        """Register a command whose answer depends on nothing stored (`help`).

        Answered synchronously, it skips the unit of work altogether: no workspace or member
        row is read or created. Where its answer is queued (a mention answered in a thread)
        it runs inside one like any command, since the outbox row needs it.
        """

        def register(fn: PlainHandler) -> PlainHandler:
            self.commands[name] = CommandInfo(name, usage, summary, _with_context(fn), fn)
            return fn

        return register

    def sweep(self, fn: Sweep) -> Sweep:
        """Register work the scheduler runs in every workspace, each in its own transaction."""
        self.sweeps.append(fn)
        return fn

    def job(self, fn: Job) -> Job:
        """Register work the scheduler runs once per sweep, outside any transaction."""
        self.jobs.append(fn)
        return fn

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
                return _with_context(self._fallback())
            case Action(action=name):
                return self.actions.get(name) or _unknown("That button")
            case Submission(form_id=name):
                return self.forms.get(name) or _unknown("That form")
            case Event(name=name):
                return self.events.get(name) or _ignore
        raise TypeError(f"not an interaction: {interaction!r}")

    def plain_handler_for(self, command: Command) -> PlainHandler | None:
        """The storage-free handler of a plain command (help, unknown commands), else None."""
        info = self.commands.get(command.name)
        return self._fallback() if info is None else info.plain

    def writes_nothing(self, name: str) -> bool:
        """Whether the command `name`, answered straight back, reads and writes nothing
        (help, unknown commands): such a request needs no record that it was handled."""
        info = self.commands.get(name)
        return info is None or info.plain is not None

    def _fallback(self) -> PlainHandler:
        assert self.fallback_command is not None, "no help command registered"
        return self.fallback_command

    async def dispatch(self, interaction: Interaction) -> Reply:
        """Run one interaction; replies meant for later are queued in the same transaction.

        Control characters are taken out of everything the interaction carries first, so
        no handler sees them and no database is asked to store them.
        """
        interaction = cleaned(interaction)
        origin = interaction.origin
        try:
            if isinstance(interaction, Command) and origin.reply_to is None:
                plain = self.plain_handler_for(interaction)
                if plain is not None:
                    return await plain(interaction)
            handler = self.handler_for(interaction)
            async with transaction(self.sessions) as session:
                ctx = await self._context(session, interaction)
                reply = await handler(ctx, interaction)
                await self._queue_reply(ctx, interaction, reply)
        except FormInvalid as invalid:
            _logger(interaction).info("form.invalid", fields=sorted(invalid.errors))
            return Reply.invalid(invalid.errors)
        except DomainError as refused:
            _logger(interaction).info("interaction.refused", reason=refused.message)
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
                workspace=clean_text(workspace),
                event_id=clean_text(event_id),
                now=self.clock.now(),
            )

    async def know_workspace(self, origin: Origin) -> int:
        """Store the workspace `origin` names (an install, a bot token's team) before anyone
        in it has spoken; its id."""
        async with transaction(self.sessions) as session:
            workspace = await ensure_workspace(session, origin, self.clock.now())
            assert workspace.id is not None
            return workspace.id

    async def _context(self, session: Any, interaction: Interaction) -> Context:
        now = self.clock.now()
        workspace, member = await resolve(session, interaction.origin, interaction.actor, now)
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
        if reply.private and "channel" in target:
            # Everyone in the channel would see it: say so there, and answer in a DM.
            await self._enqueue(ctx, target, notice(PRIVATELY))
            target = dm(interaction.actor.user_id)
        await self._enqueue(ctx, target, reply.message)

    async def _enqueue(self, ctx: Context, target: dict[str, Any], message: Message) -> None:
        await outbox.enqueue(
            ctx.session,
            workspace_id=ctx.workspace_id,
            dedupe_key=f"{ctx.workspace_id}:reply:{uuid4().hex}",
            kind="message",
            target=target,
            payload=message.model_dump(mode="json"),
            now=ctx.now,
        )


def _logger(interaction: Interaction) -> Any:
    """A logger bound to who did what where; bound only when something is logged."""
    origin = interaction.origin
    return log.bind(
        platform=origin.platform,
        workspace=origin.workspace_id,
        user=interaction.actor.user_id,
        interaction=type(interaction).__name__,
        name=_name(interaction),
    )


def _with_context(plain: PlainHandler) -> Handler:
    """A plain handler in the shape of the others, for when it runs in a unit of work."""

    async def handler(ctx: Context, command: Command) -> Reply:
        return await plain(command)

    return handler


def _name(interaction: Interaction) -> str:
    match interaction:
        case Command(name=n) | Action(action=n) | Submission(form_id=n) | Event(name=n):
            return n
    return "?"


def _unknown(what: str) -> Handler:
    async def refuse(ctx: Context, interaction: Any) -> Reply:
        return Reply.say(f"{what} isn't something I know any more. Try `help`.")

    return refuse


async def _ignore(ctx: Context, interaction: Any) -> Reply:
    return NO_REPLY
