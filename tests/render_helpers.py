"""Helpers for the render tests: cheap scripts and decoding outputs."""

from __future__ import annotations

import math
import signal
from collections.abc import Iterator
from contextlib import contextmanager
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


# --- small video files made with PyAV, read back with core.bs.VideoSource -------------------


def yuv420p(luma: np.ndarray) -> np.ndarray:
    """A yuv420p picture as PyAV's ndarray takes it: the Y plane ``luma`` (even height and
    width, uint8) above neutral chroma."""
    height, width = luma.shape
    chroma = np.full((height // 2, width), 128, np.uint8)
    return np.concatenate([luma.astype(np.uint8), chroma])


def bar(x: int, *, width: int = 112, height: int = 32, bar_width: int = 8) -> np.ndarray:
    """A dark picture with a bright vertical bar whose left edge is column ``x``."""
    luma = np.full((height, width), 16, np.uint8)
    luma[:, x : x + bar_width] = 235
    return yuv420p(luma)


def bar_position(picture: np.ndarray, height: int = 32) -> int:
    """Column of the bar's left edge in a :func:`bar` picture (its first bright column)."""
    return int(np.argmax(picture[:height].mean(axis=0) > 128))


def write_video(
    path: Path,
    pictures: list[np.ndarray],
    *,
    times: list[Fraction] | None = None,
    rate: Fraction = Fraction(25),
    audio_seconds: Fraction | None = None,
    codec: str = "ffv1",
) -> Path:
    """Encode yuv420p ``pictures`` into ``path`` (container by its extension), frame k at
    ``times[k]`` seconds (default k / rate), and ``audio_seconds`` of silent AAC beside it
    (none by default). With ffv1 the file decodes to exactly ``pictures``."""
    times = [Fraction(k) / rate for k in range(len(pictures))] if times is None else times
    tick = Fraction(1, 1)
    for time in times:
        tick = Fraction(1, math.lcm(tick.denominator, Fraction(time).denominator))
    height, width = pictures[0].shape[0] * 2 // 3, pictures[0].shape[1]
    with av.open(str(path), "w") as container:
        video = container.add_stream(codec, rate=rate)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.time_base = tick
        audio = None
        if audio_seconds is not None:
            audio = container.add_stream("aac", rate=AUDIO_RATE)
            audio.layout = "mono"
        for picture, time in zip(pictures, times, strict=True):
            frame = av.VideoFrame.from_ndarray(picture, format="yuv420p")
            frame.pts = int(time / tick)
            frame.time_base = tick
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        if audio is not None:
            samples = int(audio_seconds * AUDIO_RATE)
            for start in range(0, samples, AUDIO_FRAME):
                count = min(AUDIO_FRAME, samples - start)
                block = np.zeros((1, count), np.float32)
                frame = av.AudioFrame.from_ndarray(block, format="fltp", layout="mono")
                frame.sample_rate, frame.pts = AUDIO_RATE, start
                frame.time_base = Fraction(1, AUDIO_RATE)
                container.mux(audio.encode(frame))
            container.mux(audio.encode(None))
    return path


AUDIO_RATE = 48000
AUDIO_FRAME = 1024  # AAC's samples per packet


def stream_start(path: Path, kind: str) -> Fraction:
    """Start time of the first ``kind`` stream (its earliest packet's pts), in seconds."""
    with av.open(str(path)) as container:
        stream = getattr(container.streams, kind)[0]
        starts = [
            packet.pts * stream.time_base
            for packet in container.demux(stream)
            if packet.size and packet.pts is not None
        ]
    return min(starts)


def decoded_pictures(path: Path) -> list[np.ndarray]:
    return decoded_frames(path)[0]


@contextmanager
def time_limited(seconds: int) -> Iterator[None]:
    """Raise TimeoutError in the block once it has run ``seconds`` (a hung render fails)."""

    def expire(signum, frame):
        raise TimeoutError(f"render test ran past {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def blank_output(clip, settings):
    """A blank clip shaped like the filter's output for ``settings`` (what a recording stand-in
    for Interpolate returns)."""
    fps = settings.timing.output_fps
    return clip.std.BlankClip(
        length=settings.timing.output_length,
        fpsnum=fps.numerator,
        fpsden=fps.denominator,
        keep=True,
    )
