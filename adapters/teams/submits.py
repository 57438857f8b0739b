"""Adaptive Card submits back to neutral values: a button press or a filled-in form.

Card data comes from the client, so it is read as untrusted: only our reserved keys and
`<shape>:<field>` inputs (see `cards.input_id`), each within the limits the card was
rendered with, and with a form at hand only its fields and its options. Anything else is
`BadSubmit`, whose message is safe to show.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from adapters.teams.cards import ISO_DATE, SHAPES, input_id
from adapters.teams.sizes import BUTTON_VALUE, INPUT_MAX, NAME, OPTION_VALUE, OPTIONS, STATE, clip
from handlers.core.messages import Form, FormValue, SelectField, TextField

MAX_INPUTS = 100
ACTION_NAME = 255


@dataclass(frozen=True, slots=True)
class Pressed:
    """A button press: the action name and its value."""

    action: str
    value: str


@dataclass(frozen=True, slots=True)
class Submitted:
    """A submitted form: values in the same shapes the Slack adapter produces."""

    form_id: str
    state: str
    values: dict[str, FormValue]


class BadSubmit(ValueError):
    """Submit data that is not ours or is malformed; the message is safe to show."""


# Keys Teams itself may add to a submit's data.
_TEAMS_KEYS = frozenset({"msteams"})


def _string(data: Mapping[str, Any], key: str, limit: int, *, required: bool) -> str:
    value = data.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise BadSubmit(f"{key!r} must be text, not {type(value).__name__}")
    if required and not value:
        raise BadSubmit(f"{key!r} is empty")
    if len(value) > limit:
        raise BadSubmit(f"{key!r} is longer than {limit} characters")
    return value


def parse_submit(
    data: Mapping[str, Any], forms: Mapping[str, Form] | None = None
) -> Pressed | Submitted:
    """Card submit data back to a neutral press or submission; BadSubmit on anything else.

    With `forms`, a submission is also checked against its form: only its fields, within
    their lengths, choices among its options, dates as dates.
    """
    if not isinstance(data, Mapping):
        raise BadSubmit(f"submit data must be an object, not {type(data).__name__}")
    if "form" in data and "action" in data:
        raise BadSubmit("submit data has both 'form' and 'action'")
    if "action" in data:
        extra = set(data) - {"action", "value"} - _TEAMS_KEYS
        if extra:
            raise BadSubmit(f"unexpected keys in a button press: {', '.join(sorted(extra))}")
        return Pressed(
            action=_string(data, "action", ACTION_NAME, required=True),
            value=_string(data, "value", BUTTON_VALUE, required=False),
        )
    if "form" not in data:
        raise BadSubmit("submit data has neither 'action' nor 'form'")
    form_id = _string(data, "form", NAME, required=True)
    state = _string(data, "state", STATE, required=False)
    inputs = {k: v for k, v in data.items() if k not in ("form", "state") and k not in _TEAMS_KEYS}
    if len(inputs) > MAX_INPUTS:
        raise BadSubmit(f"more than {MAX_INPUTS} inputs")
    if forms is None:
        return Submitted(form_id, state, _loose_values(inputs))
    form = forms.get(form_id)
    if form is None:
        raise BadSubmit(f"unknown form {form_id!r}")
    return Submitted(form_id, state, _form_values(form, inputs))


def _split_id(key: str) -> tuple[str, str]:
    shape, sep, name = key.partition(":")
    if not sep or shape not in SHAPES or not name or len(name) > NAME:
        raise BadSubmit(f"unexpected input {clip(key, 60)!r}")
    return shape, name


def _raw(key: str, value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise BadSubmit(f"input {clip(key, 60)!r} must be text, not {type(value).__name__}")
    return value


def _shaped(shape: str, name: str, raw: str) -> FormValue:
    """One input's value in the Slack translation's shapes."""
    match shape:
        case "text":
            if len(raw) > INPUT_MAX:
                raise BadSubmit(f"{name!r} is longer than {INPUT_MAX} characters")
            return raw
        case "one":
            if len(raw) > OPTION_VALUE:
                raise BadSubmit(f"{name!r} is longer than {OPTION_VALUE} characters")
            return raw
        case "many":
            picked = tuple(v for v in raw.split(",") if v) if raw else ()
            if len(picked) > OPTIONS or any(len(v) > OPTION_VALUE for v in picked):
                raise BadSubmit(f"{name!r} has too many or too long choices")
            return picked
    if not raw:
        return None
    try:
        if not ISO_DATE.fullmatch(raw):
            raise ValueError(raw)
        date.fromisoformat(raw)
    except ValueError:
        raise BadSubmit(f"{name!r} is not a date (YYYY-MM-DD)") from None
    return raw


def _loose_values(inputs: Mapping[str, Any]) -> dict[str, FormValue]:
    values: dict[str, FormValue] = {}
    for key, value in inputs.items():
        shape, name = _split_id(key)
        values[name] = _shaped(shape, name, _raw(key, value))
    return values


def _form_values(form: Form, inputs: Mapping[str, Any]) -> dict[str, FormValue]:
    by_id = {input_id(f): f for f in form.fields}
    unknown = [k for k in inputs if k not in by_id]
    if unknown:
        raise BadSubmit(f"{clip(unknown[0], 60)!r} is not a field of {form.form_id!r}")
    values: dict[str, FormValue] = {}
    for key, f in by_id.items():
        shape, name = _split_id(key)
        raw = _raw(key, inputs.get(key))
        match f:
            case TextField(max_length=limit) if limit is not None and len(raw) > limit:
                raise BadSubmit(f"{f.label!r} is longer than {limit} characters")
            case SelectField(options=options):
                allowed = [o.value[:OPTION_VALUE] for o in options[:OPTIONS]]
                values[name] = _among(f, raw, allowed)
                continue
        values[name] = _shaped(shape, name, raw)
    return values


def _among(f: SelectField, raw: str, allowed: Sequence[str]) -> FormValue:
    """Chosen option values; Teams joins a multi-select's with commas, which values may hold."""
    if not raw:
        return () if f.multi else ""
    if not f.multi:
        if raw not in allowed:
            raise BadSubmit(f"{f.label!r}: {clip(raw, 60)!r} is not one of the choices")
        return raw
    parts = raw.split(",")
    picked: list[str] = []
    i = 0
    while i < len(parts):
        for j in range(len(parts), i, -1):
            candidate = ",".join(parts[i:j])
            if candidate in allowed:
                picked.append(candidate)
                i = j
                break
        else:
            raise BadSubmit(f"{f.label!r}: {clip(parts[i], 60)!r} is not one of the choices")
    return tuple(picked)


__all__ = ["BadSubmit", "Pressed", "Submitted", "parse_submit"]
