"""A brand-new workspace, where nobody is an expert yet, and the demand nobody could take.

Driven through the one router on a console workspace nobody has used: the requester hears
the truth and names a colleague; the colleague's new profile is offered the request; the
home tab lets anyone +1 unmet demand and experts take it. On SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlmodel import col, select

from bot.app import Flywheel, build
from bot.settings import load_settings
from handlers.core.interactions import Action, Actor, Command, Origin, Submission
from handlers.core.messages import Buttons, Message, Section
from storage.models import ContentRequest, Member, OutboxMessage, Vote
from testing.fakes.clock import FrozenClock

NEWCO = Origin(platform="console", workspace_id="newco")
ALICE = Actor("alice", "Alice", tz="Europe/London")
PIA = Actor("pia", "Pia", tz="Europe/Paris")
SAM = Actor("sam", "Sam", tz="Europe/London")
QUESTION = "How do we migrate Oracle to PostgreSQL without downtime?"
MONDAY_10 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


@pytest.fixture
async def app(migrated_url: str, clock: FrozenClock) -> AsyncIterator[Flywheel]:
    clock.set(MONDAY_10)
    flywheel = build(load_settings(database_url=migrated_url, _env_file=None), clock=clock)
    yield flywheel
    await flywheel.close()


async def ask(app: Flywheel, topic: str = QUESTION, actor: Actor = ALICE) -> ContentRequest:
    reply = await app.router.dispatch(
        Submission(NEWCO, actor, "request_form", {"topic": topic, "similar": "new"})
    )
    assert reply.errors == {}, reply.errors
    async with app.sessions() as session:
        query = select(ContentRequest).order_by(col(ContentRequest.id).desc())
        return (await session.exec(query)).first()  # type: ignore[return-value]


async def to_user(app: Flywheel, user: str) -> list[OutboxMessage]:
    async with app.sessions() as session:
        rows = (await session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id)))).all()
    return [r for r in rows if r.target.get("user") == user]


def buttons_of(payload: dict[str, Any]) -> list[tuple[str, str]]:
    """(action, value) of every button in a queued message, sections' own included."""
    found: list[tuple[str, str]] = []
    for block in payload["blocks"]:
        if block["kind"] == "buttons":
            found += [(b["action"], b.get("value", "")) for b in block["buttons"]]
        elif block["kind"] == "section" and block.get("button"):
            found.append((block["button"]["action"], block["button"].get("value", "")))
    return found


def home_buttons(message: Message) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for block in message.blocks:
        if isinstance(block, Buttons):
            found += [(b.action or "", b.value) for b in block.buttons]
        elif isinstance(block, Section) and block.button is not None:
            found.append((block.button.action or "", block.button.value))
    return found


async def test_with_no_experts_the_requester_hears_the_truth_and_names_a_colleague(
    app: Flywheel,
) -> None:
    request = await ask(app)
    await app.sweeper.run_once()

    [told] = [r for r in await to_user(app, "alice") if "expert" in str(r.payload["text"])]
    assert "Nobody has an expert profile yet" in str(told.payload["text"])
    assert "busy or passed" not in str(told.payload)
    assert ("request_nominate", str(request.id)) in buttons_of(told.payload)

    form = await app.router.dispatch(Action(NEWCO, ALICE, "request_nominate", str(request.id)))
    assert form.form is not None and form.form.form_id == "nominate_form"
    # Only the requester names who should answer, and never themselves.
    refused = await app.router.dispatch(Action(NEWCO, SAM, "request_nominate", str(request.id)))
    assert refused.message is not None and "Only the person who asked" in refused.message.text
    myself = await app.router.dispatch(
        Submission(NEWCO, ALICE, "nominate_form", {"colleague": ("alice",)}, str(request.id))
    )
    assert "colleague" in myself.errors
    empty = await app.router.dispatch(
        Submission(NEWCO, ALICE, "nominate_form", {"colleague": ()}, str(request.id))
    )
    assert empty.errors == {"colleague": "Pick a colleague."}
    assert await to_user(app, "pia") == []

    done = await app.router.dispatch(
        Submission(
            NEWCO,
            ALICE,
            "nominate_form",
            {"colleague": ("pia",), "note": "You moved Globex off Oracle."},
            str(request.id),
        )
    )
    assert done.message is not None and "invited" in done.message.text
    [invite] = await to_user(app, "pia")
    assert "thinks you know about" in str(invite.payload["text"])
    assert buttons_of(invite.payload) == [("expert_open", "")]

    # Pia follows the invitation: the profile form, then the request offered at once.
    opened = await app.router.dispatch(Action(NEWCO, PIA, "expert_open", ""))
    assert opened.form is not None and opened.form.form_id == "expert_form"
    await app.router.dispatch(
        Submission(NEWCO, PIA, "expert_form", {"other_topics": "oracle, postgresql"})
    )
    saved = (await to_user(app, "pia"))[-1]
    assert "Your expert profile is saved" in str(saved.payload["text"])
    assert "1 request matches what you know" in str(saved.payload)
    assert buttons_of(saved.payload) == [("request_take", str(request.id))]

    taken = await app.router.dispatch(Action(NEWCO, PIA, "request_take", str(request.id)))
    assert taken.message is not None and "It's yours" in taken.message.text
    async with app.sessions() as session:
        current = await session.get(ContentRequest, request.id)
        assert current is not None and current.status == "claimed"
    assert any("Pia is on" in str(r.payload["text"]) for r in await to_user(app, "alice"))


async def test_a_saved_profile_is_offered_only_what_matches_and_not_its_own(
    app: Flywheel,
) -> None:
    await ask(app)
    await ask(app, "Pricing page for the enterprise plan", actor=SAM)
    await ask(app, "Our Oracle exit, told by the DBA", actor=PIA)
    await app.router.dispatch(
        Submission(NEWCO, PIA, "expert_form", {"other_topics": "oracle, postgresql"})
    )
    saved = (await to_user(app, "pia"))[-1]
    assert "1 request matches" in str(saved.payload)
    assert "Pricing" not in str(saved.payload) and "Oracle exit" not in str(saved.payload)
    # Nothing matching: just the confirmation, without an offer.
    await app.router.dispatch(
        Submission(NEWCO, SAM, "expert_form", {"other_topics": "golf", "capacity": "1"})
    )
    confirmation = (await to_user(app, "sam"))[-1]
    assert "Up to 1 request at once." in str(confirmation.payload["text"])
    assert "matches" not in str(confirmation.payload)


async def test_unmet_demand_on_the_home_tab_takes_plus_ones_and_experts_take_it(
    app: Flywheel,
) -> None:
    request = await ask(app)
    await app.sweeper.run_once()
    value = str(request.id)

    # Sam is nobody's expert: +1 only. The requester gets neither button.
    home = await app.router.dispatch(Command(NEWCO, SAM, "home"))
    assert home.message is not None
    assert ("request_vote", value) in home_buttons(home.message)
    assert ("request_take", value) not in home_buttons(home.message)
    own = await app.router.dispatch(Command(NEWCO, ALICE, "home"))
    assert own.message is not None
    assert not [b for b in home_buttons(own.message) if b[1] == value]

    voted = await app.router.dispatch(Action(NEWCO, SAM, "request_vote", value))
    assert voted.message is not None and "2 people want this" in voted.message.text
    again = await app.router.dispatch(Command(NEWCO, SAM, "home"))
    assert again.message is not None and ("request_vote", value) not in home_buttons(again.message)
    async with app.sessions() as session:
        assert len((await session.exec(select(Vote))).all()) == 1

    # Taking it needs a profile; with one, the home tab offers it.
    refused = await app.router.dispatch(Action(NEWCO, SAM, "request_take", value))
    assert refused.message is not None and "taken by experts" in refused.message.text
    await app.router.dispatch(Submission(NEWCO, PIA, "expert_form", {"other_topics": "pricing"}))
    expert_home = await app.router.dispatch(Command(NEWCO, PIA, "home"))
    assert expert_home.message is not None
    assert ("request_take", value) in home_buttons(expert_home.message)
    taken = await app.router.dispatch(Action(NEWCO, PIA, "request_take", value))
    assert taken.message is not None and "It's yours" in taken.message.text
    async with app.sessions() as session:
        pia = (await session.exec(select(Member).where(Member.user_id == "pia"))).one()
        current = await session.get(ContentRequest, request.id)
        assert current is not None and current.assignee_id == pia.id


async def test_words_a_person_would_write(app: Flywheel) -> None:
    request = await ask(app)
    await app.sweeper.run_once()
    # One unmet request: stats count it as waiting, as the list beside them shows it.
    stats = await app.router.dispatch(Command(NEWCO, SAM, "stats"))
    assert stats.message is not None
    text = str(stats.message.text)
    assert "1 request," in text and "1 waiting" in text and "0 shares" in text
    fields = [f for b in stats.message.blocks if isinstance(b, Section) for f in b.fields]
    assert any("Waiting for an expert" in f and "1" in f for f in fields)
    assert any(QUESTION in str(getattr(b, "text", "")) for b in stats.message.blocks)

    preview = await app.router.dispatch(Command(NEWCO, ALICE, "digest", "preview"))
    assert preview.message is not None
    shown = str(preview.message.model_dump())
    assert "nowhere yet" not in shown and "0.0 a week" not in shown

    # A claim without a due date: a week from now, as a day where the expert is.
    ole = Actor("ole", "Ole", tz="Asia/Tokyo")
    await app.router.dispatch(
        Submission(NEWCO, ole, "expert_form", {"other_topics": "oracle, postgresql"})
    )
    app.clock.set(datetime(2026, 11, 23, 20, 0, tzinfo=UTC))  # 05:00 Tuesday in Tokyo
    taken = await app.router.dispatch(Action(NEWCO, ole, "request_take", str(request.id)))
    assert taken.message is not None and "Tue 01 Dec" in taken.message.text
