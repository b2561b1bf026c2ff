"""Checks every argument of :func:`vsdain.Interpolate` before anything is loaded.

Each problem becomes a ``vs.Error`` that names the argument and, where there is one, the fix.
"""

from __future__ import annotations

import math
import numbers
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import torch
import vapoursynth as vs

from ..devices import resolve_device
from ..model import DAIN
from ..precision import PRECISIONS, cpu_bfloat16_problem, default_dtype
from .dedup import DEFAULT_MAX_RUN, DuplicateDetector
from .dedup import DEFAULT_THRESHOLD as DEFAULT_DEDUP_THRESHOLD
from .formats import MATRICES, format_problem, is_half, needs_matrix
from .scenecut import DEFAULT_THRESHOLD as SCENE_CUT_THRESHOLD
from .scenecut import SceneCutDetector
from .timeline import TimelineError, read_timeline
from .timing import FrameTiming

NAME = "Interpolate"
# A rate ratio whose cycle is longer than this is almost certainly a typo (23.976 -> 60 has a
# cycle of 1001 output frames); std.SelectEvery would need an offset list this long.
MAX_CYCLE = 100_000
# Below this a cap cannot hold even the features of a small clip; a smaller number is more
# likely GiB meant as MiB.
MIN_MAX_MEMORY_MIB = 64
# VapourSynth stores frame counts as a C int.
MAX_FRAMES = 2**31 - 1


def error(message: str) -> vs.Error:
    return vs.Error(f"{NAME}: {message}")


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Validated arguments. weights is the file to load, or None when ``model`` is given;
    dtype is what the network computes in (the output keeps the clip's format); matrix is
    resize's name of the YUV matrix that replaces the frames' own, or None."""

    timing: FrameTiming
    detector: SceneCutDetector | None
    weights: Path | None
    model: DAIN | None
    device: torch.device
    dtype: torch.dtype
    matrix: str | None = None
    dedup: Deduplication | None = None
    tiling: Tiling | None = None


@dataclass(frozen=True)
class Tiling:
    """tile=/max_memory=: the tile size (None: automatic, 0: never tile) and the memory cap
    in bytes (None: what the device has)."""

    tile: int | None = None
    max_memory: int | None = None


@dataclass(frozen=True)
class Deduplication:
    """dedup=True's settings: the detector (with its threshold) and the longest run of
    duplicates that is still interpolated (longer runs are holds)."""

    detector: DuplicateDetector
    max_run: int


def check_arguments(
    clip: object,
    multi: object,
    fps_num: object,
    fps_den: object,
    sc: object,
    sc_threshold: object,
    weights: object,
    device: object,
    precision: object,
    model: object,
    *,
    matrix: object = None,
    fp16: object = None,
    dedup: object = False,
    dedup_threshold: object = None,
    dedup_max_run: object = None,
    tile: object = None,
    max_memory: object = None,
    timeline: object = None,
) -> Settings:
    """Raise ``vs.Error`` for the first bad argument; otherwise the settings to build with.
    Reads frame 0 of a YUV clip (its ``_Matrix``) when ``matrix`` is not given."""
    clip = check_clip(clip)
    matrix = check_matrix(matrix, clip)
    timing = check_rate(clip, multi, fps_num, fps_den, timeline)
    deduplication = check_dedup(dedup, dedup_threshold, dedup_max_run)
    detector = check_scene_change(sc, sc_threshold, deduplication)
    tiling = check_tiling(tile, max_memory)
    check_no_fp16(fp16)
    common = {"timing": timing, "detector": detector, "matrix": matrix}
    common |= {"dedup": deduplication, "tiling": tiling}
    if model is not None:
        model, target, dtype = check_model(model, weights, device, precision)
        return Settings(**common, weights=None, model=model, device=target, dtype=dtype)
    target = check_device(device)
    dtype = check_precision(precision, target, clip)
    weights_path = check_weights(weights)
    return Settings(**common, weights=weights_path, model=None, device=target, dtype=dtype)


def check_clip(clip: object) -> vs.VideoNode:
    if not isinstance(clip, vs.VideoNode):
        raise error(f"clip must be a vs.VideoNode, got {type(clip).__name__}")
    if clip.format is None or clip.format.color_family == vs.UNDEFINED:
        raise error(
            "clip must have a constant format, got a variable one; convert every "
            "frame to one format first, e.g. clip.resize.Bicubic(format=vs.RGBS)"
        )
    if clip.width == 0 or clip.height == 0:
        raise error(
            "clip must have a constant frame size, got a variable one; resize every "
            "frame to one size first, e.g. clip.resize.Bicubic(1280, 720)"
        )
    problem = format_problem(clip.format)
    if problem is not None:
        raise error(f"{problem}; convert with {_conversion_hint(clip.format)}")
    if clip.num_frames < 2:
        raise error(
            f"clip must have at least 2 frames, got {clip.num_frames}: there is nothing to "
            "interpolate between"
        )
    return clip


def _conversion_hint(format: vs.VideoFormat) -> str:
    if format.color_family == vs.GRAY:
        return (
            "clip.std.ShufflePlanes([clip] * 3, planes=[0, 0, 0], colorfamily=vs.RGB) "
            "(grey as RGB) and back with clip.std.ShufflePlanes(planes=0, colorfamily=vs.GRAY)"
        )
    return "clip.resize.Point(format=vs.RGBS)"


def check_matrix(matrix: object, clip: vs.VideoNode) -> str | None:
    choices = ", ".join(repr(name) for name in MATRICES)
    if matrix is not None:
        if not isinstance(matrix, str) or matrix not in MATRICES:
            raise error(f"matrix must be one of {choices} (resize's names), got {matrix!r}")
        if clip.format.color_family != vs.YUV:
            raise error(
                f"matrix applies to YUV clips only, and clip is {clip.format.name}; drop it"
            )
        return matrix
    if clip.format.color_family != vs.YUV:
        return None
    try:
        props = clip.get_frame(0).props
    except vs.Error as failure:
        raise error(f"cannot read frame 0 of clip to check its _Matrix: {failure}") from None
    if needs_matrix(clip.format, props):
        raise error(
            f"clip is {clip.format.name} but frame 0 does not say its YUV matrix (_Matrix is "
            "missing or 2, unspecified), so it cannot be converted to RGB for the network; give "
            "it, e.g. matrix='709' (HD), '170m' (SD, NTSC), '470bg' (SD, PAL) or '2020ncl' "
            f"(UHD); one of {choices}"
        )
    return None


def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_rate(
    clip: vs.VideoNode, multi: object, fps_num: object, fps_den: object, timeline: object = None
) -> FrameTiming:
    if timeline is not None:
        return check_timeline(clip, multi, fps_num, fps_den, timeline)
    source_fps = Fraction(clip.fps_num, clip.fps_den) if clip.fps_num else Fraction(0)
    if source_fps == 0:
        raise error(
            "clip has a variable frame rate (fps 0), so output timestamps are "
            "undefined; set one with clip.std.AssumeFPS(fpsnum=24000, fpsden=1001)"
        )
    if not _is_int(multi) or multi < 2:
        raise error(
            f"multi must be an integer >= 2, got {multi!r}; for any other rate use fps_num/fps_den"
        )
    if fps_num is None:
        if fps_den is not None:
            raise error(
                "fps_den was given without fps_num; give both, e.g. fps_num=60000, fps_den=1001"
            )
        timing = FrameTiming.from_multi(clip.num_frames, source_fps, int(multi))
    else:
        if multi != 2:
            raise error(f"give either multi ({multi}) or fps_num/fps_den, not both")
        timing = FrameTiming(clip.num_frames, source_fps, _output_fps(fps_num, fps_den))
    step = timing.step
    if max(step.numerator, step.denominator) > MAX_CYCLE:
        raise error(
            f"the rate {timing.output_fps} repeats its pattern only every "
            f"{step.denominator} output frames ({step.numerator} source frames); use a "
            f"simpler rate such as 60000/1001 (at most {MAX_CYCLE} frames per cycle)"
        )
    return _check_length(timing)


def _output_fps(fps_num: object, fps_den: object) -> Fraction:
    den = 1 if fps_den is None else fps_den
    if not _is_int(fps_num) or fps_num <= 0:
        raise error(f"fps_num must be a positive integer, got {fps_num!r}")
    if not _is_int(den) or den <= 0:
        raise error(f"fps_den must be a positive integer, got {fps_den!r}")
    return Fraction(int(fps_num), int(den))


def _check_length(timing: FrameTiming) -> FrameTiming:
    if timing.output_length > MAX_FRAMES:
        raise error(
            f"the output would have {timing.output_length} frames, more than "
            f"VapourSynth's {MAX_FRAMES}; trim the clip or lower the rate"
        )
    return timing


def check_timeline(
    clip: vs.VideoNode, multi: object, fps_num: object, fps_den: object, timeline: object
) -> FrameTiming:
    """A variable-frame-rate timing from ``timeline`` (see :mod:`.timeline`)."""
    if fps_num is None:
        raise error(
            "timeline needs an output rate: give fps_num (and fps_den), e.g. fps_num=60000, "
            "fps_den=1001; multi has no meaning on a variable-frame-rate timeline"
        )
    if multi != 2:
        raise error(f"give either multi ({multi}) or fps_num/fps_den with timeline, not both")
    output_fps = _output_fps(fps_num, fps_den)
    try:
        times = read_timeline(timeline, clip)
    except TimelineError as failure:
        raise error(str(failure)) from None
    return _check_length(FrameTiming.from_timeline(times, output_fps))


# sc_threshold is a ratio to the neighbouring pairs' change: at 1 or below, every pair that
# changes as much as its neighbours, i.e. ordinary motion, would be a cut.
MIN_SC_THRESHOLD = 1.0


def check_scene_change(
    sc: object, sc_threshold: object, deduplication: Deduplication | None = None
) -> SceneCutDetector | None:
    """The filter's one detector. Its reach is past the longest interpolated hold (dedup's
    max_run, else the default one) in every mode: beside a drawing change of held material
    the pairs hardly change, and with reach 1 every drawing change would score as a cut (on
    real cuts the scores are the same at reach 1 and 4; see the README)."""
    if not isinstance(sc, bool):
        raise error(f"sc must be True or False, got {sc!r}")
    if sc_threshold is not None:
        if not sc:
            raise error("sc_threshold has no effect with sc=False; drop one of them")
        if (
            isinstance(sc_threshold, bool)
            or not isinstance(sc_threshold, int | float)
            or not math.isfinite(sc_threshold)
        ):
            raise error(f"sc_threshold must be a number above 1, got {sc_threshold!r}")
        if not sc_threshold > MIN_SC_THRESHOLD:
            raise error(
                f"sc_threshold must be a number above 1, got {sc_threshold!r}: it is a ratio, "
                "a pair's luma change over that of its neighbouring pairs (ordinary motion "
                "scores about 1, cuts 8 and more; default 3.0), not vs-rife's sc_threshold, "
                "a luma-difference fraction from 0 to 1; drop it for the default or give "
                "e.g. 5.0 to find fewer cuts"
            )
    if not sc:
        return None
    threshold = SCENE_CUT_THRESHOLD if sc_threshold is None else float(sc_threshold)
    max_run = DEFAULT_MAX_RUN if deduplication is None else deduplication.max_run
    return SceneCutDetector(threshold, reach=max_run + 1)


def check_dedup(
    dedup: object, dedup_threshold: object, dedup_max_run: object
) -> Deduplication | None:
    if not isinstance(dedup, bool):
        raise error(f"dedup must be True or False, got {dedup!r}")
    for name, value in (("dedup_threshold", dedup_threshold), ("dedup_max_run", dedup_max_run)):
        if value is not None and not dedup:
            raise error(f"{name} has no effect without dedup=True; add dedup=True or drop {name}")
    if dedup_threshold is not None and (
        isinstance(dedup_threshold, bool)
        or not isinstance(dedup_threshold, int | float)
        or not 0 < dedup_threshold < math.inf
    ):
        raise error(
            f"dedup_threshold must be a positive number, got {dedup_threshold!r} (default "
            f"{DEFAULT_DEDUP_THRESHOLD}; higher finds more duplicates)"
        )
    if dedup_max_run is not None and (not _is_int(dedup_max_run) or dedup_max_run < 1):
        raise error(
            f"dedup_max_run must be an integer >= 1, got {dedup_max_run!r} (default "
            f"{DEFAULT_MAX_RUN}: drawings held up to {DEFAULT_MAX_RUN + 1} frames move)"
        )
    if not dedup:
        return None
    threshold = DEFAULT_DEDUP_THRESHOLD if dedup_threshold is None else float(dedup_threshold)
    max_run = DEFAULT_MAX_RUN if dedup_max_run is None else int(dedup_max_run)
    return Deduplication(DuplicateDetector(threshold), max_run)


def check_device(device: object) -> torch.device:
    try:
        return resolve_device(device)
    except ValueError as problem:
        raise error(str(problem)) from None


def check_no_fp16(fp16: object) -> None:
    if fp16 is not None:
        raise error(
            f"fp16 is gone, got fp16={fp16!r}; use precision='float16' (CUDA), 'bfloat16' or "
            "'float32', or leave precision unset for the default"
        )


def check_precision(precision: object, device: torch.device, clip: vs.VideoNode) -> torch.dtype:
    if precision is None:
        return default_dtype(device, is_half(clip.format))
    if not isinstance(precision, str) or precision not in PRECISIONS:
        raise error(
            f"precision must be None, 'float32', 'float16' or 'bfloat16', got {precision!r}"
        )
    if precision == "float16" and device.type != "cuda":
        raise error(
            "precision='float16' needs a CUDA device: the CPU has no fast float16 "
            "convolutions, and float16's 5-bit exponent overflows where bfloat16's does not; "
            "use precision='bfloat16' (fast where the CPU has native bfloat16, see "
            "`python -m vsdain info`) or 'float32', or pick device='cuda'"
        )
    problem = cpu_bfloat16_problem(device, PRECISIONS[precision])
    if problem is not None:
        raise error(
            f"precision={precision!r} is refused: {problem}; use precision='float32' (the "
            "default), or a GPU"
        )
    return PRECISIONS[precision]


def check_weights(weights: object) -> Path:
    from ..weights import WeightsNotFoundError, find_weights

    if weights is not None and not isinstance(weights, str | os.PathLike):
        raise error(f"weights must be a path (str or os.PathLike), got {type(weights).__name__}")
    try:
        return find_weights(weights)
    except WeightsNotFoundError as missing:
        raise error(str(missing)) from None


def check_model(
    model: object, weights: object, device: object, precision: object
) -> tuple[DAIN, torch.device, torch.dtype]:
    if not isinstance(model, DAIN):
        raise error(f"model must be a vsdain.DAIN, got {type(model).__name__}")
    if weights is not None:
        raise error("give weights or model, not both (model is already loaded)")
    if device is not None or precision is not None:
        raise error(
            "device and precision apply to weights loaded by Interpolate; with model= "
            "move the model yourself, e.g. model.to('cuda', torch.float16)"
        )
    if model.training:
        raise error("model is in training mode; call model.eval() first")
    parameter = next(model.parameters())
    if parameter.dtype == torch.float16 and parameter.device.type != "cuda":
        raise error(
            "model is float16 on the CPU; float16 runs on CUDA only, use model.float() or "
            "model.to(torch.bfloat16)"
        )
    return model, parameter.device, parameter.dtype


def check_tiling(tile: object, max_memory: object) -> Tiling:
    from ..model.tiling import MIN_TILE

    if tile is not None and (not _is_int(tile) or (tile != 0 and tile < MIN_TILE)):
        raise error(
            f"tile must be None (automatic), 0 (never tile) or an integer >= {MIN_TILE} "
            f"(pixels per side of a tile), got {tile!r}"
        )
    if max_memory is not None and (not _is_int(max_memory) or max_memory < MIN_MAX_MEMORY_MIB):
        raise error(
            f"max_memory must be None (what the device has) or an integer number of MiB >= "
            f"{MIN_MAX_MEMORY_MIB}, got {max_memory!r}; e.g. max_memory=4096 for 4 GiB"
        )
    return Tiling(
        None if tile is None else int(tile),
        None if max_memory is None else int(max_memory) * 2**20,
    )
