"""What ``evaluate`` writes: a CSV of per-sample scores, a markdown table, and a picture strip
of the worst samples (first input, second input, ours, ground truth, error map)."""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .metrics import Scores

CSV_COLUMNS = ("sample", "width", "height", "psnr", "ssim", "ie", "mae")
# Error maps show |difference| x this gain, so errors of a few levels are visible.
ERROR_GAIN = 4.0
# Each picture in the strip is scaled to at most this width (pixels), to keep the file small.
STRIP_TILE_WIDTH = 320
STRIP_LABEL_HEIGHT = 16
STRIP_COLUMNS = ("frame 0", "frame 1", "ours", "ground truth", f"error x{ERROR_GAIN:g}")


@dataclass(frozen=True)
class SampleResult:
    name: str
    width: int
    height: int
    scores: Scores


@dataclass(frozen=True)
class StripRow:
    """The pictures of one sample for the strip, each (H, W, 3) uint8."""

    result: SampleResult
    first: np.ndarray
    second: np.ndarray
    ours: np.ndarray
    truth: np.ndarray


def summarise(results: Sequence[SampleResult]) -> Scores:
    """Per-measure mean over samples (the literature's data-set score)."""
    if not results:
        raise ValueError("no results to summarise")
    return Scores(
        **{
            field: float(np.mean([getattr(result.scores, field) for result in results]))
            for field in ("psnr", "ssim", "ie", "mae")
        }
    )


def write_csv(path: str | os.PathLike[str], results: Sequence[SampleResult]) -> None:
    """One row per sample plus a final ``mean`` row; full float precision."""
    summary = summarise(results)
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(CSV_COLUMNS)
        for result in results:
            writer.writerow([result.name, result.width, result.height, *_values(result.scores)])
        writer.writerow(["mean", "", "", *_values(summary)])


def _values(scores: Scores) -> list[str]:
    return [repr(float(value)) for value in (scores.psnr, scores.ssim, scores.ie, scores.mae)]


def markdown_table(
    results: Sequence[SampleResult], *, title: str, details: Sequence[tuple[str, str]] = ()
) -> str:
    """A markdown report: title, a list of run details, the overall means, then one row per
    sample (PSNR and IE to 2 decimals, SSIM to 4, as papers print them)."""
    summary = summarise(results)
    lines = [f"# {title}", ""]
    lines += [f"- {label}: {value}" for label, value in details]
    lines += [f"- samples: {len(results)}", ""]
    lines += [
        "| | PSNR (dB) | SSIM | IE | MAE |",
        "|---|---:|---:|---:|---:|",
        f"| **mean** | {_row(summary)} |",
        "",
        "| sample | size | PSNR (dB) | SSIM | IE | MAE |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for result in results:
        name = result.name.replace("|", "\\|")
        lines.append(f"| {name} | {result.width}x{result.height} | {_row(result.scores)} |")
    return "\n".join(lines) + "\n"


def _row(scores: Scores) -> str:
    psnr = "inf" if math.isinf(scores.psnr) else f"{scores.psnr:.2f}"
    return f"{psnr} | {scores.ssim:.4f} | {scores.ie:.2f} | {scores.mae:.2f}"


def error_map(ours: np.ndarray, truth: np.ndarray, gain: float = ERROR_GAIN) -> np.ndarray:
    """(H, W, 3) uint8 heat map of the per-pixel RGB error length x ``gain``: black (none)
    through red and yellow to white (>= 255 after the gain)."""
    difference = ours.astype(np.float32) - truth.astype(np.float32)
    magnitude = np.sqrt(np.sum(difference**2, axis=2) / 3.0) * gain / 255.0
    level = np.clip(magnitude, 0.0, 1.0) * 3.0  # three ramps: red, green, blue
    ramps = [np.clip(level - offset, 0.0, 1.0) for offset in (0.0, 1.0, 2.0)]
    return np.round(np.stack(ramps, axis=2) * 255.0).astype(np.uint8)


def write_strip(path: str | os.PathLike[str], rows: Sequence[StripRow]) -> None:
    """A PNG with one row per sample: the five pictures of :data:`STRIP_COLUMNS`, each scaled
    to at most :data:`STRIP_TILE_WIDTH` wide, a header naming the columns, and the sample's
    name and scores above each row."""
    from PIL import Image, ImageDraw

    if not rows:
        raise ValueError("no rows for the picture strip")
    tiles = []
    for row in rows:
        pictures = (row.first, row.second, row.ours, row.truth, error_map(row.ours, row.truth))
        tiles.append([_thumbnail(picture) for picture in pictures])
    tile_width = max(tile.width for row_tiles in tiles for tile in row_tiles)
    width = tile_width * len(STRIP_COLUMNS)
    height = STRIP_LABEL_HEIGHT + sum(
        STRIP_LABEL_HEIGHT + max(tile.height for tile in row_tiles) for row_tiles in tiles
    )
    strip = Image.new("RGB", (width, height), (32, 32, 32))
    draw = ImageDraw.Draw(strip)
    for column, label in enumerate(STRIP_COLUMNS):
        draw.text((column * tile_width + 4, 2), label, fill=(255, 255, 255))
    top = STRIP_LABEL_HEIGHT
    for row, row_tiles in zip(rows, tiles, strict=True):
        scores = row.result.scores
        draw.text(
            (4, top + 2),
            f"{row.result.name}: PSNR {scores.psnr:.2f} dB, SSIM {scores.ssim:.4f}, "
            f"IE {scores.ie:.2f}",
            fill=(255, 220, 120),
        )
        top += STRIP_LABEL_HEIGHT
        for column, tile in enumerate(row_tiles):
            strip.paste(tile, (column * tile_width, top))
        top += max(tile.height for tile in row_tiles)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    strip.save(path)


def _thumbnail(picture: np.ndarray):
    from PIL import Image

    image = Image.fromarray(picture)
    if image.width > STRIP_TILE_WIDTH:
        height = max(1, round(image.height * STRIP_TILE_WIDTH / image.width))
        image = image.resize((STRIP_TILE_WIDTH, height), Image.Resampling.LANCZOS)
    return image
