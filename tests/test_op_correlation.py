"""PWC-Net's correlation on every backend: the PyTorch reference, the kernel source compiled
as C++ on the CPU, and the CuPy kernels on a GPU (see the ``backend`` fixture).

Hand-computed cases and a deliberately naive per-pixel loop written from the definition run
on every backend; kernels are also compared with the reference (on their own device) over
random inputs, edge cases and gradients.
"""

from __future__ import annotations

import pytest
import torch
from op_inputs import (
    KERNEL_DTYPES,
    SIZES,
    gradients,
    non_contiguous,
    reference_inputs,
    uniform,
)
from tolerances import assert_close, assert_gradients_close

from vsdain.ops.correlation import correlation_reference


def naive_correlation(first: torch.Tensor, second: torch.Tensor, d: int) -> torch.Tensor:
    batch, channels, height, width = first.shape
    a, b = first.tolist(), second.tolist()
    side = 2 * d + 1
    out = torch.zeros(batch, side * side, height, width, dtype=torch.float64)
    for n in range(batch):
        for dy in range(-d, d + 1):
            for dx in range(-d, d + 1):
                for y in range(height):
                    for x in range(width):
                        if 0 <= y + dy < height and 0 <= x + dx < width:
                            total = sum(
                                a[n][c][y][x] * b[n][c][y + dy][x + dx] for c in range(channels)
                            )
                            out[n, (dy + d) * side + (dx + d), y, x] = total / channels
    return out


# --- every backend: naive loop and hand-computed cases ---------------------------------------


@pytest.mark.parametrize(("height", "width", "max_displacement"), [(5, 6, 4), (3, 4, 1), (1, 1, 2)])
def test_correlation_matches_naive_loop(backend, height, width, max_displacement):
    first = uniform(2, 3, height, width, seed=1)
    second = uniform(2, 3, height, width, seed=2)
    expected = naive_correlation(first, second, max_displacement)
    actual = backend.correlation(*backend.put(first, second), max_displacement)
    assert actual.shape == (2, (2 * max_displacement + 1) ** 2, height, width)
    assert_close(actual.cpu(), expected)


def test_correlation_channel_order_is_dy_major(backend):
    d, y0, x0, dy, dx = 4, 4, 5, 1, -3  # dy != dx so a transposed order would be caught
    first = torch.zeros(1, 2, 9, 10, dtype=torch.float64)
    second = torch.zeros(1, 2, 9, 10, dtype=torch.float64)
    first[0, :, y0, x0] = torch.tensor([2.0, 4.0])
    second[0, :, y0 + dy, x0 + dx] = torch.tensor([3.0, 5.0])
    out = backend.correlation(*backend.put(first, second), d).cpu()
    channel = (dy + d) * (2 * d + 1) + (dx + d)
    assert channel == 46
    assert out[0, channel, y0, x0].item() == (2 * 3 + 4 * 5) / 2  # mean over channels
    assert torch.count_nonzero(out).item() == 1


def test_correlation_zero_padding(backend):
    ones = backend.put(torch.ones(1, 1, 2, 3, dtype=torch.float64))
    out = backend.correlation(ones, ones, 1).cpu()
    # Channels run (dy, dx) = (-1,-1), (-1,0), (-1,1), (0,-1), (0,0), ..., (1,1).
    top_left = [0, 0, 0, 0, 1, 1, 0, 1, 1]
    bottom_right = [1, 1, 0, 1, 1, 0, 0, 0, 0]
    assert out[0, :, 0, 0].tolist() == top_left
    assert out[0, :, 1, 2].tolist() == bottom_right


@pytest.mark.parametrize(
    ("batch", "channels", "height", "width", "d", "seed", "dtype"),
    [(3, 4, 5, 7, 4, 3, torch.float64), (3, 2, 5, 4, 2, 22, torch.float32)],
)
def test_correlation_batch_matches_items_alone(
    backend, batch, channels, height, width, d, seed, dtype
):
    first = backend.put(uniform(batch, channels, height, width, seed=seed, dtype=dtype))
    second = backend.put(uniform(batch, channels, height, width, seed=seed + 1, dtype=dtype))
    together = backend.correlation(first, second, d)
    for n in range(batch):
        alone = backend.correlation(first[n : n + 1], second[n : n + 1], d)
        if backend.kernels:  # one thread per output value: the same sums in the same order
            assert torch.equal(together[n : n + 1], alone)
        else:
            assert_close(together[n : n + 1], alone)


@pytest.mark.parametrize(
    ("channels", "d", "seed", "dtype"), [(3, 4, 5, torch.float64), (4, 3, 17, torch.float32)]
)
def test_correlation_non_contiguous_input(backend, channels, d, seed, dtype):
    first = backend.put(uniform(2, channels, 5, 6, seed=seed, dtype=dtype))
    second = backend.put(uniform(2, channels, 5, 6, seed=seed + 1, dtype=dtype))
    expected = correlation_reference(first, second, d)
    actual = backend.correlation(non_contiguous(first), non_contiguous(second), d)
    assert_close(actual, expected)


@pytest.mark.parametrize(("channels", "seed"), [(8, 7), (32, 19)])
def test_correlation_float16_sums_in_float32(backend, channels, seed):
    first, second = backend.put(
        uniform(1, channels, 6, 7, seed=seed).half(),
        uniform(1, channels, 6, 7, seed=seed + 1).half(),
    )
    actual = backend.correlation(first, second, 4)
    assert actual.dtype == torch.float16
    expected = correlation_reference(first.float(), second.float(), 4)
    assert_close(actual.float(), expected, dtype=torch.float16)
    grad = backend.put(uniform(1, 81, 6, 7, seed=seed + 2).half())
    _, actual_grads = gradients(lambda a, b: backend.correlation(a, b, 4), (first, second), grad)
    _, expected_grads = gradients(
        lambda a, b: correlation_reference(a, b, 4), (first.float(), second.float()), grad.float()
    )
    assert actual_grads[0].dtype == torch.float16
    assert_gradients_close([g.float() for g in actual_grads], expected_grads, torch.float16)


def test_correlation_float32_matches_float64(backend):
    first, second = backend.put(uniform(1, 5, 4, 6, seed=9), uniform(1, 5, 4, 6, seed=10))
    actual = backend.correlation(first.float(), second.float())
    assert actual.dtype == torch.float32
    assert_close(actual, correlation_reference(first, second).float())


def test_correlation_gradient_of_one_input_only(backend):
    first = backend.put(uniform(1, 2, 4, 5, seed=15, dtype=torch.float32)).requires_grad_()
    second = backend.put(uniform(1, 2, 4, 5, seed=16, dtype=torch.float32))
    backend.correlation(first, second, 2).sum().backward()
    expected = torch.autograd.grad(correlation_reference(first, second, 2).sum(), first)[0]
    assert_close(first.grad, expected)


@pytest.mark.parametrize(("d", "seed"), [(2, 11), (1, 24), (1, 19)])
def test_correlation_gradcheck(backend, d, seed):
    first = backend.put(uniform(1, 2, 3, 4, seed=seed)).requires_grad_()
    second = backend.put(uniform(1, 2, 3, 4, seed=seed + 1)).requires_grad_()
    assert torch.autograd.gradcheck(
        lambda a, b: backend.correlation(a, b, d), (first, second), nondet_tol=backend.nondet_tol
    )


def test_correlation_rejects_bad_arguments(backend):
    first, other = backend.put(torch.zeros(1, 2, 3, 4), torch.zeros(1, 2, 3, 5))
    with pytest.raises(ValueError, match="equal shapes"):
        backend.correlation(first, other)
    with pytest.raises(ValueError, match=">= 0"):
        backend.correlation(first, first, -1)
    for bad in (2.0, 1.5, True):
        with pytest.raises(TypeError, match="int"):
            backend.correlation(first, first, bad)


# --- kernels against the reference -------------------------------------------------------------

# (H, W, max displacement, channels): every small size with each displacement, and a larger
# frame with PWC-Net's 32 feature channels.
FORWARD_CASES = [
    *[(h, w, d, 3) for h, w in SIZES for d in (0, 1, 4)],
    *[(h, w, 4, 32) for h, w in [(1, 1), (3, 7), (9, 11), (64, 96)]],
]


@pytest.mark.parametrize("dtype", KERNEL_DTYPES, ids=str)
@pytest.mark.parametrize(("height", "width", "max_displacement", "channels"), FORWARD_CASES)
def test_correlation_forward_matches_reference(
    kernel_backend, dtype, height, width, max_displacement, channels
):
    first = uniform(2, channels, height, width, seed=10, dtype=dtype)
    second = uniform(2, channels, height, width, seed=11, dtype=dtype)
    first, second = kernel_backend.put(first, second)
    actual = kernel_backend.correlation(first, second, max_displacement)
    assert actual.dtype == dtype
    expected = correlation_reference(*reference_inputs(first, second), max_displacement)
    assert_close(actual.float(), expected.float(), dtype=dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize(
    ("height", "width", "channels"), [(1, 1, 5), (3, 7, 5), (6, 5, 5), (24, 31, 8)]
)
def test_correlation_backward_matches_reference_autograd(
    kernel_backend, dtype, height, width, channels
):
    first = uniform(2, channels, height, width, seed=12, dtype=dtype)
    second = uniform(2, channels, height, width, seed=13, dtype=dtype)
    grad = uniform(2, 81, height, width, seed=14, dtype=dtype)
    first, second, grad = kernel_backend.put(first, second, grad)
    _, actual = gradients(lambda a, b: kernel_backend.correlation(a, b, 4), (first, second), grad)
    _, expected = gradients(lambda a, b: correlation_reference(a, b, 4), (first, second), grad)
    assert_gradients_close(actual, expected, dtype)


def test_correlation_bfloat16_is_computed_in_float32(kernel_backend):
    """No kernels store bfloat16; the Function runs the float32 ones and rounds the result, as
    the reference does. Both sides round the same float32 values, so float16's tolerance
    (looser than bfloat16's rounding needs here) is used."""
    first = uniform(1, 3, 5, 6, seed=70).bfloat16()
    second = uniform(1, 3, 5, 6, seed=71).bfloat16()
    first, second = kernel_backend.put(first, second)
    actual = kernel_backend.correlation(first, second, 2)
    assert actual.dtype == torch.bfloat16
    expected = correlation_reference(first, second, 2)
    assert_close(actual.float(), expected.float(), dtype=torch.float16)
