"""Request capture and +1s through the router, the same on every platform."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlmodel import select

from bot.app import Flywheel, build
from bot.settings import load_settings
from handlers.core.errors import InvalidTransition
from handlers.core.interactions import Action, Actor, Command, Origin, Submission
from handlers.core.lifecycle import Status, transition
from handlers.core.messages import SelectField
from handlers.routing.similarity import most_similar
from handlers.routing.words import ALIASES
from storage.models import ContentRequest, OutboxMessage, Vote
from testing.fakes.clock import FrozenClock

ACME = Origin(platform="console", workspace_id="acme")
GLOBEX = Origin(platform="console", workspace_id="globex")
ALICE, BOB = Actor("alice", "Alice"), Actor("bob", "Bob")
QUESTION = "How do we migrate Oracle to PostgreSQL without downtime?"


@pytest.fixture
async def app(migrated_url: str, clock: FrozenClock) -> AsyncIterator[Flywheel]:
    flywheel = build(load_settings(database_url=migrated_url, _env_file=None), clock=clock)
    yield flywheel
    await flywheel.close()


async def rows(app: Flywheel, model: type) -> list:  # type: ignore[type-arg]
    async with app.sessions() as session:
        return list((await session.exec(select(model))).all())


async def capture(
    app: Flywheel, actor: Actor = ALICE, origin: Origin = ACME, **values: str
) -> None:
    reply = await app.router.dispatch(
        Submission(origin, actor, "request_form", {"topic": QUESTION, **values})
    )
    assert reply.errors == {} and reply.form is None


async def test_a_request_is_stored_with_a_confirmation_queued(app: Flywheel) -> None:
    await capture(app, tags="PostgreSQL, oracle, postgresql", needed_by="2026-12-01")
    [request] = await rows(app, ContentRequest)
    assert request.status == Status.OPEN
    assert request.tags == ["postgresql", "oracle"]
    kinds = sorted(
        (row.kind, row.target.get("user") or row.target.get("home"))
        for row in await rows(app, OutboxMessage)
    )
    assert kinds == [("home", "alice"), ("message", "alice")]


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"topic": "   "}, "topic"),
        ({"topic": "x" * 201}, "topic"),
        ({"context": "x" * 3001}, "context"),
        ({"needed_by": "2026-11-22"}, "needed_by"),
        ({"needed_by": "next week"}, "needed_by"),
        ({"tags": ",".join(f"t{i}" for i in range(11))}, "tags"),
    ],
)
async def test_bad_input_is_an_inline_error_and_writes_nothing(
    app: Flywheel, values: dict[str, str], field: str
) -> None:
    reply = await app.router.dispatch(
        Submission(ACME, ALICE, "request_form", {"topic": QUESTION, **values})
    )
    assert field in reply.errors
    assert await rows(app, ContentRequest) == []
    assert await rows(app, OutboxMessage) == []


async def test_a_similar_request_offers_a_plus_one_instead(app: Flywheel) -> None:
    await capture(app)
    reply = await app.router.dispatch(
        Command(ACME, BOB, "request", "Oracle to Postgres migration with zero downtime")
    )
    assert reply.form is not None
    similar = next(f for f in reply.form.fields if f.name == "similar")
    [request] = await rows(app, ContentRequest)
    assert similar.initial == (str(request.id),)
    await app.router.dispatch(
        Submission(ACME, BOB, "request_form", {"similar": str(request.id), "topic": "x"})
    )
    assert len(await rows(app, ContentRequest)) == 1
    assert len(await rows(app, Vote)) == 1


async def offered(app: Flywheel, topic: str) -> list[str]:
    """The open requests `request <topic>` offers to +1 instead, by topic."""
    reply = await app.router.dispatch(Command(ACME, BOB, "request", topic))
    assert reply.form is not None
    choice = next((f for f in reply.form.fields if f.name == "similar"), None)
    if choice is None:
        return []
    assert isinstance(choice, SelectField)
    by_id = {str(r.id): r.topic for r in await rows(app, ContentRequest)}
    return [by_id[o.value] for o in choice.options if o.value in by_id]


async def test_postgres_on_k8s_is_the_open_question_about_postgresql_on_kubernetes(
    app: Flywheel,
) -> None:
    await capture(app, topic="Running PostgreSQL on Kubernetes")
    await capture(app, topic="SOC 2 evidence automation")
    assert await offered(app, "Postgres on k8s") == ["Running PostgreSQL on Kubernetes"]


@pytest.mark.parametrize(("alias", "name"), sorted(ALIASES.items()))
async def test_every_alias_matching_knows_finds_the_open_request_by_its_full_name(
    app: Flywheel, alias: str, name: str
) -> None:
    await capture(app, topic=f"{name.capitalize()} in production")
    assert await offered(app, alias) == [f"{name.capitalize()} in production"]


async def test_submitting_a_duplicate_without_seeing_the_choice_shows_it(app: Flywheel) -> None:
    await capture(app)
    reply = await app.router.dispatch(
        Submission(
            ACME,
            BOB,
            "request_form",
            {"topic": "Migrating Oracle to PostgreSQL with no downtime", "audience": "CTOs"},
        )
    )
    assert reply.form is not None and reply.form.fields[0].name == "similar"
    audience = next(f for f in reply.form.fields if f.name == "audience")
    assert audience.initial == "CTOs"
    assert len(await rows(app, ContentRequest)) == 1
    await app.router.dispatch(
        Submission(
            ACME,
            BOB,
            "request_form",
            {"similar": "new", "topic": "Migrating Oracle to PostgreSQL with no downtime"},
        )
    )
    assert len(await rows(app, ContentRequest)) == 2


async def test_a_plus_one_counts_once_per_person(app: Flywheel) -> None:
    await capture(app)
    [request] = await rows(app, ContentRequest)
    first = await app.router.dispatch(Action(ACME, BOB, "request_vote", str(request.id)))
    assert "2 people want this" in first.message.text  # type: ignore[union-attr]
    second = await app.router.dispatch(Action(ACME, BOB, "request_vote", str(request.id)))
    assert "already" in second.message.text  # type: ignore[union-attr]
    own = await app.router.dispatch(Action(ACME, ALICE, "request_vote", str(request.id)))
    assert "your request already counts" in own.message.text  # type: ignore[union-attr]
    assert len(await rows(app, Vote)) == 1


async def test_another_workspace_cannot_see_or_vote(app: Flywheel) -> None:
    await capture(app)
    [request] = await rows(app, ContentRequest)
    reply = await app.router.dispatch(Action(GLOBEX, BOB, "request_vote", str(request.id)))
    assert "can't find that request" in reply.message.text  # type: ignore[union-attr]
    assert await rows(app, Vote) == []
    other = await app.router.dispatch(Command(GLOBEX, BOB, "request", QUESTION))
    assert other.form is not None and all(f.name != "similar" for f in other.form.fields)


async def test_malformed_vote_value_is_refused(app: Flywheel) -> None:
    reply = await app.router.dispatch(Action(ACME, BOB, "request_vote", "not-a-number"))
    assert "can't find" in reply.message.text  # type: ignore[union-attr]


async def test_unknown_command_gets_the_help(app: Flywheel) -> None:
    reply = await app.router.dispatch(Command(ACME, BOB, "frobnicate"))
    assert reply.message is not None
    assert "I don't know `frobnicate`" in reply.message.text
    assert "`request [topic]`" in reply.message.text


async def test_asynchronous_replies_go_through_the_outbox(app: Flywheel) -> None:
    thread = Origin(
        platform="console",
        workspace_id="acme",
        reply_to={"channel": "C1", "thread": "1.2"},
        can_open_forms=False,
    )
    reply = await app.router.dispatch(Command(thread, BOB, "help"))
    assert reply.message is None
    [queued] = await rows(app, OutboxMessage)
    assert queued.target == {"channel": "C1", "thread": "1.2"}


def test_state_machine_guards_transitions() -> None:
    assert transition("open", Status.CLAIMED) is Status.CLAIMED
    with pytest.raises(InvalidTransition, match="being drafted"):
        transition("claimed", Status.CLAIMED)
    with pytest.raises(InvalidTransition):
        transition("published", Status.APPROVED)


def test_similarity_tells_paraphrases_from_other_topics() -> None:
    candidates = [
        (1, QUESTION),
        (2, "Kubernetes multi-region failover"),
        (3, "SOC 2 evidence automation"),
    ]
    assert [
        i for i, _ in most_similar("Migrating from Oracle to Postgres with no downtime", candidates)
    ] == [1]
    assert most_similar("Kubernetes cost optimisation", candidates) == []
    assert most_similar("the and of", candidates) == []
