"""Tiling of the per-timestamp work: exact against the whole frame, the windows it uses, the
automatic choice and the recovery from running out of memory (made to happen on demand)."""

from __future__ import annotations

import logging

import pytest
import torch
from torch import nn

from vsdain.model import DAIN, Padding
from vsdain.model import dain as dain_module
from vsdain.model.synthesis import SYNTHESIS_RADIUS
from vsdain.model.tiling import (
    MIN_TILE,
    TileMemoryError,
    TilePlan,
    Window,
    check_tile,
    choose_tile,
    largest_grown_pixels,
    tile_windows,
)

# The bar for "the same result": float32 rounding of differently sized convolutions.
EXACT = 1e-5


@pytest.fixture(scope="module")
def network() -> DAIN:
    torch.manual_seed(7)
    return DAIN().eval()


# The two frame sizes the tests use: 67x45 pads to 128x128 (the network's smallest input),
# 130x70 to a non-square 256x128.
SQUARE, WIDE = (67, 45), (130, 70)
T = 0.375


class Results:
    """Each frame pair's features and each (pair, t, tile) synthesis, computed once for the
    module: the tests compare many tilings with the same whole-frame results. The frames of a
    size are seeded random images, padded."""

    def __init__(self, network: DAIN) -> None:
        self.network = network
        self._frames = {}
        self._pairs = {}
        self._syntheses = {}

    def frames(self, size: tuple[int, int]) -> list[torch.Tensor]:
        if size not in self._frames:
            width, height = size
            generator = torch.Generator().manual_seed(0)
            padding = Padding.for_size(height, width)
            self._frames[size] = [
                padding.pad(torch.rand(1, 3, height, width, generator=generator)) for _ in range(2)
            ]
        return self._frames[size]

    def pair(self, size: tuple[int, int]):
        if size not in self._pairs:
            with torch.inference_mode():
                first, second = (self.network.frame_features(f) for f in self.frames(size))
                self._pairs[size] = self.network.pair_features(first, second)
        return self._pairs[size]

    def synthesis(self, size: tuple[int, int], tile: int | None = None, t: float = T):
        key = (size, tile, t)
        if key not in self._syntheses:
            with torch.inference_mode():
                self._syntheses[key] = self.network.synthesize(self.pair(size), t, tile=tile)
        return self._syntheses[key]


@pytest.fixture(scope="module")
def results(network) -> Results:
    return Results(network)


def max_difference(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a.double() - b.double()).abs().max().item()


# --- exactness -------------------------------------------------------------------------------


def size_id(value: object) -> str | None:
    return "x".join(map(str, value)) if isinstance(value, tuple) else None


@pytest.mark.parametrize(
    ("size", "tile"),
    [
        (SQUARE, MIN_TILE),  # odd frame, the smallest tile: 128x128 in 32-pixel tiles
        (SQUARE, 48),  # tiles that do not divide the padded frame (48 + 48 + 32)
        # The non-square padded frame (256x128) costs a second pair of features: full suite.
        pytest.param(WIDE, 1000, marks=pytest.mark.slow),  # a tile larger than it: one window
        pytest.param(WIDE, 200, marks=pytest.mark.slow),  # edge windows cut both ways
        pytest.param(WIDE, 57, marks=pytest.mark.slow),  # an odd tile
    ],
    ids=size_id,
)
def test_tiled_synthesis_equals_the_whole_frame(results, size, tile):
    whole = results.synthesis(size)
    tiled = results.synthesis(size, tile)
    assert whole.output.std() > 0.01  # a frame with content, not a constant
    for field in ("output", "blend", "flow_to_first", "flow_to_second"):
        assert max_difference(getattr(tiled, field), getattr(whole, field)) <= EXACT, field


def test_tiles_at_the_edges_alone_equal_the_whole_frame(results):
    """Each corner and edge window, compared on its own (where zero padding and the cut
    margins meet)."""
    whole = results.synthesis(SQUARE)
    tiled = results.synthesis(SQUARE, MIN_TILE)
    height, width = whole.output.shape[-2:]
    edges = 0
    for core, _ in tile_windows(height, width, MIN_TILE, SYNTHESIS_RADIUS):
        at_edge = core.top == 0 or core.left == 0 or core.top + core.height == height
        at_edge = at_edge or core.left + core.width == width
        if at_edge:
            edges += 1
            assert max_difference(tiled.output[core.slices], whole.output[core.slices]) <= EXACT, (
                core
            )
    assert edges == 12  # of the 4x4 windows, all but the 4 inner ones


def test_synthesis_radius_follows_from_the_layer_definitions(network, results):
    """The reach of the synthesis network, summed over its convolutions, is the margin the
    tiles use; one pixel less changes the result, so the margin is also the least that works."""
    reach = 0
    for module in network.rectifyNet.modules():
        if isinstance(module, nn.Conv2d):
            assert module.stride == (1, 1)
            reach += module.dilation[0] * (module.kernel_size[0] - 1) // 2
    assert reach == SYNTHESIS_RADIUS == 10

    whole = results.synthesis(SQUARE).output
    original = dain_module.SYNTHESIS_RADIUS
    try:
        dain_module.SYNTHESIS_RADIUS = original - 1
        with torch.inference_mode():
            short = network.synthesize(results.pair(SQUARE), T, tile=64).output
    finally:
        dain_module.SYNTHESIS_RADIUS = original
    assert max_difference(short, whole) > 10 * EXACT


def test_training_mode_forward_in_eval_equals_the_inference_path(network, results):
    first, second = results.frames(SQUARE)
    with torch.no_grad():
        trained = network(first, second, T)
    inferred = results.synthesis(SQUARE)
    for field in ("output", "blend", "flow_to_first", "flow_to_second"):
        assert max_difference(getattr(trained, field), getattr(inferred, field)) <= EXACT, field


# --- the windows ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("height", "width", "tile"), [(128, 128, 32), (128, 256, 57), (64, 64, 64)]
)
def test_tile_cores_partition_the_frame_and_margins_stay_inside(height, width, tile):
    covered = torch.zeros(height, width, dtype=torch.int32)
    for core, grown in tile_windows(height, width, tile, SYNTHESIS_RADIUS):
        covered[core.top : core.top + core.height, core.left : core.left + core.width] += 1
        assert grown.top == max(0, core.top - SYNTHESIS_RADIUS)
        assert grown.left == max(0, core.left - SYNTHESIS_RADIUS)
        assert grown.top + grown.height == min(height, core.top + core.height + SYNTHESIS_RADIUS)
        assert grown.left + grown.width == min(width, core.left + core.width + SYNTHESIS_RADIUS)
        assert core.height <= tile and core.width <= tile
    assert torch.equal(covered, torch.ones_like(covered))


@pytest.mark.parametrize(
    ("tile", "error", "match"),
    [(MIN_TILE - 1, ValueError, "at least 32"), (48.0, TypeError, "int"), (True, TypeError, "int")],
)
def test_bad_tiles_are_refused(network, results, tile, error, match):
    with pytest.raises(error, match=match):
        check_tile(tile)
    pair = results.pair(SQUARE)
    with torch.inference_mode(), pytest.raises(error, match=match):
        network.synthesize(pair, 0.5, tile=tile)


def test_choose_tile_whole_frame_largest_fitting_or_the_minimum():
    height, width, cost = 320, 512, 8000.0
    assert choose_tile(height, width, cost, budget=int(height * width * cost)) is None
    budget = 400_000_000
    tile = choose_tile(height, width, cost, budget)
    assert largest_grown_pixels(height, width, tile, SYNTHESIS_RADIUS) * cost <= budget
    assert largest_grown_pixels(height, width, tile + 1, SYNTHESIS_RADIUS) * cost > budget
    assert choose_tile(height, width, cost, budget=1000) == MIN_TILE


@pytest.fixture
def plentiful_memory(monkeypatch):
    """The machine's own free memory must not decide an automatic choice: pinned at 8 GiB, far
    above what one 128x128 timestamp takes (about 105 MB)."""
    from vsdain import memory

    monkeypatch.setattr(memory, "available_bytes", lambda device: 8 << 30)


def test_automatic_plan_measures_and_keeps_a_frame_that_fits_whole(
    network, results, caplog, plentiful_memory
):
    caplog.set_level(logging.INFO)
    unlimited = TilePlan(None, max_memory=None, log=logging.getLogger("vsdain.test_tiling"))
    with torch.inference_mode():
        result = unlimited.synthesize(network, results.pair(SQUARE), T).output
    assert unlimited.current is None  # 128x128 fits 8 GiB whole
    assert max_difference(result, results.synthesis(SQUARE).output) <= EXACT
    (message,) = [
        record.getMessage() for record in caplog.records if "tiling:" in record.getMessage()
    ]
    assert "measured" in message and message.endswith("the whole frame")


def test_automatic_plan_under_a_cap_picks_a_tile_that_fits(
    network, results, caplog, plentiful_memory
):
    from vsdain.model.tiling import held_bytes

    caplog.set_level(logging.INFO)
    pair = results.pair(SQUARE)
    # A cap 50 MB above the features themselves leaves room for tiles, not the whole frame:
    # one 128x128 timestamp measures about 6.5 KiB a pixel (~105 MB), a 64-pixel tile grown
    # by its margins (84x84) about 45 MB.
    log = logging.getLogger("vsdain.test_tiling")
    tight = TilePlan(None, max_memory=held_bytes(pair) + 50_000_000, log=log)
    with torch.inference_mode():
        result = tight.synthesize(network, pair, T).output
    assert tight.current is not None and MIN_TILE < tight.current < 128
    assert max_difference(result, results.synthesis(SQUARE).output) <= EXACT
    (message,) = [
        record.getMessage() for record in caplog.records if "tiling:" in record.getMessage()
    ]
    assert message.endswith(f"{tight.current}-pixel tiles")


# --- running out of memory -----------------------------------------------------------------


class Stopped(Exception):
    """Raised by :class:`FailsAboveSize` once it has seen the windows asked for."""


class FailsAboveSize:
    """Stands in for a device that runs out of memory: the network's per-window work raises
    ``error`` for windows of more than ``limit`` pixels, and records every window tried; with
    ``stop_after``, it raises :class:`Stopped` (not an out-of-memory error) once it has seen
    that many windows."""

    def __init__(
        self, network: DAIN, limit: int, error: type[BaseException], stop_after: int | None = None
    ) -> None:
        self.network = network
        self.limit = limit
        self.error = error
        self.stop_after = stop_after
        self.windows: list[Window] = []

    def __enter__(self) -> FailsAboveSize:
        real = self.network.synthesize_window

        def synthesize_window(pair, t, flows, window):
            if self.stop_after is not None and len(self.windows) == self.stop_after:
                raise Stopped
            self.windows.append(window)
            if window.pixels > self.limit:
                raise self.error(f"simulated: {window.pixels} pixels")
            return real(pair, t, flows, window)

        self.network.synthesize_window = synthesize_window
        return self

    def __exit__(self, *exc: object) -> None:
        del self.network.synthesize_window


@pytest.mark.parametrize(
    ("error", "size", "recoveries"),
    [
        (torch.OutOfMemoryError, SQUARE, 1),  # 128x128: only the whole frame fails
        # 256x128: the whole frame, then 128-pixel tiles fail (a second pair: full suite)
        pytest.param(MemoryError, WIDE, 2, marks=pytest.mark.slow),
    ],
    ids=["cuda-128x128", "cpu-256x128"],
)
def test_out_of_memory_retries_with_smaller_tiles_and_equals_the_whole_frame(
    network, results, error, size, recoveries
):
    pair = results.pair(size)
    reference = results.synthesis(size)
    plan = TilePlan(None, max_memory=None)
    plan.chosen = True  # the whole frame first, as an automatic choice that was too hopeful
    # 64-pixel tiles grown by the margins (84x84) fit, anything larger does not.
    with FailsAboveSize(network, limit=90 * 90, error=error) as failing, torch.inference_mode():
        result = plan.synthesize(network, pair, T)
    assert plan.recoveries == recoveries and plan.current == 64
    height, width = pair.flow_forward.shape[-2:]
    assert failing.windows[0].pixels == height * width  # the whole frame was tried first
    for field in ("output", "blend", "flow_to_first", "flow_to_second"):
        assert max_difference(getattr(result, field), getattr(reference, field)) <= EXACT
    # The smaller tile stays for the following timestamps: their first window is one of its
    # tiles, not the whole frame or a 128-pixel tile tried again.
    again = FailsAboveSize(network, limit=90 * 90, error=error, stop_after=1)
    with again, torch.inference_mode(), pytest.raises(Stopped):
        plan.synthesize(network, pair, 0.25)
    assert plan.recoveries == recoveries
    (_, first_window), *_ = tile_windows(height, width, 64, SYNTHESIS_RADIUS)
    assert again.windows == [first_window]


def test_out_of_memory_at_the_smallest_tile_says_what_to_try(network, results):
    pair = results.pair(SQUARE)
    plan = TilePlan(64)
    with (
        FailsAboveSize(network, limit=10, error=torch.OutOfMemoryError),
        torch.inference_mode(),
        pytest.raises(TileMemoryError, match=r"even with 32-pixel tiles; try precision=") as caught,
    ):
        plan.synthesize(network, pair, 0.5)
    assert isinstance(caught.value.__cause__, torch.OutOfMemoryError)
    assert "128x128" in str(caught.value)


def test_tile_zero_never_tiles_and_does_not_retry(network, results):
    pair = results.pair(SQUARE)
    plan = TilePlan(0)
    with (
        FailsAboveSize(network, limit=10, error=MemoryError) as failing,
        torch.inference_mode(),
        pytest.raises(TileMemoryError, match="the whole frame"),
    ):
        plan.synthesize(network, pair, 0.5)
    assert len(failing.windows) == 1


def test_other_errors_are_not_taken_for_out_of_memory(network, results):
    pair = results.pair(SQUARE)
    plan = TilePlan(None, max_memory=None)
    plan.chosen = True
    with (
        FailsAboveSize(network, limit=10, error=RuntimeError) as failing,
        torch.inference_mode(),
        pytest.raises(RuntimeError, match="simulated"),
    ):
        plan.synthesize(network, pair, 0.5)
    assert len(failing.windows) == 1


# --- through the filter --------------------------------------------------------------------


@pytest.fixture(scope="module")
def filter_network() -> DAIN:
    from filter_clips import random_network

    return random_network()


@pytest.fixture(scope="module")
def untiled_frames(filter_network):
    """The frames of a two-frame clip at multi=2 (one synthesised), never tiled."""
    from filter_clips import moving_clip, planes

    import vsdain

    output = vsdain.Interpolate(moving_clip(2), 2, model=filter_network, tile=0)
    return [planes(frame) for frame in output.frames()]


def assert_frames_equal_untiled(frames, untiled_frames) -> None:
    import numpy as np

    assert len(frames) == len(untiled_frames) == 4
    for a, b in zip(frames, untiled_frames, strict=True):
        assert np.abs(a.astype(np.float64) - b).max() <= EXACT


def test_filter_frames_with_forced_tiles_equal_untiled(filter_network, untiled_frames):
    from filter_clips import moving_clip, planes

    import vsdain

    output = vsdain.Interpolate(moving_clip(2), 2, model=filter_network, tile=48)
    with FailsAboveSize(filter_network, limit=(48 + 2 * SYNTHESIS_RADIUS) ** 2, error=MemoryError):
        frames = [planes(frame) for frame in output.frames()]  # never more than one 48 tile
    assert_frames_equal_untiled(frames, untiled_frames)


def test_filter_frames_after_out_of_memory_recovery_equal_untiled(filter_network, untiled_frames):
    from filter_clips import moving_clip, planes

    import vsdain

    output = vsdain.Interpolate(moving_clip(2), 2, model=filter_network)
    with FailsAboveSize(filter_network, limit=90 * 90, error=MemoryError) as failing:
        frames = [planes(frame) for frame in output.frames()]
    assert any(window.pixels > 90 * 90 for window in failing.windows)  # it did run out
    assert_frames_equal_untiled(frames, untiled_frames)


@pytest.mark.parametrize(
    ("arguments", "match"),
    [
        ({"tile": 16}, "tile must be None .* >= 32"),
        ({"tile": 64.0}, "tile must be None"),
        ({"tile": "auto"}, "tile must be None"),
        ({"max_memory": 4}, r"max_memory must be .* MiB >= 64, got 4; e.g. max_memory=4096"),
        ({"max_memory": 4096.5}, "max_memory must be"),
    ],
)
def test_filter_refuses_bad_tiling_arguments(filter_network, arguments, match):
    import vapoursynth as vs
    from filter_clips import moving_clip

    import vsdain

    with pytest.raises(vs.Error, match=f"Interpolate: {match}"):
        vsdain.Interpolate(moving_clip(2), model=filter_network, **arguments)


def test_filter_out_of_memory_at_the_smallest_tile_names_the_frame(filter_network):
    import vapoursynth as vs
    from filter_clips import moving_clip

    import vsdain

    network = filter_network
    clip = vsdain.Interpolate(moving_clip(2), 2, model=network, tile=32)
    with (
        FailsAboveSize(network, limit=10, error=torch.OutOfMemoryError),
        pytest.raises(vs.Error, match=r"frame 1 .*even with 32-pixel tiles; try precision="),
    ):
        clip.get_frame(1)
