"""float32 against bfloat16: time per output frame through the filter, and how far bfloat16's
frames are from float32's on one frame pair.

The timings run both precisions in one process, one after the other, on the same clip and
output frames, each after its own warm-up. The difference is measured at t = 0.5 on the pair
given with ``vsdain bench --pair FIRST SECOND`` (two image files of one size), or else on two
consecutive frames of the synthetic moving pattern at 640x360. With random weights it says how
bfloat16's rounding travels through this network's arithmetic, and nothing about quality with
the released weights.
"""

from __future__ import annotations

import copy
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import torch
import vapoursynth as vs

from ..model import DAIN
from ..precision import PRECISIONS, native_bfloat16
from .timing import Measurement, model_device, time_ours, warm_up

log = logging.getLogger(__name__)

# The synthetic pair used without --pair: the size of the released DAIN output pair.
SYNTHETIC_PAIR_SIZE = (640, 360)
# Aim for bfloat16 on a CPU with native bfloat16: at most this share of float32's time.
TARGET_RATIO = 0.6
PSNR_PEAK = 1.0  # frames in [0, 1]


@dataclass(frozen=True)
class PrecisionTiming:
    """Time per output frame through ``vsdain.Interpolate`` at one size and multi, in float32
    and bfloat16; native: whether this CPU has native bfloat16."""

    multi: int
    float32: Measurement
    bfloat16: Measurement
    native: bool

    @property
    def ratio(self) -> float:
        """bfloat16 time / float32 time (below 1: bfloat16 is faster)."""
        return self.bfloat16.seconds_per_frame / self.float32.seconds_per_frame


@dataclass(frozen=True)
class PrecisionDifference:
    """bfloat16's output against float32's on one pair, both clamped to [0, 1]:
    max_abs / mean_abs in units of full scale (1.0), psnr in dB with peak 1.0."""

    pair: str
    width: int
    height: int
    max_abs: float
    mean_abs: float
    psnr: float


def in_precision(model: DAIN, precision: str) -> DAIN:
    """``model`` itself when it already has that dtype, else a converted copy."""
    dtype = PRECISIONS[precision]
    if next(model.parameters()).dtype == dtype:
        return model
    return copy.deepcopy(model).to(dtype)


def time_precisions(model: DAIN, source: vs.VideoNode, multi: int, frames: int) -> PrecisionTiming:
    """Output frames 0 .. frames - 1 of ``Interpolate(source, multi)`` in float32, then in
    bfloat16 (same clip, same frames, each warmed up first)."""
    timings = {}
    for precision in ("float32", "bfloat16"):
        network = in_precision(model, precision)
        log.info("%s: warming up", precision)
        warm_up(network, source)
        timings[precision] = time_ours(network, source, multi, frames)
        log.info("%s: %.3f s per output frame", precision, timings[precision].seconds_per_frame)
        del network
    return PrecisionTiming(multi, timings["float32"], timings["bfloat16"], native_bfloat16())


class PairError(ValueError):
    """A frame pair that cannot be compared: a file that is not an 8-bit image, or two images
    of different sizes."""


def read_pair(first: Path, second: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """Two image files as (1, 3, H, W) float32 tensors in [0, 1]; raises :class:`PairError`
    when either cannot be read or their sizes differ."""
    from ..evaluation.datasets import DatasetError, read_rgb

    frames = []
    for path in (first, second):
        try:
            frames.append(read_rgb(path))
        except ImportError:
            raise PairError("reading image files needs Pillow (pip install pillow)") from None
        except (OSError, DatasetError) as error:
            raise PairError(f"{path}: not a readable image ({error})") from None
    (height, width), (other_height, other_width) = (frame.shape[:2] for frame in frames)
    if (height, width) != (other_height, other_width):
        raise PairError(
            f"the two frames differ in size: {first.name} is {width}x{height}, "
            f"{second.name} is {other_width}x{other_height}"
        )
    return tuple(torch.from_numpy(frame).permute(2, 0, 1)[None].float() / 255 for frame in frames)


def synthetic_pair(
    width: int = SYNTHETIC_PAIR_SIZE[0], height: int = SYNTHETIC_PAIR_SIZE[1]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Frames 0 and 1 of the benchmark's synthetic moving pattern as (1, 3, H, W) float32
    tensors in [0, 1]."""
    from ..filter.frames import frame_to_tensor
    from .clips import synthetic

    clip = synthetic(width, height, length=2)
    return frame_to_tensor(clip.get_frame(0)), frame_to_tensor(clip.get_frame(1))


def difference(
    model: DAIN, first: torch.Tensor, second: torch.Tensor, pair: str = "pair"
) -> PrecisionDifference:
    """bfloat16 against float32 at t = 0.5 between ``first`` and ``second`` ((1, 3, H, W),
    [0, 1])."""
    outputs = {}
    for precision in ("float32", "bfloat16"):
        network = in_precision(model, precision)
        device = model_device(network)
        dtype = PRECISIONS[precision]
        (output,) = network.interpolate(first.to(device, dtype), second.to(device, dtype), [0.5])
        outputs[precision] = output.double().cpu()
    return compare(outputs["bfloat16"], outputs["float32"], pair)


def compare(test: torch.Tensor, reference: torch.Tensor, pair: str = "pair") -> PrecisionDifference:
    """Max and mean absolute difference and PSNR (peak 1.0) of ``test`` against ``reference``
    (same shape, values in [0, 1])."""
    error = (test.double() - reference.double()).abs()
    mse = float((error**2).mean())
    psnr = math.inf if mse == 0 else 10 * math.log10(PSNR_PEAK**2 / mse)
    height, width = reference.shape[-2:]
    return PrecisionDifference(
        pair, int(width), int(height), float(error.max()), float(error.mean()), psnr
    )


def difference_on_pair(model: DAIN, pair: tuple[Path, Path] | None = None) -> PrecisionDifference:
    """bfloat16 against float32 on the image files ``pair``, or on the synthetic pair when
    None."""
    if pair is None:
        name = "two frames of the synthetic moving pattern"
        frames = synthetic_pair()
    else:
        name = " and ".join(path.name for path in pair)
        frames = read_pair(*pair)
    log.info("bfloat16 against float32 on %s", name)
    return difference(model, *frames, pair=name)


def report_lines(
    timings: list[tuple[str, PrecisionTiming]], diff: PrecisionDifference | None
) -> list[str]:
    """Markdown for the benchmark report: one row per size, then the difference."""
    lines = ["## bfloat16 against float32", ""]
    if timings:
        native = timings[0][1].native
        lines += [
            f"Through `vsdain.Interpolate`, the same frames in one run; this CPU "
            f"{'has' if native else 'has no'} native bfloat16. Target on a CPU with native "
            f"bfloat16: bfloat16 / float32 <= {TARGET_RATIO}.",
            "",
            "| size | multi | float32 | bfloat16 | bfloat16 / float32 |",
            "|---|---:|---:|---:|---:|",
        ]
        for size, timing in timings:
            lines.append(
                f"| {size} | {timing.multi} | {timing.float32.seconds_per_frame:.2f} s | "
                f"{timing.bfloat16.seconds_per_frame:.2f} s | {timing.ratio:.2f}x |"
            )
    if diff is not None:
        lines += [
            "",
            f"bfloat16's output against float32's on {diff.pair} ({diff.width}x{diff.height}, "
            f"t = 0.5): max |difference| {diff.max_abs:.4f}, mean {diff.mean_abs:.5f} (of full "
            f"scale 1.0), PSNR {diff.psnr:.1f} dB. With random weights this shows how "
            "bfloat16's rounding travels through the network, nothing about quality with the "
            "released weights.",
        ]
    return lines
