"""Running an interpolation method over triplets and scoring it.

A method maps two (H, W, 3) uint8 frames to the (H, W, 3) uint8 middle frame, i.e. the
frame as it would be saved to a PNG and scored by the literature's scripts.
"""

from __future__ import annotations

import heapq
import itertools
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .datasets import Triplet, read_triplet
from .metrics import score, to_8bit, to_float
from .report import SampleResult, StripRow

Method = Callable[[np.ndarray, np.ndarray], np.ndarray]
METHODS = ("dain", "average")


def average_frames(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """The frame-averaging baseline papers quote as a floor: the per-pixel mean of the two
    8-bit frames, rounded half to even (exact; computed on integers)."""
    total = first.astype(np.int32) + second.astype(np.int32)
    return np.round(total / 2.0).astype(np.uint8)


def dain_method(model, device: str = "cpu") -> Method:
    """DAIN at t = 0.5 via ``model.interpolate`` (any size; padded as the reference demo
    pads), the output brought to 8 bits as the demo saves it."""
    import torch

    def interpolate(first: np.ndarray, second: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            middle = model.interpolate(
                to_float(first).to(device), to_float(second).to(device), [0.5]
            )
        return to_8bit(middle[0])

    return interpolate


@dataclass(frozen=True)
class Evaluation:
    results: list[SampleResult]  # in the order of the triplets
    worst: list[StripRow]  # lowest PSNR first


def evaluate(
    triplets: Sequence[Triplet],
    method: Method,
    *,
    ssim_channels: str = "rgb",
    worst: int = 4,
    save_dir: str | os.PathLike[str] | None = None,
    on_sample: Callable[[SampleResult], None] | None = None,
) -> Evaluation:
    """Scores ``method`` on every triplet.

    worst: how many lowest-PSNR samples to keep pictures of (only those stay in memory).
    save_dir: if given, each interpolated frame is written there as ``<sample name>.png``.
    on_sample: called after each sample (progress reporting).
    """
    results: list[SampleResult] = []
    # A bounded max-heap on PSNR: the entry with the highest PSNR is evicted first.
    kept: list[tuple[float, int, StripRow]] = []
    order = itertools.count()
    for triplet in triplets:
        first, truth, second = read_triplet(triplet)
        ours = method(first, second)
        if ours.shape != truth.shape or ours.dtype != np.uint8:
            raise ValueError(
                f"{triplet.name}: the method returned {ours.shape} {ours.dtype}, "
                f"expected {truth.shape} uint8"
            )
        result = SampleResult(
            triplet.name,
            truth.shape[1],
            truth.shape[0],
            score(ours, truth, ssim_channels=ssim_channels),
        )
        results.append(result)
        if save_dir is not None:
            _save_png(Path(save_dir) / f"{triplet.name}.png", ours)
        if worst > 0:
            row = StripRow(result, first, second, ours, truth)
            heapq.heappush(kept, (-result.scores.psnr, next(order), row))
            if len(kept) > worst:
                heapq.heappop(kept)
        if on_sample is not None:
            on_sample(result)
    rows = [row for _, _, row in sorted(kept, key=lambda entry: (-entry[0], entry[1]))]
    return Evaluation(results, rows)


def _save_png(path: Path, frame: np.ndarray) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(frame).save(path)
