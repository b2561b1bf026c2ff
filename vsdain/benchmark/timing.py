"""Wall time per output frame: through the filter ("ours"), with the whole network per output
frame ("naive"), and per part of the network.

Both paths serve the same output frames of the same clip, with scene-cut detection off so
that neither skips any work, and both include fetching the source frames and converting them
to and from tensors. Timed stretches start after the caller's warm-up (see
:func:`warm_up`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import torch
import vapoursynth as vs

from ..filter.frames import frame_to_tensor, planes_to_frame, tensor_to_planes
from ..filter.timing import FrameTiming
from ..memory import PeakMemory
from ..model import DAIN, Padding


@dataclass(frozen=True)
class Measurement:
    """seconds_per_frame: wall time per output frame; frames: output frames it covers;
    peak_bytes: peak memory above the starting level (None where unmeasurable); note: how
    it was measured, where that is not obvious."""

    seconds_per_frame: float
    frames: int
    peak_bytes: int | None
    note: str = ""


@dataclass(frozen=True)
class PartTimes:
    """Seconds for one frame's features, one pair's features and one timestamp's synthesis."""

    frame: float
    pair: float
    synthesize: float

    @property
    def naive_pair(self) -> float:
        """The whole network for one output frame: two frames, the pair, one timestamp."""
        return 2 * self.frame + self.pair + self.synthesize


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def model_device(model: DAIN) -> torch.device:
    return next(model.parameters()).device


def warm_up(model: DAIN, source: vs.VideoNode) -> None:
    """One untimed whole-network call at the clip's size: the first call at a new size pays
    for choosing convolution algorithms and for allocator growth, which no later frame does."""
    device = model_device(model)
    first, second = (frame_to_tensor(source.get_frame(n), device=device) for n in (0, 1))
    model.interpolate(first, second, [0.5])
    synchronize(device)


def time_ours(model: DAIN, source: vs.VideoNode, multi: int, frames: int) -> Measurement:
    """Output frames 0 .. frames - 1 of ``vsdain.Interpolate`` pulled as vspipe pulls them:
    in order, with as many requests in flight as the core has threads."""
    from ..filter import Interpolate

    device = model_device(model)
    window = Interpolate(source, multi, sc=False, model=model)[:frames]
    with PeakMemory(device) as peak:
        start = time.perf_counter()
        for _ in window.frames(prefetch=vs.core.num_threads):
            pass
        synchronize(device)
        elapsed = time.perf_counter() - start
    return Measurement(elapsed / frames, frames, peak.bytes)


def time_naive(
    model: DAIN, source: vs.VideoNode, multi: int, frames: int, samples: int
) -> Measurement:
    """The same output frames with ``model.interpolate(first, second, [t])`` for each
    synthesised one: flow, depth, context and kernels recomputed every time.

    Source-position frames are copied, as the filter copies them, and all of them are timed.
    Every synthesised frame is one whole-network call of the same size, so only the first
    ``samples`` of them are timed and their mean stands for each of the rest.
    """
    device = model_device(model)
    timing = FrameTiming.from_multi(source.num_frames, Fraction(source.fps), multi)
    slots = [timing.slot(n) for n in range(frames)]
    synthesised = [slot for slot in slots if not slot.is_source]
    timed = synthesised[: max(1, samples)]
    with PeakMemory(device) as peak:
        start = time.perf_counter()
        for slot in slots:
            if slot.is_source:
                source.get_frame(slot.left).copy()
        copying = time.perf_counter() - start
        start = time.perf_counter()
        for slot in timed:
            left_frame = source.get_frame(slot.left)
            first = frame_to_tensor(left_frame, device=device)
            second = frame_to_tensor(source.get_frame(slot.left + 1), device=device)
            (image,) = model.interpolate(first, second, [float(slot.t)])
            planes_to_frame(tensor_to_planes(image, np.dtype(np.float32)), left_frame)
        synchronize(device)
        per_synthesised = (time.perf_counter() - start) / len(timed)
    total = copying + per_synthesised * len(synthesised)
    note = (
        f"{len(timed)} of {len(synthesised)} synthesised frames timed"
        if len(timed) < len(synthesised)
        else ""
    )
    return Measurement(total / frames, frames, peak.bytes, note)


def time_parts(model: DAIN, source: vs.VideoNode) -> PartTimes:
    """Each part timed once, on source frames 0 and 1 at t = 1/2 (the frame time is the mean
    of the two frames')."""
    device = model_device(model)
    padding = Padding.for_size(source.height, source.width)
    first, second = (
        padding.pad(frame_to_tensor(source.get_frame(n), device=device)) for n in (0, 1)
    )

    def timed[T](work: Callable[[], T]) -> tuple[float, T]:
        synchronize(device)
        start = time.perf_counter()
        result = work()
        synchronize(device)
        return time.perf_counter() - start, result

    with torch.inference_mode():
        first_time, first_features = timed(lambda: model.frame_features(first))
        second_time, second_features = timed(lambda: model.frame_features(second))
        pair_time, pair = timed(lambda: model.pair_features(first_features, second_features))
        synthesis_time, _ = timed(lambda: model.synthesize(pair, 0.5))
    return PartTimes((first_time + second_time) / 2, pair_time, synthesis_time)
