"""DAIN's depth-aware flow projection on every backend: the PyTorch reference, the kernel
source compiled as C++ on the CPU, and the CuPy kernels on a GPU (see the ``backend`` fixture).

Hand-computed cases and a deliberately naive per-pixel loop written from the definition run
on every backend; kernels are also compared with the reference (on their own device) over
random inputs, the edge cases they must survive (flow off the image, NaN/Inf flow, landing on
the last row or column, sparse sources) and gradients.
"""

from __future__ import annotations

import math

import pytest
import torch
from op_inputs import (
    FAR,
    KERNEL_DTYPES,
    SIZES,
    gradients,
    isolated_sources,
    non_contiguous,
    random_flow,
    random_weight,
    reference_inputs,
    smooth_projection_inputs,
    sparse,
    uniform,
    with_broken_flow,
    with_edge_cases,
)
from tolerances import assert_close, assert_gradients_close

from vsdain.ops.projection import fill_flow_holes, project_flow_reference

PROJECTION_CASES = [
    pytest.param(False, True, id="weighted"),
    pytest.param(True, True, id="weighted-filled"),
    pytest.param(False, False, id="unweighted"),
    pytest.param(True, False, id="unweighted-filled"),
]


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


def project(backend, flow, weight, *, fill_holes):
    """``backend``'s projection of CPU inputs, returned on the CPU."""
    flow, weight = backend.put(flow, weight)
    return backend.project_flow(flow, weight, fill_holes=fill_holes).cpu()


# --- every backend: naive loop and hand-computed cases ---------------------------------------


@pytest.mark.parametrize(("height", "width"), SIZES[:5])
@pytest.mark.parametrize("fill_holes", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
def test_projection_matches_naive_loop(backend, height, width, fill_holes, weighted):
    flow = uniform(2, 2, height, width, seed=17, low=-2.0, high=2.0)
    flow[0, 0, 0, 0] = math.nan  # every size, even 1x1, has this pixel
    weight = uniform(2, 1, height, width, seed=18, low=0.1, high=3.0) if weighted else None
    expected = naive_projection(flow, weight, fill_holes)
    assert_close(project(backend, flow, weight, fill_holes=fill_holes), expected)


def test_projection_of_constant_flow_is_its_negative_and_fills_the_border(backend):
    height, width, fx, fy = 4, 5, 1.5, 0.5
    flow = torch.tensor([fx, fy], dtype=torch.float64).view(1, 2, 1, 1).expand(2, 2, height, width)
    weight = uniform(2, 1, height, width, seed=13, low=0.5, high=2.0)
    minus_flow = torch.tensor([-fx, -fy], dtype=torch.float64).view(1, 2, 1, 1)
    # Sources land at x + 1.5, so columns 1..4 are reached and column 0 never is.
    unfilled = project(backend, flow, weight, fill_holes=False)
    assert_close(unfilled[:, :, :, 1:], minus_flow.expand(2, 2, height, width - 1))
    assert torch.count_nonzero(unfilled[:, :, :, 0]).item() == 0
    filled = project(backend, flow, weight, fill_holes=True)
    assert_close(filled, minus_flow.expand(2, 2, height, width))


def test_projection_two_sources_hand_computed(backend):
    # A lands at (x, y) = (1.5, 0.25): columns 1-2, rows 0-1. B lands at (2.0, 0.5): columns
    # 2-3, rows 0-1. Column 2 holds their weighted average.
    flow = isolated_sources(3, 4, {(0, 0): (1.5, 0.25), (1, 3): (-1.0, -0.5)})
    weight = torch.ones(1, 1, 3, 4, dtype=torch.float64)
    weight[0, 0, 0, 0] = 2.0
    out = project(backend, flow, weight, fill_holes=False)
    expected_x = [[0, -1.5, -2 / 3, 1.0], [0, -1.5, -2 / 3, 1.0], [0, 0, 0, 0]]
    expected_y = [[0, -0.25, 0.0, 0.5], [0, -0.25, 0.0, 0.5], [0, 0, 0, 0]]
    assert_close(out[0], torch.tensor([expected_x, expected_y], dtype=torch.float64))


def test_projection_one_row_hand_computed(backend):
    # Two sources in a 1x4 row: x=0 moves +1.5 (weight 1), x=3 moves -0.5 (weight 3). Both
    # land between columns 1 and 2 (at 1.5 and 2.5 -> columns 2, 3), so column 1 holds the
    # first, column 2 both, column 3 the second; column 0 is a hole filled from column 1.
    flow = torch.zeros(1, 2, 1, 4)
    flow[0, 0, 0, 0] = 1.5
    flow[0, 0, 0, 3] = -0.5
    flow[0, 0, 0, 1] = flow[0, 0, 0, 2] = FAR
    weight = torch.tensor([[[[1.0, 1.0, 1.0, 3.0]]]])
    actual = project(backend, flow, weight, fill_holes=True)
    both = -(1 * 1.5 + 3 * -0.5) / (1 + 3)
    expected_x = torch.tensor([-1.5, -1.5, both, 0.5])
    assert_close(actual[0, 0, 0], expected_x)
    assert torch.equal(actual[0, 1], torch.zeros(1, 4))


def test_projection_landing_on_last_column_counts_twice(backend):
    # A lands exactly on x = W-1, so its right neighbour is clamped onto the same column and
    # that column receives A twice: -(2 * 2.0 + 0.5) / 3, not -(2.0 + 0.5) / 2.
    flow = isolated_sources(2, 3, {(0, 0): (2.0, 0.0), (0, 1): (0.5, 0.0)})
    out = project(backend, flow, None, fill_holes=False)
    assert_close(out[0, 0], torch.tensor([[0, -0.5, -1.5], [0, -0.5, -1.5]], dtype=torch.float64))
    assert torch.count_nonzero(out[0, 1]).item() == 0


def test_projection_landing_on_last_row_counts_twice(backend):
    flow = isolated_sources(3, 2, {(0, 0): (0.0, 2.0), (1, 0): (0.0, 0.5)})
    out = project(backend, flow, None, fill_holes=False)
    assert_close(out[0, 1], torch.tensor([[0, 0], [-0.5, -0.5], [-1.5, -1.5]], dtype=torch.float64))


@pytest.mark.parametrize(
    ("near_weight", "expected"),
    [(9.0, -(9 * 1.25 + 1 * -0.75) / 10), (1 / 9, -(1.25 / 9 - 0.75) / (1 / 9 + 1))],
)
def test_projection_nearer_source_dominates(backend, near_weight, expected):
    # Both sources land at (1.25, 1.25); the one with the larger inverse depth wins.
    flow = isolated_sources(3, 3, {(0, 0): (1.25, 1.25), (2, 2): (-0.75, -0.75)})
    weight = torch.ones(1, 1, 3, 3, dtype=torch.float64)
    weight[0, 0, 0, 0] = near_weight
    out = project(backend, flow, weight, fill_holes=False)
    assert_close(out[0, :, 1:, 1:], torch.full((2, 2, 2), expected, dtype=torch.float64))


def test_projection_without_weight_equals_unit_weight(backend):
    flow = uniform(2, 2, 5, 6, seed=14, low=-3.0, high=3.0)
    ones = torch.ones(2, 1, 5, 6, dtype=torch.float64)
    for fill_holes in (False, True):
        assert_close(
            project(backend, flow, None, fill_holes=fill_holes),
            project(backend, flow, ones, fill_holes=fill_holes),
        )


def test_projection_fill_off_leaves_holes_zero(backend):
    flow = isolated_sources(3, 4, {(1, 1): (0.5, 0.5)})
    unfilled = project(backend, flow, None, fill_holes=False)
    assert torch.count_nonzero(unfilled).item() == 8  # 2 channels x the 2x2 splat
    assert torch.count_nonzero(unfilled[0, :, 0]).item() == 0
    # The splat covers rows 1-2, columns 1-2. With filling, every hole sees it along its row or
    # column except the top corners, whose whole row and column are holes: they stay 0.
    filled = project(backend, flow, None, fill_holes=True)
    expected = torch.full((3, 4), -0.5, dtype=torch.float64)
    expected[0, 0] = expected[0, 3] = 0.0
    assert_close(filled[0, 0], expected)
    assert_close(filled[0, 1], expected)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_projection_drops_nan_and_inf_flow(backend, bad):
    flow = uniform(1, 2, 4, 5, seed=15, low=-1.5, high=1.5)
    weight = uniform(1, 1, 4, 5, seed=16, low=0.5, high=2.0)
    broken, dropped = flow.clone(), flow.clone()
    broken[0, 0, 1, 2] = bad
    broken[0, 1, 3, 0] = bad
    dropped[0, 0, 1, 2] = FAR
    dropped[0, 1, 3, 0] = FAR
    broken, weight = backend.put(broken, weight)
    broken.requires_grad_()
    weight.requires_grad_()
    for fill_holes in (False, True):
        out = backend.project_flow(broken, weight, fill_holes=fill_holes)
        assert torch.isfinite(out).all()
        assert_close(
            out.detach().cpu(), project(backend, dropped, weight.detach(), fill_holes=fill_holes)
        )
    out.square().sum().backward()
    assert torch.isfinite(broken.grad).all() and torch.isfinite(weight.grad).all()
    assert broken.grad[0, :, 1, 2].tolist() == [0.0, 0.0]
    assert weight.grad[0, 0, 3, 0].item() == 0.0


@pytest.mark.parametrize(
    "landing_point", [(-1e-3, 1.0), (3 + 1e-3, 1.0), (1.0, -1e-3), (1.0, 2 + 1e-3)]
)
def test_projection_drops_flow_landing_off_image(backend, landing_point):
    qx, qy = landing_point
    flow = isolated_sources(3, 4, {(1, 1): (qx - 1, qy - 1)})
    for fill_holes in (False, True):
        out = project(backend, flow, None, fill_holes=fill_holes)
        assert torch.count_nonzero(out).item() == 0


def test_projection_keeps_flow_landing_exactly_on_the_first_pixel(backend):
    flow = isolated_sources(2, 3, {(1, 2): (-2.0, -1.0)})
    out = project(backend, flow, None, fill_holes=False)
    assert out[0, 0].tolist() == [[2.0, 2.0, 0.0], [2.0, 2.0, 0.0]]
    assert out[0, 1].tolist() == [[1.0, 1.0, 0.0], [1.0, 1.0, 0.0]]


@pytest.mark.parametrize("fill_holes", [False, True])
def test_projection_all_flow_off_image_or_broken(backend, fill_holes):
    flow = torch.full((2, 2, 3, 4), FAR)
    flow[0, :, 0, 0] = math.nan
    flow[1, 1, 2, 3] = -math.inf
    weight = random_weight(2, 3, 4, seed=32, dtype=torch.float32)
    actual = project(backend, flow, weight, fill_holes=fill_holes)
    assert torch.equal(actual, torch.zeros_like(flow))


def test_projection_is_symmetric_in_x_and_y(backend):
    flow = uniform(2, 2, 5, 7, seed=19, low=-2.5, high=2.5)
    weight = uniform(2, 1, 5, 7, seed=20, low=0.5, high=2.0)
    transposed = flow.transpose(2, 3).flip(1)
    for fill_holes in (False, True):
        out = project(backend, flow, weight, fill_holes=fill_holes)
        out_t = project(backend, transposed, weight.transpose(2, 3), fill_holes=fill_holes)
        assert_close(out_t.flip(1).transpose(2, 3), out)


@pytest.mark.parametrize(
    ("batch", "height", "width", "seed", "dtype"),
    [(3, 6, 5, 21, torch.float64), (3, 5, 4, 47, torch.float32)],
)
def test_projection_batch_matches_items_alone(backend, batch, height, width, seed, dtype):
    flow = random_flow(batch, height, width, seed=seed, dtype=dtype)
    weight = uniform(batch, 1, height, width, seed=seed + 1, low=0.5, high=2.0, dtype=dtype)
    flow, weight = backend.put(flow, weight)
    together = backend.project_flow(flow, weight, fill_holes=True)
    for n in range(batch):
        alone = backend.project_flow(flow[n : n + 1], weight[n : n + 1], fill_holes=True)
        # Not bit-equal in general: the splat adds atomically, and which thread of the grid
        # handles a source (hence the order of the sums) depends on the batch size.
        assert_close(together[n : n + 1], alone)


@pytest.mark.parametrize(("seed", "dtype"), [(23, torch.float64), (40, torch.float32)])
def test_projection_non_contiguous_input(backend, seed, dtype):
    flow = random_flow(2, 5, 6, seed=seed, dtype=dtype)
    weight = uniform(2, 1, 6, 5, seed=seed + 1, low=0.5, high=2.0, dtype=dtype).transpose(2, 3)
    flow, weight = backend.put(flow, weight)
    assert not weight.is_contiguous()
    expected = project_flow_reference(flow, weight.contiguous(), fill_holes=True)
    actual = backend.project_flow(non_contiguous(flow), weight, fill_holes=True)
    assert_close(actual, expected)


def test_projection_float32_and_float16(backend):
    flow = uniform(1, 2, 6, 7, seed=25, low=-2.0, high=2.0).half()
    weight = uniform(1, 1, 6, 7, seed=26, low=0.5, high=2.0).half()
    flow, weight = backend.put(flow, weight)
    expected = project_flow_reference(flow.double(), weight.double(), fill_holes=True)
    single = backend.project_flow(flow.float(), weight.float(), fill_holes=True)
    assert single.dtype == torch.float32
    assert_close(single, expected.float())
    half = backend.project_flow(flow, weight, fill_holes=True)
    assert half.dtype == torch.float16
    assert_close(half.float(), expected.float(), dtype=torch.float16)


def test_projection_gradient_of_weight_only(backend):
    flow = backend.put(random_flow(1, 5, 6, seed=38, dtype=torch.float32))
    weight = backend.put(random_weight(1, 5, 6, seed=39, dtype=torch.float32)).requires_grad_()
    backend.project_flow(flow, weight, fill_holes=True).square().sum().backward()
    out = project_flow_reference(flow, weight, fill_holes=True).square().sum()
    assert_close(weight.grad, torch.autograd.grad(out, weight)[0])


# (H, W, landing rows, seed): landing rows stay in 0..1, so the last rows are holes, filled
# from above when filling is on.
GRADCHECK_CASES = [(3, 4, 2, 27), (4, 3, 2, 28), (4, 3, 2, 49)]


@pytest.mark.parametrize(("height", "width", "target_rows", "seed"), GRADCHECK_CASES)
@pytest.mark.parametrize("fill_holes", [False, True])
def test_projection_gradcheck(backend, height, width, target_rows, seed, fill_holes):
    flow, weight = smooth_projection_inputs(height, width, target_rows, seed)
    flow, weight = (t.detach().to(backend.device).requires_grad_() for t in (flow, weight))
    tolerance = {"nondet_tol": backend.nondet_tol}
    assert torch.autograd.gradcheck(
        lambda f, w: backend.project_flow(f, w, fill_holes=fill_holes), (flow, weight), **tolerance
    )
    assert torch.autograd.gradcheck(
        lambda f: backend.project_flow(f, None, fill_holes=fill_holes), (flow,), **tolerance
    )


def test_projection_rejects_bad_shapes(backend):
    with pytest.raises(ValueError, match=r"\(B, 2, H, W\)"):
        backend.project_flow(backend.put(torch.zeros(1, 3, 4, 4)), None, fill_holes=False)
    with pytest.raises(ValueError, match="weight"):
        backend.project_flow(
            *backend.put(torch.zeros(1, 2, 4, 4), torch.ones(1, 1, 4, 5)), fill_holes=False
        )


# --- the hole filling on its own (a reference helper) ---------------------------------------


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


# --- kernels against the reference -------------------------------------------------------------


def densify(flow: torch.Tensor, density: str, seed: int) -> torch.Tensor:
    if density == "sparse":
        return sparse(flow, seed=seed)
    if density == "broken":
        return with_broken_flow(flow)
    return flow


@pytest.mark.parametrize("dtype", KERNEL_DTYPES, ids=str)
@pytest.mark.parametrize(("height", "width"), [*SIZES, (64, 96)])
@pytest.mark.parametrize(("fill_holes", "weighted"), PROJECTION_CASES)
@pytest.mark.parametrize("density", ["dense", "sparse", "broken"])
def test_projection_forward_matches_reference(
    kernel_backend, dtype, height, width, fill_holes, weighted, density
):
    flow = with_edge_cases(random_flow(2, height, width, seed=30, dtype=dtype))
    flow = densify(flow, density, seed=130)
    weight = random_weight(2, height, width, seed=31, dtype=dtype) if weighted else None
    flow, weight = kernel_backend.put(flow, weight)
    actual = kernel_backend.project_flow(flow, weight, fill_holes=fill_holes)
    assert actual.dtype == dtype
    expected = project_flow_reference(*reference_inputs(flow, weight), fill_holes=fill_holes)
    assert_close(actual.float(), expected.float(), dtype=dtype)


def test_projection_weights_of_both_signs_follow_the_reference(kernel_backend):
    """Negative weights never come from depth, but the reference pins what the kernel does
    with non-positive counts (holes keep their sum, stops that are not averaged)."""
    flow = random_flow(2, 6, 7, seed=33, dtype=torch.float32)
    weight = uniform(2, 1, 6, 7, seed=34, low=-1.0, high=1.0, dtype=torch.float32)
    flow, weight = kernel_backend.put(flow, weight)
    for fill_holes in (False, True):
        actual = kernel_backend.project_flow(flow, weight, fill_holes=fill_holes)
        assert_close(actual, project_flow_reference(flow, weight, fill_holes=fill_holes))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize(("height", "width"), [(1, 1), (3, 7), (6, 5), (9, 11), (24, 31)])
@pytest.mark.parametrize(("fill_holes", "weighted"), PROJECTION_CASES)
@pytest.mark.parametrize("density", ["dense", "sparse"])
def test_projection_backward_matches_reference_autograd(
    kernel_backend, dtype, height, width, fill_holes, weighted, density
):
    flow = with_edge_cases(random_flow(2, height, width, seed=35, dtype=dtype))
    flow = densify(flow, density, seed=135)
    weight = random_weight(2, height, width, seed=36, dtype=dtype) if weighted else None
    grad = uniform(2, 2, height, width, seed=37, dtype=dtype)
    flow, weight, grad = kernel_backend.put(flow, weight, grad)

    def kernel(f, w):
        return kernel_backend.project_flow(f, w, fill_holes=fill_holes)

    def reference(f, w):
        return project_flow_reference(f, w, fill_holes=fill_holes)

    _, actual = gradients(kernel, (flow, weight), grad)
    _, expected = gradients(reference, (flow, weight), grad)
    assert_gradients_close(actual, expected, dtype)
    assert all(g is None or g.isfinite().all() for g in actual), "NaN flow leaked into a gradient"


def test_projection_float16_accumulates_in_float32(kernel_backend):
    flow = with_edge_cases(random_flow(2, 6, 7, seed=42)).half()
    weight = random_weight(2, 6, 7, seed=43).half()
    grad = uniform(2, 2, 6, 7, seed=44).half()
    flow, weight, grad = kernel_backend.put(flow, weight, grad)
    actual = kernel_backend.project_flow(flow, weight, fill_holes=True)
    assert actual.dtype == torch.float16
    expected = project_flow_reference(flow.float(), weight.float(), fill_holes=True)
    assert_close(actual.float(), expected, dtype=torch.float16)
    _, actual_grads = gradients(
        lambda f, w: kernel_backend.project_flow(f, w, fill_holes=True), (flow, weight), grad
    )
    _, expected_grads = gradients(
        lambda f, w: project_flow_reference(f, w, fill_holes=True),
        (flow.float(), weight.float()),
        grad.float(),
    )
    assert_gradients_close([g.float() for g in actual_grads], expected_grads, torch.float16)


def test_projection_mixed_dtypes_compute_in_the_wider_one(kernel_backend):
    flow = random_flow(1, 4, 5, seed=45, dtype=torch.float16)
    weight = random_weight(1, 4, 5, seed=46, dtype=torch.float32)
    flow, weight = kernel_backend.put(flow, weight)
    actual = kernel_backend.project_flow(flow, weight, fill_holes=False)
    assert actual.dtype == torch.float16
    assert torch.equal(actual, project_flow_reference(flow, weight, fill_holes=False))


def test_projection_bfloat16_is_computed_in_float32(kernel_backend):
    """As for correlation: the float32 kernels run and the result is rounded, as the
    reference does; float16's tolerance, see test_op_correlation.py."""
    flow = with_edge_cases(random_flow(1, 5, 6, seed=73)).bfloat16()
    weight = random_weight(1, 5, 6, seed=75).bfloat16()
    flow, weight = kernel_backend.put(flow, weight)
    actual = kernel_backend.project_flow(flow, weight, fill_holes=True)
    assert actual.dtype == torch.bfloat16
    expected = project_flow_reference(flow, weight, fill_holes=True)
    assert_close(actual.float(), expected.float(), dtype=torch.float16)
