"""Sharing in Teams, end to end through `POST /api/messages`: the Slack sharing tests' twins.

The approved post is announced in the share channel; the people it fits get their own
share cards in their 1:1 chats, proactively; the share buttons open `/s/{code}` (Teams
does not report an `Action.OpenUrl` press, so the web route is what counts the share);
"Get my share links" pressed in the channel answers in the presser's own chat, never in
the channel; `find` and `win` work in the personal chat, and a bad win changes nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import pytest
from sqlmodel import select

from bot.app import Flywheel, build
from storage.db import transaction
from storage.models import (
    Click,
    Draft,
    Member,
    Post,
    Share,
    ShareSuggestion,
    TrackedLink,
    Win,
    Workspace,
)
from testing.fakes.bot_connector import ConnectorCall, FakeBotConnector
from testing.fakes.clock import FrozenClock
from tests.teams_http import (
    OTHER_TENANT,
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
    submit_data,
    teams,
    teams_settings,
)

__all__ = ["connector", "key_server", "teams"]

BROWSER = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Safari/605.1.15"
SHARE = "19:share@thread.tacv2"
REVIEW = "19:review@thread.tacv2"
PUBLIC = "https://flywheel.acme.test"
TEAM = {"id": "19:team@thread.tacv2", "name": "Acme"}
SHARE_LABELS = ["Share on LinkedIn", "Post on X", "Email it"]


def chat(teams: TeamsHttp, user: str) -> str:
    return personal(teams.member(user))


def share_cards(connector: FakeBotConnector, conversation: str) -> list[ConnectorCall]:
    return [
        c
        for c in connector.to(conversation)
        if str(c.body.get("summary", "")).startswith("Ready to share")
    ]


def posted_in(connector: FakeBotConnector, channel: str) -> list[ConnectorCall]:
    """What was posted in a channel or any of its threads (edits aside)."""
    return [
        c
        for c in connector.calls
        if c.op in ("send", "reply") and c.conversation.split(";")[0] == channel
    ]


def in_channel(
    teams: TeamsHttp,
    data: dict[str, Any],
    user: str,
    landed: str | None,
    *,
    channel: str = SHARE,
) -> Any:
    """A card button pressed on a message in a channel (the share channel unless named)."""
    return teams.submit(
        data,
        user,
        conversation=f"{channel};messageid={landed}",
        conversation_type="channel",
        team=TEAM,
        channel={"id": channel, "name": channel.split("@")[0].removeprefix("19:")},
    )


@pytest.fixture
async def teams_app(
    migrated_url: str, key_server: KeyServer, clock: FrozenClock
) -> AsyncIterator[Flywheel]:
    """The Teams app, with share links on a public address of its own."""
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


async def set_preferences(
    teams: TeamsHttp, app: Flywheel, user: str, values: dict[str, str]
) -> None:
    """`home` in the chat, "Sharing preferences" on it, the form filled and submitted."""
    await teams.post(teams.message("home", user))
    await app.dispatcher.drain()
    home = teams.last(chat(teams, user))
    await teams.post(teams.submit(button(home.card, "share_prefs"), user))
    form = teams.form_call(chat(teams, user))
    assert submit_data(form.card)["form"] == "share_prefs_form"
    done = await teams.post(teams.submit(fill(form.card, values), user, reply_to=form.landed))
    assert done.status == 200


async def approve_a_post(teams: TeamsHttp, app: Flywheel) -> Post:
    """Pia is the expert; Alice asks; Olga +1s; Ada approves in Teams (the drafting twin's
    steps); the share channel is a Teams channel the app is installed in."""
    await teams.post(teams.bot_added_to_team(channel=SHARE))
    await teams.post(teams.bot_added_to_team(channel=REVIEW))
    connector = teams.connector
    pia = chat(teams, "pia")
    await teams.post(teams.message("expert", "pia"))
    await teams.post(
        teams.submit(fill(teams.form_call(pia).card, {"other_topics": "kubernetes"}), "pia")
    )
    await teams.post(teams.message("request Zero-downtime Kubernetes upgrades"))
    await teams.post(teams.submit(fill(teams.form_call(chat(teams, "alice")).card)))
    await teams.post(teams.submit({"action": "request_vote", "value": "1"}, "olga"))
    async with transaction(app.sessions) as session:
        workspace = (await session.exec(select(Workspace))).one()
        workspace.settings = {
            **workspace.settings,
            "reviewers": ["aad-admin"],
            "review_channel": REVIEW,
            "share_channels": [SHARE],
        }
        session.add(workspace)
    await app.sweeper.run_once()
    await app.dispatcher.drain()
    await teams.post(teams.submit({"action": "request_claim", "value": "1"}, "pia"))
    await teams.post(teams.submit({"action": "draft_open", "value": "1"}, "pia"))
    values = {
        "title": "Zero-downtime Kubernetes upgrades",
        "body": "Surge upgrades, PodDisruptionBudgets and a rollback plan for every cluster.",
        "canonical_url": "https://blog.acme.test/k8s",
        "caption_1": "How we upgrade Kubernetes with zero downtime",
        "caption_2": "Surge upgrades and PDBs: our checklist",
        "tags": "kubernetes, platform",
    }
    await teams.post(teams.submit(fill(teams.form_call(pia).card, values), "pia"))
    async with app.sessions() as session:
        draft = (await session.exec(select(Draft))).one()
    await teams.post(teams.submit({"action": "draft_submit", "value": str(draft.id)}, "pia"))
    await app.dispatcher.drain()
    # Ada approves on the review channel's card; what she is told reaches her own chat.
    [review] = connector.to(REVIEW)
    approve = in_channel(
        teams, button(review.card, "review_approve"), "admin", review.landed, channel=REVIEW
    )
    assert (await teams.post(approve)).status == 200
    await app.dispatcher.drain()
    assert posted_in(connector, REVIEW) == [review]
    assert "Approved" in connector.to(REVIEW, "update")[-1].text
    # Ada's chat began with her welcome, when she installed the app in the team.
    told_ada = [c.text for c in connector.to(chat(teams, "admin"))]
    assert told_ada[0].startswith("Welcome to Flywheel")
    assert told_ada[1:] == ["Approved: “Zero-downtime Kubernetes upgrades” is live."]
    async with app.sessions() as session:
        return (await session.exec(select(Post))).one()


async def member_id(app: Flywheel, user: str) -> int:
    async with app.sessions() as session:
        found = (await session.exec(select(Member.id).where(Member.user_id == user))).one()
    assert found is not None
    return found


async def test_an_approved_post_reaches_the_right_teams_people_with_working_share_buttons(
    teams: TeamsHttp, teams_app: Flywheel, connector: FakeBotConnector
) -> None:
    # Ken opts in with his interests from the preferences form; Olga opts out.
    await set_preferences(teams, teams_app, "ken", {"opt_in": "in", "interests": "Kubernetes"})
    await set_preferences(teams, teams_app, "olga", {"opt_in": "out"})
    async with teams_app.sessions() as session:
        ken = (await session.exec(select(Member).where(Member.user_id == "aad-ken"))).one()
    assert (ken.share_opt_in, ken.interests) == (True, ["kubernetes"])

    post = await approve_a_post(teams, teams_app)
    await teams_app.sweeper.run_once()
    await teams_app.dispatcher.drain()

    [announce] = posted_in(connector, SHARE)
    assert "New post ready to share" in announce.text
    assert [a["data"]["action"] for a in actions(announce.card)] == ["share_post", "win_log"]
    assert button(announce.card, "share_post")["value"] == str(post.id)
    assert open_urls(announce.card) == []

    # The requester, the author and the opted-in Kubernetes fan; not Olga, who opted out
    # after her +1.
    reached = {
        u for u in ("alice", "pia", "ken", "olga", "bob") if share_cards(connector, chat(teams, u))
    }
    assert reached == {"alice", "pia", "ken"}
    [ken_card] = share_cards(connector, chat(teams, "ken"))
    async with teams_app.sessions() as session:
        planned = (
            await session.exec(select(ShareSuggestion).where(ShareSuggestion.member_id == ken.id))
        ).one()
    assert planned.reason == "interest"
    assert planned.caption in ken_card.text
    urls = open_urls(ken_card.card)
    assert [u["title"] for u in urls] == SHARE_LABELS
    assert [a["data"]["action"] for a in actions(ken_card.card)] == ["win_log"]
    async with teams_app.sessions() as session:
        ken_links = {
            link.network: link
            for link in (
                await session.exec(select(TrackedLink).where(TrackedLink.member_id == ken.id))
            ).all()
        }
    assert [u["url"] for u in urls] == [
        f"{PUBLIC}/s/{ken_links[n].intent_code}" for n in ("linkedin", "x", "email")
    ]

    # Teams opens the button's address in the browser: one share, Ken's, on LinkedIn, and
    # the browser lands in LinkedIn's composer with Ken's tracked link.
    path = urls[0]["url"].removeprefix(PUBLIC)
    opened = await teams.client.get(path, allow_redirects=False, headers={"User-Agent": BROWSER})
    assert opened.status == 302
    composer = opened.headers["Location"]
    assert composer.startswith("https://www.linkedin.com/feed/?shareActive=true&text=")
    async with teams_app.sessions() as session:
        [share] = (await session.exec(select(Share))).all()
    assert (share.member_id, share.network, share.post_id) == (ken.id, "linkedin", post.id)
    code = ken_links["linkedin"].code
    assert quote(f"{PUBLIC}/r/{code}", safe="") in composer
    assert quote(planned.caption, safe="") in composer

    # A reader clicks Ken's link: redirected with UTM, counted for Ken on LinkedIn.
    clicked = await teams.client.get(
        f"/r/{code}", allow_redirects=False, headers={"User-Agent": BROWSER}
    )
    assert clicked.status == 302
    assert clicked.headers["Location"].startswith("https://blog.acme.test/k8s?utm_source=linkedin")
    await teams_app.links.clicks.flush()
    async with teams_app.sessions() as session:
        [click] = (await session.exec(select(Click))).all()
    assert (click.member_id, click.network, click.is_preview) == (ken.id, "linkedin", False)


async def test_get_my_share_links_in_the_channel_answers_in_my_own_chat(
    teams: TeamsHttp, teams_app: Flywheel, connector: FakeBotConnector
) -> None:
    post = await approve_a_post(teams, teams_app)
    await teams_app.sweeper.run_once()
    await teams_app.dispatcher.drain()
    [announce] = posted_in(connector, SHARE)
    bob = chat(teams, "bob")
    assert share_cards(connector, bob) == []

    # Bob presses "Get my share links" on the channel's card: his links reach his own chat
    # (started through the team: he never wrote to the bot); the channel hears nothing.
    press = in_channel(teams, button(announce.card, "share_post"), "bob", announce.landed)
    assert (await teams.post(press)).status == 200
    await teams_app.dispatcher.drain()
    assert posted_in(connector, SHARE) == [announce]
    assert bob in [c.conversation for c in connector.of("create")]
    [mine] = share_cards(connector, bob)
    bob_id = await member_id(teams_app, "aad-bob")
    async with teams_app.sessions() as session:
        links = (
            await session.exec(select(TrackedLink).where(TrackedLink.member_id == bob_id))
        ).all()
    codes = {link.intent_code for link in links}
    assert len(codes) == 3
    assert {u["url"].rsplit("/s/", 1)[1] for u in open_urls(mine.card)} == codes
    assert "Your personal links for this post" in mine.text

    # "Log a win" on the channel's card: the form goes to Bob's chat, with the post chosen.
    win = in_channel(teams, button(announce.card, "win_log"), "bob", announce.landed)
    assert (await teams.post(win)).status == 200
    form = teams.form_call(bob).card
    assert submit_data(form)["form"] == "win_form"
    chosen = next(i for i in inputs(form) if i["id"].endswith(":post"))
    assert chosen["value"] == str(post.id)
    assert posted_in(connector, SHARE) == [announce]

    # Mallory of another tenant presses it with the same post id: nothing of Acme's reaches
    # her, and no links are made for her.
    stranger = teams.submit(
        {"action": "share_post", "value": str(post.id)}, "mallory", tenant=OTHER_TENANT
    )
    assert (await teams.post(stranger)).status == 200
    await teams_app.dispatcher.drain()
    told = connector.to(chat(teams, "mallory"))
    assert told and "no longer exists" in told[-1].text
    assert "Kubernetes" not in str([c.body for c in told])
    async with teams_app.sessions() as session:
        mallory = (await session.exec(select(Member).where(Member.user_id == "aad-mallory"))).one()
        assert (
            await session.exec(select(TrackedLink).where(TrackedLink.member_id == mallory.id))
        ).all() == []


async def test_find_in_the_personal_chat_answers_with_share_buttons_or_a_request_button(
    teams: TeamsHttp, teams_app: Flywheel, connector: FakeBotConnector
) -> None:
    await approve_a_post(teams, teams_app)
    ken = chat(teams, "ken")
    await teams.post(teams.message("find kubernetes upgrade downtime", "ken"))
    await teams_app.dispatcher.drain()
    [found] = [c for c in connector.to(ken) if "Welcome to Flywheel" not in c.text]
    assert "Zero-downtime Kubernetes upgrades" in found.text
    assert [u["title"] for u in open_urls(found.card)] == SHARE_LABELS
    assert all(u["url"].startswith(f"{PUBLIC}/s/") for u in open_urls(found.card))
    assert [a["data"]["action"] for a in actions(found.card)] == ["win_log"]

    await teams.post(teams.message("find tax law in bolivia", "ken"))
    await teams_app.dispatcher.drain()
    nothing = teams.last(ken)
    assert nothing.text.startswith("No approved posts match")
    assert button(nothing.card, "request_open")["value"] == "tax law in bolivia"
    assert open_urls(nothing.card) == []

    await teams.post(teams.message("find", "ken"))
    await teams_app.dispatcher.drain()
    assert "Tell me what to look for" in teams.last(ken).text

    # The request button opens the request form, prefilled with the search.
    await teams.post(teams.submit(button(nothing.card, "request_open"), "ken"))
    form = teams.form_call(ken).card
    topic = next(i for i in inputs(form) if i["id"] == "text:topic")
    assert topic["value"] == "tax law in bolivia"


async def test_logging_a_win_in_teams_checks_every_field_and_thanks_the_author(
    teams: TeamsHttp, teams_app: Flywheel, connector: FakeBotConnector
) -> None:
    post = await approve_a_post(teams, teams_app)
    await teams_app.sweeper.run_once()
    await teams_app.dispatcher.drain()
    alice = chat(teams, "alice")
    [card] = share_cards(connector, alice)

    # "Log a win" on Alice's share card: the form, with this post chosen.
    await teams.post(teams.submit(button(card.card, "win_log")))
    shown = teams.form_call(alice)
    assert submit_data(shown.card)["form"] == "win_form"
    assert next(i for i in inputs(shown.card) if i["id"].endswith(":post"))["value"] == str(post.id)

    async def submit(values: dict[str, str], card: dict[str, Any]) -> ConnectorCall:
        sent = await teams.post(teams.submit(fill(card, values), reply_to=shown.landed))
        assert sent.status == 200
        again: ConnectorCall = teams.last(alice, "update")
        assert again.activity_id == shown.landed
        return again

    bad = await submit({"description": "", "value": "-5"}, shown.card)
    assert "Tell us what happened" in bad.text
    assert "can't be negative" in bad.text
    assert submit_data(bad.card)["form"] == "win_form"
    words = await submit(
        {"description": "Globex signed after reading the upgrade post.", "value": "lots"},
        bad.card,
    )
    assert "isn't a number" in words.text
    # What Alice typed stays on the re-shown card.
    story = next(i for i in inputs(words.card) if i["id"].endswith(":description"))
    assert story["value"] == "Globex signed after reading the upgrade post."

    # A post id that is not one of hers (another tenant's, or none at all) is refused on the
    # card itself.
    foreign = await submit({"post": "999", "description": "Call booked."}, shown.card)
    assert "not one of the choices" in foreign.text
    assert submit_data(foreign.card)["form"] == "win_form"
    async with teams_app.sessions() as session:
        assert (await session.exec(select(Win))).all() == []

    good = {
        "kind": "deal",
        "description": "Globex signed after reading the upgrade post.",
        "account": "Globex",
        "value": "25,000",
    }
    await submit(good, shown.card)
    await teams_app.dispatcher.drain()
    async with teams_app.sessions() as session:
        [win] = (await session.exec(select(Win))).all()
    assert (win.kind, win.account, win.value, win.post_id) == ("deal", "Globex", 25000, post.id)
    assert win.member_id == await member_id(teams_app, "aad-alice")
    assert any("Win logged: deal won with Globex" in c.text for c in connector.to(alice))
    thanks = [c for c in connector.to(chat(teams, "pia")) if "Your post helped" in c.text]
    assert len(thanks) == 1 and "Globex" in thanks[0].text


async def test_win_in_the_personal_chat_and_a_win_for_another_tenant_s_post(
    teams: TeamsHttp, teams_app: Flywheel, connector: FakeBotConnector
) -> None:
    post = await approve_a_post(teams, teams_app)
    mallory = chat(teams, "mallory")
    # Mallory's tenant presses "Log a win" with Acme's post id: the form opens without it
    # (her workspace has no such post), and her win is hers alone.
    await teams.post(
        teams.submit({"action": "win_log", "value": str(post.id)}, "mallory", tenant=OTHER_TENANT)
    )
    form = teams.form_call(mallory)
    assert submit_data(form.card)["form"] == "win_form"
    assert not [i for i in inputs(form.card) if i["id"].endswith(":post")]
    assert "Kubernetes" not in str(form.card)
    tampered = fill(form.card, {"description": "Call booked."})
    tampered["one:post"] = str(post.id)
    sent = await teams.post(
        teams.submit(tampered, "mallory", tenant=OTHER_TENANT, reply_to=form.landed)
    )
    assert sent.status == 200
    refused = teams.last(mallory, "update")
    assert refused.activity_id == form.landed
    assert "'one:post' is not a field of 'win_form'" in refused.text
    assert submit_data(refused.card)["form"] == "win_form"
    async with teams_app.sessions() as session:
        assert (await session.exec(select(Win))).all() == []

    # `win` typed in Bob's personal chat: the form; Bob was sent nothing, so no post field.
    bob = chat(teams, "bob")
    await teams.post(teams.message("win", "bob"))
    shown = teams.form_call(bob)
    assert submit_data(shown.card)["form"] == "win_form"
    assert not [i for i in inputs(shown.card) if i["id"].endswith(":post")]
    values = {"kind": "meeting", "description": "Initech booked a call.", "account": "Initech"}
    await teams.post(teams.submit(fill(shown.card, values), "bob", reply_to=shown.landed))
    await teams_app.dispatcher.drain()
    async with teams_app.sessions() as session:
        [win] = (await session.exec(select(Win))).all()
        workspace = (
            await session.exec(select(Workspace).where(Workspace.external_id == TENANT))
        ).one()
    assert (win.kind, win.post_id, win.workspace_id) == ("meeting", None, workspace.id)
    assert "sent" in teams.last(bob, "update").text
    # No post, so no author to thank.
    assert not [c for c in connector.calls if "Your post helped" in c.text]
