"""The digest chart with matplotlib's Agg backend: no display, no pyplot state, thread-safe."""

from __future__ import annotations

import io

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from handlers.core.ports import ChartSeries

WIDTH, HEIGHT, DPI = 8.0, 3.6, 100
COLOURS = ("#4A6CF7", "#F2994A", "#27AE60", "#9B51E0")


class MatplotlibChart:
    """The first series as bars, the second as a line on its own right-hand scale (clicks
    outnumber shares by far, and one scale would flatten the rest), further series as lines
    on the left-hand scale."""

    def render_png(self, chart: ChartSeries) -> bytes:
        """The chart as PNG bytes."""
        figure = Figure(figsize=(WIDTH, HEIGHT), dpi=DPI)
        FigureCanvasAgg(figure)
        left = figure.add_subplot()
        positions = list(range(len(chart.weeks)))
        (name, values), *rest = chart.series
        left.bar(positions, values, color=COLOURS[0], alpha=0.75, label=name)
        for colour, (other, others) in zip(COLOURS[2:], rest[1:], strict=False):
            left.plot(positions, others, marker="o", color=colour, label=other)
        left.set_xticks(positions, list(chart.weeks), fontsize=8)
        left.set_title(chart.title, fontsize=11, loc="left")
        left.set_ylim(bottom=0)
        left.yaxis.set_major_locator(MaxNLocator(integer=True))
        left.spines["top"].set_visible(False)
        handles, labels = left.get_legend_handles_labels()
        if rest:
            right = left.twinx()
            right_name, right_values = rest[0]
            right.plot(positions, right_values, marker="s", color=COLOURS[1], label=right_name)
            right.set_ylabel(right_name, fontsize=9)
            right.set_ylim(bottom=0)
            right.yaxis.set_major_locator(MaxNLocator(integer=True))
            right.spines["top"].set_visible(False)
            more_handles, more_labels = right.get_legend_handles_labels()
            handles, labels = handles + more_handles, labels + more_labels
        left.legend(handles, labels, loc="upper left", fontsize=8, frameon=False)
        figure.tight_layout()
        out = io.BytesIO()
        figure.savefig(out, format="png")
        return out.getvalue()
