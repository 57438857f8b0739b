"""Action ids live in one place, and every button's action has a handler."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import cast

from bot.flows import build_router
from handlers.core import actions
from handlers.core.context import Config
from storage.db import SessionFactory
from testing.fakes.clock import FrozenClock

ROOT = Path(__file__).resolve().parent.parent


def button_actions() -> list[tuple[str, ast.expr]]:
    """Every `action=` given to a `Button(...)` in the handlers, with where it is."""
    found = []
    for path in (ROOT / "handlers").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Button":
                for keyword in node.keywords:
                    if keyword.arg == "action":
                        where = f"{path.relative_to(ROOT)}:{node.lineno}"
                        found.append((where, keyword.value))
    return found


def test_every_registered_action_is_a_known_action_id() -> None:
    router = build_router(cast(SessionFactory, None), FrozenClock(), Config())
    assert set(router.actions) == set(actions.ALL)


def test_buttons_name_their_action_by_its_constant() -> None:
    literal = [where for where, value in button_actions() if isinstance(value, ast.Constant)]
    assert literal == [], "write actions.NAME, not the string"
    assert len(button_actions()) > 20


def test_every_action_constant_a_button_names_has_a_handler() -> None:
    router = build_router(cast(SessionFactory, None), FrozenClock(), Config())
    named = {
        value.attr
        for _, value in button_actions()
        if isinstance(value, ast.Attribute)
        and isinstance(value.value, ast.Name)
        and value.value.id == "actions"
    }
    assert named, "buttons name actions.NAME"
    assert {getattr(actions, name) for name in named} <= set(router.actions)
