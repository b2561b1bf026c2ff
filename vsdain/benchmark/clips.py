"""The clip every path is timed on, at each benchmark size.

A real clip is used when one is given (``--clip``, from ``--clip-start``); otherwise a
synthetic one, so the bench runs anywhere. Content does
not change DAIN's cost (every pixel goes through the same arithmetic); it does change MVTools',
whose search stops early on easy blocks, so the report names the clip. The frames are decoded
and converted once and then served from memory, so that no path's time includes decoding
(which would swamp MVTools' millisecond per frame).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import vapoursynth as vs

from ..filter.frames import planes_to_frame

CLIP_LENGTH = 32  # source frames read: more than any configuration asks for
SYNTHETIC_FPS = (24, 1)


@dataclass(frozen=True)
class Source:
    """The clip at one size: ``rgb`` (RGBS) for DAIN, ``yuv`` (YUV420P8) for MVTools."""

    name: str
    rgb: vs.VideoNode
    yuv: vs.VideoNode


def load(
    path: Path | None,
    width: int,
    height: int,
    rgb_frames: int,
    yuv_frames: int,
    start: int = 0,
) -> Source:
    """``path`` read with BestSource from frame ``start`` and resized (bicubic), or the
    synthetic clip when None; the first ``rgb_frames`` / ``yuv_frames`` frames of each format,
    held in memory."""
    if path is None:
        rgb = synthetic(width, height)
        yuv = rgb.resize.Bicubic(format=vs.YUV420P8, matrix_s="709")
        name = f"synthetic moving pattern, {width}x{height}"
    else:
        rgb, yuv = _read(path, width, height, start)
        name = f"{path.name}, resized to {width}x{height}"
    return Source(name, in_memory(rgb, rgb_frames), in_memory(yuv, yuv_frames))


def _read(path: Path, width: int, height: int, start: int) -> tuple[vs.VideoNode, vs.VideoNode]:
    decoded = vs.core.bs.VideoSource(str(path))[start:][:CLIP_LENGTH]
    # BestSource sets _Matrix; an unspecified one would stop the conversion to RGB.
    matrix = decoded.get_frame(0).props.get("_Matrix", 2)
    matrix_in = {"matrix_in_s": "709"} if matrix == 2 else {}
    rgb = decoded.resize.Bicubic(width, height, format=vs.RGBS, **matrix_in)
    yuv = decoded.resize.Bicubic(width, height, format=vs.YUV420P8)
    return rgb, yuv


def in_memory(clip: vs.VideoNode, length: int) -> vs.VideoNode:
    """The first ``length`` frames of ``clip``, computed now and served from memory."""
    length = min(length, clip.num_frames)
    frames = [clip.get_frame(n) for n in range(length)]
    blank = clip.std.BlankClip(length=length, keep=True)
    return blank.std.ModifyFrame(clips=blank, selector=lambda n, f: frames[n])


def synthetic(width: int, height: int, length: int = CLIP_LENGTH) -> vs.VideoNode:
    """RGBS frames with motion everywhere: a ramp sliding right, a disc circling, stripes
    drifting diagonally."""
    blank = vs.core.std.BlankClip(
        format=vs.RGBS,
        width=width,
        height=height,
        length=length,
        fpsnum=SYNTHETIC_FPS[0],
        fpsden=SYNTHETIC_FPS[1],
    )
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)

    def draw(n: int, f: vs.VideoFrame) -> vs.VideoFrame:
        angle = n / 6.0
        centre_x = width * (0.5 + 0.25 * np.cos(angle))
        centre_y = height * (0.5 + 0.25 * np.sin(angle))
        disc = ((x - centre_x) ** 2 + (y - centre_y) ** 2) < (min(width, height) / 6) ** 2
        planes = (
            ((x + 5 * n) % width) / width,
            np.where(disc, 0.9, 0.2 + 0.3 * y / height),
            0.5 + 0.5 * np.sin((x + y + 3 * n) / 7),
        )
        return planes_to_frame(np.stack(planes), f)

    return blank.std.ModifyFrame(clips=blank, selector=draw)
