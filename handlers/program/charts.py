"""Charts of the weekly trends as geometry for a server-rendered SVG.

One series per chart, drawn as bars with the highest value and the first and last weeks
written on the axes: nothing depends on telling colours apart, each bar carries its own
text, and the same figures are in the table beside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

WIDTH, HEIGHT = 640, 200
LEFT, RIGHT, TOP, BOTTOM = 48, 8, 12, 28


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str


@dataclass(frozen=True, slots=True)
class Chart:
    id: str
    title: str
    description: str
    bars: tuple[Bar, ...]
    top: int  # the value of the axis' top line
    first: str
    last: str
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right: int = RIGHT
    plot_top: int = TOP
    base: int = HEIGHT - BOTTOM


def bar_chart(chart_id: str, title: str, labels: Sequence[str], values: Sequence[int]) -> Chart:
    """A bar per value; the description says what a reader would take from it."""
    top = max([*values, 1])
    inner_w, inner_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = inner_w / max(len(values), 1)
    bars = tuple(
        Bar(
            x=round(LEFT + i * step + step * 0.1, 2),
            y=round(HEIGHT - BOTTOM - inner_h * v / top, 2),
            width=round(step * 0.8, 2),
            height=round(inner_h * v / top, 2),
            label=f"{label}: {v:,}",
        )
        for i, (label, v) in enumerate(zip(labels, values, strict=True))
    )
    if values:
        high = max(range(len(values)), key=lambda i: values[i])
        description = (
            f"{title} per week over {len(values)} weeks: {sum(values):,} in all, highest "
            f"{values[high]:,} in the week of {labels[high]}, last week {values[-1]:,}."
        )
    else:
        description = f"No {title.lower()} in this period."
    return Chart(
        id=chart_id,
        title=title,
        description=description,
        bars=bars,
        top=top,
        first=labels[0] if labels else "",
        last=labels[-1] if labels else "",
    )
