"""Counted floating-point operations of each part of the network, and the device's measured
dense-arithmetic peak to hold them against.

Operations are counted by ``torch.utils.flop_counter.FlopCounterMode`` on a copy of the
network on the ``meta`` device: shapes only, no arithmetic, so counting takes a second even at
1280x720. It counts convolutions and matrix products (a multiply-add is 2 operations) and
nothing else: the warping, projection and correlation ops, element-wise work and copies are
not in the count, so "fraction of peak" is a lower bound of how busy the device is.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from ..model import DAIN

# Sizes of the peak measurements: large enough to run at full speed, small enough to take
# well under a second each on two CPU cores (CPU) or to fill an H100 (GPU).
CPU_MATMUL_SIZE = 2048
GPU_MATMUL_SIZE = 8192
CONV_CHANNELS = 256
CPU_CONV_SIDE = 128
GPU_CONV_SIDE = 512
PEAK_REPEATS = 5


@dataclass(frozen=True)
class NetworkFlops:
    """Operations for one frame's features, one pair's features, one timestamp's synthesis."""

    frame: int
    pair: int
    synthesize: int

    @property
    def naive_pair(self) -> int:
        """Two frames' features and the pair's: what a pair costs before any timestamp."""
        return 2 * self.frame + self.pair


@dataclass(frozen=True)
class DevicePeak:
    """Achieved operations per second of a large matrix product and a 3x3 convolution."""

    matmul: float
    conv: float

    @property
    def best(self) -> float:
        return max(self.matmul, self.conv)


def count(model: DAIN, padded_height: int, padded_width: int) -> NetworkFlops:
    """Counted operations at a padded size (H and W multiples of 64), batch of one."""
    with torch.device("meta"):
        shadow = DAIN(projection=model.projection).eval()
        images = [torch.empty(1, 3, padded_height, padded_width) for _ in range(2)]
    counters = [FlopCounterMode(display=False) for _ in range(3)]
    with torch.inference_mode():
        with counters[0]:
            first = shadow.frame_features(images[0])
        second = shadow.frame_features(images[1])
        with counters[1]:
            pair = shadow.pair_features(first, second)
        with counters[2]:
            shadow.synthesize(pair, 0.5)
    frame, pair_count, synthesis = (counter.get_total_flops() for counter in counters)
    return NetworkFlops(frame, pair_count, synthesis)


def measure_peak(device: torch.device, dtype: torch.dtype = torch.float32) -> DevicePeak:
    """Best of a few runs of a square matrix product and of a 256 -> 256 3x3 convolution."""
    on_gpu = device.type == "cuda"
    size = GPU_MATMUL_SIZE if on_gpu else CPU_MATMUL_SIZE
    side = GPU_CONV_SIDE if on_gpu else CPU_CONV_SIDE
    generator = torch.Generator().manual_seed(0)
    a, b = (torch.rand(size, size, generator=generator).to(device, dtype) for _ in range(2))
    image = torch.rand(1, CONV_CHANNELS, side, side, generator=generator).to(device, dtype)
    weight = torch.rand(CONV_CHANNELS, CONV_CHANNELS, 3, 3, generator=generator)
    weight = weight.to(device, dtype)
    matmul_ops = 2 * size**3
    conv_ops = 2 * CONV_CHANNELS * CONV_CHANNELS * 9 * side * side
    with torch.inference_mode():
        matmul_s = _best_time(lambda: a @ b, device)
        conv_s = _best_time(lambda: F.conv2d(image, weight, padding=1), device)
    return DevicePeak(matmul_ops / matmul_s, conv_ops / conv_s)


def _best_time(work, device: torch.device) -> float:
    work()  # warm-up: algorithm choice and allocation
    times = []
    for _ in range(PEAK_REPEATS):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        work()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    return min(times)
