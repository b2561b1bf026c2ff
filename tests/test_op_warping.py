"""DAIN's adaptive warping on every backend: the PyTorch reference, the kernel source compiled
as C++ on the CPU, and the CuPy kernels on a GPU (see the ``backend`` fixture); and the CPU
inference form against the reference.

Hand-computed cases and a deliberately naive per-pixel loop written from the definition run
on every backend; kernels are also compared with the reference (on their own device) over
random inputs, edge cases and gradients. Output windows (``origin``) must equal the same window
of the whole-image warp.
"""

from __future__ import annotations

import math
import re

import pytest
import torch
import torch.nn.functional as F
from op_inputs import (
    BAD_VALUES,
    FAR,
    KERNEL_DTYPES,
    SIZES,
    gradients,
    non_contiguous,
    one_hot_kernel,
    random_kernel,
    reference_inputs,
    smooth_warp_flow,
    uniform,
    warp_inputs,
    with_broken_flow,
)
from tolerances import assert_close, assert_gradients_close

from vsdain.ops import adaptive_warp, warping
from vsdain.ops.warping import adaptive_warp_inference, adaptive_warp_reference


def naive_warp(image: torch.Tensor, flow: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    batch, channels, height, width = image.shape
    img, f, k = image.tolist(), flow.tolist(), kernel.tolist()
    out = torch.zeros(batch, channels, height, width, dtype=torch.float64)
    for n in range(batch):
        for y in range(height):
            for x in range(width):
                fx, fy = f[n][0][y][x], f[n][1][y][x]
                qx, qy = x + fx, y + fy
                valid = (
                    0 <= qx <= width - 1
                    and 0 <= qy <= height - 1
                    and abs(fx) < width / 2
                    and abs(fy) < height / 2
                )
                if not valid:
                    for c in range(channels):
                        out[n, c, y, x] = img[n][c][y][x]
                    continue
                x0, y0 = math.floor(qx), math.floor(qy)
                alpha, beta = qx - x0, qy - y0
                for j in range(4):
                    for i in range(4):
                        row = min(max(y0 - 1 + j, 0), height - 1)
                        col = min(max(x0 - 1 + i, 0), width - 1)
                        a = 1 - alpha if i < 2 else alpha
                        b = 1 - beta if j < 2 else beta
                        tap_weight = k[n][4 * j + i][y][x] * a * b
                        for c in range(channels):
                            out[n, c, y, x] += tap_weight * img[n][c][row][col]
    return out


def awkward_flow(batch: int, height: int, width: int, seed: int) -> torch.Tensor:
    """Random flow up to +-3 pixels with invalid entries sprinkled in: NaN, infinite and far."""
    flow = uniform(batch, 2, height, width, seed=seed, low=-3.0, high=3.0)
    specials = torch.tensor([math.nan, math.inf, -math.inf, FAR, -FAR], dtype=torch.float64)
    chosen = torch.rand(flow.shape, generator=torch.Generator().manual_seed(seed + 1)) < 0.1
    picks = torch.randint(
        0, len(specials), flow.shape, generator=torch.Generator().manual_seed(seed + 2)
    )
    return torch.where(chosen, specials[picks], flow)


def warp(backend, image, flow, kernel, origin=(0, 0)):
    """``backend``'s warp of CPU inputs, returned on the CPU."""
    return backend.adaptive_warp(*backend.put(image, flow, kernel), origin).cpu()


# --- every backend: naive loop and hand-computed cases ---------------------------------------


@pytest.mark.parametrize(("height", "width"), SIZES[:5])
def test_warp_matches_naive_loop(backend, height, width):
    image = uniform(2, 3, height, width, seed=35)
    flow = uniform(2, 2, height, width, seed=36, low=-2.0, high=2.0)
    kernel = uniform(2, 16, height, width, seed=37)
    assert_close(warp(backend, image, flow, kernel), naive_warp(image, flow, kernel))


def test_warp_with_centre_taps_is_bilinear_sampling(backend):
    batch, height, width = 2, 6, 7
    image = uniform(batch, 3, height, width, seed=30)
    flow = uniform(batch, 2, height, width, seed=31, low=-1.5, high=1.5)
    kernel = one_hot_kernel(batch, height, width, (5, 6, 9, 10))
    sample_x = torch.arange(width, dtype=torch.float64) + flow[:, 0]
    sample_y = torch.arange(height, dtype=torch.float64).unsqueeze(1) + flow[:, 1]
    inside = (sample_x >= 0) & (sample_x <= width - 1) & (sample_y >= 0) & (sample_y <= height - 1)
    assert inside.any() and not inside.all()
    grid = torch.stack([2 * sample_x / (width - 1) - 1, 2 * sample_y / (height - 1) - 1], dim=-1)
    bilinear = F.grid_sample(image, grid, mode="bilinear", align_corners=True)
    expected = torch.where(inside.unsqueeze(1), bilinear, image)
    assert_close(warp(backend, image, flow, kernel), expected)


def test_warp_with_zero_flow_and_centre_tap_returns_the_image(backend):
    image = uniform(2, 4, 5, 6, seed=32)
    kernel = one_hot_kernel(2, 5, 6, (5,))
    # Taps in the third and fourth row or column carry alpha or beta, both 0 here, so any
    # value there must not leak into the result.
    far_taps = [k for k in range(16) if k % 4 >= 2 or k // 4 >= 2]
    kernel[:, far_taps] = uniform(2, len(far_taps), 5, 6, seed=33)
    flow = torch.zeros(2, 2, 5, 6, dtype=torch.float64)
    assert torch.equal(warp(backend, image, flow, kernel), image)


def test_warp_with_centre_taps_and_whole_pixel_flow_shifts_the_image(backend):
    """Kernel 1 at the four centre taps is bilinear sampling, and with a flow of exactly +1
    column alpha is 0, so each pixel copies its right neighbour; the last column's sample
    point is off the image, so it copies itself."""
    image = uniform(2, 3, 4, 5, seed=53, dtype=torch.float32)
    flow = torch.zeros(2, 2, 4, 5)
    flow[:, 0] = 1.0
    kernel = torch.zeros(2, 16, 4, 5)
    kernel[:, [5, 6, 9, 10]] = 1.0
    expected = torch.cat([image[..., 1:], image[..., -1:]], dim=-1)
    assert torch.equal(warp(backend, image, flow, kernel), expected)


def test_warp_copies_the_pixel_where_flow_is_invalid(backend):
    height, width = 4, 8
    image = uniform(1, 2, height, width, seed=34)
    kernel = torch.ones(1, 16, height, width, dtype=torch.float64)
    flow = torch.zeros(1, 2, height, width, dtype=torch.float64)
    invalid = {
        (0, 0): (4.0, 0.0),  # |Fx| = W/2 although x + Fx lands inside
        (0, 5): (0.0, 2.0),  # |Fy| = H/2 although y + Fy lands inside
        (1, 0): (-0.01, 0.0),  # left of the image
        (1, 7): (0.01, 0.0),  # right of the image
        (3, 2): (0.0, 0.01),  # below the image
        (2, 3): (math.nan, 0.0),
        (2, 4): (0.0, math.inf),
        (3, 3): (-math.inf, 0.0),
    }
    valid = {(0, 1): (3.99, 0.0), (3, 5): (0.0, -1.99), (0, 7): (-0.5, 0.0)}
    for (y, x), (fx, fy) in {**invalid, **valid}.items():
        flow[0, :, y, x] = torch.tensor([fx, fy], dtype=torch.float64)
    image, flow, kernel = backend.put(image, flow, kernel)
    image.requires_grad_()
    flow.requires_grad_()
    out = backend.adaptive_warp(image, flow, kernel)
    for y, x in invalid:
        assert out[0, :, y, x].tolist() == image[0, :, y, x].tolist()
    for y, x in valid:
        assert not torch.equal(out[0, :, y, x], image[0, :, y, x])
    assert_close(out.detach().cpu(), naive_warp(image.detach(), flow.detach(), kernel))
    out.square().sum().backward()
    assert torch.isfinite(image.grad).all() and torch.isfinite(flow.grad).all()
    assert flow.grad[0, :, 2, 3].tolist() == [0.0, 0.0]


def test_warp_invalid_flow_copies_the_pixel(backend):
    image = uniform(1, 2, 3, 4, seed=54, dtype=torch.float32)
    kernel = random_kernel(1, 3, 4, seed=55, dtype=torch.float32)
    for value in [*BAD_VALUES, FAR, 2.0]:  # |2.0| is not < W/2 = 2
        flow = torch.full((1, 2, 3, 4), value)
        flow[:, 1] = 0.0
        assert torch.equal(warp(backend, image, flow, kernel), image), value


def test_warp_clamps_taps_at_the_border_hand_computed(backend):
    # image[r, c] = 10 r + c + 1 on a 3x4 frame.
    image = (torch.arange(3, dtype=torch.float64).view(3, 1) * 10 + torch.arange(4) + 1).view(
        1, 1, 3, 4
    )
    flow = torch.zeros(1, 2, 3, 4, dtype=torch.float64)

    # Top-left, zero flow, tap 0 reads (-1, -1) clamped to (0, 0).
    out = warp(backend, image, flow, one_hot_kernel(1, 3, 4, (0,)))
    assert out[0, 0, 0, 0].item() == 1.0

    # Top-left sampling (0.5, 0.25): alpha 0.5, beta 0.25. Tap 3 is row offset 0 (clamped to row
    # 0) and column offset 3 (column 2): 3 * alpha * (1 - beta). Tap 15: row 2, column 2.
    flow[0, :, 0, 0] = torch.tensor([0.5, 0.25])
    out = warp(backend, image, flow, one_hot_kernel(1, 3, 4, (3,)))
    assert out[0, 0, 0, 0].item() == 3 * 0.5 * 0.75
    out = warp(backend, image, flow, one_hot_kernel(1, 3, 4, (15,)))
    assert out[0, 0, 0, 0].item() == 23 * 0.5 * 0.25

    # Bottom-right sampling (2.5, 1.75): columns 1, 2, 3, 3 and rows 0, 1, 2, 2 after clamping.
    # Each row r gives 0.5 * (4 (10 r + 1) + 1 + 2 + 3 + 3) = 20 r + 6.5; rows weigh 0.25, 0.25,
    # 0.75, 0.75: 0.25 * 6.5 + 0.25 * 26.5 + 1.5 * 46.5 = 78.
    flow[0, :, 2, 3] = torch.tensor([-0.5, -0.25])
    out = warp(backend, image, flow, torch.ones(1, 16, 3, 4, dtype=torch.float64))
    assert out[0, 0, 2, 3].item() == 78.0


@pytest.mark.parametrize(
    ("batch", "channels", "seed", "dtype"), [(3, 5, 38, torch.float64), (3, 4, 66, torch.float32)]
)
def test_warp_batch_matches_items_alone(backend, batch, channels, seed, dtype):
    image, flow, kernel = backend.put(*warp_inputs(batch, channels, 6, 7, seed=seed, dtype=dtype))
    together = backend.adaptive_warp(image, flow, kernel)
    for n in range(batch):
        alone = backend.adaptive_warp(image[n : n + 1], flow[n : n + 1], kernel[n : n + 1])
        if backend.kernels:  # one thread per output pixel: the same sums in the same order
            assert torch.equal(together[n : n + 1], alone)
        else:
            assert_close(together[n : n + 1], alone)


@pytest.mark.parametrize(("seed", "dtype"), [(41, torch.float64), (61, torch.float32)])
def test_warp_non_contiguous_input(backend, seed, dtype):
    image, flow, kernel = backend.put(*warp_inputs(2, 3, 5, 6, seed=seed, dtype=dtype))
    expected = adaptive_warp_reference(image, flow, kernel)
    actual = backend.adaptive_warp(
        non_contiguous(image), non_contiguous(flow), non_contiguous(kernel)
    )
    assert_close(actual, expected)


def test_warp_float32_and_float16(backend):
    image = uniform(1, 3, 6, 7, seed=44).half()
    flow = uniform(1, 2, 6, 7, seed=45, low=-2, high=2).half()
    kernel = uniform(1, 16, 6, 7, seed=46, low=0.0, high=0.25).half()
    image, flow, kernel = backend.put(image, flow, kernel)
    expected = adaptive_warp_reference(image.double(), flow.double(), kernel.double())
    single = backend.adaptive_warp(image.float(), flow.float(), kernel.float())
    assert single.dtype == torch.float32
    assert_close(single, expected.float())
    half = backend.adaptive_warp(image, flow, kernel)
    assert half.dtype == torch.float16
    assert_close(half.float(), expected.float(), dtype=torch.float16)


@pytest.mark.parametrize("seed", [47, 67, 18])
def test_warp_gradcheck(backend, seed):
    flow = backend.put(smooth_warp_flow(1, 4, 5, seed=seed)).requires_grad_()
    image = backend.put(uniform(1, 2, 4, 5, seed=seed + 1)).requires_grad_()
    kernel = backend.put(uniform(1, 16, 4, 5, seed=seed + 2)).requires_grad_()
    assert torch.autograd.gradcheck(
        backend.adaptive_warp, (image, flow, kernel), nondet_tol=backend.nondet_tol
    )


def test_warp_rejects_bad_shapes(backend):
    image = backend.put(torch.zeros(1, 3, 4, 5))
    with pytest.raises(ValueError, match="flow"):
        backend.adaptive_warp(
            image, *backend.put(torch.zeros(1, 3, 4, 5), torch.zeros(1, 16, 4, 5))
        )
    with pytest.raises(ValueError, match="flow"):
        backend.adaptive_warp(
            image, *backend.put(torch.zeros(2, 2, 4, 5), torch.zeros(2, 16, 4, 5))
        )
    # A flow of another size is an output window, which must fit inside the image.
    with pytest.raises(ValueError, match=r"output window 4x5 .* does not fit inside the 5x4 image"):
        backend.adaptive_warp(
            image, *backend.put(torch.zeros(1, 2, 5, 4), torch.zeros(1, 16, 5, 4))
        )
    with pytest.raises(ValueError, match="kernel"):
        backend.adaptive_warp(image, *backend.put(torch.zeros(1, 2, 4, 5), torch.zeros(1, 9, 4, 5)))


# --- output windows ----------------------------------------------------------------------------

# (top, left, height, width) in a 9x11 image: the whole image, 1x1 windows at two corners, odd
# sizes inside and along each edge, a single row and a single column.
WINDOWS = [
    (0, 0, 9, 11),
    (0, 0, 1, 1),
    (8, 10, 1, 1),
    (2, 3, 5, 7),
    (0, 4, 3, 7),
    (6, 0, 3, 5),
    (3, 10, 5, 1),
    (8, 1, 1, 9),
    (1, 1, 7, 9),
]
WINDOW_IDS = [f"{h}x{w}@{top},{left}" for top, left, h, w in WINDOWS]


def window_inputs(seed: int, dtype=torch.float64):
    """A 9x11 image whose flow holds the usual edge cases, and the whole-image warp's inputs."""
    return warp_inputs(2, 3, 9, 11, seed=seed, dtype=dtype, spread=4.0)


def cut(tensor: torch.Tensor, top: int, left: int, height: int, width: int) -> torch.Tensor:
    return tensor[..., top : top + height, left : left + width]


@pytest.mark.parametrize(("top", "left", "height", "width"), WINDOWS, ids=WINDOW_IDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_warp_window_equals_the_window_of_the_whole_warp(backend, top, left, height, width, dtype):
    image, flow, kernel = backend.put(*window_inputs(seed=80, dtype=dtype))
    whole = backend.adaptive_warp(image, flow, kernel)
    window = (top, left, height, width)
    part = backend.adaptive_warp(image, cut(flow, *window), cut(kernel, *window), (top, left))
    assert part.shape == (2, 3, height, width)
    # Every path computes each output pixel on its own, from image coordinates: exactly equal.
    assert torch.equal(part, cut(whole, *window))


@pytest.mark.parametrize(("top", "left", "height", "width"), WINDOWS, ids=WINDOW_IDS)
def test_warp_inference_window_equals_its_whole_warp_and_the_reference(top, left, height, width):
    image, flow, kernel = window_inputs(seed=81, dtype=torch.float32)
    image = image.contiguous(memory_format=torch.channels_last)
    window = (top, left, height, width)
    flow_part, kernel_part = cut(flow, *window), cut(kernel, *window)
    part = adaptive_warp_inference(image, flow_part, kernel_part, (top, left))
    assert torch.equal(part, cut(adaptive_warp_inference(image, flow, kernel), *window))
    assert_close(part, adaptive_warp_reference(image, flow_part, kernel_part, (top, left)))


@pytest.mark.parametrize(
    ("origin", "size"),
    [((-1, 0), (3, 4)), ((0, -1), (3, 4)), ((7, 0), (3, 4)), ((0, 8), (3, 4)), ((0, 0), (10, 11))],
    ids=["top<0", "left<0", "past-bottom", "past-right", "taller-than-image"],
)
def test_warp_rejects_windows_outside_the_image(backend, origin, size):
    image = backend.put(torch.zeros(1, 3, 9, 11))
    flow, kernel = backend.put(torch.zeros(1, 2, *size), torch.zeros(1, 16, *size))
    height, width = size
    expected = re.escape(f"output window {width}x{height} at (top, left) = {origin}")
    with pytest.raises(ValueError, match=expected):
        backend.adaptive_warp(image, flow, kernel, origin)
    with pytest.raises(ValueError, match="does not fit inside the 11x9 image"):
        adaptive_warp_inference(image.cpu(), flow.cpu(), kernel.cpu(), origin)


@pytest.mark.parametrize(("top", "left", "height", "width"), WINDOWS[1:6], ids=WINDOW_IDS[1:6])
def test_warp_window_backward_matches_reference_autograd(kernel_backend, top, left, height, width):
    image, flow, kernel = window_inputs(seed=82)
    window = (top, left, height, width)
    flow, kernel = cut(flow, *window), cut(kernel, *window)
    # The reference's gradient for a NaN flow is NaN * 0 in places; compare where it is
    # defined (see test_warp_backward_matches_reference_autograd).
    flow = torch.where(flow.isfinite(), flow, FAR)
    grad = uniform(2, 3, height, width, seed=83)
    image, flow, kernel, grad = kernel_backend.put(image, flow, kernel, grad)
    origin = (top, left)
    _, actual = gradients(
        lambda i, f, k: kernel_backend.adaptive_warp(i, f, k, origin), (image, flow, kernel), grad
    )
    _, expected = gradients(
        lambda i, f, k: adaptive_warp_reference(i, f, k, origin), (image, flow, kernel), grad
    )
    assert_gradients_close(actual, expected, torch.float64)
    # Only the taps the window reads receive gradient: rows and columns beyond its reach none.
    reach = 2 + 4  # flow spread (4 px) plus the 4x4 window's reach beyond the sample point
    outside = torch.ones(9, 11, dtype=torch.bool)
    outside[
        max(top - reach, 0) : top + height + reach, max(left - reach, 0) : left + width + reach
    ] = False
    assert torch.count_nonzero(actual[0][..., outside.to(actual[0].device)]).item() == 0


# --- kernels against the reference -------------------------------------------------------------


@pytest.mark.parametrize("dtype", KERNEL_DTYPES, ids=str)
@pytest.mark.parametrize(("height", "width"), [*SIZES, (64, 96)])
@pytest.mark.parametrize("channels", [1, 3, 196])
def test_warp_forward_matches_reference(kernel_backend, dtype, height, width, channels):
    image, flow, kernel = warp_inputs(2, channels, height, width, seed=50, dtype=dtype)
    if dtype == torch.float16:
        kernel = kernel / 4  # DAIN's kernels sum to about 1 over the window
    if height * width > 100:
        flow = with_broken_flow(flow)
    image, flow, kernel = kernel_backend.put(image, flow, kernel)
    actual = kernel_backend.adaptive_warp(image, flow, kernel)
    assert actual.dtype == dtype
    expected = adaptive_warp_reference(*reference_inputs(image, flow, kernel))
    assert_close(actual.float(), expected.float(), dtype=dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize(("height", "width"), [(1, 1), (3, 7), (6, 5), (9, 11), (24, 31)])
def test_warp_backward_matches_reference_autograd(kernel_backend, dtype, height, width):
    image, flow, kernel = warp_inputs(2, 3, height, width, seed=56, dtype=dtype)
    grad = uniform(2, 3, height, width, seed=59, dtype=dtype)
    image, flow, kernel, grad = kernel_backend.put(image, flow, kernel, grad)
    _, actual = gradients(kernel_backend.adaptive_warp, (image, flow, kernel), grad)
    # The reference's gradient for a NaN flow is NaN * 0 in places; compare where the
    # reference is defined, and require the kernel's to be finite everywhere.
    finite_flow = torch.where(flow.isfinite(), flow, FAR)
    _, expected = gradients(adaptive_warp_reference, (image, finite_flow, kernel), grad)
    assert_gradients_close(actual, expected, dtype)
    assert all(g.isfinite().all() for g in actual), "NaN flow leaked into a gradient"


def test_warp_gradient_of_each_input_alone(kernel_backend):
    image, flow, kernel = kernel_backend.put(*warp_inputs(1, 2, 5, 6, seed=60, dtype=torch.float32))
    for index in range(3):
        inputs = [image, flow, kernel]
        inputs[index] = inputs[index].clone().requires_grad_()
        kernel_backend.adaptive_warp(*inputs).square().sum().backward()
        expected = torch.autograd.grad(
            adaptive_warp_reference(
                *[t.detach() if i != index else t for i, t in enumerate(inputs)]
            )
            .square()
            .sum(),
            inputs[index],
        )[0]
        assert_close(inputs[index].grad, expected)


def test_warp_float16_accumulates_in_float32(kernel_backend):
    image, flow, kernel = warp_inputs(1, 3, 6, 7, seed=62, dtype=torch.float16)
    kernel = kernel / 4  # DAIN's kernels sum to about 1 over the window
    grad = uniform(1, 3, 6, 7, seed=65).half()
    image, flow, kernel, grad = kernel_backend.put(image, flow, kernel, grad)
    actual = kernel_backend.adaptive_warp(image, flow, kernel)
    assert actual.dtype == torch.float16
    expected = adaptive_warp_reference(image.float(), flow.float(), kernel.float())
    assert_close(actual.float(), expected, dtype=torch.float16)
    finite_flow = torch.where(flow.isfinite(), flow, FAR)
    _, actual_grads = gradients(kernel_backend.adaptive_warp, (image, finite_flow, kernel), grad)
    _, expected_grads = gradients(
        adaptive_warp_reference,
        (image.float(), finite_flow.float(), kernel.float()),
        grad.float(),
    )
    assert_gradients_close([g.float() for g in actual_grads], expected_grads, torch.float16)


def test_warp_bfloat16_is_computed_in_float32(kernel_backend):
    """As for correlation: the float32 kernels run and the result is rounded, as the
    reference does; float16's tolerance, see test_op_correlation.py."""
    image, flow, kernel = warp_inputs(1, 3, 5, 6, seed=72)
    image, flow, kernel = kernel_backend.put(image.bfloat16(), flow.bfloat16(), kernel.bfloat16())
    actual = kernel_backend.adaptive_warp(image, flow, kernel)
    assert actual.dtype == torch.bfloat16
    expected = adaptive_warp_reference(image, flow, kernel)
    assert_close(actual.float(), expected.float(), dtype=torch.float16)


@pytest.mark.cuda
def test_kernels_run_on_the_current_stream():
    """Inputs written on a side stream are read correctly by kernels launched while that
    stream is current, without any synchronisation in between."""
    from vsdain.ops.cupy_backend import launch_on_current_stream
    from vsdain.ops.warping import adaptive_warp_kernel

    side = torch.cuda.Stream()
    with torch.cuda.stream(side):
        image = torch.rand(1, 196, 256, 256, device="cuda")
        flow = torch.zeros(1, 2, 256, 256, device="cuda")
        kernel = torch.zeros(1, 16, 256, 256, device="cuda")
        kernel[:, 5] = 1.0  # with zero flow, tap 5 is the pixel itself
        image.mul_(2.0)  # still queued on the side stream when the kernel is launched
        warped = adaptive_warp_kernel(image, flow, kernel, launch=launch_on_current_stream)
    side.synchronize()
    assert torch.equal(warped, image)


# --- the CPU inference form --------------------------------------------------------------------


@pytest.mark.parametrize(("height", "width"), [*SIZES[:5], (17, 19), (23, 40)])
def test_warp_inference_form_matches_naive_loop(height, width, monkeypatch):
    # 17x19 and 23x40 with 64-pixel blocks: several blocks, the last one partial.
    monkeypatch.setattr(warping, "_INFERENCE_BLOCK", 64)
    image = uniform(2, 5, height, width, seed=60)
    flow = awkward_flow(2, height, width, seed=61)
    kernel = uniform(2, 16, height, width, seed=64)
    actual = adaptive_warp_inference(image, flow, kernel)
    assert actual.shape == image.shape and actual.dtype == image.dtype
    assert_close(actual, naive_warp(image, flow, kernel))
    assert_close(actual, adaptive_warp_reference(image, flow, kernel))


@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_warp_inference_form_float32_agrees_with_the_reference(layout):
    image = uniform(1, 196, 12, 20, seed=65).float()
    flow, kernel = awkward_flow(1, 12, 20, seed=66).float(), uniform(1, 16, 12, 20, seed=69).float()
    if layout == "channels_last":
        image, flow, kernel = non_contiguous(image), non_contiguous(flow), non_contiguous(kernel)
    actual = adaptive_warp_inference(image, flow, kernel)
    assert actual.is_contiguous(memory_format=torch.channels_last)
    assert_close(actual, adaptive_warp_reference(image, flow, kernel))
    half = adaptive_warp_inference(image.half(), flow.half(), kernel.half())
    assert half.dtype == torch.float16
    expected = adaptive_warp_reference(image.double(), flow.half().double(), kernel.half().double())
    assert_close(half.float(), expected.float(), dtype=torch.float16)


def test_warp_uses_the_inference_form_only_when_not_differentiable(monkeypatch):
    calls = []
    monkeypatch.setattr(
        warping,
        "adaptive_warp_inference",
        lambda *arguments: calls.append("inference") or adaptive_warp_inference(*arguments),
    )
    image, flow = uniform(1, 3, 5, 6, seed=70), uniform(1, 2, 5, 6, seed=71, low=-2, high=2)
    kernel = uniform(1, 16, 5, 6, seed=72)
    fast = adaptive_warp(image, flow, kernel, differentiable=False, backend="reference")
    assert calls == ["inference"]
    with torch.no_grad():  # no gradient is recorded, but differentiable was not waived
        adaptive_warp(image, flow, kernel, backend="reference")
    assert calls == ["inference"]
    image.requires_grad_()
    slow = adaptive_warp(image, flow, kernel, backend="reference")
    assert calls == ["inference"]  # a gradient is wanted: the differentiable reference ran
    assert slow.requires_grad
    assert_close(fast, slow.detach())
    slow.sum().backward()
    assert image.grad is not None and torch.isfinite(image.grad).all()
