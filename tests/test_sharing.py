"""Distribution, share messages, share intents and preferences, on SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlmodel import col, select

from bot.app import Flywheel, build
from bot.settings import load_settings
from handlers.core.context import Config, Scope
from handlers.core.errors import InvalidTransition
from handlers.core.interactions import Action, Actor, Origin, Submission
from handlers.core.messages import Button, Buttons, Message
from handlers.core.ports import AI
from handlers.core.workspace_settings import WorkspaceSettings
from handlers.drafting.prompts import Prompt
from handlers.sharing import composer, distribution, share
from handlers.sharing.distribution_status import DistributionStatus, move_distribution
from storage.db import transaction
from storage.models import (
    ContentRequest,
    Distribution,
    Member,
    OutboxMessage,
    Post,
    Share,
    ShareSuggestion,
    TrackedLink,
    Vote,
    Workspace,
)
from testing.fakes.clock import FrozenClock

ACME = Origin(platform="console", workspace_id="acme")
TUESDAY_10_UTC = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
PUBLIC = "https://flywheel.acme.test"
BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


@dataclass
class World:
    app: Flywheel
    clock: FrozenClock
    ids: dict[str, int]  # member name → member id
    post_id: int
    workspace_id: int


def person(name: str, **fields: Any) -> dict[str, Any]:
    return {"user_id": name, "name": name.title(), "tz": "Europe/London", **fields}


PEOPLE = {
    "alice": person("alice"),  # requester
    "pia": person("pia", title="Solutions Engineer"),  # author
    "victor": person("victor", tz="America/New_York"),  # +1'd
    "olga": person("olga", share_opt_in=False),  # +1'd but opted out
    "ken": person("ken", share_opt_in=True, interests=["kubernetes"], title="Account Executive"),
    "tara": person("tara", share_opt_in=True, team="Platform", tz="Asia/Tokyo"),
    "nina": person("nina", share_opt_in=True, interests=["gardening"]),  # no match
    "ulla": person("ulla"),  # never asked: not opted in, no link to the post
    "bot": person("bot", is_bot=True, share_opt_in=True, interests=["kubernetes"]),
}


async def make_world(
    app: Flywheel,
    clock: FrozenClock,
    *,
    settings: dict[str, Any] | None = None,
    audience: str = "interests",
    source: str = "request",
) -> World:
    """A workspace with members and one approved post, distribution started; `source`
    "link" or "feed" makes it content from outside the loop (no request, no draft)."""
    now = clock.now()
    async with transaction(app.sessions) as session:
        workspace = Workspace(
            platform="console",
            external_id="acme",
            created_at=now,
            settings=WorkspaceSettings.model_validate(
                {"share_channels": ["CSHARE"], "timezone": "Europe/London", **(settings or {})}
            ).model_dump(),
        )
        session.add(workspace)
        await session.flush()
        assert workspace.id is not None
        ids: dict[str, int] = {}
        for name, fields in PEOPLE.items():
            member = Member(workspace_id=workspace.id, created_at=now, updated_at=now, **fields)
            session.add(member)
            await session.flush()
            ids[name] = member.id or 0
        request = ContentRequest(
            workspace_id=workspace.id,
            requester_id=ids["alice"],
            topic="Zero-downtime Kubernetes upgrades",
            status="published",
            created_at=now,
            updated_at=now,
        )
        session.add(request)
        await session.flush()
        for voter in ("victor", "olga"):
            session.add(
                Vote(
                    workspace_id=workspace.id,
                    request_id=request.id or 0,
                    member_id=ids[voter],
                    created_at=now,
                )
            )
        outside = source != "request"
        post = Post(
            workspace_id=workspace.id,
            source=source,
            request_id=None if outside else request.id,
            draft_id=None
            if outside
            else await _draft_id(session, workspace.id, request.id or 0, ids["pia"], now),
            version=1,
            slug="zero-downtime-kubernetes-upgrades",
            title="Zero-downtime Kubernetes upgrades",
            summary="Surge upgrades, PodDisruptionBudgets and a rollback plan.",
            body="Surge upgrades, PodDisruptionBudgets and a rollback plan.",
            canonical_url="https://blog.acme.test/k8s",
            captions=["How we upgrade Kubernetes with zero downtime"],
            tags=["Kubernetes", "platform"],
            author_id=ids["pia"],
            approved_by_id=ids["alice"],
            published_at=now,
            audience=audience,
        )
        session.add(post)
        await session.flush()
        scope = Scope(session, app.clock, app.router.config, workspace)
        author = await session.get(Member, ids["pia"])
        requester = None if outside else await session.get(Member, ids["alice"])
        assert author is not None
        await distribution.start(scope, post, author=author, requester=requester)
        return World(app, clock, ids, post.id or 0, workspace.id)


async def _draft_id(session: Any, workspace_id: int, request_id: int, author: int, now: Any) -> int:
    from storage.models import Draft

    draft = Draft(
        workspace_id=workspace_id,
        request_id=request_id,
        author_id=author,
        status="approved",
        created_at=now,
        updated_at=now,
    )
    session.add(draft)
    await session.flush()
    return draft.id or 0


async def sweep(world: World) -> int:
    async with transaction(world.app.sessions) as session:
        workspace = await session.get(Workspace, world.workspace_id)
        assert workspace is not None
        return await distribution.sweep(
            Scope(session, world.app.clock, world.app.router.config, workspace)
        )


async def suggestions(world: World) -> dict[str, ShareSuggestion]:
    names = {v: k for k, v in world.ids.items()}
    async with world.app.sessions() as session:
        rows = (await session.exec(select(ShareSuggestion))).all()
    return {names[row.member_id]: row for row in rows}


async def share_rows(world: World) -> list[OutboxMessage]:
    async with world.app.sessions() as session:
        rows = (
            await session.exec(
                select(OutboxMessage).where(col(OutboxMessage.dedupe_key).contains(":share:"))
            )
        ).all()
    return list(rows)


@pytest.fixture
async def app(migrated_url: str, clock: FrozenClock) -> AsyncIterator[Flywheel]:
    clock.set(TUESDAY_10_UTC)
    flywheel = build(
        load_settings(database_url=migrated_url, public_base_url=PUBLIC, _env_file=None),
        clock=clock,
    )
    yield flywheel
    await flywheel.close()


async def test_approval_announces_and_the_sweep_reaches_exactly_the_right_people(
    app: Flywheel, clock: FrozenClock
) -> None:
    world = await make_world(app, clock)
    async with app.sessions() as session:
        [announce] = (
            await session.exec(
                select(OutboxMessage).where(col(OutboxMessage.dedupe_key).contains("announce"))
            )
        ).all()
    assert announce.target == {"channel": "CSHARE"}
    buttons = [
        b.action
        for block in Message.model_validate(announce.payload).blocks
        if isinstance(block, Buttons)
        for b in block.buttons
    ]
    assert buttons == ["share_post", "win_log"]

    assert await sweep(world) == 5
    got = await suggestions(world)
    assert {name: s.reason for name, s in got.items()} == {
        "alice": "requester",
        "victor": "voter",
        "pia": "author",
        "ken": "interest",
        "tara": "team",
    }
    # Opted out, not matching, never asked, or a bot: never in a fan-out.
    assert not {"olga", "nina", "ulla", "bot"} & set(got)
    rows = await share_rows(world)
    assert sorted(r.target["user"] for r in rows) == sorted(got)
    # Planned once: a second sweep (or a second worker) adds nothing.
    assert await sweep(world) == 0
    async with app.sessions() as session:
        planned = (await session.exec(select(Distribution))).one()
        assert (planned.status, planned.recipients) == ("planned", 5)
        assert len((await session.exec(select(TrackedLink))).all()) == 15
    assert len(await share_rows(world)) == 5


async def test_a_repeated_plan_after_a_crash_sends_nothing_twice(
    app: Flywheel, clock: FrozenClock
) -> None:
    world = await make_world(app, clock)
    await sweep(world)
    # As if the worker died after commit and the row was put back: planning again is a no-op.
    async with transaction(app.sessions) as session:
        row = (await session.exec(select(Distribution))).one()
        row.status = "pending"
        session.add(row)
    assert await sweep(world) == 0
    assert len(await share_rows(world)) == 5


async def test_a_planned_distribution_is_done_and_cannot_move_back(
    app: Flywheel, clock: FrozenClock
) -> None:
    world = await make_world(app, clock)
    await sweep(world)
    async with transaction(app.sessions) as session:
        row = (await session.exec(select(Distribution))).one()
        with pytest.raises(InvalidTransition, match="planned distribution can't become pending"):
            await move_distribution(
                session, row.id, [DistributionStatus.PLANNED], DistributionStatus.PENDING
            )
        # Planned from pending once: a second worker finds nothing left to take.
        assert not await move_distribution(
            session, row.id, [DistributionStatus.PENDING], DistributionStatus.PLANNED
        )
    async with app.sessions() as session:
        assert (await session.exec(select(Distribution.status))).one() == "planned"
    assert len(await share_rows(world)) == 5


async def test_messages_land_in_working_hours_spread_over_the_window(
    app: Flywheel, clock: FrozenClock
) -> None:
    world = await make_world(app, clock, settings={"share_window_hours": 8})
    await sweep(world)
    got = await suggestions(world)
    now = clock.now()
    # People who asked for it, +1'd it or wrote it hear at once, in their working hours.
    assert got["alice"].deliver_at == now  # 10:00 in London
    assert got["pia"].deliver_at == now
    # 05:00 in New York: the +1 waits for 09:00 there.
    assert got["victor"].deliver_at.astimezone(ZoneInfo("America/New_York")).hour == 9
    # Everyone is inside their own working hours, on a working day.
    for name, s in got.items():
        tz = ZoneInfo(PEOPLE[name]["tz"])
        local = s.deliver_at.astimezone(tz)
        assert 9 <= local.hour < 18 and local.weekday() < 5, name
        assert s.local_day == local.date()
    # The others are spread: not all at the same moment.
    spread = {got["ken"].deliver_at, got["tara"].deliver_at}
    assert len(spread) == 2
    rows = {r.target["user"]: r for r in await share_rows(world)}
    for name, s in got.items():
        assert rows[name].next_attempt_at == s.deliver_at


async def test_the_daily_cap_moves_extra_suggestions_to_the_next_working_day(
    app: Flywheel, clock: FrozenClock
) -> None:
    world = await make_world(app, clock, settings={"share_daily_cap": 1})
    async with transaction(app.sessions) as session:
        # Ken already got a suggestion today: the first post.
        other = (await session.exec(select(Post))).one()
        session.add(
            ShareSuggestion(
                workspace_id=world.workspace_id,
                post_id=other.id or 0,
                member_id=world.ids["ken"],
                reason="interest",
                deliver_at=clock.now(),
                local_day=date(2026, 11, 24),
                created_at=clock.now(),
            )
        )
    # A second post, approved the same day.
    async with transaction(app.sessions) as session:
        original = (await session.exec(select(Post))).one()
        request = ContentRequest(
            workspace_id=world.workspace_id,
            requester_id=world.ids["alice"],
            topic="Kubernetes cost control",
            status="published",
            created_at=clock.now(),
            updated_at=clock.now(),
        )
        session.add(request)
        await session.flush()
        draft_id = await _draft_id(
            session, world.workspace_id, request.id or 0, world.ids["pia"], clock.now()
        )
        second = Post(
            **{
                **original.model_dump(exclude={"id", "public_code", "slug", "draft_id"}),
                "slug": "second",
                "request_id": request.id,
                "draft_id": draft_id,
            }
        )
        session.add(second)
        await session.flush()
        session.add(
            Distribution(
                workspace_id=world.workspace_id, post_id=second.id or 0, created_at=clock.now()
            )
        )
        second_id = second.id
    async with transaction(app.sessions) as session:
        first = (
            await session.exec(select(Distribution).where(Distribution.post_id != second_id))
        ).one()
        first.status = "planned"
        session.add(first)
    await sweep(world)
    async with app.sessions() as session:
        ken = (
            await session.exec(
                select(ShareSuggestion).where(
                    ShareSuggestion.post_id == second_id,
                    ShareSuggestion.member_id == world.ids["ken"],
                )
            )
        ).one()
        alice = (
            await session.exec(
                select(ShareSuggestion).where(
                    ShareSuggestion.post_id == second_id,
                    ShareSuggestion.member_id == world.ids["alice"],
                )
            )
        ).one()
    assert alice.local_day == date(2026, 11, 24)
    assert ken.local_day == date(2026, 11, 25)
    assert ken.deliver_at.astimezone(ZoneInfo("Europe/London")).hour >= 9


async def test_captions_vary_and_never_repeat_for_two_people_in_a_row(
    app: Flywheel, clock: FrozenClock
) -> None:
    world = await make_world(app, clock)
    await sweep(world)
    ordered = sorted((await suggestions(world)).values(), key=lambda s: (s.deliver_at, s.member_id))
    captions = [s.caption for s in ordered]
    assert len(set(captions)) >= 2
    assert all(a != b for a, b in itertools.pairwise(captions))
    # The one approved caption is among them, word for word.
    assert "How we upgrade Kubernetes with zero downtime" in captions


async def _ken_buttons(world: World) -> dict[str, Button]:
    rows = {r.target["user"]: r for r in await share_rows(world)}
    message = Message.model_validate(rows["ken"].payload)
    [buttons] = [b for b in message.blocks if isinstance(b, Buttons)]
    return {b.action: b for b in buttons.buttons}


async def test_each_share_message_carries_personal_share_buttons(
    app: Flywheel, clock: FrozenClock
) -> None:
    world = await make_world(app, clock)
    await sweep(world)
    by_action = await _ken_buttons(world)
    assert list(by_action) == ["share_linkedin", "share_x", "share_email", "win_log"]
    async with app.sessions() as session:
        query = select(TrackedLink).where(TrackedLink.member_id == world.ids["ken"])
        links = {link.network: link for link in (await session.exec(query)).all()}
    for network in ("linkedin", "x", "email"):
        button = by_action[f"share_{network}"]
        assert button.value == links[network].intent_code != links[network].code
        assert button.url == f"{PUBLIC}/s/{links[network].intent_code}"
    rows = {r.target["user"]: r for r in await share_rows(world)}
    alice = Message.model_validate(rows["alice"].payload)
    [alice_buttons] = [b for b in alice.blocks if isinstance(b, Buttons)]
    assert alice_buttons.buttons[0].value != by_action["share_linkedin"].value


async def test_a_share_button_records_the_share_and_opens_the_filled_in_composer(
    app: Flywheel, clock: FrozenClock
) -> None:
    world = await make_world(app, clock)
    await sweep(world)
    by_action = await _ken_buttons(world)
    caption = (await suggestions(world))["ken"].caption
    async with app.sessions() as session:
        query = select(TrackedLink).where(TrackedLink.member_id == world.ids["ken"])
        links = {link.network: link for link in (await session.exec(query)).all()}
    client: TestClient[Any, Any] = TestClient(TestServer(app.web_app()))
    await client.start_server()
    try:
        # A link unfurler or crawler fetching the button's address opens, records nothing.
        preview = await client.get(
            urlsplit(by_action["share_x"].url or "").path,
            allow_redirects=False,
            headers={"User-Agent": "Slackbot-LinkExpanding 1.0"},
        )
        assert preview.status == 302
        assert await _shares(app) == []
        opened = {}
        for network in ("linkedin", "x", "email"):
            path = urlsplit(by_action[f"share_{network}"].url or "").path
            response = await client.get(
                path, allow_redirects=False, headers={"User-Agent": BROWSER}
            )
            assert response.status == 302
            opened[network] = response.headers["Location"]
        for path in ("/s/AAAAAAAAAAAAAAAA", "/s/short", f"/s/{links['x'].code}"):
            assert (await client.get(path, allow_redirects=False)).status == 404
    finally:
        await client.close()
    tracked = {n: f"{PUBLIC}/r/{links[n].code}" for n in ("linkedin", "x", "email")}
    linkedin = parse_qs(urlsplit(opened["linkedin"]).query)
    assert opened["linkedin"].startswith("https://www.linkedin.com/feed/?shareActive=true&text=")
    assert linkedin["text"] == [f"{caption}\n\n{tracked['linkedin']}"]
    x = parse_qs(urlsplit(opened["x"]).query)
    assert x["url"] == [tracked["x"]] and len(x["text"][0]) + 1 + composer.X_LINK_LENGTH <= 280
    mail = parse_qs(urlsplit(opened["email"]).query)
    assert opened["email"].startswith("mailto:?subject=")
    assert mail["body"] == [f"{caption}\n\n{tracked['email']}"]
    shares = await _shares(app)
    assert sorted(s.network for s in shares) == ["email", "linkedin", "x"]
    assert {s.member_id for s in shares} == {world.ids["ken"]}


async def test_linkedin_share_offsite_is_a_workspace_option(
    app: Flywheel, clock: FrozenClock
) -> None:
    world = await make_world(app, clock, settings={"linkedin_share": "offsite"})
    await sweep(world)
    code = (await _ken_buttons(world))["share_linkedin"].value
    async with transaction(app.sessions) as session:
        location = await share.follow_intent(
            session, code, now=clock.now(), public_base_url=PUBLIC, preview=False
        )
    assert (location or "").startswith(
        "https://www.linkedin.com/sharing/share-offsite/?url=https%3A%2F%2Fflywheel.acme.test%2Fr%2F"
    )


# -- share intents --------------------------------------------------------------------------


async def _link(app: Flywheel, member_id: int, network: str) -> TrackedLink:
    async with app.sessions() as session:
        return (
            await session.exec(
                select(TrackedLink).where(
                    TrackedLink.member_id == member_id, TrackedLink.network == network
                )
            )
        ).one()


async def _shares(app: Flywheel) -> list[Share]:
    async with app.sessions() as session:
        return list((await session.exec(select(Share))).all())


async def test_pressing_a_share_button_records_one_share_intent(
    app: Flywheel, clock: FrozenClock
) -> None:
    world = await make_world(app, clock)
    await sweep(world)
    link = await _link(app, world.ids["ken"], "linkedin")
    ken = Actor("ken", "Ken")
    reply = await app.router.dispatch(Action(ACME, ken, "share_linkedin", link.intent_code))
    assert reply.message is None
    # A double click is one share; half an hour later it's another.
    await app.router.dispatch(Action(ACME, ken, "share_linkedin", link.intent_code))
    [share] = await _shares(app)
    assert (share.member_id, share.network, share.post_id, share.link_id) == (
        world.ids["ken"],
        "linkedin",
        world.post_id,
        link.id,
    )
    clock.advance(minutes=31)
    await app.router.dispatch(Action(ACME, ken, "share_linkedin", link.intent_code))
    assert len(await _shares(app)) == 2


@pytest.mark.parametrize(
    ("who", "action", "code", "says"),
    [
        ("alice", "share_linkedin", "KEN", "belong to a colleague"),
        ("ken", "share_x", "KEN", "out of date"),  # a LinkedIn code on the X button
        ("ken", "share_linkedin", "AAAAAAAAAAAAAAAA", "out of date"),
        ("ken", "share_email", "../../etc/passwd", "out of date"),
        ("ken", "share_linkedin", "PUBLIC", "out of date"),  # the public /r/ code is not it
    ],
)
async def test_a_share_press_that_is_not_yours_or_not_valid_records_nothing(
    app: Flywheel, clock: FrozenClock, who: str, action: str, code: str, says: str
) -> None:
    world = await make_world(app, clock)
    await sweep(world)
    link = await _link(app, world.ids["ken"], "linkedin")
    value = {"KEN": link.intent_code, "PUBLIC": link.code}.get(code, code)
    reply = await app.router.dispatch(Action(ACME, Actor(who, who.title()), action, value))
    assert reply.message is not None and says in reply.message.text
    assert await _shares(app) == []


async def test_share_post_from_the_channel_gives_me_my_own_links(
    app: Flywheel, clock: FrozenClock
) -> None:
    world = await make_world(app, clock)
    reply = await app.router.dispatch(
        Action(ACME, Actor("ulla", "Ulla"), "share_post", str(world.post_id))
    )
    assert reply.message is not None
    [buttons] = [b for b in reply.message.blocks if isinstance(b, Buttons)]
    link = await _link(app, world.ids["ulla"], "linkedin")
    assert buttons.buttons[0].value == link.intent_code
    missing = await app.router.dispatch(Action(ACME, Actor("ulla", "Ulla"), "share_post", "999"))
    assert missing.message is not None and "no longer exists" in missing.message.text


# -- preferences ----------------------------------------------------------------------------


async def test_preferences_opt_in_with_interests_and_out(app: Flywheel, clock: FrozenClock) -> None:
    world = await make_world(app, clock)
    ulla = Actor("ulla", "Ulla")
    reply = await app.router.dispatch(Action(ACME, ulla, "share_prefs"))
    assert reply.form is not None and reply.form.form_id == "share_prefs_form"
    saved = await app.router.dispatch(
        Submission(
            ACME,
            ulla,
            "share_prefs_form",
            {"opt_in": "in", "interests": "Kubernetes, security ,, kubernetes", "team": ""},
        )
    )
    assert saved.message is not None and "kubernetes, security" in saved.message.text
    async with app.sessions() as session:
        member = await session.get(Member, world.ids["ulla"])
        assert member is not None
        assert (member.share_opt_in, member.interests) == (True, ["kubernetes", "security"])
    await app.router.dispatch(
        Submission(ACME, ulla, "share_prefs_form", {"opt_in": "out", "interests": "", "team": ""})
    )
    async with app.sessions() as session:
        member = await session.get(Member, world.ids["ulla"])
        assert member is not None and member.share_opt_in is False


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"opt_in": "in", "interests": "", "team": ""}, "interests"),
        ({"opt_in": "in", "interests": ",".join(f"t{i}" for i in range(11))}, "interests"),
        ({"opt_in": "in", "interests": "x" * 41}, "interests"),
        ({"opt_in": "maybe", "interests": "kubernetes"}, "opt_in"),
        ({"opt_in": "in", "interests": "k8s", "team": "t" * 101}, "team"),
    ],
)
async def test_bad_preferences_are_inline_errors_and_change_nothing(
    app: Flywheel, clock: FrozenClock, values: dict[str, str], field: str
) -> None:
    world = await make_world(app, clock)
    reply = await app.router.dispatch(
        Submission(ACME, Actor("ulla", "Ulla"), "share_prefs_form", values)
    )
    assert field in reply.errors
    async with app.sessions() as session:
        member = await session.get(Member, world.ids["ulla"])
        assert member is not None and member.share_opt_in is None and member.interests == []


# -- AI caption variants ----------------------------------------------------------------------


class ScriptedLLM:
    """A language model that answers from a script and records what it was asked."""

    def __init__(self, *answers: dict[str, Any] | Exception) -> None:
        self.answers = list(answers)
        self.prompts: list[Prompt] = []

    async def complete_json(self, prompt: Prompt) -> dict[str, Any]:
        self.prompts.append(prompt)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


async def _ai_world(
    app: Flywheel, clock: FrozenClock, llm: ScriptedLLM, source: str = "request"
) -> World:
    app.router.config = Config(public_base_url=PUBLIC, ai_enabled=True)
    world = await make_world(app, clock, settings={"banned_phrases": ["guaranteed"]}, source=source)
    # Without variants written first, nothing is planned.
    assert await sweep(world) == 0
    await distribution.write_variants(app.sessions, clock, app.router.config, AI(llm=llm))
    # A request's post also goes to whoever asked and voted; outside content does not.
    assert await sweep(world) == (5 if source == "request" else 3)
    return world


async def test_ai_caption_variants_speak_in_each_role_and_obey_the_rules(
    app: Flywheel, clock: FrozenClock
) -> None:
    llm = ScriptedLLM(
        {
            "roles": [
                {
                    "role": "account executive",
                    "captions": ["Customers ask me this weekly.", "Guaranteed zero downtime!"],
                },
                {"role": "solutions engineer", "captions": ["How I upgrade clusters", "PDBs 101"]},
                {"role": "chef", "captions": ["not asked", "not asked either"]},
            ]
        }
    )
    world = await _ai_world(app, clock, llm)
    [prompt] = llm.prompts
    assert "account executive" in prompt.user and "solutions engineer" in prompt.user
    got = await suggestions(world)
    assert got["ken"].caption == "Customers ask me this weekly."  # the banned one was dropped
    assert got["pia"].caption in {"How I upgrade clusters", "PDBs 101"}
    async with app.sessions() as session:
        row = (await session.exec(select(Distribution))).one()
    assert set(row.variants) == {"account executive", "solutions engineer"}


@pytest.mark.parametrize("source", ["link", "feed"])
async def test_ai_caption_variants_apply_to_a_shared_link_or_feed_item(
    app: Flywheel, clock: FrozenClock, source: str
) -> None:
    llm = ScriptedLLM(
        {
            "roles": [
                {"role": "account executive", "captions": ["Read this before a renewal.", "x"]},
                {"role": "solutions engineer", "captions": ["Worth a look", "PDBs 101"]},
            ]
        }
    )
    world = await _ai_world(app, clock, llm, source)
    [prompt] = llm.prompts
    assert "Zero-downtime Kubernetes upgrades" in prompt.user
    got = await suggestions(world)
    assert got["ken"].caption in {"Read this before a renewal.", "x"}
    assert got["pia"].caption in {"Worth a look", "PDBs 101"}
    async with app.sessions() as session:
        post = (await session.exec(select(Post))).one()
    assert (post.source, post.draft_id) == (source, None)


async def test_when_the_ai_fails_the_post_goes_out_with_the_approved_captions(
    app: Flywheel, clock: FrozenClock
) -> None:
    from handlers.core.ports import LLMError

    llm = ScriptedLLM(LLMError("unavailable", "503"))
    world = await _ai_world(app, clock, llm)
    got = await suggestions(world)
    assert "How we upgrade Kubernetes with zero downtime" in {s.caption for s in got.values()}


def test_composer_links_fit_their_limits() -> None:
    link = f"{PUBLIC}/r/AbCdEfGhIjKlMnOp"
    long = "word " * 700
    for url in (
        composer.linkedin_url(long, link),
        composer.x_url(long, link),
        composer.mailto_url("T" * 300, long, link),
    ):
        assert len(url) <= composer.MAX_URL
        assert link.replace(":", "%3A").replace("/", "%2F") in url
    x = parse_qs(urlsplit(composer.x_url("é" * 400, link)).query)
    assert len(x["text"][0]) <= 280 - 24 and x["url"] == [link]
    mail = parse_qs(urlsplit(composer.mailto_url("Hello & welcome", "Read this", link)).query)
    assert mail["subject"] == ["Hello & welcome"] and mail["body"] == [f"Read this\n\n{link}"]
    assert "+" not in composer.mailto_url("a b", "c d", link)
    assert composer.shorten("one two three", 9) == "one two…"


async def test_a_fan_out_planned_a_few_people_at_a_time_is_the_same_plan(
    app: Flywheel, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = await make_world(app, clock, settings={"share_window_hours": 8})

    async def plan_with_batches_of(size: int) -> dict[str, tuple[str, datetime, date]]:
        monkeypatch.setattr(distribution, "BATCH", size)
        assert await sweep(world) == 5
        got = {
            n: (s.reason, s.deliver_at, s.local_day) for n, s in (await suggestions(world)).items()
        }
        assert sorted(r.target["user"] for r in await share_rows(world)) == sorted(got)
        async with transaction(app.sessions) as session:
            for table in (ShareSuggestion, TrackedLink):
                for row in (await session.exec(select(table))).all():
                    await session.delete(row)
            for message in await share_rows(world):
                await session.delete(await session.get(OutboxMessage, message.id))
            planned = (await session.exec(select(Distribution))).one()
            planned.status = "pending"
            session.add(planned)
        return got

    # Batches of two cut the personal reasons and the spread others apart; one batch holds all.
    assert await plan_with_batches_of(2) == await plan_with_batches_of(1000)


async def test_a_post_for_everyone_reaches_everyone_who_opted_in_in_batches(
    app: Flywheel, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A feed can publish for everyone who opted in, whatever their interests.
    monkeypatch.setattr(distribution, "BATCH", 2)
    world = await make_world(app, clock, audience="everyone")
    assert await sweep(world) == 6
    got = await suggestions(world)
    assert {name: s.reason for name, s in got.items()} == {
        "alice": "requester",
        "victor": "voter",
        "pia": "author",
        "ken": "everyone",
        "tara": "everyone",
        "nina": "everyone",
    }
    assert not {"olga", "ulla", "bot"} & set(got)
