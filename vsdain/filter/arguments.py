"""Checks every argument of :func:`vsdain.Interpolate` before anything is loaded.

Each problem becomes a ``vs.Error`` that names the argument and, where there is one, the fix.
"""

from __future__ import annotations

import numbers
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import torch
import vapoursynth as vs

from ..devices import resolve_device
from ..model import DAIN
from .scenecut import SceneCutDetector
from .timing import FrameTiming

NAME = "Interpolate"
SUPPORTED_FORMATS = (vs.RGBS, vs.RGBH)
# A rate ratio whose cycle is longer than this is almost certainly a typo (23.976 -> 60 has a
# cycle of 1001 output frames); std.SelectEvery would need an offset list this long.
MAX_CYCLE = 100_000
# VapourSynth stores frame counts as a C int.
MAX_FRAMES = 2**31 - 1


def error(message: str) -> vs.Error:
    return vs.Error(f"{NAME}: {message}")


@dataclass(frozen=True)
class Settings:
    """Validated arguments. weights is the file to load, or None when ``model`` is given;
    dtype is what the network computes in (the output keeps the clip's format)."""

    timing: FrameTiming
    detector: SceneCutDetector | None
    weights: Path | None
    model: DAIN | None
    device: torch.device
    dtype: torch.dtype


def check_arguments(
    clip: object,
    multi: object,
    fps_num: object,
    fps_den: object,
    sc: object,
    sc_threshold: object,
    weights: object,
    device: object,
    fp16: object,
    model: object,
) -> Settings:
    """Raise ``vs.Error`` for the first bad argument; otherwise the settings to build with."""
    clip = check_clip(clip)
    timing = check_rate(clip, multi, fps_num, fps_den)
    detector = check_scene_change(sc, sc_threshold)
    if model is not None:
        return Settings(timing, detector, None, *check_model(model, weights, device, fp16))
    target = check_device(device)
    dtype = check_fp16(fp16, target, clip)
    return Settings(timing, detector, check_weights(weights), None, target, dtype)


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
    if clip.format.id not in SUPPORTED_FORMATS:
        raise error(
            f"clip must be RGBS or RGBH (planar float RGB), got {clip.format.name}; "
            f"convert with {_conversion_hint(clip.format)}"
        )
    if clip.num_frames < 2:
        raise error(
            f"clip must have at least 2 frames, got {clip.num_frames}: there is nothing to "
            "interpolate between"
        )
    return clip


def _conversion_hint(format: vs.VideoFormat) -> str:
    if format.color_family == vs.YUV:
        return "clip.resize.Bicubic(format=vs.RGBS, matrix_in_s='709') (use the clip's matrix)"
    return "clip.resize.Point(format=vs.RGBS)"


def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_rate(clip: vs.VideoNode, multi: object, fps_num: object, fps_den: object) -> FrameTiming:
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
        den = 1 if fps_den is None else fps_den
        if not _is_int(fps_num) or fps_num <= 0:
            raise error(f"fps_num must be a positive integer, got {fps_num!r}")
        if not _is_int(den) or den <= 0:
            raise error(f"fps_den must be a positive integer, got {fps_den!r}")
        timing = FrameTiming(clip.num_frames, source_fps, Fraction(int(fps_num), int(den)))
    step = timing.step
    if max(step.numerator, step.denominator) > MAX_CYCLE:
        raise error(
            f"the rate {timing.output_fps} repeats its pattern only every "
            f"{step.denominator} output frames ({step.numerator} source frames); use a "
            f"simpler rate such as 60000/1001 (at most {MAX_CYCLE} frames per cycle)"
        )
    if timing.output_length > MAX_FRAMES:
        raise error(
            f"the output would have {timing.output_length} frames, more than "
            f"VapourSynth's {MAX_FRAMES}; trim the clip or lower the rate"
        )
    return timing


def check_scene_change(sc: object, sc_threshold: object) -> SceneCutDetector | None:
    if not isinstance(sc, bool):
        raise error(f"sc must be True or False, got {sc!r}")
    if sc_threshold is not None:
        if not sc:
            raise error("sc_threshold has no effect with sc=False; drop one of them")
        if (
            isinstance(sc_threshold, bool)
            or not isinstance(sc_threshold, int | float)
            or not (sc_threshold > 0 and float(sc_threshold) != float("inf"))
        ):
            raise error(f"sc_threshold must be a positive number, got {sc_threshold!r}")
    if not sc:
        return None
    return SceneCutDetector() if sc_threshold is None else SceneCutDetector(sc_threshold)


def check_device(device: object) -> torch.device:
    try:
        return resolve_device(device)
    except ValueError as problem:
        raise error(str(problem)) from None


def check_fp16(fp16: object, device: torch.device, clip: vs.VideoNode) -> torch.dtype:
    if fp16 is not None and not isinstance(fp16, bool):
        raise error(f"fp16 must be True, False or None, got {fp16!r}")
    if fp16 and device.type != "cuda":
        raise error(
            "fp16=True needs a CUDA device (half precision on the CPU is slow and "
            "inexact); drop fp16 or pick device='cuda'"
        )
    if fp16 is None:
        fp16 = device.type == "cuda" and clip.format.id == vs.RGBH
    return torch.float16 if fp16 else torch.float32


def check_weights(weights: object) -> Path:
    from ..weights import WeightsNotFoundError, find_weights

    if weights is not None and not isinstance(weights, str | os.PathLike):
        raise error(f"weights must be a path (str or os.PathLike), got {type(weights).__name__}")
    try:
        return find_weights(weights)
    except WeightsNotFoundError as missing:
        raise error(str(missing)) from None


def check_model(
    model: object, weights: object, device: object, fp16: object
) -> tuple[DAIN, torch.device, torch.dtype]:
    if not isinstance(model, DAIN):
        raise error(f"model must be a vsdain.DAIN, got {type(model).__name__}")
    if weights is not None:
        raise error("give weights or model, not both (model is already loaded)")
    if device is not None or fp16 is not None:
        raise error(
            "device and fp16 apply to weights loaded by Interpolate; with model= "
            "move the model yourself, e.g. model.to('cuda').half()"
        )
    if model.training:
        raise error("model is in training mode; call model.eval() first")
    parameter = next(model.parameters())
    if parameter.dtype == torch.float16 and parameter.device.type != "cuda":
        raise error("model is float16 on the CPU; fp16 runs on CUDA only, use model.float()")
    return model, parameter.device, parameter.dtype
