"""MVTools' FlowFPS, the motion-compensated interpolation most VapourSynth users know, as the
speed reference: same clip, same size, same output rate, as an 8-bit YUV 4:2:0 clip (MVTools
works on integer YUV). Its settings are MVTools' defaults (Super pel=2, Analyse blksize=8)."""

from __future__ import annotations

import time

import vapoursynth as vs

from ..memory import PeakMemory
from .timing import Measurement

# FlowFPS takes about a millisecond a frame: time enough source frames to be well above
# timer and thread start-up noise, and warm up on frames outside the timed ones.
TIMED_SOURCE_FRAMES = 24
WARM_UP_SOURCE_FRAMES = 4


def available() -> bool:
    return hasattr(vs.core, "mv")


def flow_fps(clip: vs.VideoNode, multi: int) -> vs.VideoNode:
    core = vs.core
    super_clip = core.mv.Super(clip)
    backward = core.mv.Analyse(super_clip, isb=True)
    forward = core.mv.Analyse(super_clip, isb=False)
    return core.mv.FlowFPS(
        clip, super_clip, backward, forward, num=clip.fps_num * multi, den=clip.fps_den
    )


def time_flow_fps(clip: vs.VideoNode, multi: int) -> Measurement:
    """Time per output frame over the first TIMED_SOURCE_FRAMES source frames' worth of
    output, pulled in order with the core's thread count of requests in flight."""
    import torch

    output = flow_fps(clip, multi)
    timed_frames = min(TIMED_SOURCE_FRAMES, clip.num_frames - WARM_UP_SOURCE_FRAMES - 1) * multi
    warm_up_start = output.num_frames - WARM_UP_SOURCE_FRAMES * multi
    for _ in output[warm_up_start:].frames():
        pass
    with PeakMemory(torch.device("cpu")) as peak:
        start = time.perf_counter()
        for _ in output[:timed_frames].frames(prefetch=vs.core.num_threads):
            pass
        elapsed = time.perf_counter() - start
    return Measurement(elapsed / timed_frames, timed_frames, peak.bytes)
