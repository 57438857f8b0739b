"""`stats`: my impact and the program's for the week so far, against hand-computed figures."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from bot.app import Flywheel, build
from bot.settings import load_settings
from handlers.core import workspace_settings
from handlers.core.interactions import Actor, Command, Origin
from handlers.core.messages import Buttons, Section
from storage.db import transaction
from storage.models import Workspace
from testing.fakes.clock import FrozenClock
from tests.test_digest_figures import SETTINGS, seed_week

ORIGIN = Origin(platform="slack", workspace_id="T0001")
THURSDAY_NOON = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


@pytest.fixture
async def app(migrated_url: str, clock: FrozenClock) -> AsyncIterator[Flywheel]:
    flywheel = build(load_settings(database_url=migrated_url, _env_file=None), clock=clock)
    async with transaction(flywheel.sessions) as session:
        workspace = Workspace(platform="slack", external_id="T0001", created_at=THURSDAY_NOON)
        workspace_settings.save(workspace, SETTINGS)
        session.add(workspace)
        await session.flush()
        workspace_id = workspace.id or 0
    await seed_week(flywheel.sessions, workspace_id)
    clock.set(THURSDAY_NOON)
    yield flywheel
    await flywheel.close()


async def stats_of(app: Flywheel, user: str) -> tuple[list[str], list[tuple[str, str]]]:
    reply = await app.router.dispatch(Command(ORIGIN, Actor(user_id=user), "stats"))
    assert reply.message is not None
    fields = [f for b in reply.message.blocks if isinstance(b, Section) for f in b.fields]
    buttons = [
        (x.action, x.value)
        for b in reply.message.blocks
        if isinstance(b, Buttons)
        for x in b.buttons
    ]
    return fields, buttons


async def test_the_week_so_far_mine_and_the_programs(app: Flywheel) -> None:
    fields, buttons = await stats_of(app, "UCAROL")
    # Monday 00:00 in Paris to Thursday noon: R2 and R3 asked, P2 published, three shares,
    # six clicks (five on Dan's link, Erin's first at noon), no wins yet; six people took part.
    assert fields[:9] == [
        "*Requests*\n2",
        "*Claimed by experts*\n2",
        # One open request and one nobody could take, listed as unmet demand below.
        "*Waiting for an expert*\n2",
        "*Posts from requests*\n1",
        "*Posts from links and feeds*\n0",
        "*Shares*\n3",
        "*Clicks*\n6",
        "*Wins*\n0",
        "*People taking part*\n6",
    ]
    assert fields[9:] == [
        "*Requests made*\n0",
        "*Expert pings answered*\n0",
        "*Posts published*\n1",
        "*Your posts*\n2 shares, 6 clicks",
        "*Your shares*\n0",
        "*Clicks on your links*\n0",
        "*Wins you logged*\n0",
    ]
    assert buttons == [("share_prefs", ""), ("notes_toggle", "off")]


async def test_a_sharer_sees_their_clicks(app: Flywheel) -> None:
    fields, _ = await stats_of(app, "UDAN")
    assert "*Your shares*\n2" in fields and "*Clicks on your links*\n5" in fields
