"""Small synthetic clips and a cheap network for the filter tests.

The network has random weights: its frames say nothing about quality, only that the filter
moves the right pixels to the right place exactly and deterministically.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import torch
import vapoursynth as vs

from vsdain.filter.frames import planes_to_frame
from vsdain.model import DAIN

# 64x48 pads to 128x128, the smallest input the network takes; one pair with one timestamp
# costs about 0.6 s on two CPU cores.
WIDTH, HEIGHT = 64, 48
FPS = (24000, 1001)
SOURCE_PROP = "TestSource"


def pattern(n: int, width: int = WIDTH, height: int = HEIGHT) -> np.ndarray:
    """(3, height, width) float32 in [0, 1]: a ramp moving right 4 px per frame, a still
    vertical ramp and diagonal stripes moving 3 px per frame, so consecutive frames differ."""
    y, x = np.mgrid[0:height, 0:width]
    planes = [
        ((x + 4 * n) % width) / width,
        y / max(height - 1, 1),
        0.5 + 0.5 * np.sin((x + y + 3 * n) / 5),
    ]
    return np.stack(planes).astype(np.float32)


def clip_from_arrays(
    arrays: list[np.ndarray], *, fps: tuple[int, int] = FPS, format: int = vs.RGBS
) -> vs.VideoNode:
    """A clip whose frame n holds ``arrays[n]`` (3, H, W), with props TestSource = n and
    _AbsoluteTime = n / fps."""
    height, width = arrays[0].shape[1:]
    blank = vs.core.std.BlankClip(
        format=format, width=width, height=height, length=len(arrays), fpsnum=fps[0], fpsden=fps[1]
    )

    def fill(n: int, f: vs.VideoFrame) -> vs.VideoFrame:
        out = planes_to_frame(arrays[n], f)
        out.props[SOURCE_PROP] = n
        out.props["_AbsoluteTime"] = n * fps[1] / fps[0]
        return out

    return blank.std.ModifyFrame(clips=blank, selector=fill)


def moving_clip(length: int, *, fps: tuple[int, int] = FPS, format: int = vs.RGBS) -> vs.VideoNode:
    return clip_from_arrays([pattern(n) for n in range(length)], fps=fps, format=format)


def planes(frame: vs.VideoFrame) -> np.ndarray:
    return np.stack([np.array(frame[plane]) for plane in range(frame.format.num_planes)])


def random_network(seed: int = 1234) -> DAIN:
    """A random DAIN in eval mode whose synthesis residual is scaled down, so its frames are
    the blend of the warped inputs (varied values) rather than the clamped residual (zeros)."""
    torch.manual_seed(seed)
    model = DAIN().eval()
    with torch.no_grad():
        last = model.rectifyNet.block5[0]
        last.weight.mul_(0.01)
        last.bias.zero_()
    return model


def blend_instead_of_network(monkeypatch) -> list[tuple[int, int, Fraction]]:
    """Until the test ends, every synthesised frame is ``(1 - t) * first + t * second`` of its
    two source frames instead of the network's: cheap and exact, for the tests of which pair
    and t feed each output frame. Returns the (first, second, t) asked for, in order."""
    from vsdain.filter.pair_cache import PairCache

    calls = []

    def blend(self, first, second, t, first_frame, second_frame):
        calls.append((first, second, t))
        mixed = (1 - float(t)) * planes(first_frame) + float(t) * planes(second_frame)
        return mixed.astype(self.sample_type)

    monkeypatch.setattr(PairCache, "interpolated", blend)
    return calls
