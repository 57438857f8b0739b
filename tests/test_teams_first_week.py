"""A brand-new Teams tenant's first week, over the real `/api/messages` and the fake
Connector: install, welcome, a request nobody can take yet, the first expert offered it,
claim, draft, review, approval, share and the first digest — and what a real Teams client
expects on the way (task responses, names in notifications, a quiet HEAD)."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import unquote_plus, urlsplit

import pytest
from sqlmodel import select

from bot.app import Flywheel
from bot.cli import _digest_preview
from handlers.core.context import dm
from handlers.core.markup import md, mention
from handlers.core.messages import notice
from storage import outbox
from storage.db import transaction
from storage.models import ContentRequest, Draft, Member, Post, ShareSuggestion, Workspace
from testing.fakes.bot_connector import FakeBotConnector
from tests.teams_http import (
    TENANT,
    TeamsHttp,
    actions,
    button,
    connector,
    fill,
    inputs,
    key_server,
    open_urls,
    personal,
    teams,
    teams_app,
)

__all__ = ["connector", "key_server", "teams", "teams_app"]

QUESTION = "How do we migrate Oracle to PostgreSQL without downtime?"
REVIEW = "19:review@thread.tacv2"


def installed_personally(teams: TeamsHttp, user: str) -> dict[str, Any]:
    activity = teams.base("installationUpdate", user)
    activity["action"] = "add"
    return activity


def welcomes(connector: FakeBotConnector, chat: str) -> list[Any]:
    return [c for c in connector.to(chat) if "Welcome to Flywheel" in c.text]


def summaries(connector: FakeBotConnector) -> list[str]:
    return [str(c.body.get("summary") or "") for c in connector.calls if isinstance(c.body, dict)]


async def test_head_on_the_messages_endpoint_is_a_quiet_yes(
    teams: TeamsHttp, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    response = await teams.client.head("/api/messages")
    assert response.status == 200
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


async def test_card_submits_as_teams_sends_them_log_no_sdk_warnings(
    teams: TeamsHttp, caplog: pytest.LogCaptureFixture, recwarn: pytest.WarningsRecorder
) -> None:
    caplog.set_level(logging.DEBUG)
    # What a Teams client sends with an Action.Submit: channel data the SDK's schema lacks.
    submit = teams.submit({"action": "request_open", "value": ""}, reply_to="1:card")
    submit["channelData"] |= {"source": {"name": "message"}, "legacy": {"replyToId": "1:card"}}
    submit["entities"] = [{"type": "clientInfo", "locale": "en-US", "timezone": "Europe/Paris"}]
    assert (await teams.post(submit)).status == 200
    task = teams.submit_action({"topic": "Kubernetes upgrade guide"})
    task["channelData"] |= {"source": {"name": "compose"}, "legacy": {"replyToId": "1:x"}}
    assert (await teams.post(task)).status == 200
    sdk = ("msrest", "botbuilder", "botframework")
    assert [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.WARNING and r.name.startswith(sdk)
    ] == []
    assert [str(w.message) for w in recwarn] == []


def test_only_the_unknown_channel_data_warning_is_dropped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from botbuilder.schema import ChannelAccount
    from botbuilder.schema.teams import TeamsChannelData

    import adapters.teams.adapter  # noqa: F401  (installs the filter, as the app does)

    caplog.set_level(logging.WARNING)
    TeamsChannelData(source={"name": "message"})
    ChannelAccount(shape="odd")
    assert [r.getMessage().split(" is ")[0] for r in caplog.records] == ["shape"]


async def test_installed_in_a_team_the_tenant_is_known_and_the_installer_welcomed_once(
    teams: TeamsHttp,
    teams_app: Flywheel,
    connector: FakeBotConnector,
    capsys: pytest.CaptureFixture[str],
) -> None:
    install = teams.bot_added_to_team("admin")
    assert (await teams.post(install)).status == 200
    # Nobody has written a word yet: the CLI knows the tenant.
    assert await _digest_preview(teams_app, TENANT) == 0
    assert "Flywheel weekly" in capsys.readouterr().out

    await teams_app.dispatcher.drain()
    ada = personal(teams.member("admin"))
    [welcome] = welcomes(connector, ada)
    assert {a.get("data", {}).get("action") for a in actions(welcome.card)} >= {
        "request_open",
        "expert_open",
        "share_prefs",
        "admin_open",
    }
    assert "Reviewers" in welcome.text and "Setup: 0 of 5 done" in welcome.text

    # The same install delivered again, and the personal install that follows: no repeat.
    again = teams.bot_added_to_team("admin")
    await teams.post(again)
    await teams.post(installed_personally(teams, "admin"))
    await teams_app.dispatcher.drain()
    assert len(welcomes(connector, ada)) == 1

    # Someone else installs it for themselves: a welcome without the admin's checklist.
    await teams.post(installed_personally(teams, "alice"))
    await teams_app.dispatcher.drain()
    [alice_welcome] = welcomes(connector, personal(teams.member("alice")))
    assert "Setup" not in alice_welcome.text
    assert "admin_open" not in str(alice_welcome.card)
    async with teams_app.sessions() as session:
        welcomed = (
            await session.exec(select(Member.user_id).where(Member.welcomed_at.is_not(None)))  # type: ignore[union-attr]
        ).all()
    assert sorted(welcomed) == ["aad-admin", "aad-alice"]


async def test_a_first_personal_message_is_welcomed_once_with_its_answer(
    teams: TeamsHttp, teams_app: Flywheel, connector: FakeBotConnector
) -> None:
    first = teams.message("stats", "alice")
    assert (await teams.post(first)).status == 200
    await teams.post(first)  # the Connector delivers it again
    await teams.post(teams.message("stats", "alice"))
    await teams_app.dispatcher.drain()
    alice = personal(teams.member("alice"))
    assert len(welcomes(connector, alice)) == 1
    assert sum("This week" in c.text for c in connector.to(alice)) == 2
    # A mention in a channel is no first contact: the welcome waits for a personal chat.
    await teams.post(teams.channel_message("stats", "pia"))
    await teams_app.dispatcher.drain()
    assert welcomes(connector, personal(teams.member("pia"))) == []


async def test_a_queued_message_with_mentions_notifies_with_names(
    teams: TeamsHttp, teams_app: Flywheel, connector: FakeBotConnector
) -> None:
    for user in ("alice", "pia"):
        await teams.post(teams.message("stats", user))
    await teams_app.dispatcher.drain()
    async with transaction(teams_app.sessions) as session:
        [workspace] = (await session.exec(select(Workspace))).all()
        assert workspace.id is not None
        text = md("{} asks you: {}", mention("aad-alice"), "is <at>Bob</at> right?")
        await outbox.enqueue(
            session,
            workspace_id=workspace.id,
            dedupe_key="ping:mention",
            kind="message",
            target=dm("aad-pia"),
            payload=notice(text).model_dump(mode="json"),
            now=teams_app.router.clock.now(),
        )
    await teams_app.dispatcher.drain()
    [ping] = [c for c in connector.to(personal(teams.member("pia"))) if "asks you" in c.text]
    summary = str(ping.body["summary"])
    assert summary.startswith(f"@{teams.member('alice').name} asks you: is ")
    assert "<@" not in summary and "<at>" not in summary
    assert "aad-alice" not in summary


async def test_the_admin_form_shows_what_setup_still_misses(
    teams: TeamsHttp, teams_app: Flywheel
) -> None:
    await teams.post(teams.message("admin", "admin"))
    form = teams.form_call(personal(teams.member("admin"))).card
    assert "Still missing" in str(form) and "Digest channels" in str(form)
    async with transaction(teams_app.sessions) as session:
        workspace = (await session.exec(select(Workspace))).one()
        workspace.settings = {
            "reviewers": ["aad-admin"],
            "review_channel": REVIEW,
            "share_channels": ["19:sales@thread.tacv2"],
            "digest_channels": ["19:general@thread.tacv2"],
            "timezone": "Europe/Paris",
        }
        session.add(workspace)
    await teams.post(teams.message("admin", "admin"))
    form = teams.form_call(personal(teams.member("admin"))).card
    assert "Still missing" not in str(form)


async def test_the_message_action_prefill_and_its_submit_answer_as_teams_expects(
    teams: TeamsHttp, teams_app: Flywheel
) -> None:
    activity = teams.fetch_task("")
    activity["value"]["messagePayload"]["body"]["content"] = (
        '<p><at id="0">Flywheel</at>&nbsp;request Kubernetes upgrade guide</p>'
        "<p>For the Globex renewal</p>"
    )
    fetched = await teams.post(activity)
    card = fetched.body["task"]["value"]["card"]["content"]
    values = {i["id"]: i.get("value") for i in inputs(card)}
    assert values["text:topic"] == "Kubernetes upgrade guide"
    assert values["text:context"] == "For the Globex renewal"

    one_line = teams.fetch_task("Does anyone have a write-up on Kubernetes upgrades?")
    fetched = await teams.post(one_line)
    values = {
        i["id"]: i.get("value") for i in inputs(fetched.body["task"]["value"]["card"]["content"])
    }
    assert values["text:topic"] == "Does anyone have a write-up on Kubernetes upgrades?"
    assert not values.get("text:context")

    done = await teams.post(
        teams.submit_action(fill(fetched.body["task"]["value"]["card"]["content"]))
    )
    assert done.status == 200
    assert done.body["task"]["type"] == "message"
    assert "sent" in done.body["task"]["value"]


async def test_a_new_tenants_first_week(
    teams: TeamsHttp, teams_app: Flywheel, connector: FakeBotConnector
) -> None:
    alice, pia, ada = (personal(teams.member(u)) for u in ("alice", "pia", "admin"))
    await teams.post(teams.bot_added_to_team("admin", channel=REVIEW))
    await teams.post(installed_personally(teams, "alice"))
    await teams_app.dispatcher.drain()
    assert welcomes(connector, ada) and welcomes(connector, alice)
    async with transaction(teams_app.sessions) as session:
        workspace = (await session.exec(select(Workspace))).one()
        workspace.settings = {
            **workspace.settings,
            "reviewers": ["aad-admin"],
            "review_channel": REVIEW,
            "timezone": "Europe/Paris",
        }
        session.add(workspace)

    # Monday: the first request, and nobody is an expert yet.
    await teams.post(teams.message(f"request {QUESTION}"))
    await teams.post(teams.submit(fill(teams.form_call(alice).card, {"tags": "postgresql"})))
    await teams_app.sweeper.run_once()
    await teams_app.dispatcher.drain()
    [told] = [c for c in connector.to(alice) if "Nobody has an expert profile yet" in c.text]
    suggest = button(told.card, "request_nominate")

    # Alice names Pia, who is invited and, saving her profile, is offered the request.
    await teams.post(teams.submit(suggest))
    nominate = teams.form_call(alice).card
    await teams.post(teams.submit(fill(nominate, {"colleague": "aad-pia"})))
    await teams_app.dispatcher.drain()
    invites = [c for c in connector.to(pia) if "thinks you know the subject" in c.text]
    [invite] = invites
    await teams.post(teams.submit(button(invite.card, "expert_open"), "pia"))
    await teams.post(
        teams.submit(fill(teams.form_call(pia).card, {"other_topics": "oracle, postgresql"}), "pia")
    )
    await teams_app.dispatcher.drain()
    [offer] = [c for c in connector.to(pia) if "matches what you know" in c.text]
    take = button(offer.card, "request_take")
    await teams.post(teams.submit(take, "pia"))
    await teams_app.dispatcher.drain()
    assert any("Pia" in c.text and "is drafting" in c.text for c in connector.to(alice))

    # Tuesday: the draft, the review, the approval.
    async with teams_app.sessions() as session:
        request = (await session.exec(select(ContentRequest))).one()
    await teams.post(teams.submit({"action": "draft_open", "value": str(request.id)}, "pia"))
    values = {
        "title": "Zero-downtime Oracle to PostgreSQL",
        "body": "Dual writes, then a cut-over in seconds.",
        "canonical_url": "https://blog.acme.test/zdm",
        "caption_1": "How we moved off Oracle without downtime",
    }
    await teams.post(teams.submit(fill(teams.form_call(pia).card, values), "pia"))
    async with teams_app.sessions() as session:
        draft = (await session.exec(select(Draft))).one()
    await teams.post(teams.submit({"action": "draft_submit", "value": str(draft.id)}, "pia"))
    await teams_app.dispatcher.drain()
    [review] = connector.to(REVIEW, "send", "reply")[-1:]
    await teams.post(teams.submit(button(review.card, "review_approve"), "admin"))
    await teams_app.dispatcher.drain()
    assert any("Your request is live" in c.text for c in connector.to(alice))

    # The share card Alice got: its caption is the one its buttons carry.
    # The distribution sweep plans who gets it, and when.
    await teams_app.sweeper.run_once()
    async with teams_app.sessions() as session:
        post = (await session.exec(select(Post))).one()
        suggestion = (
            await session.exec(select(ShareSuggestion).where(ShareSuggestion.post_id == post.id))
        ).first()
    assert suggestion is not None
    teams.clock.set(suggestion.deliver_at)
    await teams_app.sweeper.run_once()
    await teams_app.dispatcher.drain()
    [share_card] = [c for c in connector.to(alice) if "Ready to share" in str(c.body)]
    shown = suggestion.caption[:30]
    assert shown in share_card.text
    linkedin = next(u["url"] for u in open_urls(share_card.card) if "LinkedIn" in u["title"])
    opened = await teams.client.get(urlsplit(linkedin).path, allow_redirects=False)
    assert opened.status == 302 and shown in unquote_plus(opened.headers["Location"])
    # Pressed on the share channel's announcement, her own links carry the same caption.
    await teams.post(teams.submit({"action": "share_post", "value": str(post.id)}))
    [again] = [c for c in connector.to(alice) if "Ready to share" in str(c.body)][-1:]
    assert shown in again.text

    # The first digest, previewed by the admin.
    await teams.post(teams.message("digest preview", "admin"))
    await teams_app.dispatcher.drain()
    assert any("Flywheel weekly" in c.text for c in connector.to(ada))

    # No notification line shows a raw mention token.
    assert not [s for s in summaries(connector) if "<@" in s or "<at>" in s]
