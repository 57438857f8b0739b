"""Digests in the terminal console and on the command line, driven like a person would."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlmodel import select

from bot.app import Flywheel, build
from bot.settings import load_settings
from storage.models import ContentRequest, Member
from testing.fakes.clock import FrozenClock
from testing.processes import clean_env
from tests.console_harness import ConsoleBot

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
async def app(migrated_url: str, clock: FrozenClock) -> AsyncIterator[Flywheel]:
    flywheel = build(load_settings(database_url=migrated_url, _env_file=None), clock=clock)
    yield flywheel
    await flywheel.close()


@pytest.fixture
async def bot(app: Flywheel) -> AsyncIterator[ConsoleBot]:
    console = ConsoleBot(app)
    await console.start()
    yield console
    await console.stop()


def number_of(out: str, label: str) -> str:
    """The number the console gave the button labelled `label`."""
    for line in out.splitlines():
        if f"] {label}" in line:
            return line.split(f"] {label}")[0].rsplit("[", 1)[1]
    raise AssertionError(f"no button {label!r} in:\n{out}")


async def test_preview_then_the_digest_lands_in_general_on_digest_day(
    app: Flywheel, bot: ConsoleBot, clock: FrozenClock
) -> None:
    welcome = bot.transcript
    assert "Flywheel weekly" not in welcome  # set up just now: the first digest is Monday's

    out = await bot.say("digest preview")
    assert "Preview, only for you. It goes out Monday 30 November at 09:00 (Europe/London)" in out
    assert "== Flywheel weekly · 23 – 29 Nov 2026 ==" in out
    assert "A quiet week" in out
    assert "[1] I'll take it" in out

    await bot.say("/as bob")
    out = await bot.say("1")
    assert "It's yours" in out
    async with app.sessions() as session:
        bob = (await session.exec(select(Member).where(Member.user_id == "bob"))).one()
        taken = (
            await session.exec(select(ContentRequest).where(ContentRequest.assignee_id == bob.id))
        ).all()
    assert len(taken) == 1

    clock.advance(days=7)  # Monday 30 November, 10:00 in London
    out = await bot.say("stats")
    assert out.count("[#general] == Flywheel weekly · 23 – 29 Nov 2026 ==") == 1
    # Bob's claim made it a week with one participant (his +1 last week was his first act).
    assert "Active participants: 1  (▼ 4 on the week before)" in out
    assert "No first-time contributors this week" in out
    assert "[image: Shares, clicks, participants] http://127.0.0.1:3978/c/" in out
    assert "Open requests that need an expert" in out
    again = await bot.say("stats")
    assert "Flywheel weekly" not in again


async def test_stats_shows_my_week_and_turns_notes_off_and_on(
    bot: ConsoleBot, app: Flywheel
) -> None:
    out = await bot.say("stats")
    assert "== This week so far ==" in out and "== You ==" in out
    assert "Requests made: 0" in out
    assert "Sharing preferences" in out
    out = await bot.say(number_of(out, "Turn off weekly notes"))
    assert "Weekly notes are off" in out
    async with app.sessions() as session:
        alice = (await session.exec(select(Member).where(Member.user_id == "alice"))).one()
    assert alice.personal_notes is False
    out = await bot.say("stats")
    assert "Weekly notes are off." in out
    out = await bot.say(number_of(out, "Turn on weekly notes"))
    assert "Weekly notes are on" in out


async def test_the_command_line_prints_the_coming_digest(app: Flywheel, bot: ConsoleBot) -> None:
    env = clean_env(DATABASE_URL=app.engine.url.render_as_string(hide_password=False))

    def flywheel(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "bot", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            cwd=ROOT,
        )

    shown = await asyncio.to_thread(flywheel, "digest", "preview", "--workspace", "demo")
    assert shown.returncode == 0, shown.stderr
    assert "Preview, only for you." in shown.stdout
    assert "== Flywheel weekly · " in shown.stdout
    assert "in #general" in shown.stdout

    unknown = await asyncio.to_thread(flywheel, "digest", "preview", "--workspace", "T404")
    assert unknown.returncode == 2
    assert "no workspace with the id 'T404'" in unknown.stderr
    assert unknown.stdout == ""
