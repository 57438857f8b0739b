"""The one-way arrows of DESIGN.md: bot → adapters → handlers → storage."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PLATFORM_SDKS = ("slack_bolt", "slack_sdk", "botbuilder", "botframework", "aiohttp", "openai")


def imports(folder: str) -> list[tuple[Path, str]]:
    found = []
    for path in (ROOT / folder).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found += [(path, alias.name) for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.append((path, node.module))
    return found


def offenders(folder: str, forbidden: tuple[str, ...]) -> list[str]:
    return [
        f"{path.relative_to(ROOT)} imports {module}"
        for path, module in imports(folder)
        if module.split(".")[0] in forbidden
    ]


@pytest.mark.parametrize(
    ("folder", "forbidden"),
    [
        ("handlers", (*PLATFORM_SDKS, "adapters", "bot")),
        ("storage", (*PLATFORM_SDKS, "adapters", "bot", "handlers")),
        ("adapters", ("bot",)),
    ],
)
def test_arrows_point_one_way(folder: str, forbidden: tuple[str, ...]) -> None:
    assert offenders(folder, forbidden) == []


def test_botbuilder_stays_inside_the_teams_adapter() -> None:
    outside = [
        f"{path.relative_to(ROOT)} imports {module}"
        for folder in ("bot", "handlers", "storage", "adapters")
        for path, module in imports(folder)
        if module.split(".")[0] in ("botbuilder", "botframework")
        and "adapters/teams" not in path.as_posix()
    ]
    assert outside == []


@pytest.mark.parametrize("folder", ["bot", "adapters", "handlers", "storage"])
def test_the_product_never_imports_test_support(folder: str) -> None:
    assert offenders(folder, ("tests", "testing")) == []


@pytest.mark.parametrize("folder", ["benchmarks", "testing"])
def test_benchmarks_and_test_support_never_import_the_tests(folder: str) -> None:
    """Fakes and builders live in `testing/`, which both the tests and the benchmarks import."""
    assert offenders(folder, ("tests",)) == []
