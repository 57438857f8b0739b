"""`manifest.yml` and the code agree: what Slack sends is handled, what is handled is declared."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from adapters.slack.listeners import COMMANDS, EVENTS, SHORTCUT_COMMANDS, SHORTCUTS
from bot.flows import build_router
from handlers.core.context import Config
from storage.db import create_engine, session_factory
from testing.fakes.clock import FrozenClock

MANIFEST = Path(__file__).resolve().parent.parent / "manifest.yml"
EVENTS_PATH = "/slack/events"


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))
    return loaded


@pytest.fixture(scope="module")
def registered_commands() -> set[str]:
    # Registration only: the engine is never connected.
    router = build_router(
        session_factory(create_engine("sqlite+aiosqlite://")), FrozenClock(), Config()
    )
    return set(router.commands)


def test_slash_commands_match_both_ways(manifest: dict[str, Any]) -> None:
    declared = [c["command"] for c in manifest["features"]["slash_commands"]]
    assert sorted(declared) == sorted(COMMANDS)


def test_shortcuts_match_both_ways_with_their_kinds(manifest: dict[str, Any]) -> None:
    declared = {s["callback_id"]: s["type"] for s in manifest["features"]["shortcuts"]}
    assert sorted(declared) == sorted(SHORTCUTS)
    assert declared == {
        "request_content": "global",
        "request_from_message": "message",
        "share_from_message": "message",
    }
    for shortcut in manifest["features"]["shortcuts"]:
        assert len(shortcut["name"]) <= 24
        assert len(shortcut["description"]) <= 150


def test_shortcuts_stand_for_registered_commands(registered_commands: set[str]) -> None:
    assert set(SHORTCUT_COMMANDS.values()) <= registered_commands


def test_bot_events_match_both_ways(manifest: dict[str, Any]) -> None:
    declared = manifest["settings"]["event_subscriptions"]["bot_events"]
    assert sorted(declared) == sorted(EVENTS)


def test_the_usage_hint_lists_exactly_the_registered_commands(
    manifest: dict[str, Any], registered_commands: set[str]
) -> None:
    [command] = manifest["features"]["slash_commands"]
    hinted = {part.split()[0] for part in command["usage_hint"].split("|")}
    assert hinted == registered_commands


def test_every_request_url_is_the_one_events_endpoint(manifest: dict[str, Any]) -> None:
    settings = manifest["settings"]
    urls = [
        settings["event_subscriptions"]["request_url"],
        settings["interactivity"]["request_url"],
        *(c["url"] for c in manifest["features"]["slash_commands"]),
    ]
    assert all(url.startswith("https://") and url.endswith(EVENTS_PATH) for url in urls)
    assert settings["interactivity"]["is_enabled"] is True
    assert settings["socket_mode_enabled"] is False


def test_scopes_are_the_minimum_the_code_uses(manifest: dict[str, Any]) -> None:
    assert sorted(manifest["oauth_config"]["scopes"]["bot"]) == [
        "app_mentions:read",
        "chat:write",
        "commands",
        "im:history",
        "users:read",
        "users:read.email",
    ]
    # User scopes only for Sign in with Slack (the program page): who signs in, nothing more.
    assert sorted(manifest["oauth_config"]["scopes"]["user"]) == ["email", "openid", "profile"]
    assert manifest["oauth_config"]["redirect_urls"] == [
        "https://flywheel.example.com/signin/slack/callback"
    ]


def test_app_home_and_bot_user(manifest: dict[str, Any]) -> None:
    features = manifest["features"]
    assert features["app_home"]["home_tab_enabled"] is True
    assert features["app_home"]["messages_tab_enabled"] is True
    # People write to the bot there (message.im), so the tab takes messages.
    assert features["app_home"]["messages_tab_read_only_enabled"] is False
    assert features["bot_user"]["display_name"] == "Flywheel"


def test_display_information_is_within_slack_limits(manifest: dict[str, Any]) -> None:
    info = manifest["display_information"]
    assert 0 < len(info["name"]) <= 35
    assert 0 < len(info["description"]) <= 140
    assert 175 <= len(info["long_description"]) <= 4000
    assert info["background_color"].startswith("#")
