"""Tests of the pure-PyTorch references of DAIN's three custom ops (spec sections 3.1-3.3).

Each op is checked against hand-computed cases and against a deliberately naive per-pixel
Python loop written straight from the spec, so that the vectorised code has an independent
witness.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from tolerances import assert_close

from vsdain.ops import adaptive_warp, warping
from vsdain.ops.correlation import correlation_reference
from vsdain.ops.projection import fill_flow_holes, project_flow_reference
from vsdain.ops.warping import adaptive_warp_inference, adaptive_warp_reference

DEVICES = [
    "cpu",
    pytest.param(
        "cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
    ),
]
SIZES = [(1, 1), (1, 5), (4, 1), (3, 7), (5, 4)]  # (H, W): tiny, single row/column, odd
FAR = 1.0e6  # a flow that carries any pixel off the image


def generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def random(*shape: int, seed: int = 0, low: float = -1.0, high: float = 1.0) -> torch.Tensor:
    """Uniform float64 values made on the CPU from a fixed seed."""
    return torch.rand(*shape, generator=generator(seed), dtype=torch.float64) * (high - low) + low


def non_contiguous(tensor: torch.Tensor) -> torch.Tensor:
    """The same values, stored channels-last so that the NCHW view is not contiguous."""
    result = tensor.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)
    assert not result.is_contiguous()
    return result


# --- naive per-pixel implementations, written from the spec -----------------------------------


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


def naive_projection(
    flow: torch.Tensor, weight: torch.Tensor | None, fill_holes: bool
) -> torch.Tensor:
    batch, _, height, width = flow.shape
    f = flow.tolist()
    w = None if weight is None else weight.tolist()
    out = [[[[0.0] * width for _ in range(height)] for _ in range(2)] for _ in range(batch)]
    count = [[[0.0] * width for _ in range(height)] for _ in range(batch)]
    for n in range(batch):
        for y in range(height):
            for x in range(width):
                fx, fy = f[n][0][y][x], f[n][1][y][x]
                qx, qy = x + fx, y + fy
                if not (0 <= qx <= width - 1 and 0 <= qy <= height - 1):
                    continue
                left, top = int(qx), int(qy)
                right, bottom = min(left + 1, width - 1), min(top + 1, height - 1)
                source_weight = 1.0 if w is None else w[n][0][y][x]
                for ty in (top, bottom):
                    for tx in (left, right):
                        out[n][0][ty][tx] -= source_weight * fx
                        out[n][1][ty][tx] -= source_weight * fy
                        count[n][ty][tx] += source_weight
        for y in range(height):
            for x in range(width):
                if count[n][y][x] > 0:
                    out[n][0][y][x] /= count[n][y][x]
                    out[n][1][y][x] /= count[n][y][x]
    if fill_holes:
        averaged = [[[row[:] for row in channel] for channel in item] for item in out]
        for n in range(batch):
            for y in range(height):
                for x in range(width):
                    if count[n][y][x] > 0:
                        continue
                    found = []
                    for step_y, step_x in ((0, -1), (0, 1), (-1, 0), (1, 0)):
                        ny, nx = y + step_y, x + step_x
                        while 0 <= ny < height and 0 <= nx < width and count[n][ny][nx] == 0:
                            ny, nx = ny + step_y, nx + step_x
                        if 0 <= ny < height and 0 <= nx < width:
                            found.append((ny, nx))
                    if sum(count[n][ny][nx] for ny, nx in found) <= 0:
                        continue
                    used = [(ny, nx) for ny, nx in found if count[n][ny][nx] > 0]
                    for c in range(2):
                        total = sum(averaged[n][c][ny][nx] for ny, nx in used)
                        out[n][c][y][x] = total / len(used)
    return torch.tensor(out, dtype=torch.float64).reshape(batch, 2, height, width)


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


# --- correlation --------------------------------------------------------------------------------


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(("height", "width", "max_displacement"), [(5, 6, 4), (3, 4, 1), (1, 1, 2)])
def test_correlation_matches_naive_loop(device, height, width, max_displacement):
    first = random(2, 3, height, width, seed=1)
    second = random(2, 3, height, width, seed=2)
    expected = naive_correlation(first, second, max_displacement)
    actual = correlation_reference(first.to(device), second.to(device), max_displacement)
    assert actual.shape == (2, (2 * max_displacement + 1) ** 2, height, width)
    assert_close(actual.cpu(), expected)


def test_correlation_channel_order_is_dy_major():
    d, y0, x0, dy, dx = 4, 4, 5, 1, -3  # dy != dx so a transposed order would be caught
    first = torch.zeros(1, 2, 9, 10, dtype=torch.float64)
    second = torch.zeros(1, 2, 9, 10, dtype=torch.float64)
    first[0, :, y0, x0] = torch.tensor([2.0, 4.0])
    second[0, :, y0 + dy, x0 + dx] = torch.tensor([3.0, 5.0])
    out = correlation_reference(first, second, d)
    channel = (dy + d) * (2 * d + 1) + (dx + d)
    assert channel == 46
    assert out[0, channel, y0, x0].item() == (2 * 3 + 4 * 5) / 2  # mean over channels
    assert torch.count_nonzero(out).item() == 1


def test_correlation_zero_padding():
    ones = torch.ones(1, 1, 2, 3, dtype=torch.float64)
    out = correlation_reference(ones, ones, 1)
    # Channels run (dy, dx) = (-1,-1), (-1,0), (-1,1), (0,-1), (0,0), ..., (1,1).
    top_left = [0, 0, 0, 0, 1, 1, 0, 1, 1]
    bottom_right = [1, 1, 0, 1, 1, 0, 0, 0, 0]
    assert out[0, :, 0, 0].tolist() == top_left
    assert out[0, :, 1, 2].tolist() == bottom_right


def test_correlation_batch_matches_items_alone():
    first, second = random(3, 4, 5, 7, seed=3), random(3, 4, 5, 7, seed=4)
    together = correlation_reference(first, second)
    for n in range(3):
        alone = correlation_reference(first[n : n + 1], second[n : n + 1])
        assert_close(together[n : n + 1], alone)


def test_correlation_non_contiguous_input():
    first, second = random(2, 3, 5, 6, seed=5), random(2, 3, 5, 6, seed=6)
    expected = correlation_reference(first, second)
    assert_close(correlation_reference(non_contiguous(first), non_contiguous(second)), expected)


def test_correlation_float16_close_to_float32():
    first = random(1, 8, 6, 7, seed=7).half()
    second = random(1, 8, 6, 7, seed=8).half()
    actual = correlation_reference(first, second)
    assert actual.dtype == torch.float16
    expected = correlation_reference(first.float(), second.float())
    assert_close(actual.float(), expected, dtype=torch.float16)


def test_correlation_float32_matches_float64():
    first, second = random(1, 5, 4, 6, seed=9), random(1, 5, 4, 6, seed=10)
    actual = correlation_reference(first.float(), second.float())
    assert actual.dtype == torch.float32
    assert_close(actual, correlation_reference(first, second).float())


def test_correlation_gradcheck():
    first = random(1, 2, 3, 4, seed=11).requires_grad_()
    second = random(1, 2, 3, 4, seed=12).requires_grad_()
    assert torch.autograd.gradcheck(
        lambda a, b: correlation_reference(a, b, 2), (first, second), fast_mode=True
    )


def test_correlation_rejects_bad_arguments():
    first = torch.zeros(1, 2, 3, 4)
    with pytest.raises(ValueError, match="equal shapes"):
        correlation_reference(first, torch.zeros(1, 2, 3, 5))
    with pytest.raises(ValueError, match=">= 0"):
        correlation_reference(first, first, -1)
    with pytest.raises(TypeError, match="int"):
        correlation_reference(first, first, 2.0)


# --- flow projection ----------------------------------------------------------------------------


def isolated_sources(
    height: int, width: int, sources: dict[tuple[int, int], tuple[float, float]]
) -> torch.Tensor:
    """(1, 2, H, W) flow in which only ``sources`` ((y, x) -> (fx, fy)) stay on the image."""
    flow = torch.full((1, 2, height, width), FAR, dtype=torch.float64)
    for (y, x), (fx, fy) in sources.items():
        flow[0, :, y, x] = torch.tensor([fx, fy])
    return flow


def test_projection_of_constant_flow_is_its_negative_and_fills_the_border():
    height, width, fx, fy = 4, 5, 1.5, 0.5
    flow = torch.tensor([fx, fy], dtype=torch.float64).view(1, 2, 1, 1).expand(2, 2, height, width)
    weight = random(2, 1, height, width, seed=13, low=0.5, high=2.0)
    minus_flow = torch.tensor([-fx, -fy], dtype=torch.float64).view(1, 2, 1, 1)
    # Sources land at x + 1.5, so columns 1..4 are reached and column 0 never is.
    unfilled = project_flow_reference(flow, weight, fill_holes=False)
    assert_close(unfilled[:, :, :, 1:], minus_flow.expand(2, 2, height, width - 1))
    assert torch.count_nonzero(unfilled[:, :, :, 0]).item() == 0
    filled = project_flow_reference(flow, weight, fill_holes=True)
    assert_close(filled, minus_flow.expand(2, 2, height, width))


def test_projection_two_sources_hand_computed():
    # A lands at (x, y) = (1.5, 0.25): columns 1-2, rows 0-1. B lands at (2.0, 0.5): columns
    # 2-3, rows 0-1. Column 2 holds their weighted average.
    flow = isolated_sources(3, 4, {(0, 0): (1.5, 0.25), (1, 3): (-1.0, -0.5)})
    weight = torch.ones(1, 1, 3, 4, dtype=torch.float64)
    weight[0, 0, 0, 0] = 2.0
    out = project_flow_reference(flow, weight, fill_holes=False)
    expected_x = [[0, -1.5, -2 / 3, 1.0], [0, -1.5, -2 / 3, 1.0], [0, 0, 0, 0]]
    expected_y = [[0, -0.25, 0.0, 0.5], [0, -0.25, 0.0, 0.5], [0, 0, 0, 0]]
    assert_close(out[0], torch.tensor([expected_x, expected_y], dtype=torch.float64))


def test_projection_landing_on_last_column_counts_twice():
    # A lands exactly on x = W-1, so its right neighbour is clamped onto the same column and
    # that column receives A twice: -(2 * 2.0 + 0.5) / 3, not -(2.0 + 0.5) / 2.
    flow = isolated_sources(2, 3, {(0, 0): (2.0, 0.0), (0, 1): (0.5, 0.0)})
    out = project_flow_reference(flow, None, fill_holes=False)
    assert_close(out[0, 0], torch.tensor([[0, -0.5, -1.5], [0, -0.5, -1.5]], dtype=torch.float64))
    assert torch.count_nonzero(out[0, 1]).item() == 0


def test_projection_landing_on_last_row_counts_twice():
    flow = isolated_sources(3, 2, {(0, 0): (0.0, 2.0), (1, 0): (0.0, 0.5)})
    out = project_flow_reference(flow, None, fill_holes=False)
    assert_close(out[0, 1], torch.tensor([[0, 0], [-0.5, -0.5], [-1.5, -1.5]], dtype=torch.float64))


@pytest.mark.parametrize(
    ("near_weight", "expected"),
    [(9.0, -(9 * 1.25 + 1 * -0.75) / 10), (1 / 9, -(1.25 / 9 - 0.75) / (1 / 9 + 1))],
)
def test_projection_nearer_source_dominates(near_weight, expected):
    # Both sources land at (1.25, 1.25); the one with the larger inverse depth wins.
    flow = isolated_sources(3, 3, {(0, 0): (1.25, 1.25), (2, 2): (-0.75, -0.75)})
    weight = torch.ones(1, 1, 3, 3, dtype=torch.float64)
    weight[0, 0, 0, 0] = near_weight
    out = project_flow_reference(flow, weight, fill_holes=False)
    assert_close(out[0, :, 1:, 1:], torch.full((2, 2, 2), expected, dtype=torch.float64))


def test_projection_without_weight_equals_unit_weight():
    flow = random(2, 2, 5, 6, seed=14, low=-3.0, high=3.0)
    ones = torch.ones(2, 1, 5, 6, dtype=torch.float64)
    for fill_holes in (False, True):
        assert_close(
            project_flow_reference(flow, None, fill_holes=fill_holes),
            project_flow_reference(flow, ones, fill_holes=fill_holes),
        )


def test_fill_flow_holes_hand_computed():
    # Reached pixels (count != 0) hold x-flow 10, 20, 30; everything else is a hole.
    count = torch.zeros(1, 1, 4, 5, dtype=torch.float64)
    flow = torch.zeros(1, 2, 4, 5, dtype=torch.float64)
    for (y, x), value, reached in [((0, 2), 10.0, 1.0), ((1, 0), 20.0, 2.0), ((1, 4), 30.0, 3.0)]:
        count[0, 0, y, x] = reached
        flow[0, :, y, x] = torch.tensor([value, -value / 10])
    expected_x = torch.tensor(
        [
            [15, 10, 10, 10, 20],  # (0,0): right 10 + down 20; (0,4): left 10 + down 30
            [20, 25, 20, 25, 30],  # (1,2): left 20, right 30, up 10
            [20, 0, 10, 0, 30],  # (2,1): nothing reachable in any direction stays 0
            [20, 0, 10, 0, 30],  # (3,2): walks past the holes above up to row 0, no cascade
        ],
        dtype=torch.float64,
    )
    out = fill_flow_holes(flow, count)
    assert_close(out[0, 0], expected_x)
    assert_close(out[0, 1], -expected_x / 10)


def test_fill_flow_holes_negative_count_stops_the_walk_but_is_not_averaged():
    # Kernel behaviour kept for completeness: a neighbour with count < 0 ends the search in its
    # direction without contributing, and a hole whose neighbours' counts sum to <= 0 is kept.
    count = torch.tensor([[[[-1.0, 0.0, 0.0, 2.0]]]], dtype=torch.float64)
    flow = torch.tensor([[[[7.0, 0.0, 0.0, 5.0]], [[1.0, 0.0, 0.0, 3.0]]]], dtype=torch.float64)
    out = fill_flow_holes(flow, count)
    # (0,0) is itself a hole; its only neighbour found has count 2 > 0. (0,1), (0,2) see -1 on
    # the left and 2 on the right: sum 1 > 0, average of the right one only.
    assert out[0, :, 0, :].tolist() == [[5.0, 5.0, 5.0, 5.0], [3.0, 3.0, 3.0, 3.0]]
    count[0, 0, 0, 3] = 1.0  # now (0,1) and (0,2) see -1 + 1 = 0: left untouched
    out = fill_flow_holes(flow, count)
    assert out[0, 0, 0, :].tolist() == [5.0, 0.0, 0.0, 5.0]
    # The walk starts at the neighbour, never at the hole itself: (0,1) with count -1 sees only
    # the 1 on its right and is filled; (0,0) and (0,2) are stopped by (0,1) and see sums <= 0.
    count = torch.tensor([[[[0.0, -1.0, 0.0, 1.0]]]], dtype=torch.float64)
    flow[0, 0, 0, :] = torch.tensor([0.0, 9.0, 0.0, 5.0])
    out = fill_flow_holes(flow, count)
    assert out[0, 0, 0, :].tolist() == [0.0, 5.0, 0.0, 5.0]


def test_projection_fill_off_leaves_holes_zero():
    flow = isolated_sources(3, 4, {(1, 1): (0.5, 0.5)})
    unfilled = project_flow_reference(flow, None, fill_holes=False)
    assert torch.count_nonzero(unfilled).item() == 8  # 2 channels x the 2x2 splat
    assert torch.count_nonzero(unfilled[0, :, 0]).item() == 0
    # The splat covers rows 1-2, columns 1-2. With filling, every hole sees it along its row or
    # column except the top corners, whose whole row and column are holes: they stay 0.
    filled = project_flow_reference(flow, None, fill_holes=True)
    expected = torch.full((3, 4), -0.5, dtype=torch.float64)
    expected[0, 0] = expected[0, 3] = 0.0
    assert_close(filled[0, 0], expected)
    assert_close(filled[0, 1], expected)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_projection_drops_nan_and_inf_flow(bad):
    flow = random(1, 2, 4, 5, seed=15, low=-1.5, high=1.5)
    weight = random(1, 1, 4, 5, seed=16, low=0.5, high=2.0)
    broken, dropped = flow.clone(), flow.clone()
    broken[0, 0, 1, 2] = bad
    broken[0, 1, 3, 0] = bad
    dropped[0, 0, 1, 2] = FAR
    dropped[0, 1, 3, 0] = FAR
    broken.requires_grad_()
    weight.requires_grad_()
    for fill_holes in (False, True):
        out = project_flow_reference(broken, weight, fill_holes=fill_holes)
        assert torch.isfinite(out).all()
        assert_close(out, project_flow_reference(dropped, weight, fill_holes=fill_holes))
    out.square().sum().backward()
    assert torch.isfinite(broken.grad).all() and torch.isfinite(weight.grad).all()
    assert broken.grad[0, :, 1, 2].tolist() == [0.0, 0.0]
    assert weight.grad[0, 0, 3, 0].item() == 0.0


@pytest.mark.parametrize(
    "landing_point", [(-1e-3, 1.0), (3 + 1e-3, 1.0), (1.0, -1e-3), (1.0, 2 + 1e-3)]
)
def test_projection_drops_flow_landing_off_image(landing_point):
    qx, qy = landing_point
    flow = isolated_sources(3, 4, {(1, 1): (qx - 1, qy - 1)})
    for fill_holes in (False, True):
        out = project_flow_reference(flow, None, fill_holes=fill_holes)
        assert torch.count_nonzero(out).item() == 0


def test_projection_keeps_flow_landing_exactly_on_the_first_pixel():
    flow = isolated_sources(2, 3, {(1, 2): (-2.0, -1.0)})
    out = project_flow_reference(flow, None, fill_holes=False)
    assert out[0, 0].tolist() == [[2.0, 2.0, 0.0], [2.0, 2.0, 0.0]]
    assert out[0, 1].tolist() == [[1.0, 1.0, 0.0], [1.0, 1.0, 0.0]]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(("height", "width"), SIZES)
@pytest.mark.parametrize("fill_holes", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
def test_projection_matches_naive_loop(device, height, width, fill_holes, weighted):
    flow = random(2, 2, height, width, seed=17, low=-2.0, high=2.0)
    flow[0, 0, 0, 0] = math.nan  # every size, even 1x1, has this pixel
    weight = random(2, 1, height, width, seed=18, low=0.1, high=3.0) if weighted else None
    expected = naive_projection(flow, weight, fill_holes)
    actual = project_flow_reference(
        flow.to(device), None if weight is None else weight.to(device), fill_holes=fill_holes
    )
    assert_close(actual.cpu(), expected)


def test_projection_is_symmetric_in_x_and_y():
    flow = random(2, 2, 5, 7, seed=19, low=-2.5, high=2.5)
    weight = random(2, 1, 5, 7, seed=20, low=0.5, high=2.0)
    transposed = flow.transpose(2, 3).flip(1)
    for fill_holes in (False, True):
        out = project_flow_reference(flow, weight, fill_holes=fill_holes)
        out_t = project_flow_reference(transposed, weight.transpose(2, 3), fill_holes=fill_holes)
        assert_close(out_t.flip(1).transpose(2, 3), out)


def test_projection_batch_matches_items_alone():
    flow = random(3, 2, 6, 5, seed=21, low=-2.0, high=2.0)
    weight = random(3, 1, 6, 5, seed=22, low=0.5, high=2.0)
    together = project_flow_reference(flow, weight, fill_holes=True)
    for n in range(3):
        alone = project_flow_reference(flow[n : n + 1], weight[n : n + 1], fill_holes=True)
        assert_close(together[n : n + 1], alone)


def test_projection_non_contiguous_input():
    flow = random(2, 2, 5, 6, seed=23, low=-2.0, high=2.0)
    weight = random(2, 1, 6, 5, seed=24, low=0.5, high=2.0).transpose(2, 3)
    assert not weight.is_contiguous()
    expected = project_flow_reference(flow, weight.contiguous(), fill_holes=True)
    assert_close(project_flow_reference(non_contiguous(flow), weight, fill_holes=True), expected)


def test_projection_float32_and_float16():
    flow = random(1, 2, 6, 7, seed=25, low=-2.0, high=2.0).half()
    weight = random(1, 1, 6, 7, seed=26, low=0.5, high=2.0).half()
    expected = project_flow_reference(flow.double(), weight.double(), fill_holes=True)
    single = project_flow_reference(flow.float(), weight.float(), fill_holes=True)
    assert single.dtype == torch.float32
    assert_close(single, expected.float())
    half = project_flow_reference(flow, weight, fill_holes=True)
    assert half.dtype == torch.float16
    assert_close(half.float(), expected.float(), dtype=torch.float16)


def smooth_projection_inputs(height: int, width: int, target_rows: int, seed: int):
    """Flow whose landing points are >= 0.2 px from any integer (floor() is locally constant)
    and inside the image, plus one source sent off the image, and positive weights."""
    g = generator(seed)
    target_x = torch.randint(0, width - 1, (1, height, width), generator=g)
    target_y = torch.randint(0, target_rows, (1, height, width), generator=g)
    fraction = torch.rand(2, 1, height, width, generator=g, dtype=torch.float64) * 0.6 + 0.2
    landing_x = target_x + fraction[0]
    landing_y = target_y + fraction[1]
    flow = torch.stack(
        [
            landing_x - torch.arange(width, dtype=torch.float64),
            landing_y - torch.arange(height, dtype=torch.float64).unsqueeze(1),
        ],
        dim=1,
    )
    flow[0, 0, 0, 1] = 50.0
    weight = torch.rand(1, 1, height, width, generator=g, dtype=torch.float64) * 1.5 + 0.5
    return flow.requires_grad_(), weight.requires_grad_()


def test_projection_gradcheck():
    flow, weight = smooth_projection_inputs(3, 4, target_rows=2, seed=27)
    assert torch.autograd.gradcheck(
        lambda f, w: project_flow_reference(f, w, fill_holes=False), (flow, weight)
    )
    assert torch.autograd.gradcheck(
        lambda f: project_flow_reference(f, None, fill_holes=False), (flow,)
    )


def test_projection_gradcheck_with_hole_filling():
    # Landing rows stay in 0..2 of 4, so the last row is all holes filled from above.
    flow, weight = smooth_projection_inputs(4, 3, target_rows=2, seed=28)
    assert torch.autograd.gradcheck(
        lambda f, w: project_flow_reference(f, w, fill_holes=True), (flow, weight)
    )


def test_projection_rejects_bad_shapes():
    with pytest.raises(ValueError, match=r"\(B, 2, H, W\)"):
        project_flow_reference(torch.zeros(1, 3, 4, 4), None, fill_holes=False)
    with pytest.raises(ValueError, match="weight"):
        project_flow_reference(torch.zeros(1, 2, 4, 4), torch.ones(1, 1, 4, 5), fill_holes=False)


# --- adaptive warping ---------------------------------------------------------------------------


def one_hot_kernel(batch: int, height: int, width: int, taps) -> torch.Tensor:
    kernel = torch.zeros(batch, 16, height, width, dtype=torch.float64)
    kernel[:, list(taps)] = 1.0
    return kernel


def test_warp_with_centre_taps_is_bilinear_sampling():
    batch, height, width = 2, 6, 7
    image = random(batch, 3, height, width, seed=30)
    flow = random(batch, 2, height, width, seed=31, low=-1.5, high=1.5)
    kernel = one_hot_kernel(batch, height, width, (5, 6, 9, 10))
    sample_x = torch.arange(width, dtype=torch.float64) + flow[:, 0]
    sample_y = torch.arange(height, dtype=torch.float64).unsqueeze(1) + flow[:, 1]
    inside = (sample_x >= 0) & (sample_x <= width - 1) & (sample_y >= 0) & (sample_y <= height - 1)
    assert inside.any() and not inside.all()
    grid = torch.stack([2 * sample_x / (width - 1) - 1, 2 * sample_y / (height - 1) - 1], dim=-1)
    bilinear = F.grid_sample(image, grid, mode="bilinear", align_corners=True)
    expected = torch.where(inside.unsqueeze(1), bilinear, image)
    assert_close(adaptive_warp_reference(image, flow, kernel), expected)


def test_warp_with_zero_flow_and_centre_tap_returns_the_image():
    image = random(2, 4, 5, 6, seed=32)
    kernel = one_hot_kernel(2, 5, 6, (5,))
    # Taps in the third and fourth row or column carry alpha or beta, both 0 here, so any
    # value there must not leak into the result.
    far_taps = [k for k in range(16) if k % 4 >= 2 or k // 4 >= 2]
    kernel[:, far_taps] = random(2, len(far_taps), 5, 6, seed=33)
    flow = torch.zeros(2, 2, 5, 6, dtype=torch.float64)
    assert torch.equal(adaptive_warp_reference(image, flow, kernel), image)


def test_warp_copies_the_pixel_where_flow_is_invalid():
    height, width = 4, 8
    image = random(1, 2, height, width, seed=34)
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
        flow[0, :, y, x] = torch.tensor([fx, fy])
    image.requires_grad_()
    flow.requires_grad_()
    out = adaptive_warp_reference(image, flow, kernel)
    for y, x in invalid:
        assert out[0, :, y, x].tolist() == image[0, :, y, x].tolist()
    for y, x in valid:
        assert not torch.equal(out[0, :, y, x], image[0, :, y, x])
    assert_close(out, naive_warp(image.detach(), flow.detach(), kernel))
    out.square().sum().backward()
    assert torch.isfinite(image.grad).all() and torch.isfinite(flow.grad).all()
    assert flow.grad[0, :, 2, 3].tolist() == [0.0, 0.0]


def test_warp_clamps_taps_at_the_border_hand_computed():
    # image[r, c] = 10 r + c + 1 on a 3x4 frame.
    image = (torch.arange(3, dtype=torch.float64).view(3, 1) * 10 + torch.arange(4) + 1).view(
        1, 1, 3, 4
    )
    flow = torch.zeros(1, 2, 3, 4, dtype=torch.float64)

    # Top-left, zero flow, tap 0 reads (-1, -1) clamped to (0, 0).
    out = adaptive_warp_reference(image, flow, one_hot_kernel(1, 3, 4, (0,)))
    assert out[0, 0, 0, 0].item() == 1.0

    # Top-left sampling (0.5, 0.25): alpha 0.5, beta 0.25. Tap 3 is row offset 0 (clamped to row
    # 0) and column offset 3 (column 2): 3 * alpha * (1 - beta). Tap 15: row 2, column 2.
    flow[0, :, 0, 0] = torch.tensor([0.5, 0.25])
    out = adaptive_warp_reference(image, flow, one_hot_kernel(1, 3, 4, (3,)))
    assert out[0, 0, 0, 0].item() == 3 * 0.5 * 0.75
    out = adaptive_warp_reference(image, flow, one_hot_kernel(1, 3, 4, (15,)))
    assert out[0, 0, 0, 0].item() == 23 * 0.5 * 0.25

    # Bottom-right sampling (2.5, 1.75): columns 1, 2, 3, 3 and rows 0, 1, 2, 2 after clamping.
    # Each row r gives 0.5 * (4 (10 r + 1) + 1 + 2 + 3 + 3) = 20 r + 6.5; rows weigh 0.25, 0.25,
    # 0.75, 0.75: 0.25 * 6.5 + 0.25 * 26.5 + 1.5 * 46.5 = 78.
    flow[0, :, 2, 3] = torch.tensor([-0.5, -0.25])
    out = adaptive_warp_reference(image, flow, torch.ones(1, 16, 3, 4, dtype=torch.float64))
    assert out[0, 0, 2, 3].item() == 78.0


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(("height", "width"), SIZES)
def test_warp_matches_naive_loop(device, height, width):
    image = random(2, 3, height, width, seed=35)
    flow = random(2, 2, height, width, seed=36, low=-2.0, high=2.0)
    kernel = random(2, 16, height, width, seed=37)
    expected = naive_warp(image, flow, kernel)
    actual = adaptive_warp_reference(image.to(device), flow.to(device), kernel.to(device))
    assert_close(actual.cpu(), expected)


def test_warp_batch_matches_items_alone():
    image, flow = random(3, 5, 6, 7, seed=38), random(3, 2, 6, 7, seed=39, low=-3, high=3)
    kernel = random(3, 16, 6, 7, seed=40)
    together = adaptive_warp_reference(image, flow, kernel)
    for n in range(3):
        alone = adaptive_warp_reference(image[n : n + 1], flow[n : n + 1], kernel[n : n + 1])
        assert_close(together[n : n + 1], alone)


def test_warp_non_contiguous_input():
    image, flow = random(2, 3, 5, 6, seed=41), random(2, 2, 5, 6, seed=42, low=-2, high=2)
    kernel = random(2, 16, 5, 6, seed=43)
    expected = adaptive_warp_reference(image, flow, kernel)
    actual = adaptive_warp_reference(
        non_contiguous(image), non_contiguous(flow), non_contiguous(kernel)
    )
    assert_close(actual, expected)


def test_warp_float32_and_float16():
    image = random(1, 3, 6, 7, seed=44).half()
    flow = random(1, 2, 6, 7, seed=45, low=-2, high=2).half()
    kernel = random(1, 16, 6, 7, seed=46, low=0.0, high=0.25).half()
    expected = adaptive_warp_reference(image.double(), flow.double(), kernel.double())
    single = adaptive_warp_reference(image.float(), flow.float(), kernel.float())
    assert single.dtype == torch.float32
    assert_close(single, expected.float())
    half = adaptive_warp_reference(image, flow, kernel)
    assert half.dtype == torch.float16
    assert_close(half.float(), expected.float(), dtype=torch.float16)


def test_warp_gradcheck():
    # Integer shift plus a fraction in [0.2, 0.8]: floor() and the validity tests (bounds at
    # integers, |F| < 2.5 and < 2) stay constant under gradcheck's perturbations.
    g = generator(47)
    height, width = 4, 5
    shift = torch.randint(-1, 2, (1, 2, height, width), generator=g).double()
    fraction = torch.rand(1, 2, height, width, generator=g, dtype=torch.float64) * 0.6 + 0.2
    flow = (shift + fraction).requires_grad_()
    image = random(1, 2, height, width, seed=48).requires_grad_()
    kernel = random(1, 16, height, width, seed=49).requires_grad_()
    assert torch.autograd.gradcheck(adaptive_warp_reference, (image, flow, kernel))


# --- the CPU inference path of the warp -------------------------------------------------------


def awkward_flow(batch: int, height: int, width: int, seed: int) -> torch.Tensor:
    """Random flow up to +-3 pixels with invalid entries sprinkled in: NaN, infinite and far."""
    flow = random(batch, 2, height, width, seed=seed, low=-3.0, high=3.0)
    specials = torch.tensor([math.nan, math.inf, -math.inf, FAR, -FAR], dtype=torch.float64)
    chosen = torch.rand(flow.shape, generator=generator(seed + 1)) < 0.1
    picks = torch.randint(0, len(specials), flow.shape, generator=generator(seed + 2))
    return torch.where(chosen, specials[picks], flow)


@pytest.mark.parametrize(("height", "width"), [*SIZES, (17, 19), (23, 40)])
def test_warp_inference_path_matches_naive_loop(height, width, monkeypatch):
    # 17x19 and 23x40 with 64-pixel blocks: several blocks, the last one partial.
    monkeypatch.setattr(warping, "_INFERENCE_BLOCK", 64)
    image = random(2, 5, height, width, seed=60)
    flow = awkward_flow(2, height, width, seed=61)
    kernel = random(2, 16, height, width, seed=64)
    actual = adaptive_warp_inference(image, flow, kernel)
    assert actual.shape == image.shape and actual.dtype == image.dtype
    assert_close(actual, naive_warp(image, flow, kernel))
    assert_close(actual, adaptive_warp_reference(image, flow, kernel))


@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_warp_inference_path_float32_agrees_with_the_reference(layout):
    image = random(1, 196, 12, 20, seed=65).float()
    flow, kernel = awkward_flow(1, 12, 20, seed=66).float(), random(1, 16, 12, 20, seed=69).float()
    if layout == "channels_last":
        image, flow, kernel = non_contiguous(image), non_contiguous(flow), non_contiguous(kernel)
    actual = adaptive_warp_inference(image, flow, kernel)
    assert actual.is_contiguous(memory_format=torch.channels_last)
    assert_close(actual, adaptive_warp_reference(image, flow, kernel))
    half = adaptive_warp_inference(image.half(), flow.half(), kernel.half())
    assert half.dtype == torch.float16
    expected = adaptive_warp_reference(image.double(), flow.half().double(), kernel.half().double())
    assert_close(half.float(), expected.float(), dtype=torch.float16)


def test_warp_dispatch_uses_the_inference_path_only_without_gradients(monkeypatch):
    calls = []
    monkeypatch.setattr(
        "vsdain.ops.dispatch.adaptive_warp_inference",
        lambda *arguments: calls.append("inference") or adaptive_warp_inference(*arguments),
    )
    image, flow = random(1, 3, 5, 6, seed=70), random(1, 2, 5, 6, seed=71, low=-2, high=2)
    kernel = random(1, 16, 5, 6, seed=72)
    with torch.no_grad():
        fast = adaptive_warp(image, flow, kernel, backend="reference")
    assert calls == ["inference"]
    image.requires_grad_()
    slow = adaptive_warp(image, flow, kernel, backend="reference")
    assert calls == ["inference"]  # a gradient is wanted: the differentiable reference ran
    assert slow.requires_grad
    assert_close(fast, slow.detach())
    slow.sum().backward()
    assert image.grad is not None and torch.isfinite(image.grad).all()


def test_warp_rejects_bad_shapes():
    image = torch.zeros(1, 3, 4, 5)
    with pytest.raises(ValueError, match="flow"):
        adaptive_warp_reference(image, torch.zeros(1, 2, 5, 4), torch.zeros(1, 16, 4, 5))
    with pytest.raises(ValueError, match="kernel"):
        adaptive_warp_reference(image, torch.zeros(1, 2, 4, 5), torch.zeros(1, 9, 4, 5))
