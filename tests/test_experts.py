"""The expert directory: the profile form and the CSV import."""

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
from handlers.core.interactions import Actor, Command, Origin, Submission
from handlers.core.members import ensure_workspace
from handlers.routing.experts import check_columns, import_experts
from storage.db import transaction
from storage.models import ExpertProfile, Member
from testing.fakes.clock import FrozenClock
from testing.processes import clean_env

ACME = Origin(platform="console", workspace_id="acme")
ERIN = Actor("erin", "Erin", email="erin@acme.test", tz="Europe/Paris")


class FakeDirectory:
    """People the platform knows, by id and email."""

    def __init__(self, *people: Actor) -> None:
        self.people = {p.user_id: p for p in people}

    async def profile(self, workspace: str, user_id: str) -> Actor | None:
        return self.people.get(user_id)

    async def by_email(self, workspace: str, email: str) -> Actor | None:
        return next((p for p in self.people.values() if p.email == email), None)


@pytest.fixture
async def app(migrated_url: str, clock: FrozenClock) -> AsyncIterator[Flywheel]:
    flywheel = build(load_settings(database_url=migrated_url, _env_file=None), clock=clock)
    yield flywheel
    await flywheel.close()


async def profiles(app: Flywheel) -> list[ExpertProfile]:
    async with app.sessions() as session:
        return list((await session.exec(select(ExpertProfile).order_by(ExpertProfile.id))).all())


async def test_expert_form_saves_a_profile(app: Flywheel) -> None:
    reply = await app.router.dispatch(Command(ACME, ERIN, "expert"))
    assert reply.form is not None and reply.form.form_id == "expert_form"
    await app.router.dispatch(
        Submission(
            ACME,
            ERIN,
            "expert_form",
            {
                "other_topics": "Kubernetes, zero downtime, kubernetes",
                "bio": "SRE lead.",
                "capacity": "3",
                "snoozed_until": "2026-12-01",
            },
        )
    )
    [profile] = await profiles(app)
    assert profile.topics == ["kubernetes", "zero downtime"]
    assert (profile.capacity, profile.bio, str(profile.snoozed_until)) == (
        3,
        "SRE lead.",
        "2026-12-01",
    )
    again = await app.router.dispatch(Command(ACME, ERIN, "expert"))
    assert again.form is not None
    known = next(f for f in again.form.fields if f.name == "known_topics")
    assert known.initial == ("kubernetes", "zero downtime")  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"capacity": "-1"}, "capacity"),
        ({"capacity": "500"}, "capacity"),
        ({"capacity": "lots"}, "capacity"),
        ({"snoozed_until": "2026-11-01"}, "snoozed_until"),
        ({"other_topics": ", ".join(f"topic {i}" for i in range(31))}, "other_topics"),
        ({"other_topics": ""}, "other_topics"),
        ({"bio": "x" * 1001}, "bio"),
    ],
)
async def test_bad_profile_input_is_refused_and_nothing_written(
    app: Flywheel, values: dict[str, str], field: str
) -> None:
    reply = await app.router.dispatch(
        Submission(
            ACME, ERIN, "expert_form", {"other_topics": "kubernetes", "capacity": "2", **values}
        )
    )
    assert field in reply.errors
    assert await profiles(app) == []


CSV_ROWS = [
    (
        2,
        {
            "email": "erin@acme.test",
            "name": "Erin",
            "topics": "kubernetes; zero downtime",
            "bio": "SRE",
            "capacity": "2",
        },
    ),
    (3, {"email": "not-an-email", "name": "X", "topics": "a", "bio": "", "capacity": "1"}),
    (
        4,
        {"email": "ghost@acme.test", "name": "Ghost", "topics": "sales", "bio": "", "capacity": ""},
    ),
    (
        5,
        {
            "email": "ERIN@acme.test",
            "name": "Erin again",
            "topics": "go",
            "bio": "",
            "capacity": "1",
        },
    ),
    (6, {"email": "bot@acme.test", "name": "Bot", "topics": "spam", "bio": "", "capacity": "1"}),
    (
        7,
        {
            "email": "fay@acme.test",
            "name": "Fay",
            "topics": "postgresql",
            "bio": "DBA",
            "capacity": "99",
        },
    ),
    (
        8,
        {
            "email": "gus@acme.test",
            "name": "Gus",
            "topics": "oracle, postgresql",
            "bio": "",
            "capacity": "",
        },
    ),
]


async def test_csv_import_reports_by_line_and_is_idempotent(app: Flywheel) -> None:
    directory = FakeDirectory(
        ERIN,
        Actor("bot1", "Bot", email="bot@acme.test", is_bot=True),
        Actor("fay", "Fay", email="fay@acme.test"),
        Actor("gus", "Gus", email="gus@acme.test"),
    )
    async with transaction(app.sessions) as session:
        workspace = await ensure_workspace(session, ACME, app.clock.now())
        report = await import_experts(
            session, workspace, CSV_ROWS, directory=directory, now=app.clock.now()
        )
    assert (report.created, report.updated, report.unchanged) == (2, 0, 0)
    assert [p.split(":")[0] for p in report.problems] == [
        "line 3",
        "line 4",
        "line 5",
        "line 6",
        "line 7",
    ]
    assert "already appears on line 2" in report.problems[2]
    assert "no chat user" in report.problems[1]
    assert "between 0 and 20" in report.problems[4]
    async with transaction(app.sessions) as session:
        again = await import_experts(
            session, workspace, CSV_ROWS, directory=directory, now=app.clock.now()
        )
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)
    assert [p.topics for p in await profiles(app)] == [
        ["kubernetes", "zero downtime"],
        ["oracle", "postgresql"],
    ]


def test_missing_columns_are_named() -> None:
    assert check_columns(["email", "name", "topics"]) == (
        "line 1: missing columns bio, capacity (expected email, name, topics, bio, capacity)"
    )
    assert check_columns(["Email", "NAME", "topics", "bio", "capacity"]) is None


async def test_cli_import_into_the_console_workspace(app: Flywheel, tmp_path: Path) -> None:
    async with transaction(app.sessions) as session:
        workspace = await ensure_workspace(
            session, Origin(platform="console", workspace_id="demo"), app.clock.now()
        )
        session.add(
            Member(
                workspace_id=workspace.id or 0,
                user_id="erin",
                name="Erin",
                email="erin@acme.test",
                created_at=app.clock.now(),
                updated_at=app.clock.now(),
            )
        )
    data = tmp_path / "experts.csv"
    data.write_text(
        "email,name,topics,bio,capacity\n"
        'erin@acme.test,Erin,"kubernetes, go",SRE,2\n'
        "nobody@acme.test,No,x,,1\n"
    )
    env = clean_env(DATABASE_URL=app.engine.url.render_as_string(hide_password=False))
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "bot", "experts", "import", str(data)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert result.returncode == 1, result.stderr
    assert result.stdout.splitlines() == [
        "1 created, 0 updated, 0 unchanged, 1 rejected",
        "line 3: no chat user with the email nobody@acme.test",
    ]
    second = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "bot", "experts", "import", str(data)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert second.stdout.splitlines()[0] == "0 created, 0 updated, 1 unchanged, 1 rejected"
    bad = tmp_path / "bad.csv"
    bad.write_text("email,name\nerin@acme.test,Erin\n")
    third = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "bot", "experts", "import", str(bad)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert third.returncode == 2
    assert "missing columns topics, bio, capacity" in third.stderr
