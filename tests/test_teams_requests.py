"""Request capture in Teams, end to end through /api/messages: the Slack tests' twins.

`request <topic>` in the personal chat shows the request form as a card; submitting it
with a mistake re-shows it with the error under the field; the message extension's
`request_from_message` opens the same form in a dialog, prefilled from the message, and
keeps a link to it.
"""

from __future__ import annotations

from sqlmodel import select

from bot.app import Flywheel
from storage.models import ContentRequest, ConversationReference, Vote
from testing.fakes.bot_connector import FakeBotConnector
from tests.teams_http import (
    TeamsHttp,
    connector,
    fill,
    inputs,
    key_server,
    personal,
    submit_data,
    teams,
    teams_app,
)

__all__ = ["connector", "key_server", "teams", "teams_app"]


async def test_request_command_form_errors_and_capture(
    teams: TeamsHttp, teams_app: Flywheel, connector: FakeBotConnector
) -> None:
    chat = personal(teams.member("alice"))
    assert (
        await teams.post(teams.message("request Oracle to PostgreSQL without downtime"))
    ).status == 200
    shown = teams.form_call(chat)
    assert submit_data(shown.card)["form"] == "request_form"
    topic = next(i for i in inputs(shown.card) if i["id"] == "text:topic")
    assert topic["value"] == "Oracle to PostgreSQL without downtime"
    card_id = shown.landed

    # A due date in the past comes back on the same card, under its field.
    bad = fill(shown.card, {"needed_by": "2020-01-01"})
    assert (await teams.post(teams.submit(bad, reply_to=card_id))).status == 200
    again = teams.last(chat, "update")
    assert again.activity_id == card_id
    assert "Attention" in str(again.card)
    async with teams_app.sessions() as session:
        assert (await session.exec(select(ContentRequest))).all() == []

    good = fill(again.card, {"needed_by": "", "tags": "postgresql"})
    assert (await teams.post(teams.submit(good, reply_to=card_id))).status == 200
    assert "sent" in teams.last(chat, "update").text
    await teams_app.dispatcher.drain()
    async with teams_app.sessions() as session:
        request = (await session.exec(select(ContentRequest))).one()
    assert (request.topic, request.tags, request.status) == (
        "Oracle to PostgreSQL without downtime",
        ["postgresql"],
        "open",
    )
    assert any(request.topic in c.text for c in connector.to(chat))

    # Bob asks for much the same: the form offers a +1 on Alice's request instead.
    bob_chat = personal(teams.member("bob"))
    await teams.post(
        teams.message("request Oracle to PostgreSQL migration with zero downtime", "bob")
    )
    form = teams.form_call(bob_chat).card
    similar = next(i for i in inputs(form) if i["id"].endswith(":similar"))
    assert str(request.id) in str(similar["choices"])
    await teams.post(teams.submit(fill(form, {"similar": str(request.id)}), "bob"))
    await teams_app.dispatcher.drain()
    async with teams_app.sessions() as session:
        assert len((await session.exec(select(Vote))).all()) == 1


async def test_request_from_a_message_opens_the_prefilled_form_in_a_dialog(
    teams: TeamsHttp, teams_app: Flywheel, connector: FakeBotConnector
) -> None:
    link = "https://teams.microsoft.com/l/message/19:sales@thread.tacv2/1763892000999"
    fetched = await teams.post(
        teams.fetch_task("Does anyone have a write-up on Kubernetes upgrades?", link=link)
    )
    assert fetched.status == 200
    task = fetched.body["task"]
    assert task["type"] == "continue"
    card = task["value"]["card"]["content"]
    topic = next(i for i in inputs(card) if i["id"] == "text:topic")
    assert topic["value"] == "Does anyone have a write-up on Kubernetes upgrades?"

    # An error keeps the dialog open with the error shown; a good submit closes it.
    invalid = await teams.post(teams.submit_action(fill(card, {"topic": ""})))
    assert invalid.body["task"]["type"] == "continue"
    assert "Attention" in str(invalid.body["task"]["value"]["card"])
    done = await teams.post(teams.submit_action(fill(card)))
    assert done.status == 200
    assert done.body.get("task", {}).get("type") != "continue"
    await teams_app.dispatcher.drain()
    async with teams_app.sessions() as session:
        request = (await session.exec(select(ContentRequest))).one()
    assert request.source_permalink == link
    # The confirmation reaches Alice in her 1:1 chat (started through the team if need be).
    assert any(request.topic[:20] in c.text for c in connector.to(personal(teams.member("alice"))))


async def test_unknown_buttons_foreign_forms_and_bad_submits_get_a_clear_answer(
    teams: TeamsHttp, teams_app: Flywheel, connector: FakeBotConnector
) -> None:
    chat = personal(teams.member("alice"))
    await teams.post(teams.message("request Zero-downtime upgrades"))
    form = teams.form_call(chat).card
    await teams.post(teams.submit(fill(form, {"tags": "k8s"})))
    await teams_app.dispatcher.drain()
    async with teams_app.sessions() as session:
        request = (await session.exec(select(ContentRequest))).one()
    before = len(connector.calls)

    cases = [
        {"action": "self_destruct", "value": "1"},
        {"action": "request_vote", "value": "1", "extra": "x"},
        {"form": "request_form", "state": "never-shown", "text:topic": "x"},
        {"nothing": "here"},
    ]
    for data in cases:
        assert (await teams.post(teams.submit(data))).status == 200
    await teams_app.dispatcher.drain()
    answers = [c.text for c in connector.calls[before:]]
    assert any("isn't something I know" in a for a in answers)
    assert any("couldn't read that" in a for a in answers)
    assert any("no longer open" in a for a in answers)

    # Mallory of another tenant presses +1 with Alice's request id: not found, nothing counted.
    mallory = teams.submit(
        {"action": "request_vote", "value": str(request.id)}, "mallory", tenant="tenant-globex"
    )
    assert (await teams.post(mallory)).status == 200
    await teams_app.dispatcher.drain()
    async with teams_app.sessions() as session:
        assert (await session.exec(select(Vote))).all() == []
        refs = (await session.exec(select(ConversationReference))).all()
    assert {r.tenant_id for r in refs} == {"tenant-acme", "tenant-globex"}
    replies = connector.to(personal(teams.member("mallory")))
    assert replies and "Try `help`" not in replies[-1].text
