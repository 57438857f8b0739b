"""Every Teams invoke gets an answer in its own shape through the real `/api/messages`:
the SDK's 501 never reaches Teams, which would show the person an error."""

from __future__ import annotations

from typing import Any

import pytest

from testing.fakes.bot_connector import FakeBotConnector
from tests.teams_http import TeamsHttp, connector, key_server, teams, teams_app

__all__ = ["connector", "key_server", "teams", "teams_app"]

NOT_SERVED = "That isn't something Flywheel does here."


def invoke(teams: TeamsHttp, name: str | None, value: Any, **kwargs: Any) -> dict[str, Any]:
    activity = teams.base("invoke", "alice", **kwargs)
    if name is not None:
        activity["name"] = name
    activity["value"] = value
    return activity


@pytest.mark.parametrize(
    ("name", "value"),
    [
        (
            "adaptiveCard/action",
            {"action": {"type": "Action.Execute", "verb": "refresh", "data": {"x": 1}}},
        ),
        # A card's verb Flywheel never drew, with no value at all.
        ("adaptiveCard/action", None),
    ],
)
async def test_adaptive_card_action_is_answered_with_a_message(
    teams: TeamsHttp, connector: FakeBotConnector, name: str, value: Any
) -> None:
    posted = await teams.post(invoke(teams, name, value))
    assert posted.status == 200
    assert posted.body["statusCode"] == 200
    assert posted.body["type"] == "application/vnd.microsoft.activity.message"
    assert posted.body["value"].startswith(NOT_SERVED)
    assert connector.calls == []


@pytest.mark.parametrize("name", ["task/fetch", "task/submit"])
async def test_task_module_invokes_get_a_message_dialog(teams: TeamsHttp, name: str) -> None:
    value = {"data": {"type": "task/fetch", "anything": True}, "context": {"theme": "dark"}}
    posted = await teams.post(invoke(teams, name, value))
    assert posted.status == 200
    assert posted.body["task"]["type"] == "message"
    assert posted.body["task"]["value"].startswith(NOT_SERVED)


@pytest.mark.parametrize(
    "name",
    [
        "composeExtension/query",
        "composeExtension/queryLink",
        "composeExtension/anonymousQueryLink",
        "composeExtension/selectItem",
    ],
)
async def test_message_extension_searches_get_an_empty_result_list(
    teams: TeamsHttp, name: str
) -> None:
    value = {
        "commandId": "searchQuery",
        "parameters": [{"name": "searchQuery", "value": "kubernetes"}],
        "queryOptions": {"skip": 0, "count": 25},
        "url": "https://acme.example/post",
    }
    posted = await teams.post(invoke(teams, name, value))
    assert posted.status == 200
    assert posted.body == {
        "composeExtension": {"type": "result", "attachmentLayout": "list", "attachments": []}
    }


@pytest.mark.parametrize("name", ["config/fetch", "config/submit"])
async def test_config_invokes_get_a_config_message(teams: TeamsHttp, name: str) -> None:
    posted = await teams.post(invoke(teams, name, {"data": {}}))
    assert posted.status == 200
    assert posted.body["responseType"] == "config"
    assert posted.body["config"]["type"] == "message"
    assert posted.body["config"]["value"].startswith(NOT_SERVED)


async def test_message_extension_action_flywheel_does_not_have_gets_a_message(
    teams: TeamsHttp,
) -> None:
    fetch = teams.fetch_task("anything")
    fetch["value"]["commandId"] = "retired_command"
    posted = await teams.post(fetch)
    assert posted.status == 200
    assert posted.body["task"]["type"] == "message"
    submit = teams.submit_action({"nothing": "here"})
    submit["value"]["data"] = "not an object"
    posted = await teams.post(submit)
    assert posted.status == 200
    assert posted.body["task"]["type"] == "message"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("signin/verifyState", {"state": "123456"}),
        ("signin/tokenExchange", {"id": "x", "connectionName": "c", "token": "t"}),
        (
            "message/submitAction",
            {"actionName": "feedback", "actionValue": {"reaction": "like", "feedback": "{}"}},
        ),
        ("handoff/action", {"continuation": "abc"}),
        ("fileConsent/invoke", {"action": "accept", "context": {}}),
        ("actionableMessage/executeAction", {"body": "{}", "actionId": "1"}),
        ("composeExtension/querySettingUrl", {"commandId": "x"}),
        ("composeExtension/setting", {"state": "x"}),
        ("composeExtension/onCardButtonClicked", {"x": 1}),
        ("tab/fetch", {"tabContext": {"tabEntityId": "t"}}),
        ("tab/submit", {"tabContext": {"tabEntityId": "t"}, "data": {}}),
        ("someFuture/invoke", {"whatever": [1, 2, 3]}),
    ],
)
async def test_other_invokes_are_acknowledged_never_501(
    teams: TeamsHttp, connector: FakeBotConnector, name: str | None, value: Any
) -> None:
    posted = await teams.post(invoke(teams, name, value))
    assert posted.status == 200
    assert posted.body == {}
    assert connector.calls == []


@pytest.mark.parametrize("name", ["", None])
async def test_an_invoke_without_a_name_is_refused_as_malformed(
    teams: TeamsHttp, name: str | None
) -> None:
    posted = await teams.post(invoke(teams, name, {"a": 1}))
    assert posted.status == 400
