"""Weekly digests, personal notes and `stats` in Teams, end to end: the Slack digest's twins.

A week of real activity goes through `POST /api/messages` and the web routes (a request, a
draft approved in the review channel, share links opened at `/s/{code}`, clicks on
`/r/{code}`); on digest day the worker's sweep posts one card in each digest channel, with
the chart served at `/c/{code}.png`, and sends each person's note to their 1:1 chat. A
channel the bot was removed from is refused by the Connector: the admins hear once, and
the other channels are not affected.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlmodel import col, select

from bot.app import Flywheel, build
from handlers.core.router import PRIVATELY
from storage.models import ContentRequest, Digest, Member, OutboxMessage, TrackedLink
from testing.fakes.bot_connector import ConnectorCall, FakeBotConnector
from testing.fakes.clock import FrozenClock
from tests.teams_http import (
    TENANT,
    KeyServer,
    TeamsHttp,
    actions,
    button,
    connector,
    credentials_factory,
    fill,
    inputs,
    key_server,
    open_urls,
    personal,
    teams,
    teams_settings,
)
from tests.test_teams_sharing import approve_a_post, in_channel, posted_in, share_cards

__all__ = ["connector", "key_server", "teams"]

PUBLIC = "https://flywheel.acme.test"
BROWSER = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Safari/605.1.15"
READERS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
)
SHARE = "19:share@thread.tacv2"
DIGEST = "19:digest@thread.tacv2"
GONE = "19:gone@thread.tacv2"
DELETED = "19:deleted@thread.tacv2"
SEND = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)  # Monday 09:00 in Paris
# A channel name with what must not break a reference or the JSON around it: shown as named.
TRICKY = 'Wins "EMEA" | 2026'


@pytest.fixture
async def teams_app(
    migrated_url: str, key_server: KeyServer, clock: FrozenClock
) -> AsyncIterator[Flywheel]:
    """The Teams app, with links and charts on a public address of its own."""
    app = build(
        teams_settings(migrated_url, key_server, public_base_url=PUBLIC),
        clock=clock,
        teams_credentials=credentials_factory(),
    )
    yield app
    await app.close()


@pytest.fixture(autouse=True)
def colleagues(connector: FakeBotConnector) -> None:
    """Ken and Olga work at Acme too."""
    connector.add_member("ken", "Ken", "ken@acme.test", TENANT)
    connector.add_member("olga", "Olga", "olga@acme.test", TENANT)


def chat(teams: TeamsHttp, user: str) -> str:
    return personal(teams.member(user))


async def a_week(teams: TeamsHttp, app: Flywheel) -> int:
    """Tuesday to Thursday of the week the digest reports on, all through Teams and the web
    routes; the id of the request still waiting for an expert."""
    await approve_a_post(teams, app)
    await app.sweeper.run_once()
    await app.dispatcher.drain()
    # Bob takes his links from the share channel's card and posts on LinkedIn; two readers
    # click his link.
    [announce] = posted_in(teams.connector, SHARE)
    press = in_channel(teams, button(announce.card, "share_post"), "bob", announce.landed)
    assert (await teams.post(press)).status == 200
    await app.dispatcher.drain()
    [card] = share_cards(teams.connector, chat(teams, "bob"))
    opened = await teams.client.get(
        open_urls(card.card)[0]["url"].removeprefix(PUBLIC),
        allow_redirects=False,
        headers={"User-Agent": BROWSER},
    )
    assert opened.status == 302
    async with app.sessions() as session:
        bob = (await session.exec(select(Member).where(Member.user_id == "aad-bob"))).one()
        link = (
            await session.exec(
                select(TrackedLink).where(
                    TrackedLink.member_id == bob.id, TrackedLink.network == "linkedin"
                )
            )
        ).one()
    for reader in READERS:
        teams.clock.advance(minutes=7)
        clicked = await teams.client.get(
            f"/r/{link.code}", allow_redirects=False, headers={"User-Agent": reader}
        )
        assert clicked.status == 302
    await app.links.clicks.flush()
    # Ken asks for something no expert here knows.
    teams.clock.advance(days=1)
    await teams.post(teams.message("request Post-quantum TLS for our public APIs", "ken"))
    form = teams.form_call(chat(teams, "ken"))
    await teams.post(teams.submit(fill(form.card), "ken", reply_to=form.landed))
    await app.sweeper.run_once()
    await app.dispatcher.drain()
    async with app.sessions() as session:
        waiting = (
            await session.exec(
                select(ContentRequest).where(col(ContentRequest.topic).contains("quantum"))
            )
        ).one()
    assert waiting.id is not None
    return waiting.id


async def choose_digest_channels(teams: TeamsHttp, app: Flywheel, channels: list[str]) -> None:
    """Ada picks the digest channels in `admin`, among the channels the app is in."""
    ada = chat(teams, "admin")
    await teams.post(teams.message("admin", "admin"))
    form = teams.form_call(ada)
    [picker] = [i for i in inputs(form.card) if i["id"] == "many:digest_channels"]
    assert {c["value"] for c in picker["choices"]} >= set(channels)
    values = {"digest_channels": channels, "timezone": "Europe/Paris"}
    done = await teams.post(teams.submit(fill(form.card, values), "admin", reply_to=form.landed))
    assert done.status == 200
    assert "sent" in teams.last(ada, "update").text


def digest_cards(connector: FakeBotConnector, channel: str) -> list[ConnectorCall]:
    """The digests that landed in a channel."""
    return [
        c
        for c in posted_in(connector, channel)
        if c.landed and "Flywheel weekly" in str(c.body.get("summary"))
    ]


def element(card: Any, kind: str) -> list[dict[str, Any]]:
    """Every element of a card of one type."""
    if isinstance(card, dict):
        found = [card] if card.get("type") == kind else []
        for value in card.values():
            found += element(value, kind)
        return found
    if isinstance(card, list):
        return [e for item in card for e in element(item, kind)]
    return []


async def digest_day(app: Flywheel, clock: FrozenClock, when: datetime = SEND) -> None:
    """Monday 09:00 in Paris: the worker's sweep, the sends, and the sweep that follows up."""
    clock.set(when)
    await app.sweeper.run_once()
    await app.dispatcher.drain()
    clock.advance(minutes=5)
    await app.dispatcher.drain()
    await app.sweeper.run_once()
    await app.dispatcher.drain()


async def test_the_digest_lands_once_in_each_teams_channel_and_admins_hear_of_lost_ones(
    teams: TeamsHttp, teams_app: Flywheel, connector: FakeBotConnector, clock: FrozenClock
) -> None:
    for channel, name in ((DIGEST, "Wins"), (GONE, "Old news"), (DELETED, "Archive")):
        await teams.post(teams.bot_added_to_team(channel=channel, name=name))
    waiting = await a_week(teams, teams_app)
    await choose_digest_channels(teams, teams_app, [DIGEST, GONE, DELETED])

    # By Monday the app was removed from one channel's team and another channel was
    # deleted; the digest channel's first two posts fail (a 502, then throttled).
    connector.refuse(GONE, 403)
    connector.refuse(DELETED, 404)
    connector.fail_in(DIGEST, 502)
    connector.fail_in(DIGEST, 429, retry_after=0)
    await digest_day(teams_app, clock)

    tries = posted_in(connector, DIGEST)
    assert len(tries) == 3 and [c.landed is not None for c in tries] == [False, False, True]
    [digest] = digest_cards(connector, DIGEST)
    assert digest.body["summary"].startswith(
        "Flywheel weekly, 23 – 29 Nov 2026: 2 requests, 1 post published, 1 share, 2 clicks"
    )
    card = digest.card
    assert card["body"][0]["text"] == "Flywheel weekly · 23 – 29 Nov 2026"
    text = digest.text
    for figure in (
        "**Requests**\n\n2",
        "**Published posts**\n\n1",
        "**Shares**\n\n1",
        "**Clicks**\n\n2",
        "**Wins**\n\n0",
        "**Active participants**\n\n5",
    ):
        assert figure in text
    assert "1. <at>Bob</at> — 2 clicks, 1 share" in text
    mentioned = {e["mentioned"]["id"] for e in card["msteams"]["entities"]}
    assert {"aad-bob", "aad-pia", "aad-ken"} <= mentioned
    [image] = element(card, "Image")
    assert image["url"].startswith(f"{PUBLIC}/c/") and image["url"].endswith(".png")
    assert "shares 0, 0, 0, 0, 0, 0, 0, 1; clicks 0, 0, 0, 0, 0, 0, 0, 2" in image["altText"]
    [claim] = [a for a in actions(card) if a["data"]["action"] == "digest_claim"]
    assert claim["data"]["value"] == str(waiting)
    assert "**Post-quantum TLS for our public APIs**" in text
    [see_all] = [t for t in text.splitlines() if "See the whole digest" in t]
    assert see_all.startswith(f"[See the whole digest]({PUBLIC}/d/")

    # The chart and the page, through the same app.
    png = await teams.client.get(image["url"].removeprefix(PUBLIC))
    assert png.status == 200 and png.content_type == "image/png"
    assert (await png.read()).startswith(b"\x89PNG\r\n\x1a\n")
    assert see_all.endswith(f" · [The program over time]({PUBLIC}/program)")
    page_url = see_all.split("](", 1)[1].split(")", 1)[0]
    page = await teams.client.get(page_url.removeprefix(PUBLIC))
    assert page.status == 200
    assert "Zero-downtime Kubernetes upgrades" in await page.text()

    # The lost channels were each tried once; Ada hears of each once, by the channel's name.
    assert len(posted_in(connector, GONE)) == len(posted_in(connector, DELETED)) == 1
    async with teams_app.sessions() as session:
        rows = {d.channel: d.status for d in (await session.exec(select(Digest))).all()}
    assert rows == {DIGEST: "sent", GONE: "failed", DELETED: "failed", "@notes": "sent"}
    told = sorted(
        c.text.splitlines()[0]
        for c in connector.to(chat(teams, "admin"))
        if c.text.startswith("I couldn't post the weekly digest")
    )
    assert told == [
        "I couldn't post the weekly digest (2026-W48) in #Acme › Archive: that conversation "
        "no longer exists (a deleted channel or chat). The other digest channels got theirs; "
        "choose the channels with `admin`.",
        "I couldn't post the weekly digest (2026-W48) in #Acme › Old news: Flywheel is no "
        "longer in that conversation: add the app to the team (or chat) again. The other "
        "digest channels got theirs; choose the channels with `admin`.",
    ]

    # Sweeps later that day and the rest of the week send nothing more.
    sent = len(connector.calls)
    for _ in range(3):
        clock.advance(hours=20)
        await teams_app.sweeper.run_once()
        await teams_app.dispatcher.drain()
    assert len(connector.calls) == sent
    assert len(digest_cards(connector, DIGEST)) == 1


async def test_the_claim_button_on_the_channel_s_digest_answers_in_the_presser_s_chat(
    teams: TeamsHttp, teams_app: Flywheel, connector: FakeBotConnector, clock: FrozenClock
) -> None:
    await teams.post(teams.bot_added_to_team(channel=DIGEST, name="Wins"))
    waiting = await a_week(teams, teams_app)
    await choose_digest_channels(teams, teams_app, [DIGEST])
    await digest_day(teams_app, clock)
    [digest] = digest_cards(connector, DIGEST)
    claim = button(digest.card, "digest_claim")

    async def press(user: str) -> str:
        pressed = in_channel(teams, claim, user, digest.landed, channel=DIGEST)
        assert (await teams.post(pressed)).status == 200
        await teams_app.dispatcher.drain()
        return str(teams.last(chat(teams, user)).text)

    assert "Requests are taken by experts" in await press("olga")
    assert "You asked for this one" in await press("ken")
    assert "It's yours: “Post-quantum TLS for our public APIs”" in await press("pia")
    assert await press("pia") == "This request is already claimed by you."
    clock.advance(seconds=5)
    await teams_app.dispatcher.drain()

    # The channel heard nothing of it; Ken heard who took his request.
    assert posted_in(connector, DIGEST) == [digest]
    async with teams_app.sessions() as session:
        request = await session.get(ContentRequest, waiting)
        pia = (await session.exec(select(Member).where(Member.user_id == "aad-pia"))).one()
    assert request is not None and (request.status, request.assignee_id) == ("claimed", pia.id)
    assert connector.to(chat(teams, "ken"))[-1].text.startswith(
        "Good news: <at>Pia</at> is drafting **Post-quantum TLS for our public APIs**."
    )
    # The message the claim sent Pia became her drafting card, in place.
    [taking] = [c for c in connector.to(chat(teams, "pia")) if "from the weekly digest" in c.text]
    [edit] = [c for c in connector.to(chat(teams, "pia"), "update") if "Post-quantum" in c.text]
    assert edit.activity_id == taking.landed and "You claimed this" in edit.text
    assert [a["data"]["action"] for a in actions(edit.card)] == ["draft_open", "draft_ai"]


def notes_in(connector: FakeBotConnector, conversation: str) -> list[ConnectorCall]:
    """The personal notes that landed in a chat."""
    return [
        c
        for c in connector.to(conversation)
        if c.landed and str(c.body.get("summary")).startswith("Your week in Flywheel")
    ]


async def test_personal_notes_reach_each_person_s_chat_once_and_the_toggle_works_from_teams(
    teams: TeamsHttp, teams_app: Flywheel, connector: FakeBotConnector, clock: FrozenClock
) -> None:
    await teams.post(teams.bot_added_to_team(channel=DIGEST, name="Wins"))
    await a_week(teams, teams_app)
    await choose_digest_channels(teams, teams_app, [DIGEST])
    # The Connector stumbles on the day's first proactive sends: they are tried again.
    connector.fail("reply", 502)
    connector.fail("reply", 503)
    connector.fail("reply", 429, retry_after=0)
    await digest_day(teams_app, clock)
    assert len([c for c in connector.of("reply") if c.landed is None]) == 3

    people = ("alice", "pia", "bob", "ken", "olga", "admin")
    notes = {user: notes_in(connector, chat(teams, user)) for user in people}
    assert {user: len(found) for user, found in notes.items()} == {
        "alice": 1,
        "pia": 1,
        "bob": 1,
        "ken": 1,
        "olga": 0,  # a +1 only: nothing of hers travelled
        "admin": 0,
    }
    assert len(digest_cards(connector, DIGEST)) == 1
    texts = {user: found[0].text for user, found in notes.items() if found}
    assert texts["pia"].splitlines()[1] == (
        "**Your posts** were shared 1 time and brought 2 clicks. Shared by <at>Bob</at>."
    )
    assert (
        "• **Zero-downtime Kubernetes upgrades** was published: 1 share, 2 clicks this week"
        in texts["alice"]
    )
    assert "**Your shares:** 1 share this week; your links brought 2 clicks." in texts["bob"]
    assert "• **Post-quantum TLS for our public APIs** — no expert found yet" in texts["ken"]
    # Bob never wrote to the bot: his chat was started through the team, where his note is.
    bob = chat(teams, "bob")
    assert bob in [c.conversation for c in connector.of("create")]
    assert notes["bob"][0].conversation == bob
    async with teams_app.sessions() as session:
        rows = (
            await session.exec(
                select(OutboxMessage).where(col(OutboxMessage.dedupe_key).contains(":note:"))
            )
        ).all()
    assert sorted(r.status for r in rows) == ["sent"] * 4

    # Bob turns his notes off from his note's button.
    toggle = button(notes["bob"][0].card, "notes_toggle")
    assert toggle["value"] == "off"
    assert (await teams.post(teams.submit(toggle, "bob"))).status == 200
    await teams_app.dispatcher.drain()
    answer = teams.last(bob)
    assert answer.text.startswith("Weekly notes are **off**.")
    assert button(answer.card, "notes_toggle")["value"] == "on"

    # The week after, a reader clicks Bob's link again: Pia hears of it, Bob does not.
    clock.set(datetime(2026, 12, 2, 10, 0, tzinfo=UTC))
    async with teams_app.sessions() as session:
        bob_id = (await session.exec(select(Member.id).where(Member.user_id == "aad-bob"))).one()
        link = (
            await session.exec(
                select(TrackedLink).where(
                    TrackedLink.member_id == bob_id, TrackedLink.network == "linkedin"
                )
            )
        ).one()
    clicked = await teams.client.get(
        f"/r/{link.code}", allow_redirects=False, headers={"User-Agent": BROWSER}
    )
    assert clicked.status == 302
    await teams_app.links.clicks.flush()
    await digest_day(teams_app, clock, datetime(2026, 12, 7, 8, 0, tzinfo=UTC))
    assert len(notes_in(connector, bob)) == 1
    [_, later] = notes_in(connector, chat(teams, "pia"))
    assert "brought 1 click" in later.text and "week of 30 November" in later.text

    # And on again, from the answer's button.
    await teams.post(teams.submit(button(answer.card, "notes_toggle"), "bob"))
    await teams_app.dispatcher.drain()
    assert teams.last(bob).text.startswith("Weekly notes are **on**")
    async with teams_app.sessions() as session:
        member = await session.get(Member, bob_id)
    assert member is not None and member.personal_notes is True


async def test_stats_and_digest_preview_in_teams_and_private_answers_asked_in_a_channel(
    teams: TeamsHttp, teams_app: Flywheel, connector: FakeBotConnector
) -> None:
    await teams.post(teams.bot_added_to_team(channel=DIGEST, name=TRICKY))
    await choose_digest_channels(teams, teams_app, [DIGEST])
    alice = chat(teams, "alice")

    await teams.post(teams.message("stats"))
    await teams_app.dispatcher.drain()
    # Her first message: the answer comes with her welcome, in either order.
    [stats] = [c for c in connector.to(alice) if "Welcome to Flywheel" not in c.text]
    assert stats.text.startswith("This week so far")
    assert "**Requests**\n\n0" in stats.text and "**Clicks on your links**\n\n0" in stats.text
    assert [a["data"]["action"] for a in actions(stats.card)] == ["share_prefs", "notes_toggle"]
    assert (await teams.post(teams.submit(button(stats.card, "notes_toggle")))).status == 200
    await teams_app.dispatcher.drain()
    assert teams.last(alice).text.startswith("Weekly notes are **off**.")
    await teams.post(teams.message("stats"))
    await teams_app.dispatcher.drain()
    assert "Weekly notes are off." in teams.last(alice).text
    assert button(teams.last(alice).card, "notes_toggle")["value"] == "on"

    await teams.post(teams.message("digest preview"))
    await teams_app.dispatcher.drain()
    preview = teams.last(alice)
    assert preview.text.startswith(
        "Preview, only for you. It goes out Monday 30 November at 09:00 (Europe/Paris) in "
        '#Acme › Wins "EMEA" | 2026; the figures will move until then.\n'
        "Flywheel weekly · 23 – 29 Nov 2026"
    )
    assert element(preview.card, "Image") == []  # the chart is drawn when the digest is sent
    await teams.post(teams.message("digest tomorrow"))
    await teams_app.dispatcher.drain()
    assert teams.last(alice).text.startswith("Try `digest preview`")

    # Asked in a channel: the thread hears that the answer went to a direct message, and
    # the answer is in the asker's own chat.
    bob = chat(teams, "bob")
    for asked, answer in (
        ("stats", "This week so far"),
        ("find kubernetes upgrades", "No approved posts match"),
        ("digest preview", "Preview, only for you."),
    ):
        activity = teams.channel_message(asked, "bob", channel=DIGEST, name=TRICKY)
        thread = activity["conversation"]["id"]
        before = len(posted_in(connector, DIGEST))
        assert (await teams.post(activity)).status == 200
        await teams_app.dispatcher.drain()
        [note] = posted_in(connector, DIGEST)[before:]
        assert (note.conversation, note.text) == (thread, PRIVATELY)
        assert teams.last(bob).text.startswith(answer)
    assert not [c for c in posted_in(connector, DIGEST) if "This week so far" in c.text]
