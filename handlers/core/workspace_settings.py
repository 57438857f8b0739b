"""Per-workspace settings, stored as JSON on the workspace row and validated here."""

from __future__ import annotations

import re
from datetime import time
from typing import Literal
from zoneinfo import available_timezones

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from handlers.core.quiet_hours import WorkingHours
from handlers.drafting.compliance import Rules
from storage.models import Workspace


class WorkspaceSettings(BaseModel):
    """What admins configure in `admin_form`; later features add their own fields."""

    model_config = ConfigDict(extra="ignore")

    reviewers: list[str] = Field(default_factory=list)
    review_channel: str | None = None
    share_channels: list[str] = Field(default_factory=list)
    digest_channels: list[str] = Field(default_factory=list)
    escalation_channel: str | None = None
    timezone: str = "UTC"

    # Routing: how many experts each round, how long they have, how often they may be asked.
    experts_per_round: int = Field(default=2, ge=1, le=10)
    ping_timeout_hours: int = Field(default=9, ge=1, le=120)
    reminder_lead_days: int = Field(default=1, ge=0, le=14)
    weekly_ping_cap: int = Field(default=3, ge=1, le=50)
    quiet_hours_start: str = "18:00"
    quiet_hours_end: str = "09:00"
    quiet_weekends: bool = True

    # Compliance checks run on every draft before a reviewer sees it.
    banned_phrases: list[str] = Field(default_factory=list)
    required_disclosure: str = Field(default="", max_length=300)
    max_length: int | None = Field(default=None, ge=100, le=3150)
    allowed_domains: list[str] = Field(default_factory=list)

    # Sharing: approved posts reach people over a window of working hours, a few a day.
    share_window_hours: int = Field(default=4, ge=0, le=72)
    share_daily_cap: int = Field(default=2, ge=1, le=20)
    # LinkedIn's feed composer takes a caption but is undocumented; share-offsite takes
    # only the link, and is the documented way.
    linkedin_share: Literal["composer", "offsite"] = "composer"
    # Feeds: how often each is read, in minutes.
    feed_poll_minutes: int = Field(default=15, ge=5, le=1440)

    # Weekly digests (to `digest_channels`): the day and local time they go out, and whether
    # people get personal notes unless they chose for themselves. Scheduled times before
    # `digests_from` (an ISO timestamp, set whenever an admin changes any of these) are not
    # caught up, so a channel added on a Thursday hears first on the next digest day.
    digest_day: Literal[
        "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"
    ] = "monday"
    digest_time: str = "09:00"
    personal_notes_default: bool = True
    digests_from: str | None = None

    @field_validator("digest_time")
    @classmethod
    def _digest_time(cls, value: str) -> str:
        match = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", value.strip())
        if match is None:
            raise ValueError(f"{value!r} is not a time like 09:00")
        return f"{int(match[1]):02d}:{match[2]}"

    @field_validator("allowed_domains")
    @classmethod
    def _domains(cls, values: list[str]) -> list[str]:
        cleaned = []
        for value in values:
            domain = (
                value.strip().lower().removeprefix("https://").removeprefix("http://").strip("/.")
            )
            if not domain:
                continue
            if not re.fullmatch(r"[a-z0-9-]+(\.[a-z0-9-]+)+", domain):
                raise ValueError(f"{value!r} is not a domain like example.com")
            cleaned.append(domain)
        return cleaned

    def compliance(self) -> Rules:
        return Rules(
            banned_phrases=tuple(self.banned_phrases),
            required_disclosure=self.required_disclosure,
            max_length=self.max_length,
            allowed_domains=tuple(self.allowed_domains),
        )

    @field_validator("quiet_hours_start", "quiet_hours_end")
    @classmethod
    def _clock_time(cls, value: str) -> str:
        try:
            parsed = time.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(f"{value!r} is not a time like 18:00") from None
        return parsed.strftime("%H:%M")

    @model_validator(mode="after")
    def _some_working_time(self) -> WorkspaceSettings:
        if self.quiet_hours_start <= self.quiet_hours_end:
            raise ValueError(
                "quiet hours run overnight: their start (like 18:00) "
                "comes after their end (like 09:00)"
            )
        return self

    def working_hours(self) -> WorkingHours:
        """Quiet hours as the working hours in which nudges may land."""
        return WorkingHours(
            start=time.fromisoformat(self.quiet_hours_end),
            end=time.fromisoformat(self.quiet_hours_start),
            weekends_off=self.quiet_weekends,
        )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        if value not in _zones():
            raise ValueError(f"unknown time zone {value!r} (use a name like Europe/Paris)")
        return value


_ZONES: frozenset[str] | None = None


def _zones() -> frozenset[str]:
    global _ZONES
    if _ZONES is None:
        _ZONES = frozenset(available_timezones())
    return _ZONES


def load(workspace: Workspace) -> WorkspaceSettings:
    return WorkspaceSettings.model_validate(workspace.settings or {})


def save(workspace: Workspace, settings: WorkspaceSettings) -> None:
    # A new dict, so SQLAlchemy sees the JSON column change.
    workspace.settings = {**(workspace.settings or {}), **settings.model_dump()}
