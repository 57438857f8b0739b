"""A Teams activity delivered twice (the same id, with a token still valid) runs once.

The Bot Connector may redeliver, and a captured activity can be posted again while its
token lives: card submits (message activities) and the message extension's dialog submit
(an invoke) are acted on at their first delivery only. On SQLite and PostgreSQL.
"""

from __future__ import annotations

from sqlalchemy import func
from sqlmodel import select

from bot.app import Flywheel
from storage.models import ContentRequest, InboundEvent
from tests.teams_http import (
    TeamsHttp,
    connector,
    fill,
    key_server,
    personal,
    teams,
    teams_app,
)

__all__ = ["connector", "key_server", "teams", "teams_app"]


async def requests(app: Flywheel) -> int:
    async with app.sessions() as session:
        return int((await session.exec(select(func.count()).select_from(ContentRequest))).one())


async def test_a_replayed_dialog_submit_stores_one_request(
    teams: TeamsHttp, teams_app: Flywheel
) -> None:
    fetched = await teams.post(teams.fetch_task("Does anyone have a Kubernetes upgrade guide?"))
    card = fetched.body["task"]["value"]["card"]["content"]
    submit = teams.submit_action(fill(card))

    first = await teams.post(submit)
    replay = await teams.post(submit)

    assert (first.status, replay.status) == (200, 200)
    # A replay still gets the task response Teams needs, and nothing is stored twice.
    assert first.body["task"]["type"] == replay.body["task"]["type"] == "message"
    assert await requests(teams_app) == 1
    async with teams_app.sessions() as session:
        recorded = (await session.exec(select(InboundEvent))).all()
    assert [e.platform for e in recorded] == ["teams"]


async def test_a_replayed_card_submit_stores_one_request(
    teams: TeamsHttp, teams_app: Flywheel
) -> None:
    chat = personal(teams.member("alice"))
    await teams.post(teams.message("request Oracle to PostgreSQL without downtime"))
    submit = teams.submit(fill(teams.form_call(chat).card))

    assert (await teams.post(submit)).status == 200
    assert (await teams.post(submit)).status == 200

    assert await requests(teams_app) == 1
