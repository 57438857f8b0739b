"""Benchmarks run by hand (`python -m benchmarks [name …]`), never asserted in the test suite.

Each benchmark measures Flywheel against a baseline taken in the same run and returns a flat
dict of figures; `report` prints them as a table and keeps them as JSON in
`benchmarks/results/` (git-ignored).
"""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"
ROOT = Path(__file__).parent.parent
POSTGRES_URL = os.environ.get(
    "FLYWHEEL_BENCH_POSTGRES_URL",
    os.environ.get(
        "FLYWHEEL_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    ),
)

Figures = dict[str, Any]


def percentile(values: Sequence[float], fraction: float) -> float:
    """The `fraction` quantile (0.99 for p99) by nearest rank; NaN when there are no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def verdict(value: float, target: float, *, at_most: bool = False) -> str:
    """`met` or `missed` for a figure against its target."""
    ok = value <= target if at_most else value >= target
    return "met" if ok else "missed"


def report(name: str, figures: Figures) -> Path:
    """Print `figures` as a two-column table and write them, with the run's context, as JSON."""
    width = max(len(key) for key in figures)
    print(f"\n{name}")
    print("-" * (width + 24))
    for key, value in figures.items():
        shown = f"{value:,.3f}" if isinstance(value, float) else str(value)
        print(f"{key:<{width}}  {shown}")
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS / f"{name}-{stamp}.json"
    context = {
        "benchmark": name,
        "at": stamp,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        # Other work on the machine skews absolute figures; the ratios hold up better.
        "load average at the end": os.getloadavg(),
    }
    path.write_text(json.dumps({**context, "figures": figures}, indent=2, default=str) + "\n")
    print(f"(written to {path.relative_to(ROOT)})")
    return path


class Stopwatch:
    """Monotonic seconds since creation."""

    def __init__(self) -> None:
        self.started = time.perf_counter()

    def __call__(self) -> float:
        return time.perf_counter() - self.started
