"""Control characters are taken out of everything that comes in, in one way for everyone.

PostgreSQL refuses NUL in text (and `\\u0000` in JSONB) where SQLite stores it, and the
other C0 and C1 controls are invisible in every client, so they carry nothing a person
meant to write. They are removed before anything is stored or answered, so both databases
behave alike and no reply is lost to them. Newlines and tabs stay; `\\r\\n` and a lone
`\\r` become `\\n`. Private-use and other printable characters are left as they are.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, TypeVar

T = TypeVar("T")

_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_NEEDS_WORK = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_RETURNS = re.compile(r"\r\n?")


def clean_text(text: str) -> str:
    """`text` without C0/C1 control characters other than newline and tab."""
    if not _NEEDS_WORK.search(text):
        return text
    return _CONTROLS.sub("", _RETURNS.sub("\n", text))


def cleaned(value: T) -> T:
    """`value` with every string in it cleaned: strings, and strings inside lists, tuples,
    dicts (keys too) and dataclass instances, at any depth. What needs no change is
    returned as is (the same object), so the common case costs one scan per string."""
    return _clean(value)  # type: ignore[no-any-return]


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        items = [(_clean(k), _clean(v)) for k, v in value.items()]
        if all(k is k0 and v is v0 for (k, v), (k0, v0) in zip(items, value.items(), strict=True)):
            return value
        return dict(items)
    if isinstance(value, list | tuple):
        parts = [_clean(v) for v in value]
        if all(p is v for p, v in zip(parts, value, strict=True)):
            return value
        return type(value)(parts)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changed = {}
        for field in dataclasses.fields(value):
            if not field.init:
                continue
            before = getattr(value, field.name)
            after = _clean(before)
            if after is not before:
                changed[field.name] = after
        return dataclasses.replace(value, **changed) if changed else value
    return value
