"""A console you can script from a test, in the spirit of errbot's `testbot`.

    bot = ConsoleBot(app)
    await bot.start()
    out = await bot.say("request How do we migrate Oracle to PostgreSQL?")
    assert "What do buyers ask?" in out

`say` types one line and returns what the console printed in answer, up to its next
prompt; `transcript` is the whole conversation, prompts and typed lines included.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Mapping, Sequence

from adapters.console.session import ConsoleSession, Host

# Generous: PostgreSQL in CI can be slow, but a console that never answers is a bug.
ANSWER_TIMEOUT = 30.0
MAX_QUESTIONS = 60


class ScriptedLines:
    """Lines a test types; the session waits for each, as it would for a person."""

    def __init__(self, out: io.StringIO) -> None:
        self.out = out
        self.queue: asyncio.Queue[str | None] = asyncio.Queue()
        self.waiting = asyncio.Event()
        self.prompt = ""
        self.prompt_at = 0

    async def readline(self, prompt: str) -> str | None:
        self.prompt, self.prompt_at = prompt, len(self.out.getvalue())
        self.out.write(prompt)
        self.waiting.set()
        line = await self.queue.get()
        self.out.write("\n" if line is None else f"{line}\n")
        return line


class ConsoleBot:
    """Drives a real `ConsoleSession` on a real app: only the keyboard and screen are fake."""

    def __init__(self, app: Host, user: str | None = None, *, empty: bool = False) -> None:
        self.out = io.StringIO()
        self.lines = ScriptedLines(self.out)
        self.session = ConsoleSession(
            app, lines=self.lines, out=self.out, user=user, raise_errors=True, empty=empty
        )
        self.task: asyncio.Task[int] | None = None

    @property
    def transcript(self) -> str:
        return self.out.getvalue()

    @property
    def prompt(self) -> str:
        """The prompt the console is waiting at, e.g. `alice> ` or `  [1] > `."""
        return self.lines.prompt

    async def start(self) -> str:
        """Open the console; returns the welcome."""
        self.task = asyncio.create_task(self.session.run())
        await self._settle()
        return self.transcript[: self.lines.prompt_at]

    async def say(self, line: str) -> str:
        """Type a line; returns the console's answer (without the next prompt)."""
        assert self.task is not None and not self.task.done(), "the console is not running"
        start = len(self.transcript) + len(line) + 1
        self.lines.waiting.clear()
        self.lines.queue.put_nowait(line)
        await self._settle()
        end = self.lines.prompt_at if not self.task.done() else len(self.transcript)
        return self.transcript[start:end]

    async def answer(self, *lines: str) -> str:
        """Type several lines (a form's answers); returns everything printed in between."""
        return "".join([await self.say(line) for line in lines])

    @property
    def in_form(self) -> bool:
        """Form questions are asked at an indented prompt, commands at `name> `."""
        return self.prompt.startswith("  ")

    @property
    def question(self) -> str:
        """The form question being asked: the last unindented line before the prompt."""
        before = self.transcript[: self.lines.prompt_at].splitlines()
        return next((line for line in reversed(before) if not line.startswith(" ")), "")

    async def fill(self, answers: Mapping[str, str | Sequence[str]] | None = None) -> str:
        """Answer the open form by its questions' labels, Enter for any other question.

        A sequence answers the same question again after the form refused it, in order.
        Returns everything printed until the form closed.
        """
        queues = {
            label: [value] if isinstance(value, str) else list(value)
            for label, value in (answers or {}).items()
        }
        printed = ""
        for _ in range(MAX_QUESTIONS):
            if not self.in_form:
                return printed
            queue = next((q for label, q in queues.items() if self.question.startswith(label)), [])
            printed += await self.say(queue.pop(0) if queue else "")
        raise AssertionError(f"the form was still open after {MAX_QUESTIONS} answers:\n{printed}")

    async def end_input(self) -> int:
        """Close the input, as Ctrl-D does; returns the console's exit code."""
        assert self.task is not None
        self.lines.queue.put_nowait(None)
        return await asyncio.wait_for(self.task, ANSWER_TIMEOUT)

    async def stop(self) -> None:
        if self.task is not None and not self.task.done():
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)

    async def _settle(self) -> None:
        """Wait until the console asks for the next line, or has ended (re-raising its error)."""
        assert self.task is not None
        waiter = asyncio.ensure_future(self.lines.waiting.wait())
        done, _ = await asyncio.wait(
            {waiter, self.task}, timeout=ANSWER_TIMEOUT, return_when=asyncio.FIRST_COMPLETED
        )
        waiter.cancel()
        if self.task in done:
            self.task.result()
        elif not done:
            raise AssertionError(
                f"the console did not answer in {ANSWER_TIMEOUT} s:\n{self.transcript}"
            )
