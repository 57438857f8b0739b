"""Personal notes on digest day: who hears what, once, and the choice to hear nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlmodel import col, select

from bot.app import Flywheel, build
from bot.settings import load_settings
from handlers.core import workspace_settings
from handlers.core.context import Scope
from handlers.core.interactions import Action, Actor, Origin
from handlers.core.messages import Message
from handlers.impact import digest_sweep
from storage.db import transaction
from storage.models import Member, OutboxMessage, Workspace
from testing.fakes.clock import FrozenClock
from tests.test_digest_figures import SEND, SETTINGS, seed_week

ORIGIN = Origin(platform="slack", workspace_id="T0001")


@pytest.fixture
async def app(migrated_url: str, clock: FrozenClock) -> AsyncIterator[Flywheel]:
    flywheel = build(load_settings(database_url=migrated_url, _env_file=None), clock=clock)
    yield flywheel
    await flywheel.close()


async def setup(app: Flywheel, **settings: Any) -> dict[str, int]:
    async with transaction(app.sessions) as session:
        workspace = Workspace(platform="slack", external_id="T0001", created_at=SEND)
        workspace_settings.save(workspace, SETTINGS.model_copy(update=settings))
        session.add(workspace)
        await session.flush()
        workspace_id = workspace.id or 0
    return await seed_week(app.sessions, workspace_id)


async def digest_day(app: Flywheel, clock: FrozenClock) -> dict[str, Message]:
    """Run the digest sweep on digest day, twice; the notes queued, by recipient."""
    clock.set(SEND)
    for _ in range(2):
        async with transaction(app.sessions) as session:
            workspace = (await session.exec(select(Workspace))).one()
            await digest_sweep.sweep(Scope(session, clock, app.router.config, workspace))
    async with app.sessions() as session:
        rows = (
            await session.exec(
                select(OutboxMessage).where(col(OutboxMessage.dedupe_key).contains(":note:"))
            )
        ).all()
    return {row.target["user"]: Message.model_validate(row.payload) for row in rows}


def text(message: Message) -> str:
    return "\n".join(getattr(b, "text", "") for b in message.blocks)


async def test_each_person_hears_what_their_part_did_once(
    app: Flywheel, clock: FrozenClock
) -> None:
    await setup(app)
    notes = await digest_day(app, clock)
    assert sorted(notes) == ["UALICE", "UBOB", "UCAROL", "UDAN", "UERIN", "UFRANK"]
    assert "UADMIN" not in notes  # a +1 only: nothing of theirs travelled
    carol = text(notes["UCAROL"])
    assert (
        "*Your posts* were shared 2 times and brought 8 clicks; 1 win credited them. "
        "Shared by <@UDAN> and <@UERIN>." in carol
    )
    alice = text(notes["UALICE"])
    assert "• *Topic R4* became *Post P3*: 1 share, 2 clicks this week" in alice
    assert "• *Topic R2* — waiting for an expert" in alice
    erin = text(notes["UERIN"])
    assert "• *Topic R3* became *Post P2*: 2 shares, 8 clicks, 1 win this week" in erin
    assert "*Your shares:* 1 share this week; your links brought 3 clicks." in erin
    assert notes["UDAN"].text == "Your week in Flywheel, week of 23 November"
    buttons = [b for b in notes["UDAN"].blocks if b.kind == "buttons"]
    assert [(x.action, x.value) for x in buttons[0].buttons] == [  # type: ignore[union-attr]
        ("notes_toggle", "off")
    ]


async def test_people_who_opted_out_hear_nothing_and_the_default_is_the_workspaces(
    app: Flywheel, clock: FrozenClock
) -> None:
    await setup(app, personal_notes_default=False)
    async with transaction(app.sessions) as session:
        for user, choice in (("UDAN", True), ("UFRANK", False)):
            member = (await session.exec(select(Member).where(Member.user_id == user))).one()
            member.personal_notes = choice
            session.add(member)
    assert sorted(await digest_day(app, clock)) == ["UDAN"]


async def test_the_toggle_button_turns_notes_off_and_refuses_nonsense(
    app: Flywheel, clock: FrozenClock
) -> None:
    await setup(app)
    frank = Actor(user_id="UFRANK", name="Frank")
    reply = await app.router.dispatch(Action(ORIGIN, frank, "notes_toggle", "off"))
    assert reply.message is not None and "Weekly notes are off" in reply.message.text
    refused = await app.router.dispatch(Action(ORIGIN, frank, "notes_toggle", "sometimes"))
    assert refused.message is not None and "isn't something I know" in refused.message.text
    notes = await digest_day(app, clock)
    assert "UFRANK" not in notes and "UDAN" in notes
    reply = await app.router.dispatch(Action(ORIGIN, frank, "notes_toggle", "on"))
    async with app.sessions() as session:
        member = (await session.exec(select(Member).where(Member.user_id == "UFRANK"))).one()
    assert member.personal_notes is True
