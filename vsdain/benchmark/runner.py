"""One benchmark run: settings in, results out. Progress goes to the log (stderr)."""

from __future__ import annotations

import datetime
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..model import DAIN, Padding
from . import clips, flops, kernels, machine, mvtools, precision, tiling
from .timing import Measurement, PartTimes, time_naive, time_ours, time_parts, warm_up

log = logging.getLogger(__name__)

# Seed of the random network used when no released weights are found.
RANDOM_WEIGHTS_SEED = 0
# On the CPU a 1280x720 pair with eight timestamps takes minutes: time one pair there.
CPU_LARGE_PIXELS = 640 * 480


@dataclass(frozen=True)
class RunSettings:
    """sizes: (width, height) pairs; multis: output-rate multipliers; frames: output frames
    timed per configuration, rounded up to whole pairs (None: two pairs' worth, or one with
    ``single_pair`` or at large sizes on the CPU); naive_samples: synthesised frames the naive
    path times per configuration; weights: a file or folder, or None to search the default
    places and fall back to random weights; clip: the source clip, or None for the synthetic
    one; clip_start: its first frame used."""

    sizes: tuple[tuple[int, int], ...]
    multis: tuple[int, ...]
    device: torch.device
    frames: int | None = None
    single_pair: bool = False
    naive_samples: int = 2
    weights: Path | None = None
    clip: Path | None = None
    clip_start: int = 0
    mvtools: bool = True
    kernels: bool = True
    bfloat16: bool = False  # also time bfloat16 against float32 (first multi) and compare them
    pair: tuple[Path, Path] | None = None  # images bfloat16 is compared on; None: synthetic
    tiling: tuple[tuple[int, int], ...] = ()  # sizes of the memory-with-tiling table
    dtype: torch.dtype = torch.float32  # what the network computes in

    def pairs(self, width: int, height: int, multi: int) -> int:
        """Source pairs whose output frames are timed: whole pairs, so that ours is timed
        over complete reuse cycles."""
        if self.frames is not None:
            return -(-self.frames // multi)
        large = self.device.type == "cpu" and width * height > CPU_LARGE_PIXELS
        return 1 if self.single_pair or large else 2


@dataclass(frozen=True)
class ConfigResult:
    multi: int
    ours: Measurement
    naive: Measurement
    mvtools: Measurement | None

    @property
    def speedup(self) -> float:
        """naive / ours: how many times faster reuse makes an output frame."""
        return self.naive.seconds_per_frame / self.ours.seconds_per_frame


@dataclass(frozen=True)
class SizeResult:
    width: int
    height: int
    padded: tuple[int, int]  # (height, width) the network runs at
    source: str
    parts: PartTimes
    operations: flops.NetworkFlops
    configs: list[ConfigResult]
    kernels: list[kernels.KernelTiming] | None  # None: no GPU
    precision: precision.PrecisionTiming | None = None  # None: not asked for


@dataclass
class Results:
    machine: machine.Machine
    started: datetime.datetime
    weights: str
    random_weights: bool
    peak: flops.DevicePeak
    sizes: list[SizeResult] = field(default_factory=list)
    precision_difference: precision.PrecisionDifference | None = None
    tiling: tiling.TilingResults | None = None
    dtype: torch.dtype = torch.float32
    seconds: float = 0.0


def run(settings: RunSettings) -> Results:
    begin = time.perf_counter()
    model, weights, random_weights = build_model(settings.weights, settings.device)
    model = model.to(settings.dtype)
    log.info("device %s; weights: %s", settings.device, weights)
    log.info("measuring the device's dense-arithmetic peak")
    results = Results(
        machine=machine.describe(settings.device),
        started=datetime.datetime.now(datetime.UTC),
        weights=weights,
        random_weights=random_weights,
        peak=flops.measure_peak(settings.device),
        dtype=settings.dtype,
    )
    for width, height in settings.sizes:
        results.sizes.append(_run_size(settings, model, width, height))
    if settings.bfloat16:
        results.precision_difference = precision.difference_on_pair(model, settings.pair)
    if settings.tiling:
        sources = {}
        for width, height in settings.tiling:
            log.info("%dx%d: memory with tiling", width, height)
            sources[(width, height)] = clips.load(
                settings.clip, width, height, rgb_frames=2, yuv_frames=1, start=settings.clip_start
            ).rgb
        results.tiling = tiling.measure(model, sources)
    results.seconds = time.perf_counter() - begin
    return results


def build_model(weights: Path | None, device: torch.device) -> tuple[DAIN, str, bool]:
    """(network in eval mode, description, whether the weights are random). An explicit
    ``weights`` must exist; otherwise the default places are searched."""
    from ..weights import WeightsNotFoundError, find_weights, load_model

    try:
        path = find_weights(weights)
    except WeightsNotFoundError:
        if weights is not None:
            raise
        torch.manual_seed(RANDOM_WEIGHTS_SEED)
        return DAIN().eval().to(device), "random (no released weights found)", True
    return load_model(path, device=device), str(path), False


def _run_size(settings: RunSettings, model: DAIN, width: int, height: int) -> SizeResult:
    most_pairs = max(settings.pairs(width, height, multi) for multi in settings.multis)
    source = clips.load(
        settings.clip,
        width,
        height,
        rgb_frames=most_pairs + 2,
        yuv_frames=mvtools.TIMED_SOURCE_FRAMES + mvtools.WARM_UP_SOURCE_FRAMES + 1,
        start=settings.clip_start,
    )
    padded = Padding.for_size(height, width).padded_size
    log.info("%dx%d (network at %dx%d): warming up", width, height, padded[1], padded[0])
    warm_up(model, source.rgb)
    parts = time_parts(model, source.rgb)
    log.info(
        "%dx%d parts: frame %.3f s, pair %.3f s, timestamp %.3f s",
        width,
        height,
        parts.frame,
        parts.pair,
        parts.synthesize,
    )
    configs = []
    for multi in settings.multis:
        frames = settings.pairs(width, height, multi) * multi
        ours = time_ours(model, source.rgb, multi, frames)
        naive = time_naive(model, source.rgb, multi, frames, settings.naive_samples)
        reference = None
        if settings.mvtools and mvtools.available():
            reference = mvtools.time_flow_fps(source.yuv, multi)
        configs.append(ConfigResult(multi, ours, naive, reference))
        log.info(
            "%dx%d multi=%d: ours %.3f s/frame, naive %.3f s/frame (%.2fx)",
            width,
            height,
            multi,
            ours.seconds_per_frame,
            naive.seconds_per_frame,
            configs[-1].speedup,
        )
    kernel_timings = None
    if settings.kernels and settings.device.type == "cuda":
        kernel_timings = kernels.compare(model, *padded, settings.device)
    precision_timing = None
    if settings.bfloat16:
        multi = settings.multis[0]
        frames = settings.pairs(width, height, multi) * multi
        log.info("%dx%d multi=%d: float32 against bfloat16", width, height, multi)
        precision_timing = precision.time_precisions(model, source.rgb, multi, frames)
    return SizeResult(
        width=width,
        height=height,
        padded=padded,
        source=source.name,
        parts=parts,
        operations=flops.count(model, *padded),
        configs=configs,
        kernels=kernel_timings,
        precision=precision_timing,
    )
