"""The terminal console, driven like a person would drive it: lines in, a transcript out.

Every scenario runs the real console session on the real router, outbox and dispatcher,
on SQLite and PostgreSQL; only the keyboard and the screen are a script and a buffer.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path

import aiohttp
import pytest
from sqlmodel import col, select

from adapters.console import demo
from adapters.console.render import Screen, inline
from adapters.console.sender import ConsoleSender
from adapters.console.session import run_console
from bot.app import Flywheel, build
from bot.settings import load_settings
from handlers.core.markup import md, mention
from handlers.core.messages import Button, Buttons, Message, Section
from handlers.core.ports import Delivery, PermanentError
from storage import outbox
from storage.db import transaction
from storage.models import ContentRequest, ExpertProfile, Member, Vote, Workspace
from testing.fakes.clock import FrozenClock
from testing.processes import clean_env, free_port
from tests.console_harness import ConsoleBot

ROOT = Path(__file__).resolve().parent.parent
QUESTION = "How do we migrate Oracle to PostgreSQL without downtime?"
SIMILAR = "Oracle to Postgres migration with zero downtime"
KUBERNETES = "Customer story: cutting cloud spend with Kubernetes autoscaling"


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


async def requests_about(app: Flywheel, word: str) -> list[ContentRequest]:
    async with app.sessions() as session:
        query = select(ContentRequest).where(col(ContentRequest.topic).contains(word))
        return list((await session.exec(query)).all())


async def votes_on(app: Flywheel, request: ContentRequest) -> list[str]:
    async with app.sessions() as session:
        query = (
            select(Member.user_id)
            .join(Vote, col(Vote.member_id) == Member.id)
            .where(Vote.request_id == request.id)
        )
        return sorted((await session.exec(query)).all())


async def count(app: Flywheel, model: type) -> int:
    async with app.sessions() as session:
        return len((await session.exec(select(model))).all())


async def test_the_newcomer_asks_and_a_colleague_plus_ones_instead_of_duplicating(
    app: Flywheel, bot: ConsoleBot
) -> None:
    assert bot.prompt == "alice> "
    out = await bot.say(f"request {QUESTION}")
    assert "== Request content ==" in out
    assert "What do buyers ask? (up to 200 characters)" in out
    assert out.endswith("\n") and bot.prompt == f"  [{QUESTION}] > "

    out = await bot.fill()
    assert f"[DM to @alice] ✅ Request captured: {QUESTION}" in out
    assert "  I'll look for colleagues who know this topic." in out
    [request] = await requests_about(app, "Oracle")
    assert request.status == "open"

    assert await bot.say("/as bob") == ("You are now Bob (@bob), solutions engineer, expert.\n")
    out = await bot.say(f"request {SIMILAR}")
    assert "Colleagues already asked something close." in out
    assert f"• {QUESTION} — 1 person wants this · waiting for an expert" in out
    assert f"  [1] +1 “{QUESTION}”\n  [2] No, mine is a different request\n" in out
    assert bot.prompt == "  [1] > "

    out = await bot.fill()
    assert f"[DM to @bob] Your +1 on “{QUESTION}” is counted — 2 people want this." in out
    assert len(await requests_about(app, "Oracle")) == 1
    assert await votes_on(app, request) == ["bob"]

    await bot.say(f"request {SIMILAR}")
    out = await bot.fill()
    assert "You've already +1'd this request — it counts once. Thank you!" in out
    assert len(await requests_about(app, "Oracle")) == 1
    assert await votes_on(app, request) == ["bob"]


async def test_a_different_request_can_still_be_filed_after_seeing_similar_ones(
    app: Flywheel, bot: ConsoleBot
) -> None:
    await bot.say(f"request {QUESTION}")
    await bot.fill()
    await bot.say("/as carol")
    await bot.say(f"request {SIMILAR}")
    out = await bot.fill({"Is yours one of these?": "2", "Audience": "DBAs"})
    assert f"[DM to @carol] ✅ Request captured: {SIMILAR}" in out
    assert len(await requests_about(app, "Oracle")) == 2


async def test_the_form_asks_again_when_the_handler_finds_a_similar_request_on_submit(
    app: Flywheel, bot: ConsoleBot
) -> None:
    await bot.say(f"request {QUESTION}")
    await bot.fill()
    await bot.say("/as erin")
    await bot.say("request")
    out = await bot.fill({"What do buyers ask?": SIMILAR, "Audience": "CIOs"})
    # The first form had no topic to compare; on submit the handler shows the close match,
    # and the answers given so far stay as defaults.
    assert "Colleagues already asked something close." in out
    assert out.count("== Request content ==") == 1
    assert "Audience (optional; up to 200 characters)\n  [CIOs] > " in bot.transcript
    assert f"[DM to @erin] Your +1 on “{QUESTION}” is counted" in out
    [request] = await requests_about(app, "Oracle")
    assert await votes_on(app, request) == ["erin"]


async def test_as_switches_between_demo_colleagues_and_newcomers(
    app: Flywheel, bot: ConsoleBot
) -> None:
    assert await bot.say("/as dana") == (
        "You are now Dana (@dana), marketing lead, admin and reviewer.\n"
    )
    assert bot.prompt == "dana> "
    out = await bot.say("/as Zed")
    assert out == "You are now Zed (@zed) — not one of the demo colleagues, welcome aboard.\n"
    assert bot.prompt == "zed> "
    out = await bot.say("home")
    assert "== Your requests ==\nNothing yet." in out
    async with app.sessions() as session:
        zed = (await session.exec(select(Member).where(Member.user_id == "zed"))).one()
    assert (zed.name, zed.email, zed.tz, zed.is_platform_admin) == (
        "Zed",
        "zed@demo.test",
        "Europe/London",
        False,
    )
    out = await bot.say("/as not a name!")
    assert out.startswith("Usage: /as NAME — use a name like bob")
    assert bot.prompt == "zed> "


async def test_home_buttons_are_numbered_and_pressing_one_plus_ones(
    app: Flywheel, bot: ConsoleBot
) -> None:
    out = await bot.say("home")
    assert "== Flywheel ==" in out and "[1] Request content" in out
    assert (
        f"{KUBERNETES}\nasked by @dana · waiting for an expert · 2 people want this  [3] +1"
    ) in out
    assert "*" not in out and "<@" not in out

    assert await bot.say("3") == "Thanks — your +1 is counted. 3 people want this now.\n"
    [request] = await requests_about(app, "Kubernetes")
    assert await votes_on(app, request) == ["alice", "carol"]

    # The numbers belonged to the home view; the answer to the press has no buttons.
    assert (await bot.say("3")).startswith("There is no button [3]")
    out = await bot.say("home")
    assert (
        f"{KUBERNETES}\nasked by @dana · waiting for an expert · 3 people want this\n"
        "✓ You +1'd this"
    ) in out
    assert await votes_on(app, request) == ["alice", "carol"]


async def test_a_button_opens_its_form(bot: ConsoleBot) -> None:
    await bot.say("home")
    out = await bot.say("1")
    assert "== Request content ==" in out and bot.in_form
    out = await bot.fill({"What do buyers ask?": "A benchmark of our Kafka connector"})
    assert "[DM to @alice] ✅ Request captured: A benchmark of our Kafka connector" in out


async def test_help_and_an_unknown_command_print_the_vocabulary(bot: ConsoleBot) -> None:
    out = await bot.say("help")
    assert out.startswith("Here is what I can do:\n")
    for usage in ("`request [topic]`", "`home`", "`admin`", "`help`"):
        assert usage in out
    out = await bot.say("frobnicate the widgets")
    assert out.startswith("I don't know `frobnicate`. Here is what I can do:\n")
    assert "`request [topic]`" in out
    assert (await bot.say("/flywheel help")).startswith("Here is what I can do:\n")
    assert (await bot.say("/dance")).startswith("Console instructions: /as NAME")
    assert await bot.say("") == ""


async def test_form_errors_are_asked_again_and_nothing_is_written_until_valid(
    app: Flywheel, bot: ConsoleBot, clock: FrozenClock
) -> None:
    before = await count(app, ContentRequest)
    await bot.say("request")
    assert bot.question.startswith("What do buyers ask?")
    await bot.answer("", "", "")  # topic, context, audience
    assert bot.question.startswith("Needed by")
    out = await bot.say("next week")
    assert out == "  Use YYYY-MM-DD, like 2026-12-07.\n" and bot.question.startswith("Needed by")
    await bot.say("2026-11-01")  # before the frozen clock's today
    out = await bot.say("")  # tags
    assert out.startswith(
        "Please check:\n"
        "  ✗ What do buyers ask?: Tell us what buyers ask — a question or a topic.\n"
        "  ✗ Needed by: That date has passed — pick today or later.\n"
        "What do buyers ask?"
    )
    assert await count(app, ContentRequest) == before

    out = await bot.say("x" * 201)
    assert "Context" not in out and bot.question.startswith("Needed by")
    assert bot.prompt == "  [2026-11-01] > "
    out = await bot.say("2026-12-15")
    assert out.startswith(
        "Please check:\n"
        "  ✗ What do buyers ask?: Keep it under 200 characters (201 now); details go in Context.\n"
    )
    assert "Needed by" not in out
    assert await count(app, ContentRequest) == before

    out = await bot.say("Zero-downtime upgrades for Kafka clusters")
    assert "[DM to @alice] ✅ Request captured: Zero-downtime upgrades for Kafka clusters" in out
    [request] = await requests_about(app, "Kafka")
    assert request.needed_by == date(2026, 12, 15)
    assert clock.now().date() == date(2026, 11, 23)


async def test_cancel_abandons_a_form_and_writes_nothing(app: Flywheel, bot: ConsoleBot) -> None:
    before = await count(app, ContentRequest)
    await bot.say(f"request {QUESTION}")
    await bot.say("")
    out = await bot.say("/as bob")
    assert out == "  Finish this form or /cancel it before switching.\n" and bot.in_form
    assert await bot.say("/cancel") == "Cancelled — nothing was saved.\n"
    assert bot.prompt == "alice> "
    assert await count(app, ContentRequest) == before
    assert await bot.say("/cancel") == "There is no form open to cancel.\n"


async def test_admin_is_refused_to_others_and_opens_settings_for_the_demo_admin(
    app: Flywheel, bot: ConsoleBot
) -> None:
    out = await bot.say("admin")
    assert out.startswith("Only workspace admins can change Flywheel's settings.")
    assert not bot.in_form

    await bot.say("/as dana")
    out = await bot.say("admin")
    assert "== Flywheel settings ==" in out
    assert bot.question.startswith("Reviewers (optional; people who approve drafts")
    assert bot.prompt == "  [@dana] > "
    out = await bot.fill(
        {
            "Reviewers": "dana, @carol",
            "Share channels": "-",
            "Workspace time zone": ["Mars/Olympus", "Europe/Paris"],
        }
    )
    assert "  ✗ Workspace time zone: unknown time zone 'Mars/Olympus'" in out
    assert "[DM to @dana] Flywheel settings saved." in out
    async with app.sessions() as session:
        workspace = (
            await session.exec(select(Workspace).where(Workspace.external_id == "demo"))
        ).one()
    settings = workspace.settings
    assert settings["reviewers"] == ["dana", "carol"]
    assert settings["share_channels"] == []
    assert settings["review_channel"] == "reviews"
    assert settings["timezone"] == "Europe/Paris"


async def test_buttons_in_someone_elses_dm_wait_for_them(app: Flywheel, bot: ConsoleBot) -> None:
    """Messages the bot sends later come through the outbox; their buttons are numbered too."""
    [request] = await requests_about(app, "Kubernetes")
    async with transaction(app.sessions) as session:
        workspace = (
            await session.exec(select(Workspace).where(Workspace.external_id == "demo"))
        ).one()
        assert workspace.id is not None
        await outbox.enqueue(
            session,
            workspace_id=workspace.id,
            dedupe_key="test:nudge",
            kind="message",
            target={"user": "bob"},
            payload=Message(
                text="Colleagues want this",
                blocks=(
                    Section(text=md("{} asked: *{}*", mention("dana"), request.topic)),
                    Buttons(
                        buttons=(Button(label="+1", action="request_vote", value=str(request.id)),)
                    ),
                ),
            ).model_dump(mode="json"),
            now=app.clock.now(),
        )
    out = await bot.say("help")
    assert f"[DM to @bob] @dana asked: {KUBERNETES}\n  [1] +1\n" in out
    assert (
        await bot.say("1")
    ) == "That button is in @bob's messages: type `/as bob`, then 1 again.\n"
    await bot.say("/as bob")
    assert (await bot.say("1")).startswith("Thanks — your +1 is counted.")
    assert await votes_on(app, request) == ["bob", "carol"]


async def test_the_expert_a_request_pings_can_claim_it_from_the_console(
    app: Flywheel, bot: ConsoleBot
) -> None:
    """The whole loop in one terminal: the request's ping reaches bob, who claims it."""
    await bot.say(f"request {QUESTION}")
    out = await bot.fill()
    ping = out[out.index("[DM to @bob]") :]
    claim = re.search(r"\[(\d+)\] Claim", ping)
    assert claim is not None, out
    number = claim.group(1)
    assert await bot.say(number) == (
        f"That button is in @bob's messages: type `/as bob`, then {number} again.\n"
    )
    await bot.say("/as bob")
    out = await bot.say(number)
    assert "[DM to @alice]" in out
    [request] = await requests_about(app, "Oracle")
    assert request.status == "claimed"


async def test_demo_data_is_seeded_once(app: Flywheel, bot: ConsoleBot) -> None:
    assert "Demo data is ready: 5 colleagues, 2 experts and 3 open requests." in bot.transcript
    counts = [await count(app, m) for m in (Workspace, Member, ExpertProfile, ContentRequest, Vote)]
    assert counts == [1, 5, 2, 3, 3]
    await bot.stop()

    again = ConsoleBot(app, user="dana")
    welcome = await again.start()
    assert "Demo data is ready" not in welcome
    assert "You are Dana (@dana), marketing lead, admin and reviewer." in welcome
    assert await demo.seed(app.sessions, app.clock) == 0
    assert [
        await count(app, m) for m in (Workspace, Member, ExpertProfile, ContentRequest, Vote)
    ] == counts
    assert await again.end_input() == 0

    async with app.sessions() as session:
        dana = (await session.exec(select(Member).where(Member.user_id == "dana"))).one()
        bob = (await session.exec(select(Member).where(Member.user_id == "bob"))).one()
        profile = (
            await session.exec(select(ExpertProfile).where(ExpertProfile.member_id == bob.id))
        ).one()
    assert dana.is_platform_admin
    assert "postgresql" in profile.topics and profile.capacity == 3 and profile.bio


async def test_the_end_of_input_ends_the_console(bot: ConsoleBot) -> None:
    assert await bot.end_input() == 0
    assert bot.transcript.endswith("alice> \nBye!\n")


async def test_quit_inside_a_form_ends_the_console(app: Flywheel, bot: ConsoleBot) -> None:
    before = await count(app, ContentRequest)
    await bot.say("request Something new")
    assert await bot.say("/quit") == "Bye!\n"
    assert await count(app, ContentRequest) == before


def test_markdown_and_mentions_render_as_plain_text() -> None:
    text = (
        "*Bold* and _italic_ and ~gone~ for <@bob> in <#C1|general> and <#reviews>, "
        "see <https://x.test/a|the docs> or <https://x.test/b>; <!here> — "
        "request_vote, 2*3*4 and `code` stay"
    )
    assert inline(text) == (
        "Bold and italic and gone for @bob in #general and #reviews, "
        "see the docs (https://x.test/a) or https://x.test/b; @here — "
        "request_vote, 2*3*4 and `code` stay"
    )


async def test_the_sender_labels_where_each_message_went() -> None:
    from io import StringIO

    out = StringIO()
    sender = ConsoleSender(Screen(out))
    message = Message(text="Shared!").model_dump(mode="json")
    home = Message(text="home", blocks=(Section(text="Home view"),)).model_dump(mode="json")

    assert (await sender.send(Delivery("demo", "home", {"home": "alice"}, home))).channel is None
    landed = await sender.send(Delivery("demo", "message", {"channel": "general"}, message))
    await sender.send(Delivery("demo", "message", {"channel": "#general", "thread": "1"}, message))
    await sender.send(Delivery("demo", "update", {"ref": "x"}, message, landed.channel, "1"))
    await sender.send(Delivery("demo", "message", {"user": "carol"}, message))
    assert out.getvalue() == (
        "[#general] Shared!\n"
        "[#general, in thread] Shared!\n"
        "[#general, edited] Shared!\n"
        "[DM to @carol] Shared!\n"
    )
    with pytest.raises(PermanentError):
        await sender.send(Delivery("demo", "message", {"response_url": "https://x"}, message))
    with pytest.raises(PermanentError):
        await sender.send(Delivery("demo", "message", {"user": "carol"}, {"blocks": 3}))


def test_flywheel_console_runs_end_to_end(tmp_path: Path) -> None:
    """`flywheel console --as alice` as a newcomer starts it: a process, a file database."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SLACK_", "MICROSOFT_", "FLYWHEEL_", "OPENAI_", "DATABASE_"))
    }
    env["DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path / 'flywheel.db'}"
    script = f"help\nrequest {QUESTION}\n\n\n\n\n\n/as bob\nhome\n/quit\n"
    done = subprocess.run(
        [sys.executable, "-m", "bot", "console", "--as", "alice"],
        input=script,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.startswith("Flywheel console — the Demo workspace, no Slack or Teams needed.\n")
    assert "alice> help\nHere is what I can do:\n" in out
    assert f"[DM to @alice] ✅ Request captured: {QUESTION}" in out
    assert "bob> home\n" in out and f"{QUESTION}\nasked by @alice" in out
    assert out.endswith("bob> /quit\nBye!\n")
    assert '"event"' not in out and "Traceback" not in done.stderr
    assert (tmp_path / "flywheel.log").exists()


async def test_the_console_serves_its_links_while_it_runs(tmp_path: Path) -> None:
    """Links the console prints (tracked links, share buttons, digest pages) open meanwhile."""
    port = free_port()
    env = clean_env(DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'flywheel.db'}", PORT=str(port))
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "console",
        cwd=tmp_path,
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdin is not None and process.stdout is not None
    try:
        # The greeting is printed once the console is ready, after the web routes started.
        await asyncio.wait_for(process.stdout.readline(), 60)
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/healthz") as health:
                assert health.status == 200
            async with http.get(
                f"http://127.0.0.1:{port}/r/AAAAAAAAAAAAAAAA", allow_redirects=False
            ) as unknown:
                assert unknown.status == 404
        process.stdin.write(b"/quit\n")
        await process.stdin.drain()
        assert await asyncio.wait_for(process.wait(), 60) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_a_bad_name_to_as_is_refused_before_anything_starts(
    app: Flywheel, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await run_console(app, user="Not A Name") == 2
    assert "flywheel console: --as: use a name like bob" in capsys.readouterr().err
    assert await count(app, Workspace) == 0
