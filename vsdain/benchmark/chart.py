"""A bar chart of time per output frame (ours, naive, MVTools per size and multi), drawn with
Pillow so the bench needs no plotting library. The axis is logarithmic: MVTools is about a
thousand times faster than DAIN, and a linear axis would show it as nothing."""

from __future__ import annotations

import math
from pathlib import Path

from .runner import Results

SERIES = (("ours", (31, 119, 180)), ("naive", (255, 127, 14)), ("MVTools", (44, 160, 44)))
GROUP_WIDTH = 160
BAR_WIDTH = 46
PLOT_HEIGHT = 360
LEFT, RIGHT, TOP, BOTTOM = 80, 24, 96, 70
MIN_WIDTH = 560  # room for the title and legend with a single group
GRID = (220, 220, 220)
INK = (30, 30, 30)


def draw(results: Results, path: Path) -> None:
    """Write the chart as a PNG at ``path``. Needs Pillow (the ``dev`` extra)."""
    from PIL import Image, ImageDraw

    groups = [
        (f"{size.width}x{size.height}", f"multi={config.multi}", values)
        for size in results.sizes
        for config in size.configs
        for values in [
            (
                config.ours.seconds_per_frame,
                config.naive.seconds_per_frame,
                config.mvtools.seconds_per_frame if config.mvtools else None,
            )
        ]
    ]
    seconds = [value for *_, values in groups for value in values if value]
    low = math.floor(math.log10(min(seconds)))
    high = math.ceil(math.log10(max(seconds)))
    high = max(high, low + 1)

    width = max(MIN_WIDTH, LEFT + RIGHT + GROUP_WIDTH * len(groups))
    height = TOP + PLOT_HEIGHT + BOTTOM
    image = Image.new("RGB", (width, height), "white")
    pen = ImageDraw.Draw(image)
    font, small = _font(15), _font(12)

    def y_of(value: float) -> float:
        return TOP + PLOT_HEIGHT * (high - math.log10(value)) / (high - low)

    pen.text((LEFT, 10), "Time per output frame (log scale)", fill=INK, font=font)
    pen.text((LEFT, 32), f"{results.machine.device}; {results.machine.cpu}", fill=INK, font=small)
    for exponent in range(low, high + 1):
        y = y_of(10.0**exponent)
        pen.line([(LEFT, y), (width - RIGHT, y)], fill=GRID)
        pen.text((8, y - 7), _seconds(10.0**exponent), fill=INK, font=small)
    pen.line([(LEFT, TOP), (LEFT, TOP + PLOT_HEIGHT)], fill=INK)
    pen.line([(LEFT, TOP + PLOT_HEIGHT), (width - RIGHT, TOP + PLOT_HEIGHT)], fill=INK)

    for index, (size_label, multi_label, values) in enumerate(groups):
        left = LEFT + index * GROUP_WIDTH + (GROUP_WIDTH - BAR_WIDTH * len(SERIES)) / 2
        for offset, ((_, colour), value) in enumerate(zip(SERIES, values, strict=True)):
            if not value:
                continue
            x = left + offset * BAR_WIDTH
            pen.rectangle([x + 2, y_of(value), x + BAR_WIDTH - 2, TOP + PLOT_HEIGHT], fill=colour)
            pen.text((x + 1, y_of(value) - 15), _seconds(value), fill=INK, font=small)
        centre = LEFT + index * GROUP_WIDTH + GROUP_WIDTH / 2
        for line, text in enumerate((size_label, multi_label)):
            pen.text(
                (centre, TOP + PLOT_HEIGHT + 10 + 18 * line),
                text,
                fill=INK,
                font=small,
                anchor="ma",
            )

    for offset, (name, colour) in enumerate(SERIES):
        x = LEFT + offset * 110
        pen.rectangle([x, 56, x + 14, 70], fill=colour)
        pen.text((x + 20, 56), name, fill=INK, font=small)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow built without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def _seconds(value: float) -> str:
    if value >= 1:
        return f"{value:.3g} s"
    if value >= 1e-3:
        return f"{value * 1e3:.3g} ms"
    return f"{value * 1e6:.3g} µs"
