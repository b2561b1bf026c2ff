"""Memory and time of the filter untiled, with automatic tiling under a memory cap, and with a
forced small tile; plus a per-pixel memory model that predicts sizes this machine cannot run.

Each row pulls the first two output frames of ``vsdain.Interpolate(clip, 2)`` (one source
copy, one synthesised frame: one pair's whole work, both frames' features included) with
scene-cut detection off. Peak memory is above what the process held before those frames (see
:mod:`vsdain.memory`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import torch
import vapoursynth as vs

from ..memory import PeakMemory, available_bytes
from ..model import DAIN, Padding
from ..model.synthesis import SYNTHESIS_RADIUS
from ..model.tiling import largest_grown_pixels
from .timing import frame_to_tensor, synchronize

# The cap each size's automatic row runs under (MiB): what a user of a GPU of about that size
# would set. The targets: 720p under 4 GiB, 1080p under 8 GiB.
BUDGETS_MIB = {(448, 256): 1024, (1280, 720): 4096, (1920, 1080): 8192}
DEFAULT_BUDGET_MIB = 4096
FORCED_TILE = 128
# A 4K frame (3840x2160, padded 3904x2176) on a GPU in float16: what the model predicts.
PREDICTED_SIZE = (3840, 2160)
PREDICTED_TILE = 512
# Untiled 1080p measured about 15 GiB here; skip it where less than this is available.
UNTILED_HEADROOM = 1.3


@dataclass(frozen=True)
class TilingRow:
    """One configuration at one size. tile: what ran ("whole frame", "128 px", ...);
    peak_bytes / seconds_per_frame: None when skipped (note says why)."""

    width: int
    height: int
    mode: str
    tile: str
    peak_bytes: int | None
    seconds_per_frame: float | None
    note: str = ""


@dataclass(frozen=True)
class PixelCosts:
    """Per padded pixel at one size, in bytes: the features two frames and a pair hold
    (features), and one untiled timestamp's work on top (timestamp, None if not measured)."""

    width: int
    height: int
    padded_pixels: int
    features: float
    timestamp: float | None


@dataclass(frozen=True)
class TilingResults:
    rows: list[TilingRow]
    costs: list[PixelCosts]


class _TileLog(logging.Handler):
    """Catches the filter's one line about its automatic choice."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith("tiling:") or "retrying with" in message:
            self.messages.append(message)


def measure(model: DAIN, sources: dict[tuple[int, int], vs.VideoNode]) -> TilingResults:
    """Every size in ``sources`` (RGBS clips of at least two frames, held in memory)."""
    rows, costs = [], []
    _warm_up(model)
    for (width, height), clip in sources.items():
        features = _features_peak(model, clip)
        budget = BUDGETS_MIB.get((width, height), DEFAULT_BUDGET_MIB)
        padded = Padding.for_size(height, width).padded_size
        size_rows = []
        available = available_bytes(_device(model))
        untiled_estimate = _untiled_estimate(costs, padded[0] * padded[1])
        if (
            untiled_estimate is not None
            and available is not None
            and (untiled_estimate * UNTILED_HEADROOM > available)
        ):
            size_rows.append(
                TilingRow(
                    width,
                    height,
                    "untiled",
                    "whole frame",
                    None,
                    None,
                    f"skipped: needs about {untiled_estimate / 2**30:.1f} GiB, "
                    f"{available / 2**30:.1f} GiB available",
                )
            )
        else:
            size_rows.append(_row(model, clip, "untiled", tile=0))
        size_rows.append(
            _row(model, clip, f"automatic, max_memory={budget}", tile=None, max_memory=budget)
        )
        size_rows.append(_row(model, clip, f"forced tile={FORCED_TILE}", tile=FORCED_TILE))
        rows += size_rows
        untiled = size_rows[0].peak_bytes
        pixels = padded[0] * padded[1]
        costs.append(
            PixelCosts(
                width,
                height,
                pixels,
                features / pixels,
                None if untiled is None else max(0, untiled - features) / pixels,
            )
        )
    return TilingResults(rows, costs)


def _warm_up(model: DAIN) -> None:
    """One small untimed interpolation: the process's first network call pays for thread
    pools and weight layouts, which would otherwise land on the first row only."""
    device = _device(model)
    frames = torch.rand(2, 1, 3, 48, 64, generator=torch.Generator().manual_seed(0))
    model.interpolate(*(frame.to(device=device, dtype=_dtype(model)) for frame in frames), [0.5])
    synchronize(device)


def _row(model: DAIN, clip: vs.VideoNode, mode: str, **arguments) -> TilingRow:
    from ..filter import Interpolate

    handler = _TileLog()
    logger = logging.getLogger("vsdain")
    logger.addHandler(handler)
    previous_level = logger.level
    logger.setLevel(logging.INFO)
    try:
        window = Interpolate(clip, 2, sc=False, model=model, **arguments)[:2]
        device = _device(model)
        with PeakMemory(device) as peak:
            start = time.perf_counter()
            for _ in window.frames():
                pass
            synchronize(device)
            elapsed = time.perf_counter() - start
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous_level)
    tile = arguments.get("tile")
    if tile == 0:
        described = "whole frame"
    elif tile:
        described = f"{tile} px"
    else:
        described = _chosen(handler.messages)
    note = "; ".join(m for m in handler.messages if "retrying" in m)
    return TilingRow(clip.width, clip.height, mode, described, peak.bytes, elapsed / 2, note)


def _chosen(messages: list[str]) -> str:
    for message in messages:
        if message.startswith("tiling:"):
            choice = message.rsplit("; ", 1)[-1]
            return (
                "whole frame"
                if choice == "the whole frame"
                else choice.replace("-pixel tiles", " px")
            )
    return "?"


def _features_peak(model: DAIN, clip: vs.VideoNode) -> int:
    """Peak of two frames' features and their pair's, held together (what every timestamp
    of a pair works beside)."""
    device = _device(model)
    padding = Padding.for_size(clip.height, clip.width)
    images = [
        padding.pad(frame_to_tensor(clip.get_frame(n), device=device)).to(_dtype(model))
        for n in (0, 1)
    ]
    with PeakMemory(device) as peak, torch.inference_mode():
        first, second = (model.frame_features(image) for image in images)
        pair = model.pair_features(first, second)
        synchronize(device)
    del pair, first, second
    return peak.bytes or 0


def _untiled_estimate(costs: list[PixelCosts], pixels: int) -> float | None:
    measured = [c for c in costs if c.timestamp is not None]
    if not measured:
        return None
    largest = max(measured, key=lambda c: c.padded_pixels)
    return (largest.features + largest.timestamp) * pixels


def predict(costs: list[PixelCosts], bytes_per_value: float, size=PREDICTED_SIZE):
    """(untiled, tiled) predicted peak bytes at ``size`` from the largest measured size's
    per-pixel costs, scaled from float32 to ``bytes_per_value``; None without a measurement."""
    measured = [c for c in costs if c.timestamp is not None]
    if not measured:
        return None
    largest = max(measured, key=lambda c: c.padded_pixels)
    scale = bytes_per_value / 4
    width, height = size
    padded_height, padded_width = Padding.for_size(height, width).padded_size
    pixels = padded_height * padded_width
    grown = largest_grown_pixels(padded_height, padded_width, PREDICTED_TILE, SYNTHESIS_RADIUS)
    features = largest.features * pixels * scale
    return (
        features + largest.timestamp * pixels * scale,
        features + largest.timestamp * grown * scale,
    )


def report_lines(results: TilingResults) -> list[str]:
    lines = [
        "## Memory with tiling",
        "",
        "Two output frames (one pair, both frames' features included) of "
        "`vsdain.Interpolate(clip, 2)` per row; peak above what the process held before them. "
        "*untiled*: `tile=0`; *automatic*: `tile=None` under the cap given; *forced*: a small "
        "fixed tile. Tiling is exact (tests/test_tiling.py), so every row gives the same frames.",
        "",
        "| size | mode | tile | peak | time per output frame | time / untiled |",
        "|---|---|---|---:|---:|---:|",
    ]
    untiled_time = {}
    for row in results.rows:
        if row.mode == "untiled" and row.seconds_per_frame is not None:
            untiled_time[(row.width, row.height)] = row.seconds_per_frame
    for row in results.rows:
        base = untiled_time.get((row.width, row.height))
        ratio = (
            f"{row.seconds_per_frame / base:.2f}"
            if base and row.seconds_per_frame is not None
            else "-"
        )
        peak = "-" if row.peak_bytes is None else f"{row.peak_bytes / 2**30:.2f} GiB"
        seconds = "-" if row.seconds_per_frame is None else f"{row.seconds_per_frame:.1f} s"
        note = f" ({row.note})" if row.note else ""
        lines.append(
            f"| {row.width}x{row.height} | {row.mode}{note} | {row.tile} | {peak} | {seconds} "
            f"| {ratio} |"
        )
    lines += ["", "Per padded pixel, float32, this device:", ""]
    lines += ["| size | features (two frames + pair) | one untiled timestamp |", "|---|---:|---:|"]
    for cost in results.costs:
        timestamp = "-" if cost.timestamp is None else f"{cost.timestamp / 1024:.2f} KiB"
        lines.append(
            f"| {cost.width}x{cost.height} | {cost.features / 1024:.2f} KiB | {timestamp} |"
        )
    predicted = predict(results.costs, bytes_per_value=2)
    if predicted is not None:
        untiled, tiled = predicted
        width, height = PREDICTED_SIZE
        lines += [
            "",
            f"**Prediction, not a measurement:** {width}x{height} on a GPU in float16, scaling "
            f"the largest measured size's per-pixel costs by half (2-byte values): untiled "
            f"about {untiled / 2**30:.1f} GiB, with {PREDICTED_TILE}-pixel tiles about "
            f"{tiled / 2**30:.1f} GiB. This assumes the GPU's allocator needs what the CPU's "
            "resident memory showed; PyTorch's caching allocator and cuDNN workspaces differ.",
        ]
    return lines


def _device(model: DAIN) -> torch.device:
    return next(model.parameters()).device


def _dtype(model: DAIN) -> torch.dtype:
    return next(model.parameters()).dtype
