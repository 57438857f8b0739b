"""The weekly-digest block of `admin_form`: day, local time and the personal-notes default."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from handlers.core.messages import FormField, FormValue, Option, SelectField, TextField
from handlers.core.workspace_settings import WorkspaceSettings

DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_TIME = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)")


def form_fields(current: WorkspaceSettings) -> tuple[FormField, ...]:
    """The digest fields, showing the current settings."""
    return (
        SelectField(
            name="digest_day",
            label="Weekly digest day",
            options=tuple(Option(value=day, label=day.title()) for day in DAYS),
            initial=(current.digest_day,),
            hint="Digest channels hear about the seven days before it.",
        ),
        TextField(
            name="digest_time",
            label="Weekly digest time",
            initial=current.digest_time,
            placeholder="09:00",
            max_length=5,
            hint="In the workspace time zone, 24-hour clock.",
        ),
        SelectField(
            name="personal_notes_default",
            label="Personal weekly notes",
            options=(
                Option(value="yes", label="On, unless someone turns them off"),
                Option(value="no", label="Off, unless someone turns them on"),
            ),
            initial=("yes" if current.personal_notes_default else "no",),
        ),
    )


def apply(
    values: dict[str, FormValue],
    current: WorkspaceSettings,
    update: dict[str, Any],
    now: datetime,
) -> dict[str, str]:
    """Add the digest fields of a submitted form to `update`; errors by field name.

    When the channels, day or time change, digests start afresh from now: a scheduled time
    already past is not caught up in a channel that was not set up for it.
    """
    errors: dict[str, str] = {}
    day = (_text(values.get("digest_day")) or current.digest_day).lower()
    if day not in DAYS:
        errors["digest_day"] = "Choose a day of the week, like Monday."
    raw_time = _text(values.get("digest_time")) or current.digest_time
    match = _TIME.fullmatch(raw_time)
    if match is None:
        errors["digest_time"] = f"“{raw_time}” is not a time like 09:00 (24-hour clock)."
    notes = _text(values.get("personal_notes_default")) or (
        "yes" if current.personal_notes_default else "no"
    )
    if notes not in ("yes", "no"):
        errors["personal_notes_default"] = "Choose on or off."
    if errors:
        return errors
    assert match is not None
    update["digest_day"] = day
    update["digest_time"] = f"{int(match[1]):02d}:{match[2]}"
    update["personal_notes_default"] = notes == "yes"
    channels = update.get("digest_channels", current.digest_channels)
    if (
        channels != current.digest_channels
        or update["digest_day"] != current.digest_day
        or update["digest_time"] != current.digest_time
    ):
        update["digests_from"] = now.isoformat()
    return {}


def _text(value: FormValue) -> str | None:
    if isinstance(value, tuple):
        value = value[0] if value else None
    return value.strip() or None if value else None
