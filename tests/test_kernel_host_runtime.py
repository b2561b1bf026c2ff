"""The CPU harness that runs the CUDA kernel sources (tests/host_runtime.h, host_kernels.py).

Every CPU kernel test leans on it, so its own pieces are checked here: the half-precision
conversions against PyTorch's, launches that leave simulated threads idle and go round the
grid-stride loops, and the launcher's argument checks.
"""

from __future__ import annotations

import ctypes
import math

import pytest
import torch
from host_kernels import HOST_MAX_BLOCKS, HOST_PRELUDE, HOST_THREADS_PER_BLOCK, build_library
from op_inputs import generator, uniform

from vsdain.ops.correlation import correlation_kernel
from vsdain.ops.kernel_source import COMMON_HEADER

CONVERSION_SOURCE = """
extern "C" void halves_to_floats(const unsigned short* halves, float* floats, int count)
{
    for (int i = 0; i < count; ++i) floats[i] = load(reinterpret_cast<const half_t*>(halves + i));
}
extern "C" void floats_to_halves(const float* floats, unsigned short* halves, int count)
{
    for (int i = 0; i < count; ++i) store(reinterpret_cast<half_t*>(halves + i), floats[i]);
}
"""


@pytest.fixture(scope="module")
def conversions(tmp_path_factory):
    source = "\n".join([HOST_PRELUDE.read_text(), COMMON_HEADER.read_text(), CONVERSION_SOURCE])
    path = build_library(source, tmp_path_factory.mktemp("conversions"), "conversions")
    return ctypes.CDLL(str(path))


def test_host_half_to_float_is_exact_for_every_half(conversions):
    halves = torch.arange(2**16, dtype=torch.int32).to(torch.uint16)
    floats = torch.empty(2**16, dtype=torch.float32)
    conversions.halves_to_floats(
        ctypes.c_void_p(halves.data_ptr()), ctypes.c_void_p(floats.data_ptr()), 2**16
    )
    expected = halves.view(torch.float16).float()
    assert torch.equal(floats.isnan(), expected.isnan())
    finite = ~expected.isnan()
    assert torch.equal(floats[finite], expected[finite])


def test_host_float_to_half_rounds_like_torch(conversions):
    # Random magnitudes across the whole half range and beyond, every tie between adjacent
    # halves (odd multiples of half an ulp), and the overflow and underflow boundaries.
    random = torch.randn(200_000, generator=generator(1)) * torch.exp2(
        torch.randint(-30, 20, (200_000,), generator=generator(2)).float()
    )
    halves = torch.arange(0x7C00, dtype=torch.int32).to(torch.uint16).view(torch.float16)
    ties = (halves[:-1].double() + halves[1:].double()) / 2
    special = torch.tensor(
        [0.0, -0.0, 65504.0, 65519.99, 65520.0, 1e9, math.inf, -math.inf, 2**-25, 2**-24 * 1.5,
         2**-25 * 1.0001, 2**-26, 2**-14 * (1 - 2**-12), -(2**-24)],
        dtype=torch.float64,
    )  # fmt: skip
    floats = torch.cat([random, ties.float(), special.float()]).contiguous()
    halves_out = torch.empty(floats.numel(), dtype=torch.uint16)
    conversions.floats_to_halves(
        ctypes.c_void_p(floats.data_ptr()), ctypes.c_void_p(halves_out.data_ptr()), floats.numel()
    )
    assert torch.equal(halves_out, floats.half().view(torch.uint16))
    nan = torch.tensor([math.nan])
    conversions.floats_to_halves(
        ctypes.c_void_p(nan.data_ptr()), ctypes.c_void_p(halves_out.data_ptr()), 1
    )
    assert halves_out[:1].view(torch.float16).isnan().all()


def test_host_launches_cover_idle_threads_and_grid_stride_loops(host_kernels):
    capacity = HOST_THREADS_PER_BLOCK * HOST_MAX_BLOCKS
    first = uniform(1, 1, 1, 1, seed=3, dtype=torch.float32)
    second = uniform(1, 1, 1, 1, seed=4, dtype=torch.float32)
    correlation_kernel(first, second, 0, launch=host_kernels)  # 1 work item: 7 idle threads
    first = uniform(2, 3, 9, 11, seed=5, dtype=torch.float32)
    second = uniform(2, 3, 9, 11, seed=6, dtype=torch.float32)
    correlation_kernel(first, second, 4, launch=host_kernels)
    items = [work for _, _, work in host_kernels.launches[-2:]]
    assert items[0] < HOST_THREADS_PER_BLOCK
    assert items[1] > 10 * capacity  # each simulated thread takes the loop round >= 10 times


def test_host_launcher_rejects_non_contiguous_tensors(host_kernels):
    cost = torch.empty(1, 1, 2, 2)
    first = torch.zeros(1, 1, 2, 4)[..., ::2]
    with pytest.raises(ValueError, match="contiguous"):
        host_kernels(
            "correlation",
            "correlation_forward",
            torch.float32,
            4,
            first,
            first,
            cost,
            1,
            1,
            2,
            2,
            0,
        )
