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


def pair_for(network: DAIN, width: int, height: int, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    frames = [torch.rand(1, 3, height, width, generator=generator) for _ in range(2)]
    padding = Padding.for_size(height, width)
    with torch.inference_mode():
        first, second = (network.frame_features(padding.pad(frame)) for frame in frames)
        return network.pair_features(first, second)


def max_difference(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a.double() - b.double()).abs().max().item()


# --- exactness -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("width", "height", "tile"),
    [
        (67, 45, MIN_TILE),  # odd frame, the smallest tile: 128x128 in 32-pixel tiles
        (67, 45, 48),  # tiles that do not divide the padded frame (48 + 48 + 32)
        (130, 70, 57),  # non-square padded frame (256x128), odd tile
        (130, 70, 200),  # one tile wider than the frame is tall: edge windows cut both ways
        (130, 70, 1000),  # a tile larger than the frame: one window, the whole frame
    ],
)
def test_tiled_synthesis_equals_the_whole_frame(network, width, height, tile):
    pair = pair_for(network, width, height)
    with torch.inference_mode():
        whole = network.synthesize(pair, 0.375)
        tiled = network.synthesize(pair, 0.375, tile=tile)
    assert whole.output.std() > 0.01  # a frame with content, not a constant
    for field in ("output", "blend", "flow_to_first", "flow_to_second"):
        assert max_difference(getattr(tiled, field), getattr(whole, field)) <= EXACT, field


def test_tiles_at_the_edges_alone_equal_the_whole_frame(network):
    """Each corner and edge window, compared on its own (where zero padding and the cut
    margins meet)."""
    pair = pair_for(network, 130, 70, seed=3)
    with torch.inference_mode():
        whole = network.synthesize(pair, 0.5)
        tiled = network.synthesize(pair, 0.5, tile=MIN_TILE)
        height, width = whole.output.shape[-2:]
        for core, _ in tile_windows(height, width, MIN_TILE, SYNTHESIS_RADIUS):
            at_edge = core.top == 0 or core.left == 0 or core.top + core.height == height
            at_edge = at_edge or core.left + core.width == width
            if at_edge:
                assert (
                    max_difference(tiled.output[core.slices], whole.output[core.slices]) <= EXACT
                ), core


def test_synthesis_radius_follows_from_the_layer_definitions(network):
    """The reach of the synthesis network, summed over its convolutions, is the margin the
    tiles use; one pixel less changes the result, so the margin is also the least that works."""
    reach = 0
    for module in network.rectifyNet.modules():
        if isinstance(module, nn.Conv2d):
            assert module.stride == (1, 1)
            reach += module.dilation[0] * (module.kernel_size[0] - 1) // 2
    assert reach == SYNTHESIS_RADIUS == 10

    pair = pair_for(network, 67, 45, seed=5)
    with torch.inference_mode():
        whole = network.synthesize(pair, 0.5).output
        original = dain_module.SYNTHESIS_RADIUS
        try:
            dain_module.SYNTHESIS_RADIUS = original - 1
            short = network.synthesize(pair, 0.5, tile=MIN_TILE).output
        finally:
            dain_module.SYNTHESIS_RADIUS = original
    assert max_difference(short, whole) > 10 * EXACT


def test_training_mode_forward_in_eval_equals_the_inference_path(network):
    generator = torch.Generator().manual_seed(11)
    first, second = (torch.rand(1, 3, 128, 128, generator=generator) for _ in range(2))
    with torch.no_grad():
        trained = network(first, second, 0.25)
    with torch.inference_mode():
        pair = network.pair_features(network.frame_features(first), network.frame_features(second))
        inferred = network.synthesize(pair, 0.25)
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
def test_bad_tiles_are_refused(network, tile, error, match):
    with pytest.raises(error, match=match):
        check_tile(tile)
    pair = pair_for(network, 64, 48)
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


def test_automatic_plan_measures_and_picks_a_tile_that_fits(network, caplog, monkeypatch):
    from vsdain import memory

    pair = pair_for(network, 130, 70)
    caplog.set_level(logging.INFO)
    log = logging.getLogger("vsdain.test_tiling")
    # The machine's own free memory must not decide the outcome: pin it at 8 GiB, far above
    # what one 256x128 timestamp takes (tens of MB).
    monkeypatch.setattr(memory, "available_bytes", lambda device: 8 << 30)
    unlimited = TilePlan(None, max_memory=None, log=log)
    with torch.inference_mode():
        reference = network.synthesize(pair, 0.5).output
        assert max_difference(unlimited.synthesize(network, pair, 0.5).output, reference) <= EXACT
    assert unlimited.current is None  # 256x128 fits 8 GiB whole
    # A cap just above the features themselves leaves room for small tiles only.
    from vsdain.model.tiling import held_bytes

    tight = TilePlan(None, max_memory=held_bytes(pair) + 20_000_000, log=log)
    with torch.inference_mode():
        result = tight.synthesize(network, pair, 0.5).output
    assert tight.current is not None and tight.current < 128
    assert max_difference(result, reference) <= EXACT
    assert sum("tiling:" in record.getMessage() for record in caplog.records) == 2


# --- running out of memory -----------------------------------------------------------------


class FailsAboveSize:
    """Stands in for a device that runs out of memory: the network's per-window work raises
    ``error`` for windows of more than ``limit`` pixels, and records every window tried."""

    def __init__(self, network: DAIN, limit: int, error: type[BaseException]) -> None:
        self.network = network
        self.limit = limit
        self.error = error
        self.windows: list[Window] = []

    def __enter__(self) -> FailsAboveSize:
        real = self.network.synthesize_window

        def synthesize_window(pair, t, flows, window):
            self.windows.append(window)
            if window.pixels > self.limit:
                raise self.error(f"simulated: {window.pixels} pixels")
            return real(pair, t, flows, window)

        self.network.synthesize_window = synthesize_window
        return self

    def __exit__(self, *exc: object) -> None:
        del self.network.synthesize_window


@pytest.mark.parametrize("error", [torch.OutOfMemoryError, MemoryError])
def test_out_of_memory_retries_with_smaller_tiles_and_equals_the_whole_frame(network, error):
    pair = pair_for(network, 130, 70, seed=9)  # padded 256x128
    with torch.inference_mode():
        reference = network.synthesize(pair, 0.5)
    plan = TilePlan(None, max_memory=None)
    plan.chosen = True  # the whole frame first, as an automatic choice that was too hopeful
    with FailsAboveSize(network, limit=90 * 90, error=error) as failing, torch.inference_mode():
        result = plan.synthesize(network, pair, 0.5)
    assert plan.recoveries >= 2 and plan.current == 64
    assert failing.windows[0].pixels == 256 * 128  # the whole frame was tried first
    for field in ("output", "blend", "flow_to_first", "flow_to_second"):
        assert max_difference(getattr(result, field), getattr(reference, field)) <= EXACT
    # The smaller tile stays for the following timestamps: no failed attempt before them.
    tried = len(failing.windows)
    with FailsAboveSize(network, limit=90 * 90, error=error) as again, torch.inference_mode():
        plan.synthesize(network, pair, 0.25)
    assert all(window.pixels <= 90 * 90 for window in again.windows), tried


def test_out_of_memory_at_the_smallest_tile_says_what_to_try(network):
    pair = pair_for(network, 64, 48)
    plan = TilePlan(64)
    with (
        FailsAboveSize(network, limit=10, error=torch.OutOfMemoryError),
        torch.inference_mode(),
        pytest.raises(TileMemoryError, match=r"even with 32-pixel tiles; try precision=") as caught,
    ):
        plan.synthesize(network, pair, 0.5)
    assert isinstance(caught.value.__cause__, torch.OutOfMemoryError)
    assert "128x128" in str(caught.value)


def test_tile_zero_never_tiles_and_does_not_retry(network):
    pair = pair_for(network, 64, 48)
    plan = TilePlan(0)
    with (
        FailsAboveSize(network, limit=10, error=MemoryError) as failing,
        torch.inference_mode(),
        pytest.raises(TileMemoryError, match="the whole frame"),
    ):
        plan.synthesize(network, pair, 0.5)
    assert len(failing.windows) == 1


def test_other_errors_are_not_taken_for_out_of_memory(network):
    pair = pair_for(network, 64, 48)
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


def test_filter_frames_with_forced_tiles_and_after_recovery_equal_untiled():
    import numpy as np
    from filter_clips import moving_clip, planes, random_network

    import vsdain

    network = random_network()
    clip = moving_clip(3)
    untiled = [planes(f) for f in vsdain.Interpolate(clip, 2, model=network, tile=0).frames()]
    tiled = [planes(f) for f in vsdain.Interpolate(clip, 2, model=network, tile=48).frames()]
    with FailsAboveSize(network, limit=70 * 70, error=MemoryError) as failing:
        recovered = [planes(f) for f in vsdain.Interpolate(clip, 2, model=network).frames()]
    assert any(window.pixels > 70 * 70 for window in failing.windows)  # it did run out
    for got in (tiled, recovered):
        assert len(got) == len(untiled) == 6
        for a, b in zip(got, untiled, strict=True):
            assert np.abs(a.astype(np.float64) - b).max() <= EXACT


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
def test_filter_refuses_bad_tiling_arguments(arguments, match):
    import vapoursynth as vs
    from filter_clips import moving_clip, random_network

    import vsdain

    with pytest.raises(vs.Error, match=f"Interpolate: {match}"):
        vsdain.Interpolate(moving_clip(2), model=random_network(), **arguments)


def test_filter_out_of_memory_at_the_smallest_tile_names_the_frame():
    import vapoursynth as vs
    from filter_clips import moving_clip, random_network

    import vsdain

    network = random_network()
    clip = vsdain.Interpolate(moving_clip(2), 2, model=network, tile=32)
    with (
        FailsAboveSize(network, limit=10, error=torch.OutOfMemoryError),
        pytest.raises(vs.Error, match=r"frame 1 .*even with 32-pixel tiles; try precision="),
    ):
        clip.get_frame(1)
