"""Helpers for the render tests: cheap scripts and decoding outputs."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

# A YUV 4:2:0 clip whose every frame differs (values depend on the frame number), made with
# numpy only: no network, so chunking, encoding and concatenation are tested in seconds.
# SLEEP slows each frame down so that a test can interrupt a render in the middle; frame
# FAIL_AT raises the first time it is computed (MARKER remembers it across processes).
SCRIPT = """
import os
import time
import numpy as np
import vapoursynth as vs

LENGTH, SLEEP, FAIL_AT, MARKER = {length}, {sleep}, {fail_at}, {marker!r}
blank = vs.core.std.BlankClip(
    format=vs.YUV420P8, width=64, height=48, length=LENGTH, fpsnum=50, fpsden=1
)

def paint(n, f):
    if n == FAIL_AT and not os.path.exists(MARKER):
        open(MARKER, "w").close()
        raise RuntimeError("failing once, on purpose")
    out = f.copy()
    for plane in range(3):
        rows, columns = np.indices(np.asarray(out[plane]).shape)
        np.asarray(out[plane])[:] = (rows * 3 + columns * 5 + n * 7 + plane * 40) % 256
    time.sleep(SLEEP)
    return out

blank.std.ModifyFrame(blank, paint).set_output()
"""

SCRIPT_FPS = Fraction(50)


def painted(n: int) -> np.ndarray:
    """Frame n of :data:`SCRIPT` as PyAV's yuv420p ndarray gives it: (72, 64) uint8."""
    planes = []
    for plane, (height, width) in enumerate([(48, 64), (24, 32), (24, 32)]):
        rows, columns = np.indices((height, width))
        planes.append(((rows * 3 + columns * 5 + n * 7 + plane * 40) % 256).astype(np.uint8))
    return np.concatenate([planes[0].ravel(), planes[1].ravel(), planes[2].ravel()]).reshape(72, 64)


def write_script(
    path: Path, *, length: int = 30, sleep: float = 0.0, fail_once_at: int | None = None
) -> Path:
    marker = str(path.with_suffix(".failed"))
    path.write_text(SCRIPT.format(length=length, sleep=sleep, fail_at=fail_once_at, marker=marker))
    return path


def decoded_frames(path: Path) -> tuple[list[np.ndarray], list[Fraction]]:
    """Every video frame of ``path`` as an array (for yuv420p: Y rows, then U and V), and its
    presentation time in seconds."""
    frames, times = [], []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            frames.append(frame.to_ndarray().copy())
            times.append(frame.pts * frame.time_base)
    return frames, times


def stream_seconds(path: Path, kind: str) -> Fraction:
    """End time of the first ``kind`` stream (last packet's pts + duration), in seconds.
    Matroska stores no duration for video packets, so for video use :func:`file_seconds`."""
    with av.open(str(path)) as container:
        stream = getattr(container.streams, kind)[0]
        context = stream.codec_context
        samples = getattr(context, "frame_size", 0) or 0  # audio only
        rate = getattr(context, "sample_rate", 0) or 1
        default = round(Fraction(samples, rate) / stream.time_base)
        ends = [
            (packet.pts + (packet.duration or default)) * stream.time_base
            for packet in container.demux(stream)
            if packet.size and packet.pts is not None
        ]
    return max(ends)


def file_seconds(path: Path) -> Fraction:
    """The container's duration, in seconds (FFmpeg's microseconds)."""
    with av.open(str(path)) as container:
        return Fraction(container.duration, 1_000_000)
