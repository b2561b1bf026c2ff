"""The CuPy-compiled kernels on a real GPU match the references on the same GPU.

Skipped, not failed, where there is no CUDA device or CuPy does not import: the CPU execution
of the same kernel sources (test_kernels_cpu.py) is the proof that runs everywhere. These add
what only a GPU shows: NVRTC through CuPy on the device's own architecture, the half
conversions in PTX, atomics racing for real, and launches on PyTorch's current stream.
"""

from __future__ import annotations

import math

import pytest
import torch
from tolerances import assert_close

from vsdain.ops import cupy_backend, dispatch
from vsdain.ops.correlation import correlation_reference
from vsdain.ops.functions import adaptive_warp_kernel, correlation_kernel, project_flow_kernel
from vsdain.ops.projection import project_flow_reference
from vsdain.ops.warping import adaptive_warp_reference


def _skip_reason() -> str | None:
    if not torch.cuda.is_available():
        return "no CUDA device"
    unavailable = cupy_backend.cupy_unavailable_reason()
    if unavailable is not None:
        return f"CuPy does not import: {unavailable}"
    return None


pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(_skip_reason() is not None, reason=str(_skip_reason())),
]

CUDA = "cuda"
LAUNCH = cupy_backend.launch_on_current_stream
DTYPES = [torch.float16, torch.float32, torch.float64]
SIZES = [(1, 1), (3, 7), (9, 11), (64, 96)]
# Atomic adds sum in a different order from run to run; gradcheck compares two backward passes.
ATOMIC_NONDETERMINISM = 1e-12


def uniform(*shape: int, seed: int, low: float = -1.0, high: float = 1.0, dtype=torch.float32):
    """Made on the CPU from a fixed seed, then moved to the GPU."""
    generator = torch.Generator().manual_seed(seed)
    values = torch.rand(*shape, generator=generator, dtype=torch.float64) * (high - low) + low
    return values.to(dtype).to(CUDA)


def reference_inputs(*tensors):
    """float16 is compared with the reference computed in float32 on the same values."""
    return [t if t is None or t.dtype != torch.float16 else t.float() for t in tensors]


def compare(actual: torch.Tensor, expected: torch.Tensor) -> None:
    assert_close(actual.float(), expected.float(), dtype=actual.dtype)


def gradients(function, inputs, grad_output):
    leaves = [None if t is None else t.detach().requires_grad_() for t in inputs]
    function(*leaves).backward(grad_output)
    return [None if t is None else t.grad for t in leaves]


def with_broken_flow(flow: torch.Tensor) -> torch.Tensor:
    flow = flow.clone()
    flow.view(-1)[::7] = math.nan
    flow.view(-1)[3::11] = math.inf
    flow.view(-1)[5::13] = 1.0e6
    return flow


def test_auto_dispatch_chooses_the_kernels_for_cuda_tensors(monkeypatch):
    monkeypatch.delenv(dispatch.OPS_ENV, raising=False)
    path, reason = dispatch.describe_backend(torch.device(CUDA))
    assert path == "cuda", reason


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize(("height", "width"), SIZES)
def test_correlation_matches_reference(dtype, height, width):
    first = uniform(2, 32, height, width, seed=1, dtype=dtype)
    second = uniform(2, 32, height, width, seed=2, dtype=dtype)
    actual = dispatch.correlation(first, second, 4, backend="cuda")
    compare(actual, correlation_reference(*reference_inputs(first, second), 4))


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize(("height", "width"), SIZES)
@pytest.mark.parametrize("fill_holes", [False, True])
def test_projection_matches_reference(dtype, height, width, fill_holes):
    flow = with_broken_flow(uniform(2, 2, height, width, seed=3, low=-3, high=3, dtype=dtype))
    weight = uniform(2, 1, height, width, seed=4, low=0.2, high=2.0, dtype=dtype)
    actual = dispatch.project_flow(flow, weight, fill_holes=fill_holes, backend="cuda")
    flow_ref, weight_ref = reference_inputs(flow, weight)
    compare(actual, project_flow_reference(flow_ref, weight_ref, fill_holes=fill_holes))


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize(("height", "width"), SIZES)
@pytest.mark.parametrize("channels", [3, 196])
def test_warp_matches_reference(dtype, height, width, channels):
    image = uniform(2, channels, height, width, seed=5, low=0.0, high=1.0, dtype=dtype)
    flow = with_broken_flow(uniform(2, 2, height, width, seed=6, low=-3, high=3, dtype=dtype))
    kernel = uniform(2, 16, height, width, seed=7, low=0.0, high=0.25, dtype=dtype)
    actual = dispatch.adaptive_warp(image, flow, kernel, backend="cuda")
    compare(actual, adaptive_warp_reference(*reference_inputs(image, flow, kernel)))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_backward_matches_reference_autograd(dtype):
    height, width = 24, 31
    first = uniform(2, 8, height, width, seed=8, dtype=dtype)
    second = uniform(2, 8, height, width, seed=9, dtype=dtype)
    grad = uniform(2, 81, height, width, seed=10, dtype=dtype)
    actual = gradients(
        lambda a, b: correlation_kernel(a, b, 4, launch=LAUNCH), (first, second), grad
    )
    expected = gradients(lambda a, b: correlation_reference(a, b, 4), (first, second), grad)
    for got, want in zip(actual, expected, strict=True):
        assert_close(got, want)

    flow = with_broken_flow(uniform(2, 2, height, width, seed=11, low=-3, high=3, dtype=dtype))
    weight = uniform(2, 1, height, width, seed=12, low=0.2, high=2.0, dtype=dtype)
    grad = uniform(2, 2, height, width, seed=13, dtype=dtype)
    for fill_holes in (False, True):
        actual = gradients(
            lambda f, w, fill=fill_holes: project_flow_kernel(f, w, fill_holes=fill, launch=LAUNCH),
            (flow, weight),
            grad,
        )
        expected = gradients(
            lambda f, w, fill=fill_holes: project_flow_reference(f, w, fill_holes=fill),
            (flow, weight),
            grad,
        )
        for got, want in zip(actual, expected, strict=True):
            assert_close(got, want)

    image = uniform(2, 3, height, width, seed=14, dtype=dtype)
    flow = uniform(2, 2, height, width, seed=15, low=-3, high=3, dtype=dtype)
    kernel = uniform(2, 16, height, width, seed=16, dtype=dtype)
    grad = uniform(2, 3, height, width, seed=17, dtype=dtype)
    actual = gradients(
        lambda i, f, k: adaptive_warp_kernel(i, f, k, launch=LAUNCH), (image, flow, kernel), grad
    )
    expected = gradients(adaptive_warp_reference, (image, flow, kernel), grad)
    for got, want in zip(actual, expected, strict=True):
        assert_close(got, want)


def test_gradcheck_on_the_device():
    generator = torch.Generator().manual_seed(18)
    first = uniform(1, 2, 3, 4, seed=19, dtype=torch.float64).requires_grad_()
    second = uniform(1, 2, 3, 4, seed=20, dtype=torch.float64).requires_grad_()
    assert torch.autograd.gradcheck(
        lambda a, b: correlation_kernel(a, b, 1, launch=LAUNCH), (first, second)
    )

    # Whole-pixel shifts plus fractions in [0.2, 0.8]: floor() and the validity tests stay
    # constant under gradcheck's perturbations.
    shift = torch.randint(-1, 2, (1, 2, 4, 5), generator=generator).double()
    fraction = torch.rand(1, 2, 4, 5, generator=generator, dtype=torch.float64) * 0.6 + 0.2
    flow = (shift + fraction).to(CUDA).requires_grad_()
    image = uniform(1, 2, 4, 5, seed=21, dtype=torch.float64).requires_grad_()
    kernel = uniform(1, 16, 4, 5, seed=22, dtype=torch.float64).requires_grad_()
    assert torch.autograd.gradcheck(
        lambda i, f, k: adaptive_warp_kernel(i, f, k, launch=LAUNCH),
        (image, flow, kernel),
        nondet_tol=ATOMIC_NONDETERMINISM,
    )
    weight = uniform(1, 1, 4, 5, seed=23, low=0.5, high=2.0, dtype=torch.float64).requires_grad_()
    for fill_holes in (False, True):
        assert torch.autograd.gradcheck(
            lambda f, w, fill=fill_holes: project_flow_kernel(f, w, fill_holes=fill, launch=LAUNCH),
            (flow, weight),
            nondet_tol=ATOMIC_NONDETERMINISM,
        )


def test_kernels_run_on_the_current_stream():
    """Inputs written on a side stream are read correctly by kernels launched while that
    stream is current, without any synchronisation in between."""
    side = torch.cuda.Stream()
    with torch.cuda.stream(side):
        image = torch.rand(1, 196, 256, 256, device=CUDA)
        flow = torch.zeros(1, 2, 256, 256, device=CUDA)
        kernel = torch.zeros(1, 16, 256, 256, device=CUDA)
        kernel[:, 5] = 1.0  # with zero flow, tap 5 is the pixel itself
        image.mul_(2.0)  # still queued on the side stream when the kernel is launched
        warped = adaptive_warp_kernel(image, flow, kernel, launch=LAUNCH)
    side.synchronize()
    assert torch.equal(warped, image)


def test_compiled_kernels_are_reused():
    first = uniform(1, 4, 8, 8, seed=24)
    correlation_kernel(first, first, 4, launch=LAUNCH)
    modules = cupy_backend._compiled_module.cache_info()
    functions = cupy_backend._kernel_function.cache_info()
    correlation_kernel(first, first, 4, launch=LAUNCH)
    assert cupy_backend._compiled_module.cache_info().misses == modules.misses
    assert cupy_backend._kernel_function.cache_info().misses == functions.misses
    assert cupy_backend._kernel_function.cache_info().hits > functions.hits
