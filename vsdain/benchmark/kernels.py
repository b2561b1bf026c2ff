"""The CUDA kernels against the PyTorch references, op by op and for a whole pair, at a
benchmark size. Only where a CUDA device is present; elsewhere the report says it skipped."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from .. import ops
from ..model import DAIN
from ..model.context import CONTEXT_CHANNELS
from ..model.flow import MAX_DISPLACEMENT, PYRAMID_WIDTHS
from ..model.kernel_estimation import KERNEL_TAPS

REPEATS = 5
TYPICAL_MOTION = 8.0  # pixels: the spread of the random flows, a moderate video motion


@dataclass(frozen=True)
class KernelTiming:
    """Seconds for one call of ``operation`` with each backend."""

    operation: str
    reference: float
    cuda: float


def compare(
    model: DAIN, padded_height: int, padded_width: int, device: torch.device
) -> list[KernelTiming]:
    """Each op at the shapes DAIN calls it with, then one whole interpolation."""
    generator = torch.Generator().manual_seed(0)

    def random(*shape: int, scale: float = 1.0) -> torch.Tensor:
        return (torch.rand(*shape, generator=generator) * scale).to(device)

    height, width = padded_height, padded_width
    # PWC-Net's finest correlation is at 1/4 size on its level-2 features.
    level = PYRAMID_WIDTHS[1]
    features = [random(1, level, height // 4, width // 4) for _ in range(2)]
    flow = random(1, 2, height, width, scale=2 * TYPICAL_MOTION) - TYPICAL_MOTION
    weight = random(1, 1, height, width) + 0.1
    context = random(1, CONTEXT_CHANNELS, height, width)
    kernel = random(1, KERNEL_TAPS, height, width)
    images = [random(1, 3, height, width) for _ in range(2)]
    # One copy of the network per path, each resolving its own (no switch flipped around a call).
    networks = {backend: copy.deepcopy(model).use_ops(backend) for backend in ("reference", "cuda")}
    cases: list[tuple[str, Callable[[str], object]]] = [
        (
            f"correlation ({level} ch, 1/4 size)",
            lambda backend: ops.correlation(*features, MAX_DISPLACEMENT, backend=backend),
        ),
        (
            "project_flow (fill holes)",
            lambda backend: ops.project_flow(flow, weight, fill_holes=True, backend=backend),
        ),
        (
            f"adaptive_warp ({CONTEXT_CHANNELS} ch)",
            lambda backend: ops.adaptive_warp(context, flow, kernel, backend=backend),
        ),
        (
            "whole pair, one timestamp",
            lambda backend: networks[backend].interpolate(*images, [0.5]),
        ),
    ]
    timings = []
    with torch.inference_mode():
        for name, run in cases:
            reference = _best(lambda run=run: run("reference"), device)
            timings.append(
                KernelTiming(name, reference, _best(lambda run=run: run("cuda"), device))
            )
    return timings


def _best(work: Callable[[], object], device: torch.device) -> float:
    work()
    times = []
    for _ in range(REPEATS):
        torch.cuda.synchronize(device)
        start = time.perf_counter()
        work()
        torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    return min(times)
