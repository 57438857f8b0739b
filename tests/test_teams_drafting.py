"""Drafting and review in Teams, end to end: the twin of the Slack drafting test.

The review card goes to the review channel proactively; "Ask for changes" pressed there
sends the review form to the reviewer's own chat; the decision edits the channel's card
in place; approval reaches the requester.
"""

from __future__ import annotations

from sqlmodel import select

from bot.app import Flywheel
from storage.db import transaction
from storage.models import ContentRequest, Draft, Post, Workspace
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

REVIEW = "19:review@thread.tacv2"


async def test_draft_review_changes_and_approval_in_teams(
    teams: TeamsHttp, teams_app: Flywheel, connector: FakeBotConnector
) -> None:
    await teams.post(teams.bot_added_to_team(channel=REVIEW))
    pia, alice, ada = (personal(teams.member(u)) for u in ("pia", "alice", "admin"))
    await teams.post(teams.message("expert", "pia"))
    await teams.post(
        teams.submit(fill(teams.form_call(pia).card, {"other_topics": "postgresql, oracle"}), "pia")
    )
    await teams.post(teams.message("request Oracle to PostgreSQL without downtime"))
    await teams.post(teams.submit(fill(teams.form_call(alice).card)))
    async with transaction(teams_app.sessions) as session:
        workspace = (await session.exec(select(Workspace))).one()
        workspace.settings = {
            **workspace.settings,
            "reviewers": ["aad-admin"],
            "review_channel": REVIEW,
        }
        session.add(workspace)
    await teams_app.sweeper.run_once()
    await teams_app.dispatcher.drain()
    await teams.post(teams.submit({"action": "request_claim", "value": "1"}, "pia"))

    await teams.post(teams.submit({"action": "draft_open", "value": "1"}, "pia"))
    form_call = teams.form_call(pia)
    assert "draft_form" in str(form_call.card)
    values = {
        "title": "Zero-downtime Oracle to PostgreSQL",
        "body": "Dual writes, then a cut-over in seconds.",
        "canonical_url": "ftp://example.com/x",
        "caption_1": "How we moved off Oracle without downtime",
    }
    card_id = form_call.landed
    await teams.post(teams.submit(fill(form_call.card, values), "pia", reply_to=card_id))
    assert "Attention" in str(teams.last(pia, "update").card)
    values["canonical_url"] = "https://blog.acme.test/zdm"
    await teams.post(teams.submit(fill(form_call.card, values), "pia", reply_to=card_id))
    async with teams_app.sessions() as session:
        draft = (await session.exec(select(Draft))).one()
    assert draft.canonical_url == "https://blog.acme.test/zdm"

    await teams.post(teams.submit({"action": "draft_submit", "value": str(draft.id)}, "pia"))
    await teams_app.dispatcher.drain()
    [review] = connector.to(REVIEW)
    for action in ("review_approve", "review_changes", "review_reject"):
        assert button(review.card, action)

    # Pressed in the channel: the form goes to Ada's own chat, not to the channel.
    changes = teams.submit(
        button(review.card, "review_changes"),
        "admin",
        conversation=f"{REVIEW};messageid={review.landed}",
        conversation_type="channel",
        team={"id": "19:team@thread.tacv2", "name": "Acme"},
    )
    assert (await teams.post(changes)).status == 200
    assert len(connector.to(REVIEW)) == 1
    review_form = teams.form_call(ada).card
    assert "review_form" in str(review_form)
    await teams.post(teams.submit(fill(review_form, {"comment": ""}), "admin"))
    assert "Attention" in str(teams.form_call(ada).card)
    await teams.post(
        teams.submit(fill(review_form, {"comment": "Add the rollback plan."}), "admin")
    )
    await teams_app.dispatcher.drain()
    [closed] = connector.to(REVIEW, "update")
    assert "Changes requested by" in closed.text

    await teams.post(teams.submit({"action": "draft_open", "value": "1"}, "pia"))
    values["body"] += "\nRollback: switch the writes back."
    await teams.post(teams.submit(fill(teams.form_call(pia).card, values), "pia"))
    await teams.post(teams.submit({"action": "draft_submit", "value": str(draft.id)}, "pia"))
    await teams.post(teams.submit({"action": "review_approve", "value": f"{draft.id}:1"}, "admin"))
    await teams.post(teams.submit({"action": "review_approve", "value": f"{draft.id}:2"}, "admin"))
    await teams_app.dispatcher.drain()
    told_ada = [c.text for c in connector.to(ada)]
    assert any("Version 2 is the current one" in t for t in told_ada)
    async with teams_app.sessions() as session:
        post = (await session.exec(select(Post))).one()
        request = (await session.exec(select(ContentRequest))).one()
    assert (post.version, post.canonical_url, request.status) == (
        2,
        "https://blog.acme.test/zdm",
        "published",
    )
    assert any("Your request is live" in str(c.body) for c in connector.to(alice))
