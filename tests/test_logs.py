"""Logs never carry a token or a secret."""

from __future__ import annotations

from bot.logs import redact


def test_secret_keys_and_token_shapes_are_masked() -> None:
    event = redact(
        None,
        "info",
        {
            "event": "slack.call failed for xoxb-1234-abcd",
            "bot_token": "xoxb-1234-abcd",
            "client_secret": "abc",
            "api_key": "sk-abcdefghijkl",
            "note": "key sk-abcdefghijklmnop leaked",
            "user": "U123",
        },
    )
    assert event["bot_token"] == event["client_secret"] == event["api_key"] == "***"
    assert "xoxb" not in event["event"] and "sk-abc" not in event["note"]
    assert event["user"] == "U123"
