"""Per-workspace settings, stored as JSON on the workspace row and validated here."""

from __future__ import annotations

from zoneinfo import available_timezones

from pydantic import BaseModel, ConfigDict, Field, field_validator

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
