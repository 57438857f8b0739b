"""Routing in Teams, end to end: the twin of the Slack routing test.

Pings are cards in the experts' 1:1 chats, sent proactively by the outbox (a chat is
started through the team when the expert never wrote to the bot); the first claim edits
the other experts' cards in place, on the activity ids the Connector returned.
"""

from __future__ import annotations

from sqlmodel import select

from bot.app import Flywheel
from storage.models import ContentRequest, MessageRef, Ping
from testing.fakes.bot_connector import FakeBotConnector
from tests.teams_http import (
    TeamsHttp,
    button,
    connector,
    fill,
    key_server,
    personal,
    teams,
    teams_app,
)

__all__ = ["connector", "key_server", "teams", "teams_app"]


async def become_expert(teams: TeamsHttp, user: str, topics: str) -> None:
    await teams.post(teams.message("expert", user))
    form = teams.form_call(personal(teams.member(user))).card
    posted = await teams.post(
        teams.submit(fill(form, {"other_topics": topics, "capacity": "2"}), user)
    )
    assert posted.status == 200


async def test_pings_reach_experts_proactively_and_a_claim_edits_the_other_card(
    teams: TeamsHttp, teams_app: Flywheel, connector: FakeBotConnector
) -> None:
    # The app is installed in the team; Bob never wrote to the bot, Pia did.
    assert (await teams.post(teams.bot_added_to_team())).status == 200
    await become_expert(teams, "pia", "postgresql, oracle, database migration")
    await teams.post(teams.message("expert", "bob"))
    bob_form = teams.form_call(personal(teams.member("bob"))).card
    await teams.post(
        teams.submit(fill(bob_form, {"other_topics": "postgresql, replication"}), "bob")
    )
    await teams.post(
        teams.message("request How do we migrate Oracle to PostgreSQL without downtime?")
    )
    form = teams.form_call(personal(teams.member("alice"))).card
    await teams.post(teams.submit(fill(form, {"tags": "postgresql"})))
    await teams_app.sweeper.run_once()
    await teams_app.dispatcher.drain()

    pia_chat, bob_chat = personal(teams.member("pia")), personal(teams.member("bob"))
    [to_pia] = [c for c in connector.to(pia_chat) if "Can you help" in str(c.body)]
    [to_bob] = [c for c in connector.to(bob_chat) if "Can you help" in str(c.body)]
    assert [
        button(to_pia.card, a)["action"]
        for a in ("request_claim", "request_suggest", "request_decline")
    ]
    assert "Why you" in to_pia.text
    async with teams_app.sessions() as session:
        request_id = (await session.exec(select(ContentRequest.id))).one()

    claim = button(to_pia.card, "request_claim")
    assert claim["value"] == str(request_id)
    assert (await teams.post(teams.submit(claim, "pia"))).status == 200
    await teams_app.dispatcher.drain()

    [edit] = connector.to(bob_chat, "update")
    async with teams_app.sessions() as session:
        [bob_ping] = (await session.exec(select(Ping).where(Ping.status == "withdrawn"))).all()
        stored = (
            await session.exec(
                select(MessageRef).where(MessageRef.ref_key == f"ping:{bob_ping.id}")
            )
        ).one()
    assert (stored.channel, stored.message_id) == (bob_chat, edit.activity_id)
    assert "Claimed by" in edit.text and "Pia" in edit.text
    assert '"action"' not in str(edit.card).replace("'", '"')
    assert any("It's yours" in c.text for c in connector.to(pia_chat))
    assert any("is drafting" in c.text for c in connector.to(personal(teams.member("alice"))))

    await teams.post(teams.submit(button(to_bob.card, "request_claim"), "bob"))
    await teams_app.dispatcher.drain()
    assert "already claimed by" in connector.to(bob_chat)[-1].text


async def test_teams_429s_and_5xx_are_retried_and_the_limits_hold(
    teams: TeamsHttp, teams_app: Flywheel, connector: FakeBotConnector
) -> None:
    chat = personal(teams.member("alice"))
    await teams.post(teams.message("help"))
    connector.fail("send", 429, retry_after=0)
    connector.fail("send", 502)
    connector.fail("send", 412)
    connector.fail("send", 504)
    await teams.post(teams.message("help"))
    for _ in range(10):
        await teams_app.dispatcher.drain()
        teams.clock.advance(seconds=600)
    answered = [c for c in connector.to(chat) if "Here is what I can do" in c.text]
    assert len(answered) == 2
