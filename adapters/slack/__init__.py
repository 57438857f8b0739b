"""Slack: Bolt listeners behind a verified HTTP edge (or Socket Mode), Block Kit, the sender."""

from adapters.slack.adapter import SlackAdapter

__all__ = ["SlackAdapter"]
