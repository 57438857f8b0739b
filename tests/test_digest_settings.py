"""The digest block of `admin_form`: a bad day or time is answered inline and nothing is saved."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlmodel import select

from bot.app import Flywheel, build
from bot.settings import load_settings
from handlers.core.interactions import Actor, Command, Origin, Submission
from handlers.core.messages import FormValue
from storage.models import Workspace
from testing.fakes.clock import FrozenClock

ORIGIN = Origin(platform="console", workspace_id="demo")
ADMIN = Actor(user_id="dana", is_platform_admin=True)


@pytest.fixture
async def app(migrated_url: str, clock: FrozenClock) -> AsyncIterator[Flywheel]:
    flywheel = build(load_settings(database_url=migrated_url, _env_file=None), clock=clock)
    yield flywheel
    await flywheel.close()


async def submit(app: Flywheel, **values: FormValue) -> dict[str, str]:
    opened = await app.router.dispatch(Command(ORIGIN, ADMIN, "admin"))
    assert opened.form is not None
    answers: dict[str, FormValue] = {
        "timezone": "Europe/Paris",
        "digest_channels": ("general",),
        **values,
    }
    reply = await app.router.dispatch(Submission(ORIGIN, ADMIN, "admin_form", answers))
    return reply.errors


async def saved(app: Flywheel) -> dict[str, object]:
    async with app.sessions() as session:
        return dict((await session.exec(select(Workspace))).one().settings)


@pytest.mark.parametrize(
    ("values", "errors"),
    [
        ({"digest_day": "funday"}, {"digest_day": "Choose a day of the week, like Monday."}),
        (
            {"digest_time": "9am"},
            {"digest_time": "“9am” is not a time like 09:00 (24-hour clock)."},
        ),
        ({"personal_notes_default": "maybe"}, {"personal_notes_default": "Choose on or off."}),
    ],
)
async def test_bad_digest_settings_are_refused_inline(
    app: Flywheel, values: dict[str, FormValue], errors: dict[str, str]
) -> None:
    assert await submit(app, **values) == errors
    assert "digest_channels" not in await saved(app)


async def test_good_digest_settings_are_saved_and_start_digests_afresh(
    app: Flywheel, clock: FrozenClock
) -> None:
    assert await submit(app, digest_day="tuesday", digest_time="8:05") == {}
    first = await saved(app)
    assert (first["digest_day"], first["digest_time"], first["digests_from"]) == (
        "tuesday",
        "08:05",
        clock.now().isoformat(),
    )
    clock.advance(days=3)
    # Saving again without changing the schedule keeps when digests started.
    assert await submit(app, digest_day="tuesday", digest_time="08:05") == {}
    assert (await saved(app))["digests_from"] == first["digests_from"]
