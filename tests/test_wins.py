"""Wins and `find` through the router, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlmodel import select

from bot.app import Flywheel, build
from bot.settings import load_settings
from handlers.core.interactions import Action, Actor, Command, Origin, Submission
from handlers.core.messages import Buttons, SelectField
from handlers.sharing.find import PostIndex
from handlers.sharing.wins import parse_value
from storage.db import transaction
from storage.models import OutboxMessage, Post, Win
from testing.fakes.clock import FrozenClock
from tests.test_sharing import PUBLIC, TUESDAY_10_UTC, World, make_world, sweep

GLOBEX = Origin(platform="console", workspace_id="globex")
ALICE = Actor("alice", "Alice")


@pytest.fixture
async def world(migrated_url: str, clock: FrozenClock) -> AsyncIterator[World]:
    clock.set(TUESDAY_10_UTC)
    app = build(
        load_settings(database_url=migrated_url, public_base_url=PUBLIC, _env_file=None),
        clock=clock,
    )
    built = await make_world(app, clock)
    await sweep(built)
    yield built
    await app.close()


ACME = Origin(platform="console", workspace_id="acme")


async def wins(app: Flywheel) -> list[Win]:
    async with app.sessions() as session:
        return list((await session.exec(select(Win))).all())


async def test_the_win_form_offers_the_posts_i_was_sent(world: World) -> None:
    reply = await world.app.router.dispatch(Action(ACME, ALICE, "win_log", str(world.post_id)))
    assert reply.form is not None and reply.form.form_id == "win_form"
    [posts] = [f for f in reply.form.fields if isinstance(f, SelectField) and f.name == "post"]
    assert [o.value for o in posts.options] == [str(world.post_id), "none"]
    assert posts.initial == (str(world.post_id),)
    # Someone who was sent nothing and shared nothing gets no post field to choose from.
    command = Command(ACME, Actor("ulla", "Ulla"), "win")
    fresh = await world.app.router.dispatch(command)
    assert fresh.form is not None
    assert "post" not in {f.name for f in fresh.form.fields}


async def test_a_good_win_is_recorded_and_its_author_hears(world: World) -> None:
    values = {
        "kind": "meeting",
        "description": "Initech's CTO booked a call after the post.",
        "account": "  Initech  ",
        "post": str(world.post_id),
        "value": "€ 1 200.50",
    }
    reply = await world.app.router.dispatch(Submission(ACME, ALICE, "win_form", values))
    assert (
        reply.message is not None
        and "Win logged: meeting booked with Initech" in reply.message.text
    )
    [win] = await wins(world.app)
    assert (win.kind, win.account, win.value, win.post_id, win.member_id) == (
        "meeting",
        "Initech",
        1200,
        world.post_id,
        world.ids["alice"],
    )
    async with world.app.sessions() as session:
        [thanks] = (
            await session.exec(
                select(OutboxMessage).where(OutboxMessage.dedupe_key.contains(":win:"))
            )  # type: ignore[attr-defined]
        ).all()
    # News about her post, nobody's answer: it waits for Pia's working hours if need be.
    assert thanks.target["user"] == "pia" and "hours" in thanks.target


async def _globex_post(world: World) -> int:
    """A post of another workspace."""
    other = await world.app.router.dispatch(Command(GLOBEX, Actor("gus", "Gus"), "home"))
    assert other.message is not None
    async with transaction(world.app.sessions) as session:
        original = (await session.exec(select(Post))).one()
        from storage.models import Workspace

        globex = (
            await session.exec(select(Workspace).where(Workspace.external_id == "globex"))
        ).one()
        data: dict[str, Any] = original.model_dump(exclude={"id", "public_code", "draft_id"})
        from storage.models import ContentRequest
        from tests.test_sharing import _draft_id

        request = ContentRequest(
            workspace_id=globex.id or 0,
            requester_id=original.author_id,
            topic="x",
            created_at=original.published_at,
            updated_at=original.published_at,
        )
        session.add(request)
        await session.flush()
        data.update(
            workspace_id=globex.id,
            request_id=request.id,
            draft_id=await _draft_id(
                session, globex.id or 0, request.id or 0, original.author_id, original.published_at
            ),
        )
        post = Post(**data)
        session.add(post)
        await session.flush()
        return post.id or 0


@pytest.mark.parametrize(
    ("values", "field", "says"),
    [
        ({"description": ""}, "description", "what happened"),
        ({"description": "   "}, "description", "what happened"),
        ({"value": "-5"}, "value", "can't be negative"),
        ({"value": "lots"}, "value", "isn't a number"),
        ({"value": "1e9"}, "value", "isn't a number"),
        ({"value": "99999999999"}, "value", "too large"),
        ({"kind": "party"}, "kind", "Choose what happened"),
        ({"post": "abc"}, "post", "isn't one of this workspace's"),
        ({"post": "9999"}, "post", "isn't one of this workspace's"),
        ({"post": "GLOBEX"}, "post", "isn't one of this workspace's"),
        ({"account": "A" * 201}, "account", "under 200"),
        ({"description": "x" * 1001}, "description", "under 1000"),
    ],
)
async def test_a_bad_win_is_an_inline_error_and_writes_nothing(
    world: World, values: dict[str, str], field: str, says: str
) -> None:
    if values.get("post") == "GLOBEX":
        values = {**values, "post": str(await _globex_post(world))}
    good = {"kind": "deal", "description": "Signed.", "account": "", "value": "", "post": "none"}
    reply = await world.app.router.dispatch(Submission(ACME, ALICE, "win_form", {**good, **values}))
    assert field in reply.errors and says in reply.errors[field]
    assert await wins(world.app) == []


def test_values_people_type() -> None:
    assert parse_value("") is None
    assert parse_value("25,000") == 25000
    assert parse_value("$12k".replace("k", "000")) == 12000
    assert parse_value("1’000") == 1000
    assert parse_value("0") == 0


async def test_find_ranks_posts_by_title_and_tags_above_body(world: World) -> None:
    index = PostIndex.build(
        [
            (1, "Kubernetes upgrades", ["kubernetes"], "Surge upgrades.", "Body about k8s."),
            (2, "Cost control", ["finops"], "Budgets.", "We mention kubernetes once."),
            (3, "Tax law", ["tax"], "Nothing.", "Nothing relevant."),
        ]
    )
    assert index.search("k8s upgrade") == [1]
    # A post that only mentions the word in passing ranks far below, and is left out.
    assert index.search("kubernetes") == [1]
    assert index.search("budgets") == [2]
    assert index.search("budgets kubernetes") == [1, 2]
    assert index.search("the and of") == []
    assert index.search("tax") == [3]
    reply = await world.app.router.dispatch(
        Command(ACME, ALICE, "find", "zero downtime kubernetes")
    )
    assert reply.message is not None
    [buttons] = [b for b in reply.message.blocks if isinstance(b, Buttons)]
    assert [b.action for b in buttons.buttons] == [
        "share_linkedin",
        "share_x",
        "share_email",
        "win_log",
    ]
    # Another workspace's search never sees this one's posts.
    other = await world.app.router.dispatch(Command(GLOBEX, ALICE, "find", "kubernetes"))
    assert other.message is not None and other.message.text.startswith("No approved posts")
