"""Inputs for the op tests, and the op backends they run on.

Every random tensor is made on the CPU from a fixed seed (in float64, then cast), so each
backend sees the same values; tests move them to the backend's device with
:meth:`OpBackend.put`. Edge cases are named by the helper that plants them: flow off the image,
NaN/Inf flow, landing exactly on the last row or column, sparse sources, non-contiguous storage.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from vsdain.ops.correlation import correlation_kernel, correlation_reference
from vsdain.ops.kernel_source import KernelLauncher
from vsdain.ops.projection import project_flow_kernel, project_flow_reference
from vsdain.ops.warping import adaptive_warp_kernel, adaptive_warp_reference

FAR = 1.0e6  # a flow that carries any pixel off the image
BAD_VALUES = [math.nan, math.inf, -math.inf]
# (H, W): tiny, a single row or column, odd sizes, and one that takes every grid-stride loop
# of the host launches round many times.
SIZES = [(1, 1), (1, 5), (4, 1), (3, 7), (5, 4), (9, 11)]
FLOAT_DTYPES = [torch.float32, torch.float64]
KERNEL_DTYPES = [torch.float16, torch.float32, torch.float64]
# Atomic adds sum in a different order from run to run on a GPU; gradcheck compares two
# backward passes. The host schedule is sequential, hence exact.
ATOMIC_NONDETERMINISM = 1e-12


# --- backends ------------------------------------------------------------------------------


@dataclass(frozen=True)
class OpBackend:
    """One way to run the three ops: the PyTorch references (``launch`` None) or the kernels
    through ``launch`` (the CPU build of the sources, or CuPy on a GPU), on ``device``."""

    name: str
    device: torch.device
    launch: KernelLauncher | None = None

    @property
    def kernels(self) -> bool:
        return self.launch is not None

    @property
    def nondet_tol(self) -> float:
        return ATOMIC_NONDETERMINISM if self.device.type == "cuda" else 0.0

    def put(self, *tensors: torch.Tensor | None):
        """The tensors on this backend's device (None stays None); one tensor for one."""
        moved = tuple(None if t is None else t.to(self.device) for t in tensors)
        return moved[0] if len(moved) == 1 else moved

    def correlation(self, first, second, max_displacement=4):
        if self.launch is None:
            return correlation_reference(first, second, max_displacement)
        return correlation_kernel(first, second, max_displacement, launch=self.launch)

    def project_flow(self, flow, weight, *, fill_holes):
        if self.launch is None:
            return project_flow_reference(flow, weight, fill_holes=fill_holes)
        return project_flow_kernel(flow, weight, fill_holes=fill_holes, launch=self.launch)

    def adaptive_warp(self, image, flow, kernel, origin=(0, 0)):
        if self.launch is None:
            return adaptive_warp_reference(image, flow, kernel, origin)
        return adaptive_warp_kernel(image, flow, kernel, origin, launch=self.launch)


# --- random values -------------------------------------------------------------------------


def generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def uniform(
    *shape: int, seed: int, low: float = -1.0, high: float = 1.0, dtype: torch.dtype = torch.float64
) -> torch.Tensor:
    """Uniform values in [low, high) made on the CPU from a fixed seed (float64, then cast)."""
    values = torch.rand(*shape, generator=generator(seed), dtype=torch.float64)
    return (values * (high - low) + low).to(dtype)


def random_flow(batch, height, width, seed, spread=2.0, dtype=torch.float64) -> torch.Tensor:
    """(B, 2, H, W) flow uniform in [-spread, spread) pixels."""
    return uniform(batch, 2, height, width, seed=seed, low=-spread, high=spread, dtype=dtype)


def random_weight(batch, height, width, seed, dtype=torch.float64) -> torch.Tensor:
    """(B, 1, H, W) positive splat weights in [0.2, 2), like DAIN's inverse depth."""
    return uniform(batch, 1, height, width, seed=seed, low=0.2, high=2.0, dtype=dtype)


def random_kernel(batch, height, width, seed, dtype=torch.float64) -> torch.Tensor:
    """(B, 16, H, W) warp tap weights in [-1, 1)."""
    return uniform(batch, 16, height, width, seed=seed, dtype=dtype)


def warp_inputs(batch, channels, height, width, seed, dtype=torch.float64, spread=2.5):
    """(image, flow with :func:`with_edge_cases`, kernel) for the adaptive warp."""
    image = uniform(batch, channels, height, width, seed=seed, dtype=dtype)
    flow = with_edge_cases(
        random_flow(batch, height, width, seed=seed + 1, spread=spread, dtype=dtype)
    )
    kernel = random_kernel(batch, height, width, seed=seed + 2, dtype=dtype)
    return image, flow, kernel


# --- edge cases ----------------------------------------------------------------------------


def non_contiguous(tensor: torch.Tensor) -> torch.Tensor:
    """The same values stored channels-last, so that the NCHW view is not contiguous."""
    result = tensor.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)
    if result.is_contiguous():  # (B, C, 1, 1) and the like are contiguous either way
        result = torch.cat([tensor, tensor], dim=-1)[..., : tensor.shape[-1]]
    return result


def with_edge_cases(flow: torch.Tensor) -> torch.Tensor:
    """Plants the kinds of flow the ops must handle: NaN, +-Inf, far off the image, and
    landing exactly on the last column and the last row (which the projection counts twice)."""
    flow = flow.clone()
    batch, _, height, width = flow.shape
    pixels = [(n, y, x) for n in range(batch) for y in range(height) for x in range(width)]
    plants = [
        (0, math.nan), (1, math.nan), (0, math.inf), (1, -math.inf), (0, FAR), (1, -FAR),
    ]  # fmt: skip
    for (n, y, x), (channel, value) in zip(pixels[::3], plants, strict=False):
        flow[n, channel, y, x] = value
    for n, y, x in pixels[1::3][:2]:
        flow[n, 0, y, x] = width - 1 - x
        flow[n, 1, y, x] = height - 1 - y
    return flow


def with_broken_flow(flow: torch.Tensor) -> torch.Tensor:
    """A regular sprinkling of NaN (every 7th value), +Inf (every 11th) and far (every 13th)
    flow, so that large inputs hold many broken values, not just a handful."""
    flow = flow.clone()
    flow.view(-1)[::7] = math.nan
    flow.view(-1)[3::11] = math.inf
    flow.view(-1)[5::13] = min(FAR, torch.finfo(flow.dtype).max)  # float16 stops at 65504
    return flow


def sparse(flow: torch.Tensor, seed: int, dropped: float = 0.6) -> torch.Tensor:
    """Sends a random ``dropped`` share of the sources off the image, leaving holes with
    several reached neighbours, so that the fill averages (and splits gradients) over more
    than one."""
    off = torch.rand(flow[:, :1].shape, generator=generator(seed)) < dropped
    return torch.where(off, torch.tensor(FAR, dtype=flow.dtype), flow)


def smooth_projection_inputs(height: int, width: int, target_rows: int, seed: int):
    """Landing points >= 0.2 px from any integer (so floor() is locally constant) inside the
    image's first ``target_rows`` rows, one source sent off it, and positive weights:
    gradcheck's perturbations never change which pixels a source reaches. float64, with
    requires_grad."""
    g = generator(seed)
    target_x = torch.randint(0, width - 1, (1, height, width), generator=g)
    target_y = torch.randint(0, target_rows, (1, height, width), generator=g)
    fraction = torch.rand(2, 1, height, width, generator=g, dtype=torch.float64) * 0.6 + 0.2
    flow = torch.stack(
        [
            target_x + fraction[0] - torch.arange(width, dtype=torch.float64),
            target_y + fraction[1] - torch.arange(height, dtype=torch.float64).unsqueeze(1),
        ],
        dim=1,
    )
    flow[0, 0, 0, 1] = 50.0
    weight = torch.rand(1, 1, height, width, generator=g, dtype=torch.float64) * 1.5 + 0.5
    return flow.requires_grad_(), weight.requires_grad_()


def smooth_warp_flow(batch: int, height: int, width: int, seed: int) -> torch.Tensor:
    """(B, 2, H, W) float64 flow of whole-pixel shifts in -1..1 plus a fraction in [0.2, 0.8]:
    floor() and the warp's validity tests (bounds at integers, |F| < size / 2 for sizes >= 4)
    stay constant under gradcheck's perturbations."""
    g = generator(seed)
    shift = torch.randint(-1, 2, (batch, 2, height, width), generator=g).double()
    fraction = torch.rand(batch, 2, height, width, generator=g, dtype=torch.float64) * 0.6 + 0.2
    return shift + fraction


def isolated_sources(
    height: int, width: int, sources: dict[tuple[int, int], tuple[float, float]]
) -> torch.Tensor:
    """(1, 2, H, W) float64 flow in which only ``sources`` ((y, x) -> (fx, fy)) stay on the
    image."""
    flow = torch.full((1, 2, height, width), FAR, dtype=torch.float64)
    for (y, x), (fx, fy) in sources.items():
        flow[0, :, y, x] = torch.tensor([fx, fy], dtype=torch.float64)
    return flow


def one_hot_kernel(batch: int, height: int, width: int, taps) -> torch.Tensor:
    """(B, 16, H, W) float64 warp kernel that is 1 at ``taps`` and 0 elsewhere."""
    kernel = torch.zeros(batch, 16, height, width, dtype=torch.float64)
    kernel[:, list(taps)] = 1.0
    return kernel


# --- gradients -----------------------------------------------------------------------------


def reference_inputs(*tensors: torch.Tensor | None) -> list[torch.Tensor | None]:
    """float16 is compared with the reference computed in float32 on the same values."""
    return [t if t is None or t.dtype != torch.float16 else t.float() for t in tensors]


def gradients(function, inputs, grad_output):
    """(output, gradients) of sum(function(*inputs) * grad_output) with respect to every
    tensor input (None inputs get None)."""
    leaves = [None if t is None else t.detach().requires_grad_() for t in inputs]
    output = function(*leaves)
    output.backward(grad_output)
    return output.detach(), [None if t is None else t.grad for t in leaves]
