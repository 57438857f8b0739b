"""The terminal chat: Hubot's shell adapter and errbot's text backend, on Flywheel's one router.

A line is a command (`request How do we…`), a number (press a button of the latest
output) or a console instruction (`/as bob`, `/quit`). Forms are asked field by field.
Messages the bot sends later go through the outbox like on any platform; after each
interaction the console runs the routing sweep and drains the outbox, so what a person
sees follows what they did.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import sys
import threading
from datetime import date, timedelta
from typing import Protocol, TextIO

import structlog

from adapters.console import demo
from adapters.console.logs import LOG_FILE, log_to_file
from adapters.console.render import (
    PLAIN,
    Screen,
    Style,
    field_heading,
    field_prompt,
    form_heading,
    show_default,
    shown,
)
from adapters.console.sender import ConsoleSender
from handlers.core.interactions import (
    Action,
    Command,
    Event,
    Interaction,
    Origin,
    Reply,
    Submission,
)
from handlers.core.messages import (
    ChannelField,
    DateField,
    Form,
    FormField,
    FormValue,
    SelectField,
    TextField,
    UserField,
)
from handlers.core.ports import Clock, Sender
from handlers.core.router import Router
from storage.db import SessionFactory

log = structlog.get_logger(__name__)

NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,31}")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


class Outbox(Protocol):
    async def drain(self) -> int: ...


class Sweep(Protocol):
    async def run_once(self) -> object: ...


# `flywheel console --new`: a workspace of its own, away from the demo's.
NEW_WORKSPACE = Origin(platform="console", workspace_id="new", workspace_name="New Co")


class Host(Protocol):
    """What the console needs of the application (bot.app.Flywheel provides it)."""

    @property
    def router(self) -> Router: ...

    @property
    def sessions(self) -> SessionFactory: ...

    @property
    def clock(self) -> Clock: ...

    @property
    def dispatcher(self) -> Outbox: ...

    @property
    def sweeper(self) -> Sweep: ...

    def add_sender(self, sender: Sender) -> None: ...

    async def close(self) -> None: ...


class LineSource(Protocol):
    """Where typed lines come from; None is the end of input."""

    async def readline(self, prompt: str) -> str | None: ...


class TerminalLines:
    """Lines from stdin, read on a daemon thread so the event loop keeps running and an
    unanswered prompt never holds the process open at exit."""

    def __init__(self, echo: bool | None = None) -> None:
        interactive = sys.stdin.isatty()
        # Piped input reads like a transcript when each line is echoed after its prompt.
        self.echo = not interactive if echo is None else echo
        if interactive:
            with contextlib.suppress(ImportError):
                import readline  # noqa: F401  (line editing and history for input())

    async def readline(self, prompt: str) -> str | None:
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[str | None] = loop.create_future()

        def settle(line: str | None) -> None:
            if not answer.done():
                answer.set_result(line)

        def read() -> None:
            try:
                line: str | None = input(prompt)
            except (EOFError, OSError, ValueError):
                line = None
            # The loop may have closed while this thread waited for a line.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(settle, line)

        threading.Thread(target=read, name="console-input", daemon=True).start()
        line = await answer
        if line is None:
            print(flush=True)
        elif self.echo:
            print(line, flush=True)
        return line


class Quit(Exception):
    """`/quit`, or the end of input."""


class FormCancelled(Exception):
    """`/cancel` while a form is open."""


class ConsoleSession:
    """One person (who can become another with `/as`) chatting with Flywheel in a terminal."""

    def __init__(
        self,
        host: Host,
        *,
        lines: LineSource,
        out: TextIO,
        user: str | None = None,
        style: Style = PLAIN,
        raise_errors: bool = False,
        empty: bool = False,
    ) -> None:
        self.host = host
        # An empty workspace shows a company's first day: no colleagues, experts or requests.
        self.empty = empty
        self.origin = NEW_WORKSPACE if empty else demo.ORIGIN
        self.lines = lines
        self.screen = Screen(out, style)
        self.style = style
        self.user = valid_name(user or demo.DEFAULT_USER)
        # Tests want a bug to fail loudly; a person at a terminal wants the chat to go on.
        self.raise_errors = raise_errors

    @property
    def prompt(self) -> str:
        return f"{self.user}> "

    async def run(self) -> int:
        """Seed the demo, greet, then read lines until `/quit` or the end of input."""
        added = 0 if self.empty else await demo.seed(self.host.sessions, self.host.clock)
        self.host.add_sender(ConsoleSender(self.screen))
        self._welcome(first_run=added > 0)
        await self._first_contact()
        await self._follow_up()
        while True:
            line = await self.lines.readline(self.prompt)
            if line is None:
                break
            try:
                await self.handle(line)
            except Quit:
                break
            except Exception:
                if self.raise_errors:
                    raise
                log.exception("console.failed", user=self.user, line=line[:200])
                self.screen.say(
                    f"Sorry — that went wrong on my side. The details are in {LOG_FILE}."
                )
        self.screen.say("Bye!")
        return 0

    async def handle(self, line: str) -> None:
        """One typed line: a console instruction, a button number or a command."""
        text = line.strip()
        if not text:
            return
        if text.startswith("/"):
            word, _, rest = text[1:].partition(" ")
            word = word.lower()
            if word in ("quit", "exit"):
                raise Quit
            if word == "as":
                await self._switch(rest)
            elif word == "cancel":
                self.screen.say("There is no form open to cancel.")
            elif word == "flywheel" and rest.strip():
                # Slack habits: `/flywheel request …` means `request …` here.
                await self.handle(rest)
            else:
                self.screen.say(
                    "Console instructions: /as NAME (become someone), /cancel (abandon a form), "
                    "/quit. Type `help` for what Flywheel can do."
                )
            return
        if text.isdigit():
            await self._press(int(text))
            return
        name, _, rest = text.partition(" ")
        await self._run(Command(self.origin, demo.actor(self.user), name.lower(), rest.strip()))

    async def _first_contact(self) -> None:
        """In a new workspace, Flywheel's own welcome for whoever opens it first (once per
        person); the demo introduces itself instead."""
        if not self.empty:
            return
        await self.host.router.dispatch(Event(self.origin, demo.actor(self.user), "first_contact"))

    def _welcome(self, *, first_run: bool) -> None:
        experts = sum(1 for c in demo.COLLEAGUES if c.topics)
        names = ", ".join(c.user_id for c in demo.COLLEAGUES)
        workspace = self.origin.workspace_name or self.origin.workspace_id
        lines = [
            self.style.bold("Flywheel console")
            + f" — the {workspace} workspace, no Slack or Teams needed.",
        ]
        if self.empty:
            lines.append("A new workspace: nobody is an expert yet and nothing was asked.")
        if first_run:
            lines.append(
                f"Demo data is ready: {len(demo.COLLEAGUES)} colleagues, {experts} experts "
                f"and {len(demo.REQUESTS)} open requests."
            )
        lines += [
            f"You are {self._who(self.user)}.",
            f"Colleagues: {names}. `/as NAME` becomes one of them, or someone new.",
            "Try `request <what buyers ask>`, `home` or `help`. "
            "Type a number to press a button; `/quit` leaves.",
        ]
        self.screen.say(*lines)

    def _who(self, user: str) -> str:
        known = None if self.empty else demo.colleague(user)
        role = f", {known.role}" if known else ""
        return f"{demo.display_name(user)} (@{user}){role}"

    async def _switch(self, raw: str) -> None:
        try:
            user = valid_name(raw)
        except ValueError as problem:
            self.screen.say(f"Usage: /as NAME — {problem}.")
            return
        self.user = user
        new = (
            ""
            if self.empty or demo.colleague(user)
            else " — not one of the demo colleagues, welcome aboard"
        )
        self.screen.say(f"You are now {self._who(user)}{new}.")

    async def _press(self, number: int) -> None:
        buttons = self.screen.buttons
        if not 1 <= number <= len(buttons):
            self.screen.say(
                f"There is no button [{number}]: numbers press the buttons of the latest "
                "message. `home` shows your requests and colleagues' requests."
            )
            return
        button, owner = buttons[number - 1]
        if owner is not None and owner != self.user:
            self.screen.say(
                f"That button is in @{owner}'s messages: type `/as {owner}`, then {number} again."
            )
            return
        if button.url:
            self.screen.say(f"Opens {button.url}")
            if button.action not in self.host.router.actions:
                return
        await self._run(Action(self.origin, demo.actor(self.user), button.action, button.value))

    async def _run(self, interaction: Interaction) -> None:
        reply = await self._dispatch(interaction)
        if reply.form is not None:
            try:
                await self._fill(reply.form)
            except FormCancelled:
                self.screen.say("Cancelled — nothing was saved.")

    async def _dispatch(self, interaction: Interaction) -> Reply:
        """Send one interaction through the router, show the reply, then what the outbox holds."""
        reply = await self.host.router.dispatch(interaction)
        self.screen.new_turn()
        if reply.message is not None:
            self.screen.show(reply.message)
        await self._follow_up()
        return reply

    async def _follow_up(self) -> None:
        """What a worker would do next, done now: route requests, then send the outbox.

        The console runs no background scheduler, so the experts a request pings appear
        right after the request, in the order things happened.
        """
        await self.host.sweeper.run_once()
        await self.host.dispatcher.drain()

    async def _fill(self, form: Form) -> None:
        """Ask a form's fields, submit, re-ask what the handler refused, follow a new form."""
        answers = {f.name: initial_value(f) for f in form.fields}
        pending = list(form.fields)
        self.screen.say(*form_heading(form, self.style))
        while True:
            for field in pending:
                answers[field.name] = await self._ask(field, answers[field.name])
            submission = Submission(
                self.origin, demo.actor(self.user), form.form_id, dict(answers), form.state
            )
            reply = await self._dispatch(submission)
            if reply.errors:
                labels = {f.name: f.label for f in form.fields}
                self.screen.say(
                    "Please check:",
                    *(
                        f"  ✗ {shown(labels.get(name, name))}: {shown(error)}"
                        for name, error in reply.errors.items()
                    ),
                )
                pending = [f for f in form.fields if f.name in reply.errors] or list(form.fields)
                continue
            if reply.form is None:
                return
            # A follow-up form (say, "colleagues asked something close"): answers given so
            # far stay as defaults wherever the new form does not bring its own.
            previous, form = answers, reply.form
            answers = {f.name: _carried(f, previous) for f in form.fields}
            pending = list(form.fields)
            self.screen.say(*form_heading(form, self.style))

    async def _ask(self, field: FormField, current: FormValue) -> FormValue:
        shown = show_default(field, current)
        self.screen.say(*field_heading(field, answered=bool(shown), style=self.style))
        prompt = field_prompt(shown)
        while True:
            answer = (await self._read_answer(prompt)).strip()
            if not answer:
                return current
            if answer == "-" and field.optional:
                return empty_value(field)
            try:
                return self._parse(field, answer)
            except ValueError as problem:
                self.screen.say(f"  {problem}")

    async def _read_answer(self, prompt: str) -> str:
        while True:
            line = await self.lines.readline(prompt)
            if line is None:
                raise Quit
            word = line.strip().lower()
            if word in ("/quit", "/exit"):
                raise Quit
            if word == "/cancel":
                raise FormCancelled
            if word == "/as" or word.startswith("/as "):
                self.screen.say("  Finish this form or /cancel it before switching.")
                continue
            return line

    def _parse(self, field: FormField, answer: str) -> FormValue:
        """A typed answer as the value the field's handler expects; ValueError says why not."""
        match field:
            case TextField():
                return answer
            case DateField():
                example = (self.host.clock.now().date() + timedelta(days=14)).isoformat()
                if not _DATE.fullmatch(answer):
                    raise ValueError(f"Use YYYY-MM-DD, like {example}.")
                try:
                    date.fromisoformat(answer)
                except ValueError:
                    raise ValueError(
                        f"There is no such day; use YYYY-MM-DD, like {example}."
                    ) from None
                return answer
            case SelectField(options=options, multi=multi):
                chosen: list[str] = []
                for item in _items(answer):
                    by_value = next((o.value for o in options if o.value == item), None)
                    if by_value is not None:
                        chosen.append(by_value)
                    elif item.isdigit() and 1 <= int(item) <= len(options):
                        chosen.append(options[int(item) - 1].value)
                    else:
                        raise ValueError(f"Choose a number from 1 to {len(options)}.")
                return _one_or_many(list(dict.fromkeys(chosen)), multi)
            case UserField(multi=multi) | ChannelField(multi=multi):
                mark = "@" if isinstance(field, UserField) else "#"
                names = [item.lstrip(mark).lower() for item in _items(answer)]
                bad = [n for n in names if not NAME.fullmatch(n)]
                if bad:
                    raise ValueError(f"{bad[0]!r} is not a name: use letters, digits, . _ or -.")
                return _one_or_many(list(dict.fromkeys(names)), multi)
        raise TypeError(f"unknown field {field!r}")


def valid_name(raw: str) -> str:
    """A console user id from what someone typed after `/as`; ValueError if it can't be one."""
    name = raw.strip().lstrip("@").lower()
    if not NAME.fullmatch(name):
        raise ValueError(
            "use a name like bob or jo.smith (letters, digits, . _ -; up to 32 characters)"
        )
    return name


def initial_value(field: FormField) -> FormValue:
    """A field's starting value, shaped the way a submission carries it."""
    match field:
        case TextField(initial=initial):
            return initial
        case DateField(initial=initial):
            return initial or None
        case (
            SelectField(initial=initial, multi=multi)
            | UserField(initial=initial, multi=multi)
            | ChannelField(initial=initial, multi=multi)
        ):
            if multi:
                return tuple(initial)
            return initial[0] if initial else None
    raise TypeError(f"unknown field {field!r}")


def empty_value(field: FormField) -> FormValue:
    """What a skipped field submits: no text, no date, nobody."""
    if isinstance(field, TextField):
        return ""
    if isinstance(field, SelectField | UserField | ChannelField) and field.multi:
        return ()
    return None


def _carried(field: FormField, previous: dict[str, FormValue]) -> FormValue:
    initial = initial_value(field)
    return initial if initial or field.name not in previous else previous[field.name]


def _items(answer: str) -> list[str]:
    return [item for item in re.split(r"[,\s]+", answer) if item]


def _one_or_many(values: list[str], multi: bool) -> FormValue:
    if multi:
        return tuple(values)
    if len(values) > 1:
        raise ValueError("Just one, please.")
    return values[0] if values else None


async def run_console(flywheel: Host, user: str | None = None, *, empty: bool = False) -> int:
    """`flywheel console`: chat with Flywheel in this terminal, as `user` (alice by default)."""
    try:
        name = valid_name(user or demo.DEFAULT_USER)
    except ValueError as problem:
        print(f"flywheel console: --as: {problem}", file=sys.stderr)
        await flywheel.close()
        return 2
    log_to_file()
    session = ConsoleSession(
        flywheel,
        lines=TerminalLines(),
        out=sys.stdout,
        user=name,
        style=Style(ansi=sys.stdout.isatty()),
        empty=empty,
    )
    try:
        return await session.run()
    finally:
        await flywheel.close()
