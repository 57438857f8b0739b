"""The Teams app icons, drawn in code: a flywheel — a ring turning around its hub.

Teams wants a 192×192 full-colour icon and a 32×32 outline icon that is white on a
transparent background. Both are drawn large and scaled down, so edges are smooth, and
the same code always yields the same bytes.
"""

from __future__ import annotations

import io
import math

from PIL import Image, ImageDraw

ACCENT = "#2456A6"
COLOR_SIZE = 192
OUTLINE_SIZE = 32
# Drawn this many times larger, then scaled down for smooth edges.
SUPERSAMPLE = 8
WHITE = (255, 255, 255)

# The ring runs clockwise from START to END degrees (0° is three o'clock, y points down);
# the gap before START is where the arrowhead chases the ring's tail.
START = 300.0
END = 220.0


def _mark(size: int, extent: float, stroke: float) -> Image.Image:
    """The mark as an alpha mask: `extent` is its share of the canvas, `stroke` the ring's."""
    big = size * SUPERSAMPLE
    mask = Image.new("L", (big, big), 0)
    draw = ImageDraw.Draw(mask)
    centre = big / 2
    outer = big * extent / 2
    width = big * stroke
    radius = outer - width / 2
    box = (centre - outer, centre - outer, centre + outer, centre + outer)
    draw.arc(box, START, END, fill=255, width=round(width))

    # The arrowhead at the ring's end, pointing the way it turns.
    theta = math.radians(END)
    x, y = centre + radius * math.cos(theta), centre + radius * math.sin(theta)
    tangent = (-math.sin(theta), math.cos(theta))
    normal = (math.cos(theta), math.sin(theta))
    half = width * 1.15
    length = width * 1.6
    head = [
        (x + tangent[0] * length, y + tangent[1] * length),
        (x + normal[0] * half, y + normal[1] * half),
        (x - normal[0] * half, y - normal[1] * half),
    ]
    draw.polygon(head, fill=255)

    hub = width * 0.95
    draw.ellipse((centre - hub, centre - hub, centre + hub, centre + hub), fill=255)
    return mask.resize((size, size), Image.Resampling.LANCZOS)


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=False)
    return out.getvalue()


def color_icon() -> bytes:
    """192×192 PNG: the white mark on the accent colour, edge to edge (Teams rounds it)."""
    mask = _mark(COLOR_SIZE, extent=0.56, stroke=0.075)
    image = Image.new("RGB", (COLOR_SIZE, COLOR_SIZE), ACCENT)
    image.paste(Image.new("RGB", image.size, WHITE), mask=mask)
    return _png(image)


def outline_icon() -> bytes:
    """32×32 PNG: the mark in white on transparency; only the alpha varies."""
    mask = _mark(OUTLINE_SIZE, extent=0.82, stroke=0.11)
    image = Image.new("RGBA", (OUTLINE_SIZE, OUTLINE_SIZE), (*WHITE, 0))
    image.putalpha(mask)
    return _png(image)
