"""The CUDA kernel sources, executed on the CPU, match the PyTorch references.

The kernels are compiled as C++ with tests/host_runtime.h in place of the GPU prelude (see
tests/host_kernels.py) and run through the real autograd Functions of vsdain.ops.functions, so
this checks the kernels' arithmetic and the Functions' bookkeeping (dtypes, buffers,
contiguity, which gradients are computed) without a GPU. Forward results and gradients are
compared with the references and their autograd gradients over random inputs and the edge
cases the kernels must survive: flow off the image, NaN/Inf flow, non-contiguous input, odd and
tiny sizes, a batch of several. Every host launch is small enough (<= 40 simulated threads)
that all but the tiniest inputs also go round the grid-stride loops.
"""

from __future__ import annotations

import ctypes
import math

import pytest
import torch
from host_kernels import (
    HOST_MAX_BLOCKS,
    HOST_PRELUDE,
    HOST_THREADS_PER_BLOCK,
    HostKernels,
    build_library,
)
from tolerances import assert_close

from vsdain.ops.correlation import correlation_reference
from vsdain.ops.functions import adaptive_warp_kernel, correlation_kernel, project_flow_kernel
from vsdain.ops.kernel_source import COMMON_HEADER
from vsdain.ops.projection import project_flow_reference
from vsdain.ops.warping import adaptive_warp_reference

SIZES = [(1, 1), (1, 5), (4, 1), (3, 7), (5, 4), (9, 11)]  # (H, W): tiny, one row/column, odd
FLOAT_DTYPES = [torch.float32, torch.float64]
FAR = 1.0e6  # carries any pixel off the image
BAD_VALUES = [math.nan, math.inf, -math.inf]


@pytest.fixture(scope="module")
def host(tmp_path_factory) -> HostKernels:
    return HostKernels(tmp_path_factory.mktemp("host_kernels"))


def generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def uniform(*shape: int, seed: int, low: float = -1.0, high: float = 1.0, dtype=torch.float32):
    """Uniform values made on the CPU from a fixed seed (in float64, then cast)."""
    values = torch.rand(*shape, generator=generator(seed), dtype=torch.float64)
    return (values * (high - low) + low).to(dtype)


def non_contiguous(tensor: torch.Tensor) -> torch.Tensor:
    """The same values stored channels-last, so that the NCHW view is not contiguous."""
    result = tensor.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)
    if result.is_contiguous():  # (B, C, 1, 1) and the like are contiguous either way
        result = torch.cat([tensor, tensor], dim=-1)[..., : tensor.shape[-1]]
    return result


def gradients(function, inputs, grad_output):
    """Gradients of sum(function(*inputs) * grad_output) with respect to every float input."""
    leaves = [t.detach().requires_grad_() if t is not None else None for t in inputs]
    output = function(*leaves)
    output.backward(grad_output)
    return output.detach(), [None if t is None else t.grad for t in leaves]


def assert_gradients_close(actual, expected, dtype):
    for index, (got, want) in enumerate(zip(actual, expected, strict=True)):
        if want is None:
            assert got is None, f"input {index}"
            continue
        assert_close(got, want, dtype=dtype, msg=lambda text, index=index: f"input {index}: {text}")


# --- the host prelude itself -----------------------------------------------------------------

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


def test_host_launches_cover_idle_threads_and_grid_stride_loops(host):
    capacity = HOST_THREADS_PER_BLOCK * HOST_MAX_BLOCKS
    first, second = uniform(1, 1, 1, 1, seed=3), uniform(1, 1, 1, 1, seed=4)
    correlation_kernel(first, second, 0, launch=host)  # 1 work item: 7 idle threads
    first, second = uniform(2, 3, 9, 11, seed=5), uniform(2, 3, 9, 11, seed=6)
    correlation_kernel(first, second, 4, launch=host)
    items = [work for _, _, work in host.launches[-2:]]
    assert items[0] < HOST_THREADS_PER_BLOCK
    assert items[1] > 10 * capacity  # each simulated thread takes the loop round >= 10 times


# --- correlation -------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
@pytest.mark.parametrize(("height", "width"), SIZES)
@pytest.mark.parametrize("max_displacement", [0, 1, 4])
def test_correlation_forward_matches_reference(host, dtype, height, width, max_displacement):
    first = uniform(2, 3, height, width, seed=10, dtype=dtype)
    second = uniform(2, 3, height, width, seed=11, dtype=dtype)
    actual = correlation_kernel(first, second, max_displacement, launch=host)
    assert actual.dtype == dtype
    assert_close(actual, correlation_reference(first, second, max_displacement))


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
@pytest.mark.parametrize(("height", "width"), [(1, 1), (3, 7), (6, 5)])
def test_correlation_backward_matches_reference_autograd(host, dtype, height, width):
    first = uniform(2, 5, height, width, seed=12, dtype=dtype)
    second = uniform(2, 5, height, width, seed=13, dtype=dtype)
    grad = uniform(2, 81, height, width, seed=14, dtype=dtype)
    _, actual = gradients(
        lambda a, b: correlation_kernel(a, b, 4, launch=host), (first, second), grad
    )
    _, expected = gradients(lambda a, b: correlation_reference(a, b, 4), (first, second), grad)
    assert_gradients_close(actual, expected, dtype)


def test_correlation_gradient_of_one_input_only(host):
    first = uniform(1, 2, 4, 5, seed=15).requires_grad_()
    second = uniform(1, 2, 4, 5, seed=16)
    correlation_kernel(first, second, 2, launch=host).sum().backward()
    expected = torch.autograd.grad(correlation_reference(first, second, 2).sum(), first)[0]
    assert_close(first.grad, expected)


def test_correlation_non_contiguous_input(host):
    first, second = uniform(2, 4, 5, 6, seed=17), uniform(2, 4, 5, 6, seed=18)
    expected = correlation_reference(first, second, 3)
    actual = correlation_kernel(non_contiguous(first), non_contiguous(second), 3, launch=host)
    assert_close(actual, expected)


def test_correlation_float16_sums_in_float32(host):
    first = uniform(1, 32, 6, 7, seed=19).half()
    second = uniform(1, 32, 6, 7, seed=20).half()
    actual = correlation_kernel(first, second, 4, launch=host)
    assert actual.dtype == torch.float16
    expected = correlation_reference(first.float(), second.float(), 4)
    assert_close(actual.float(), expected, dtype=torch.float16)
    grad = uniform(1, 81, 6, 7, seed=21).half()
    _, actual_grads = gradients(
        lambda a, b: correlation_kernel(a, b, 4, launch=host), (first, second), grad
    )
    _, expected_grads = gradients(
        lambda a, b: correlation_reference(a, b, 4), (first.float(), second.float()), grad.float()
    )
    assert actual_grads[0].dtype == torch.float16
    assert_gradients_close([g.float() for g in actual_grads], expected_grads, torch.float16)


def test_correlation_batch_matches_items_alone(host):
    first, second = uniform(3, 2, 5, 4, seed=22), uniform(3, 2, 5, 4, seed=23)
    together = correlation_kernel(first, second, 2, launch=host)
    for n in range(3):
        alone = correlation_kernel(first[n : n + 1], second[n : n + 1], 2, launch=host)
        assert torch.equal(together[n : n + 1], alone)


def test_correlation_gradcheck(host):
    first = uniform(1, 2, 3, 4, seed=24, dtype=torch.float64).requires_grad_()
    second = uniform(1, 2, 3, 4, seed=25, dtype=torch.float64).requires_grad_()
    assert torch.autograd.gradcheck(
        lambda a, b: correlation_kernel(a, b, 1, launch=host), (first, second)
    )


def test_correlation_rejects_bad_arguments(host):
    with pytest.raises(ValueError, match="equal shapes"):
        correlation_kernel(torch.zeros(1, 2, 3, 4), torch.zeros(1, 2, 3, 5), 1, launch=host)
    with pytest.raises(ValueError, match=">= 0"):
        correlation_kernel(torch.zeros(1, 2, 3, 4), torch.zeros(1, 2, 3, 4), -1, launch=host)
    with pytest.raises(TypeError, match="int"):
        correlation_kernel(torch.zeros(1, 2, 3, 4), torch.zeros(1, 2, 3, 4), 1.5, launch=host)


# --- depth-aware flow projection -----------------------------------------------------------


def random_flow(batch, height, width, seed, spread=2.0, dtype=torch.float32):
    return uniform(batch, 2, height, width, seed=seed, low=-spread, high=spread, dtype=dtype)


def random_weight(batch, height, width, seed, dtype=torch.float32):
    return uniform(batch, 1, height, width, seed=seed, low=0.2, high=2.0, dtype=dtype)


def with_edge_cases(flow: torch.Tensor) -> torch.Tensor:
    """Plants the kinds of flow the kernels must handle: NaN, +-Inf, far off the image, and
    landing exactly on the last column and the last row (which counts twice)."""
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


def sparse(flow: torch.Tensor, seed: int, dropped: float = 0.6) -> torch.Tensor:
    """Sends a random ``dropped`` share of the sources off the image, leaving holes with
    several reached neighbours, so that the fill averages (and splits gradients) over more
    than one."""
    off = torch.rand(flow[:, :1].shape, generator=generator(seed)) < dropped
    return torch.where(off, torch.tensor(FAR, dtype=flow.dtype), flow)


PROJECTION_CASES = [
    pytest.param(False, True, id="weighted"),
    pytest.param(True, True, id="weighted-filled"),
    pytest.param(False, False, id="unweighted"),
    pytest.param(True, False, id="unweighted-filled"),
]


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
@pytest.mark.parametrize(("height", "width"), SIZES)
@pytest.mark.parametrize(("fill_holes", "weighted"), PROJECTION_CASES)
@pytest.mark.parametrize("density", ["dense", "sparse"])
def test_projection_forward_matches_reference(
    host, dtype, height, width, fill_holes, weighted, density
):
    flow = with_edge_cases(random_flow(2, height, width, seed=30, dtype=dtype))
    if density == "sparse":
        flow = sparse(flow, seed=130)
    weight = random_weight(2, height, width, seed=31, dtype=dtype) if weighted else None
    actual = project_flow_kernel(flow, weight, fill_holes=fill_holes, launch=host)
    assert actual.dtype == dtype
    assert_close(actual, project_flow_reference(flow, weight, fill_holes=fill_holes))


@pytest.mark.parametrize("fill_holes", [False, True])
def test_projection_all_flow_off_image_or_broken(host, fill_holes):
    flow = torch.full((2, 2, 3, 4), FAR)
    flow[0, :, 0, 0] = math.nan
    flow[1, 1, 2, 3] = -math.inf
    actual = project_flow_kernel(
        flow, random_weight(2, 3, 4, seed=32), fill_holes=fill_holes, launch=host
    )
    assert torch.equal(actual, torch.zeros_like(flow))


def test_projection_weights_of_both_signs_follow_the_reference(host):
    """Negative weights never come from depth, but the reference pins what the kernel does
    with non-positive counts (holes keep their sum, stops that are not averaged)."""
    flow = random_flow(2, 6, 7, seed=33)
    weight = uniform(2, 1, 6, 7, seed=34, low=-1.0, high=1.0)
    for fill_holes in (False, True):
        actual = project_flow_kernel(flow, weight, fill_holes=fill_holes, launch=host)
        assert_close(actual, project_flow_reference(flow, weight, fill_holes=fill_holes))


def test_projection_hand_computed(host):
    # Two sources in a 1x4 row: x=0 moves +1.5 (weight 1), x=3 moves -0.5 (weight 3). Both
    # land between columns 1 and 2 (at 1.5 and 2.5 -> columns 2, 3), so column 1 holds the
    # first, column 2 both, column 3 the second; column 0 is a hole filled from column 1.
    flow = torch.zeros(1, 2, 1, 4)
    flow[0, 0, 0, 0] = 1.5
    flow[0, 0, 0, 3] = -0.5
    flow[0, 0, 0, 1] = flow[0, 0, 0, 2] = FAR
    weight = torch.tensor([[[[1.0, 1.0, 1.0, 3.0]]]])
    actual = project_flow_kernel(flow, weight, fill_holes=True, launch=host)
    both = -(1 * 1.5 + 3 * -0.5) / (1 + 3)
    expected_x = torch.tensor([-1.5, -1.5, both, 0.5])
    assert_close(actual[0, 0, 0], expected_x)
    assert torch.equal(actual[0, 1], torch.zeros(1, 4))


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
@pytest.mark.parametrize(("height", "width"), [(1, 1), (3, 7), (6, 5), (9, 11)])
@pytest.mark.parametrize(("fill_holes", "weighted"), PROJECTION_CASES)
@pytest.mark.parametrize("density", ["dense", "sparse"])
def test_projection_backward_matches_reference_autograd(
    host, dtype, height, width, fill_holes, weighted, density
):
    flow = with_edge_cases(random_flow(2, height, width, seed=35, dtype=dtype))
    if density == "sparse":
        flow = sparse(flow, seed=135)
    weight = random_weight(2, height, width, seed=36, dtype=dtype) if weighted else None
    grad = uniform(2, 2, height, width, seed=37, dtype=dtype)

    def kernel(f, w):
        return project_flow_kernel(f, w, fill_holes=fill_holes, launch=host)

    def reference(f, w):
        return project_flow_reference(f, w, fill_holes=fill_holes)

    _, actual = gradients(kernel, (flow, weight), grad)
    _, expected = gradients(reference, (flow, weight), grad)
    assert_gradients_close(actual, expected, dtype)
    assert all(g is None or g.isfinite().all() for g in actual), "NaN flow leaked into a gradient"


def test_projection_gradient_of_weight_only(host):
    flow = random_flow(1, 5, 6, seed=38)
    weight = random_weight(1, 5, 6, seed=39).requires_grad_()
    project_flow_kernel(flow, weight, fill_holes=True, launch=host).square().sum().backward()
    out = project_flow_reference(flow, weight, fill_holes=True).square().sum()
    assert_close(weight.grad, torch.autograd.grad(out, weight)[0])


def test_projection_non_contiguous_input(host):
    flow = random_flow(2, 5, 6, seed=40)
    weight = random_weight(2, 6, 5, seed=41).transpose(2, 3)
    assert not weight.is_contiguous()
    expected = project_flow_reference(flow, weight.contiguous(), fill_holes=True)
    actual = project_flow_kernel(non_contiguous(flow), weight, fill_holes=True, launch=host)
    assert_close(actual, expected)


def test_projection_float16_accumulates_in_float32(host):
    flow = with_edge_cases(random_flow(2, 6, 7, seed=42)).half()
    weight = random_weight(2, 6, 7, seed=43).half()
    actual = project_flow_kernel(flow, weight, fill_holes=True, launch=host)
    assert actual.dtype == torch.float16
    expected = project_flow_reference(flow.float(), weight.float(), fill_holes=True)
    assert_close(actual.float(), expected, dtype=torch.float16)
    grad = uniform(2, 2, 6, 7, seed=44).half()
    _, actual_grads = gradients(
        lambda f, w: project_flow_kernel(f, w, fill_holes=True, launch=host), (flow, weight), grad
    )
    _, expected_grads = gradients(
        lambda f, w: project_flow_reference(f, w, fill_holes=True),
        (flow.float(), weight.float()),
        grad.float(),
    )
    assert_gradients_close([g.float() for g in actual_grads], expected_grads, torch.float16)


def test_projection_mixed_dtypes_compute_in_the_wider_one(host):
    flow = random_flow(1, 4, 5, seed=45).half()
    weight = random_weight(1, 4, 5, seed=46)
    actual = project_flow_kernel(flow, weight, fill_holes=False, launch=host)
    assert actual.dtype == torch.float16
    assert torch.equal(actual, project_flow_reference(flow, weight, fill_holes=False))


def test_projection_batch_matches_items_alone(host):
    flow, weight = random_flow(3, 5, 4, seed=47), random_weight(3, 5, 4, seed=48)
    together = project_flow_kernel(flow, weight, fill_holes=True, launch=host)
    for n in range(3):
        alone = project_flow_kernel(
            flow[n : n + 1], weight[n : n + 1], fill_holes=True, launch=host
        )
        assert torch.equal(together[n : n + 1], alone)


def smooth_projection_inputs(height, width, target_rows, seed):
    """Landing points >= 0.2 px from any integer (so floor() is locally constant) inside the
    image, one source sent off it, and positive weights: gradcheck's perturbations never change
    which pixels a source reaches."""
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


@pytest.mark.parametrize("fill_holes", [False, True])
def test_projection_gradcheck(host, fill_holes):
    # Landing rows stay in 0..1 of 4, so the last rows are holes, filled from above when on.
    flow, weight = smooth_projection_inputs(4, 3, target_rows=2, seed=49)
    assert torch.autograd.gradcheck(
        lambda f, w: project_flow_kernel(f, w, fill_holes=fill_holes, launch=host), (flow, weight)
    )
    assert torch.autograd.gradcheck(
        lambda f: project_flow_kernel(f, None, fill_holes=fill_holes, launch=host), (flow,)
    )


def test_projection_rejects_bad_shapes(host):
    with pytest.raises(ValueError, match=r"\(B, 2, H, W\)"):
        project_flow_kernel(torch.zeros(1, 3, 4, 4), None, fill_holes=False, launch=host)
    with pytest.raises(ValueError, match="weight"):
        project_flow_kernel(
            torch.zeros(1, 2, 4, 4), torch.ones(1, 1, 4, 5), fill_holes=False, launch=host
        )


# --- adaptive warping --------------------------------------------------------------------------


def random_kernel(batch, height, width, seed, dtype=torch.float32):
    return uniform(batch, 16, height, width, seed=seed, dtype=dtype)


def warp_inputs(batch, channels, height, width, seed, dtype=torch.float32, spread=2.5):
    image = uniform(batch, channels, height, width, seed=seed, dtype=dtype)
    flow = with_edge_cases(
        random_flow(batch, height, width, seed=seed + 1, spread=spread, dtype=dtype)
    )
    kernel = random_kernel(batch, height, width, seed=seed + 2, dtype=dtype)
    return image, flow, kernel


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
@pytest.mark.parametrize(("height", "width"), SIZES)
@pytest.mark.parametrize("channels", [1, 3])
def test_warp_forward_matches_reference(host, dtype, height, width, channels):
    image, flow, kernel = warp_inputs(2, channels, height, width, seed=50, dtype=dtype)
    actual = adaptive_warp_kernel(image, flow, kernel, launch=host)
    assert actual.dtype == dtype
    assert_close(actual, adaptive_warp_reference(image, flow, kernel))


def test_warp_with_centre_taps_and_whole_pixel_flow_shifts_the_image(host):
    """Hand-computed: kernel 1 at the four centre taps is bilinear sampling, and with a flow of
    exactly +1 column alpha is 0, so each pixel copies its right neighbour; the last column's
    sample point is off the image, so it copies itself."""
    image = uniform(2, 3, 4, 5, seed=53)
    flow = torch.zeros(2, 2, 4, 5)
    flow[:, 0] = 1.0
    kernel = torch.zeros(2, 16, 4, 5)
    kernel[:, [5, 6, 9, 10]] = 1.0
    expected = torch.cat([image[..., 1:], image[..., -1:]], dim=-1)
    assert torch.equal(adaptive_warp_kernel(image, flow, kernel, launch=host), expected)


def test_warp_invalid_flow_copies_the_pixel(host):
    image = uniform(1, 2, 3, 4, seed=54)
    kernel = random_kernel(1, 3, 4, seed=55)
    for value in [*BAD_VALUES, FAR, 2.0]:  # |2.0| is not < W/2 = 2
        flow = torch.full((1, 2, 3, 4), value)
        flow[:, 1] = 0.0
        assert torch.equal(adaptive_warp_kernel(image, flow, kernel, launch=host), image), value


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
@pytest.mark.parametrize(("height", "width"), [(1, 1), (3, 7), (6, 5), (9, 11)])
def test_warp_backward_matches_reference_autograd(host, dtype, height, width):
    image, flow, kernel = warp_inputs(2, 3, height, width, seed=56, dtype=dtype)
    grad = uniform(2, 3, height, width, seed=59, dtype=dtype)
    _, actual = gradients(
        lambda i, f, k: adaptive_warp_kernel(i, f, k, launch=host), (image, flow, kernel), grad
    )
    # The reference's gradient for a NaN flow is NaN * 0 in places; compare where the
    # reference is defined, and require the kernel's to be finite everywhere.
    finite_flow = torch.where(flow.isfinite(), flow, FAR)
    _, expected = gradients(adaptive_warp_reference, (image, finite_flow, kernel), grad)
    assert_gradients_close(actual, expected, dtype)
    assert all(g.isfinite().all() for g in actual), "NaN flow leaked into a gradient"


def test_warp_gradient_of_each_input_alone(host):
    image, flow, kernel = warp_inputs(1, 2, 5, 6, seed=60)
    for index in range(3):
        inputs = [image, flow, kernel]
        inputs[index] = inputs[index].clone().requires_grad_()
        adaptive_warp_kernel(*inputs, launch=host).square().sum().backward()
        expected = torch.autograd.grad(
            adaptive_warp_reference(
                *[t.detach() if i != index else t for i, t in enumerate(inputs)]
            )
            .square()
            .sum(),
            inputs[index],
        )[0]
        assert_close(inputs[index].grad, expected)


def test_warp_non_contiguous_input(host):
    image, flow, kernel = warp_inputs(2, 3, 5, 6, seed=61)
    expected = adaptive_warp_reference(image, flow, kernel)
    actual = adaptive_warp_kernel(
        non_contiguous(image), non_contiguous(flow), non_contiguous(kernel), launch=host
    )
    assert_close(actual, expected)


def test_warp_float16_accumulates_in_float32(host):
    image, flow, kernel = warp_inputs(1, 3, 6, 7, seed=62, dtype=torch.float16)
    kernel = kernel / 4  # DAIN's kernels sum to about 1 over the window
    actual = adaptive_warp_kernel(image, flow, kernel, launch=host)
    assert actual.dtype == torch.float16
    expected = adaptive_warp_reference(image.float(), flow.float(), kernel.float())
    assert_close(actual.float(), expected, dtype=torch.float16)
    grad = uniform(1, 3, 6, 7, seed=65).half()
    finite_flow = torch.where(flow.isfinite(), flow, FAR)
    _, actual_grads = gradients(
        lambda i, f, k: adaptive_warp_kernel(i, f, k, launch=host),
        (image, finite_flow, kernel),
        grad,
    )
    _, expected_grads = gradients(
        adaptive_warp_reference,
        (image.float(), finite_flow.float(), kernel.float()),
        grad.float(),
    )
    assert_gradients_close([g.float() for g in actual_grads], expected_grads, torch.float16)


def test_warp_batch_matches_items_alone(host):
    image, flow, kernel = warp_inputs(3, 4, 6, 7, seed=66)
    together = adaptive_warp_kernel(image, flow, kernel, launch=host)
    for n in range(3):
        alone = adaptive_warp_kernel(
            image[n : n + 1], flow[n : n + 1], kernel[n : n + 1], launch=host
        )
        assert torch.equal(together[n : n + 1], alone)


def test_warp_gradcheck(host):
    # Whole-pixel shift plus a fraction in [0.2, 0.8]: floor() and the validity tests stay
    # constant under gradcheck's perturbations.
    g = generator(67)
    height, width = 4, 5
    shift = torch.randint(-1, 2, (1, 2, height, width), generator=g).double()
    fraction = torch.rand(1, 2, height, width, generator=g, dtype=torch.float64) * 0.6 + 0.2
    flow = (shift + fraction).requires_grad_()
    image = uniform(1, 2, height, width, seed=68, dtype=torch.float64).requires_grad_()
    kernel = random_kernel(1, height, width, seed=69, dtype=torch.float64).requires_grad_()
    assert torch.autograd.gradcheck(
        lambda i, f, k: adaptive_warp_kernel(i, f, k, launch=host), (image, flow, kernel)
    )


def test_warp_rejects_bad_shapes(host):
    image = torch.zeros(1, 3, 4, 5)
    with pytest.raises(ValueError, match="flow"):
        adaptive_warp_kernel(image, torch.zeros(1, 2, 5, 4), torch.zeros(1, 16, 4, 5), launch=host)
    with pytest.raises(ValueError, match="kernel"):
        adaptive_warp_kernel(image, torch.zeros(1, 2, 4, 5), torch.zeros(1, 9, 4, 5), launch=host)


# --- the launcher contract ---------------------------------------------------------------------


def test_host_launcher_rejects_non_contiguous_tensors(host):
    cost = torch.empty(1, 1, 2, 2)
    first = torch.zeros(1, 1, 2, 4)[..., ::2]
    with pytest.raises(ValueError, match="contiguous"):
        host(
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


def test_bfloat16_is_computed_in_float32(host):
    """No kernels store bfloat16; the Functions run the float32 ones and round the result,
    as the references do. bfloat16 has no tolerance entry: both sides round the same float32
    values, so float16's (looser than bfloat16's rounding needs here) is used."""
    first, second = uniform(1, 3, 5, 6, seed=70), uniform(1, 3, 5, 6, seed=71)
    image, flow, kernel = warp_inputs(1, 3, 5, 6, seed=72)
    weight = random_weight(1, 5, 6, seed=75)
    cases = [
        (correlation_kernel, correlation_reference, (first, second, 2), {}),
        (project_flow_kernel, project_flow_reference, (flow, weight), {"fill_holes": True}),
        (adaptive_warp_kernel, adaptive_warp_reference, (image, flow, kernel), {}),
    ]
    for kernel_op, reference_op, inputs, options in cases:
        inputs = [t.bfloat16() if isinstance(t, torch.Tensor) else t for t in inputs]
        actual = kernel_op(*inputs, **options, launch=host)
        assert actual.dtype == torch.bfloat16
        expected = reference_op(*inputs, **options)
        assert_close(actual.float(), expected.float(), dtype=torch.float16)
